"""Calibration of the normal-normal model (SPEC section 9), written to this folder.

1. Simulation-based calibration (Talts et al. 2018): parameters drawn from the default
   priors (mu ~ Normal(0, 1), tau ~ HalfNormal(0.5)), k in {1, 2, 5, 10} studies with
   standard errors uniform on [0.1, 0.6] (log-HR scale), data from the model.
   - exact engine: the posterior CDF at the true value (PIT) must be Uniform(0, 1) for
     mu, tau and theta_new;
   - MCMC engine: the rank of the true value among 99 thinned posterior draws must be
     uniform on 0..99.
2. Frequentist coverage of the central 95% interval for mu with 2 to 10 studies, at
   fixed true mu = -0.3 and tau in {0, 0.2, 0.5}, for the Bayesian exact engine under
   the default priors and, for comparison, REML and DerSimonian-Laird Wald intervals and
   REML with the Knapp-Hartung adjustment.

Run from the repository root (about 3 minutes on 2 cores):
    python validation/calibration/normal_model.py [--quick]
It writes normal_sbc.json, normal_coverage.csv and normal_calibration.md here.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import hccmeta as hm
from hccmeta.models.frequentist import rma

HERE = Path(__file__).resolve().parent
SEED = 20260101
KS = (1, 2, 5, 10)
SE_RANGE = (0.1, 0.6)


def simulate(rng: np.random.Generator, k: int, mu: float, tau: float):
    s = rng.uniform(*SE_RANGE, k)
    theta = mu + tau * rng.standard_normal(k)
    return theta + s * rng.standard_normal(k), s


def sbc_exact(reps: int, rng: np.random.Generator) -> dict:
    prior_mu, prior_tau = hm.priors.DEFAULT_MU, hm.priors.DEFAULT_TAU
    pit: dict[str, list[float]] = {"mu": [], "tau": [], "theta_new": []}
    for r in range(reps):
        k = KS[r % len(KS)]
        mu = float(prior_mu.rvs(rng, 1)[0])
        tau = float(prior_tau.rvs(rng, 1)[0])
        new = mu + tau * rng.standard_normal()
        y, s = simulate(rng, k, mu, tau)
        res = hm.pool(y, s, measure="hr")
        pit["mu"].append(res.prob_below(mu, "mu"))
        pit["tau"].append(res.prob_below(tau, "tau"))
        pit["theta_new"].append(res.prob_below(new, "theta_new"))
    out = {}
    for name, values in pit.items():
        u = np.array(values)
        counts, _ = np.histogram(u, bins=20, range=(0, 1))
        out[name] = {
            "ks_statistic": float(stats.kstest(u, "uniform").statistic),
            "ks_p": float(stats.kstest(u, "uniform").pvalue),
            "chi2_p": float(stats.chisquare(counts).pvalue),
            "histogram_20_bins": counts.tolist(),
        }
    return {"engine": "exact", "replications": reps, "statistic": "PIT", "results": out}


def sbc_mcmc(reps: int, rng: np.random.Generator) -> dict:
    prior_mu, prior_tau = hm.priors.DEFAULT_MU, hm.priors.DEFAULT_TAU
    ranks: dict[str, list[int]] = {"mu": [], "tau": []}
    flagged = 0
    for r in range(reps):
        k = KS[r % len(KS)]
        mu = float(prior_mu.rvs(rng, 1)[0])
        tau = float(prior_tau.rvs(rng, 1)[0])
        y, s = simulate(rng, k, mu, tau)
        res = hm.pool(y, s, measure="hr", method="mcmc", seed=r)
        flagged += not res.ok
        draws = res.posterior_draws()
        for name, true in (("mu", mu), ("tau", tau)):
            thinned = draws[name].ravel()[::40][:99]
            ranks[name].append(int((thinned < true).sum()))
    out = {}
    for name, values in ranks.items():
        counts, _ = np.histogram(values, bins=10, range=(0, 100))
        out[name] = {
            "chi2_p": float(stats.chisquare(counts).pvalue),
            "histogram_10_bins": counts.tolist(),
        }
    return {
        "engine": "mcmc",
        "replications": reps,
        "statistic": "rank among 99 thinned draws",
        "fits_flagged_by_diagnostics": flagged,
        "results": out,
    }


def coverage(reps: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    mu_true = -0.3
    for tau in (0.0, 0.2, 0.5):
        for k in range(2, 11):
            hits: dict[str, list[bool]] = {}
            widths: dict[str, list[float]] = {}
            for _ in range(reps):
                y, s = simulate(rng, k, mu_true, tau)
                bayes = hm.pool(y, s, measure="hr").summary().loc["mu"]
                intervals = {"bayes_exact_default_priors": (bayes["ci_lower"], bayes["ci_upper"])}
                for label, kwargs in (
                    ("reml_wald", {"method": "REML"}),
                    ("dl_wald", {"method": "DL"}),
                    ("reml_knapp_hartung", {"method": "REML", "test": "knha"}),
                ):
                    f = rma(y, sei=s, **kwargs)
                    intervals[label] = (f.ci_lower, f.ci_upper)
                for label, (lo, hi) in intervals.items():
                    hits.setdefault(label, []).append(lo <= mu_true <= hi)
                    widths.setdefault(label, []).append(hi - lo)
            for label in hits:
                cov = float(np.mean(hits[label]))
                rows.append(
                    {
                        "k": k,
                        "tau": tau,
                        "method": label,
                        "coverage": cov,
                        "mc_se": math.sqrt(cov * (1 - cov) / reps),
                        "mean_width": float(np.mean(widths[label])),
                        "replications": reps,
                    }
                )
    return pd.DataFrame(rows)


def _markdown(wide: pd.DataFrame) -> str:
    cols = list(wide.columns)
    out = ["| tau | k | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for (tau, k), row in wide.iterrows():
        out.append(f"| {tau:g} | {k} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="few replications (a smoke run)")
    args = parser.parse_args()
    n_sbc, n_mcmc, n_cov = (200, 20, 50) if args.quick else (2000, 200, 400)
    rng = np.random.default_rng(SEED)
    sbc = {
        "seed": SEED,
        "priors": {"mu": repr(hm.priors.DEFAULT_MU), "tau": repr(hm.priors.DEFAULT_TAU)},
        "k_cycle": list(KS),
        "se_range": list(SE_RANGE),
        "exact": sbc_exact(n_sbc, rng),
        "mcmc": sbc_mcmc(n_mcmc, rng),
    }
    cov = coverage(n_cov, rng)
    if args.quick:
        print(json.dumps(sbc, indent=1))
        print(cov.to_string())
        return
    (HERE / "normal_sbc.json").write_text(json.dumps(sbc, indent=1) + "\n")
    cov.to_csv(HERE / "normal_coverage.csv", index=False, float_format="%.4f")
    wide = cov.pivot_table(index=["tau", "k"], columns="method", values="coverage")
    lines = [
        "# Calibration of the normal-normal model",
        "",
        "Generated by `python validation/calibration/normal_model.py` "
        f"(seed {SEED}; hccmeta {hm.__version__}).",
        "",
        "## Simulation-based calibration (default priors, k cycling through "
        f"{', '.join(map(str, KS))})",
        "",
        "| engine | quantity | replications | uniformity p-value |",
        "|---|---|---|---|",
    ]
    for name, r in sbc["exact"]["results"].items():
        lines.append(
            f"| exact (PIT) | {name} | {n_sbc} | KS {r['ks_p']:.3f}, chi2 {r['chi2_p']:.3f} |"
        )
    for name, r in sbc["mcmc"]["results"].items():
        lines.append(f"| mcmc (ranks) | {name} | {n_mcmc} | chi2 {r['chi2_p']:.3f} |")
    lines += [
        "",
        f"MCMC fits flagged by the diagnostics: {sbc['mcmc']['fits_flagged_by_diagnostics']}"
        f" of {n_mcmc}.",
        "",
        f"## Coverage of the 95% interval for mu (true mu = -0.3; {n_cov} replications per "
        "cell; Monte Carlo SE about 0.011 at 0.95)",
        "",
        _markdown(wide),
        "",
    ]
    (HERE / "normal_calibration.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
