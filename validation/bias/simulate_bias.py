"""Coverage of the randomised-level effect when non-randomised studies carry a known bias.

Data (log hazard ratios): every study has a true effect ``theta_i ~ N(mu, tau^2)`` with
``mu = -0.3`` (HR 0.74) and ``tau = 0.1``; a non-randomised study reports ``theta_i +
b_i`` with ``b_i ~ N(mu_b, sigma_b^2)``, ``mu_b = -0.3`` (it exaggerates the benefit,
the concern of issue 11) and ``sigma_b = 0.15``; each study's estimate has sampling error
``N(0, s_i^2)`` with ``s_i`` uniform on [0.10, 0.25] (randomised) or [0.15, 0.40]
(non-randomised). Designs (randomised + non-randomised): 3 + 5, 2 + 8, 5 + 5.

Each replication is analysed by

- ``combined``: :func:`hccmeta.pool_combined` with its default priors (mu ~ N(0, 1), tau ~
  HalfNormal(0.5), mu_b ~ N(0, 0.5), sigma_b ~ HalfNormal(0.3)), exact engine;
- ``combined_mcmc``: the same model sampled by PyMC + nutpie, on the first ``--reps-mcmc``
  replications of each design (the compiled-once path: one compile per number of
  studies);
- ``naive``: :func:`hccmeta.pool` on all studies, ignoring design;
- ``rct_only``: :func:`hccmeta.pool` on the randomised studies only;
- ``additive_default``: :func:`hccmeta.pool` with the default bias of a non-randomised
  study at serious risk of bias with unpredictable direction, ``bias_prior("serious",
  0)`` = N(0, 0.42^2), for each non-randomised study (a fixed, not learnt, bias);
- ``additive_signed``: the same with the direction predicted (correctly),
  ``bias_prior("serious", -1)`` = N(-0.3, 0.3^2).

It reports the coverage of the central 95% interval for mu (with its Monte Carlo
standard error), the mean interval width, the mean error and root-mean-square error of
the posterior median, and for the combined model the coverage of mu_b. The issue asks
for coverage >= 0.93 for the combined model.

Run from the repository root (29.5 minutes on 2 shared cores at a load average of about
10; less on a quiet machine)::

    python validation/bias/simulate_bias.py [--reps-exact 500] [--reps-mcmc 200] [--quick]

It writes bias_simulation.csv, bias_simulation.md, bias_simulation.json and
bias_simulation.png in this folder.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import hccmeta as hm
from hccmeta.models import mcmc
from hccmeta.models.bias_exact import CombinedExactPosterior
from hccmeta.priors import (
    DEFAULT_BIAS_MEAN,
    DEFAULT_BIAS_SD,
    DEFAULT_MU,
    DEFAULT_TAU,
    bias_prior,
)

HERE = Path(__file__).resolve().parent
SEED = 20261101
TRUTH = {"mu": -0.3, "tau": 0.1, "mu_b": -0.3, "sigma_b": 0.15}
SE_RCT = (0.10, 0.25)
SE_NRS = (0.15, 0.40)
DESIGNS = ((3, 5), (2, 8), (5, 5))
PROBS = np.array([0.025, 0.5, 0.975])
METHODS = (
    "combined",
    "combined_mcmc",
    "naive",
    "rct_only",
    "additive_default",
    "additive_signed",
)
#: The default draws and tuning of hccmeta's MCMC fits (4 x 1000 draws: the diagnostics
#: ask for bulk and tail ESS >= 400, which 4 x 500 draws often miss), one retry.
MCMC_SETTINGS = mcmc.SamplerSettings(
    draws=1000, tune=1000, chains=4, target_accept=0.95, max_retries=1
)


def simulate(rng: np.random.Generator, k_rct: int, k_nrs: int) -> tuple[np.ndarray, ...]:
    k = k_rct + k_nrs
    randomised = np.arange(k) < k_rct
    s = np.where(randomised, rng.uniform(*SE_RCT, k), rng.uniform(*SE_NRS, k))
    theta = TRUTH["mu"] + TRUTH["tau"] * rng.standard_normal(k)
    bias = np.where(randomised, 0.0, TRUTH["mu_b"] + TRUTH["sigma_b"] * rng.standard_normal(k))
    y = theta + bias + s * rng.standard_normal(k)
    return y, s, randomised


def _row(q: np.ndarray, truth: float) -> dict[str, float]:
    lo, med, hi = (float(v) for v in q)
    return {
        "covered": float(lo <= truth <= hi),
        "width": hi - lo,
        "error": med - truth,
    }


def analyse_exact(y: np.ndarray, s: np.ndarray, randomised: np.ndarray) -> dict[str, dict]:
    out: dict[str, dict] = {}
    post = CombinedExactPosterior(
        y, s, ~randomised, DEFAULT_MU, DEFAULT_TAU, DEFAULT_BIAS_MEAN, DEFAULT_BIAS_SD
    )
    out["combined"] = _row(post.marginal("mu").quantile(PROBS)[0], TRUTH["mu"])
    mb = _row(post.marginal("mu_b").quantile(PROBS)[0], TRUTH["mu_b"])
    out["combined"].update({f"mu_b_{key}": value for key, value in mb.items()})
    for name, fit in (
        ("naive", hm.pool(y, s)),
        ("rct_only", hm.pool(y[randomised], s[randomised])),
        (
            "additive_default",
            hm.pool(y, s, bias=[None if r else bias_prior("serious", 0) for r in randomised]),
        ),
        (
            "additive_signed",
            hm.pool(y, s, bias=[None if r else bias_prior("serious", -1) for r in randomised]),
        ),
    ):
        q = fit.summary().loc["mu", ["ci_lower", "median", "ci_upper"]].to_numpy(dtype=float)
        out[name] = _row(q, TRUTH["mu"])
    return out


def analyse_mcmc(
    y: np.ndarray, s: np.ndarray, randomised: np.ndarray, seed: int
) -> dict[str, float]:
    fit = hm.pool_combined(y, s, randomised=list(randomised), seed=seed, settings=MCMC_SETTINGS)
    table = fit.summary()
    q = table.loc["mu", ["ci_lower", "median", "ci_upper"]].to_numpy(dtype=float)
    row = _row(q, TRUTH["mu"])
    qb = table.loc["mu_b", ["ci_lower", "median", "ci_upper"]].to_numpy(dtype=float)
    row.update({f"mu_b_{key}": value for key, value in _row(qb, TRUTH["mu_b"]).items()})
    d = fit.diagnostics
    assert d is not None
    row.update({"ok": float(d.ok), "retries": float(d.retries)})
    return row


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (design, method), grp in records.groupby(["design", "method"], sort=False):
        n = len(grp)
        cov = grp["covered"].mean()
        row = {
            "design": design,
            "method": method,
            "replications": n,
            "coverage_mu": cov,
            "coverage_mu_mcse": math.sqrt(cov * (1 - cov) / n),
            "mean_width_mu": grp["width"].mean(),
            "mean_error_mu": grp["error"].mean(),
            "rmse_mu": math.sqrt((grp["error"] ** 2).mean()),
        }
        if "mu_b_covered" in grp and grp["mu_b_covered"].notna().any():
            row["coverage_mu_b"] = grp["mu_b_covered"].mean()
            row["mean_width_mu_b"] = grp["mu_b_width"].mean()
        if "ok" in grp and grp["ok"].notna().any():
            row["mcmc_failed_diagnostics"] = int((grp["ok"] == 0).sum())
            row["mcmc_retried"] = int((grp["retries"] > 0).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def figure(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    designs = list(dict.fromkeys(summary["design"]))
    methods = [m for m in METHODS if m in set(summary["method"])]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    width = 0.8 / len(methods)
    for j, method in enumerate(methods):
        sub = summary.set_index(["design", "method"])
        x = np.arange(len(designs)) + (j - (len(methods) - 1) / 2) * width
        cov = [sub.loc[(d, method), "coverage_mu"] for d in designs]
        err = [1.96 * sub.loc[(d, method), "coverage_mu_mcse"] for d in designs]
        wid = [sub.loc[(d, method), "mean_width_mu"] for d in designs]
        axes[0].errorbar(x, cov, yerr=err, fmt="o", label=method, capsize=3)
        axes[1].bar(x, wid, width=width, label=method)
    axes[0].axhline(0.95, color="grey", lw=1, ls="--")
    axes[0].axhline(0.93, color="red", lw=1, ls=":")
    axes[0].set_ylabel("coverage of the 95% interval for mu")
    axes[1].set_ylabel("mean width of the 95% interval for mu (log HR)")
    for ax in axes:
        ax.set_xticks(np.arange(len(designs)))
        ax.set_xticklabels(designs)
        ax.set_xlabel("randomised + non-randomised studies")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(
        f"mu = {TRUTH['mu']}, tau = {TRUTH['tau']}, bias of non-randomised studies "
        f"N({TRUTH['mu_b']}, {TRUTH['sigma_b']}^2)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(summary: pd.DataFrame, meta: dict) -> str:
    lines = [
        "# Bias simulation: coverage of the randomised-level effect",
        "",
        "Written by `validation/bias/simulate_bias.py` (do not edit by hand). Truth: "
        f"mu = {TRUTH['mu']}, tau = {TRUTH['tau']} (log HR); non-randomised studies biased "
        f"by N({TRUTH['mu_b']}, {TRUTH['sigma_b']}^2); SEs uniform on {SE_RCT} "
        f"(randomised) and {SE_NRS} (non-randomised). Seed {meta['seed']}; "
        f"{meta['reps_exact']} replications per design (exact engine), "
        f"{meta['reps_mcmc']} with MCMC ({meta['mcmc_settings']}); "
        f"run time {meta['seconds']:.0f} s.",
        "",
        "| design | method | reps | coverage of mu (MC SE) | mean width | mean error "
        "| RMSE | coverage of mu_b |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in summary.iterrows():
        mub = r.get("coverage_mu_b")
        mub_text = f"{mub:.3f}" if isinstance(mub, float) and not math.isnan(mub) else ""
        lines.append(
            f"| {r['design']} | {r['method']} | {int(r['replications'])} | "
            f"{r['coverage_mu']:.3f} ({r['coverage_mu_mcse']:.3f}) | "
            f"{r['mean_width_mu']:.3f} | {r['mean_error_mu']:+.3f} | {r['rmse_mu']:.3f} | "
            f"{mub_text} |"
        )
    failed = summary.get("mcmc_failed_diagnostics")
    if failed is not None and failed.notna().any():
        lines += [
            "",
            "MCMC fits that failed their diagnostics after one retry (kept in the table): "
            + ", ".join(
                f"{r['design']}: {int(r['mcmc_failed_diagnostics'])} of "
                f"{int(r['replications'])} (retried: {int(r['mcmc_retried'])})"
                for _, r in summary.iterrows()
                if r["method"] == "combined_mcmc"
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps-exact", type=int, default=500)
    parser.add_argument("--reps-mcmc", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 + 5 replications, no files")
    args = parser.parse_args()
    reps_exact, reps_mcmc = (20, 5) if args.quick else (args.reps_exact, args.reps_mcmc)
    start = time.perf_counter()
    records = []
    warnings.simplefilter("error", RuntimeWarning)
    for d_index, (k_rct, k_nrs) in enumerate(DESIGNS):
        design = f"{k_rct} + {k_nrs}"
        for rep in range(reps_exact):
            rng = np.random.default_rng(np.random.SeedSequence([SEED, d_index, rep]))
            y, s, randomised = simulate(rng, k_rct, k_nrs)
            for method, row in analyse_exact(y, s, randomised).items():
                records.append({"design": design, "method": method, "rep": rep, **row})
            if rep < reps_mcmc:
                row = analyse_mcmc(y, s, randomised, seed=rep)
                records.append({"design": design, "method": "combined_mcmc", "rep": rep, **row})
        print(f"{design}: done at {time.perf_counter() - start:.0f} s", flush=True)
    frame = pd.DataFrame(records)
    summary = summarise(frame)
    order = {m: i for i, m in enumerate(METHODS)}
    order.update({f"{a} + {b}": i for i, (a, b) in enumerate(DESIGNS)})
    summary = summary.sort_values(
        ["design", "method"], key=lambda col: col.map(order), kind="stable"
    ).reset_index(drop=True)
    seconds = time.perf_counter() - start
    meta = {
        "seed": SEED,
        "truth": TRUTH,
        "se_randomised": SE_RCT,
        "se_non_randomised": SE_NRS,
        "designs": [list(d) for d in DESIGNS],
        "reps_exact": reps_exact,
        "reps_mcmc": reps_mcmc,
        "mcmc_settings": (
            f"{MCMC_SETTINGS.chains} chains x {MCMC_SETTINGS.draws} draws, "
            f"{MCMC_SETTINGS.tune} tuning, target acceptance {MCMC_SETTINGS.target_accept}"
        ),
        "priors": {
            "mu": repr(DEFAULT_MU),
            "tau": repr(DEFAULT_TAU),
            "mu_b": repr(DEFAULT_BIAS_MEAN),
            "sigma_b": repr(DEFAULT_BIAS_SD),
            "additive_default": repr(bias_prior("serious", 0)),
            "additive_signed": repr(bias_prior("serious", -1)),
        },
        "seconds": seconds,
        "hccmeta": hm.__version__,
    }
    print(summary.to_string(index=False))
    if args.quick:
        return
    summary.to_csv(HERE / "bias_simulation.csv", index=False, float_format="%.4f")
    (HERE / "bias_simulation.md").write_text(markdown(summary, meta), encoding="utf-8")
    (HERE / "bias_simulation.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    figure(summary, HERE / "bias_simulation.png")
    print(f"wrote {HERE}/bias_simulation.* in {seconds:.0f} s")


if __name__ == "__main__":
    main()
