"""Frequentist coverage of the survival synthesis (hccmeta.models.survival.fit_survival)
on simulated Kaplan-Meier data of a trial like the n=34 study: the shipped default
(overlap="joint") against the two sensitivity variants (overlap="families", the 1/m
weights, and "none", every statistic as if independent).

Each replication: two Weibull arms (n = 12 reference, 22 experimental; shape 1.2,
reference median 9 months, HR 0.45, so the experimental median is 17.5 months); uniform
accrual over 48 months, analysis 12 months after the last enrolment, 1% a month lost to
follow-up (tests/simulate.py). What a paper like the n=34 study prints, and what the
effects layer derives from it by default:

- each arm's Kaplan-Meier median (0.1 month; "not reached" leaves it out) with the SE of
  the Kaplan-Meier median from the arm's deaths, ``1 / sqrt(d ln(2)^2)``;
- each arm's Kaplan-Meier survival at 6, 12 and 24 months (whole percent) with the
  arm's size as the number at risk (no censoring before t assumed: n_eff = n);
- the log-rank p (two-sided) and the total number of deaths D, turned into a log HR by
  Tierney's method: ``V = D n_1 n_0 / N^2``, ``ln HR = -+ z_{1-p/2} / sqrt(V)`` (sign of
  O - E), ``SE = 1 / sqrt(V)``.

One study per fit (the random-effects priors of the model as shipped; the study's own
quantities are what is checked: ``log_hr_study``, ``median_study`` and the survival at 6,
12 and 24 months of each arm's fitted curve). Each fit 2 chains x 500 draws after 500
tuning draws (at most one retry); fits the diagnostics flag stay in.

Run from the repository root (about an hour on 2 busy cores):
    python validation/survival/survival_coverage.py [--reps N]
It writes survival_coverage.csv and survival_coverage.md here (not with --reps).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import hccmeta as hm  # noqa: E402
from hccmeta.models import mcmc  # noqa: E402
from hccmeta.models.survival import fit_survival  # noqa: E402
from tests.simulate import kaplan_meier, logrank, simulate_arm, weibull_survival  # noqa: E402

SEED = 20260411
REPS = 200
LN2 = math.log(2.0)
SHAPE, M_REF, HR = 1.2, 9.0, 0.45
M_EXP = M_REF * HR ** (-1.0 / SHAPE)
N_REF, N_EXP = 12, 22
TIMES = (6.0, 12.0, 24.0)
OVERLAPS = ("joint", "families", "none")
SETTINGS = mcmc.SamplerSettings(draws=500, tune=500, chains=2, target_accept=0.9, max_retries=1)


def report(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """What the paper prints about one simulated trial, as the model's inputs."""
    arms = {
        "ref": simulate_arm(rng, n=N_REF, median=M_REF, shape=SHAPE, accrual=48.0, follow_up=12.0),
        "exp": simulate_arm(rng, n=N_EXP, median=M_EXP, shape=SHAPE, accrual=48.0, follow_up=12.0),
    }
    med, lm = [], []
    for label, arm in arms.items():
        km = kaplan_meier(arm)
        m = km.median()
        if math.isfinite(m) and arm.events > 0:
            med.append(
                {
                    "study": "sim",
                    "arm": label,
                    "yi": math.log(round(m, 1)),
                    "sei": 1.0 / math.sqrt(arm.events * LN2**2),
                }
            )
        for t in TIMES:
            s, _ = km.at(t)
            lm.append(
                {"study": "sim", "arm": label, "time": t, "survival": round(s, 2), "n_eff": arm.n}
            )
    o_minus_e, _, p = logrank(arms["exp"], arms["ref"])
    deaths = arms["ref"].events + arms["exp"].events
    v = deaths * N_REF * N_EXP / (N_REF + N_EXP) ** 2
    z = stats.norm.isf(p / 2)
    ct = [
        {
            "study": "sim",
            "yi": math.copysign(z, o_minus_e) / math.sqrt(v),
            "sei": 1 / math.sqrt(v),
            "kind": "tierney",
        }
    ]
    return {
        "arms": pd.DataFrame(
            {"study": ["sim", "sim"], "arm": ["ref", "exp"], "n": [float(N_REF), float(N_EXP)]}
        ),
        "medians": pd.DataFrame(med, columns=["study", "arm", "yi", "sei"]),
        "landmarks": pd.DataFrame(lm),
        "contrasts": pd.DataFrame(ct),
    }


def truths() -> dict[str, float]:
    out = {"log_hr": math.log(HR)}
    for label, m in (("ref", M_REF), ("exp", M_EXP)):
        out[f"median_{label}"] = m
        for t in TIMES:
            out[f"S{t:g}_{label}"] = float(weibull_survival(t, m, SHAPE))
    return out


def fit_draws(
    data: dict[str, pd.DataFrame], overlap: str, seed: int
) -> tuple[dict[str, np.ndarray], mcmc.Diagnostics]:
    res = fit_survival(
        data["arms"],
        reference="ref",
        medians=data["medians"],
        landmarks=data["landmarks"],
        contrasts=data["contrasts"],
        overlap=overlap,  # type: ignore[arg-type]
        seed=seed,
        settings=SETTINGS,
    )
    med = res.draws("median_study")[:, 0, :]
    k = res.draws("k")
    out = {"log_hr": res.draws("log_hr_study")[:, 0]}
    for j, label in enumerate(("ref", "exp")):
        out[f"median_{label}"] = med[:, j]
        for t in TIMES:
            out[f"S{t:g}_{label}"] = np.exp(-LN2 * (t / med[:, j]) ** k)
    return out, res.diagnostics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, help=f"replications (default {REPS}; not written)")
    args = parser.parse_args()
    reps = args.reps or REPS
    rng = np.random.default_rng(SEED)
    truth = truths()
    rows = []
    start = time.perf_counter()
    for rep in range(reps):
        data = report(rng)
        fit_seed = int(rng.integers(2**31))
        for overlap in OVERLAPS:
            draws, diag = fit_draws(data, overlap, fit_seed)
            for name, value in truth.items():
                lo, hi = np.quantile(draws[name], [0.025, 0.975])
                rows.append(
                    {
                        "replication": rep,
                        "overlap": overlap,
                        "quantity": name,
                        "covered": bool(lo <= value <= hi),
                        "width": float(hi - lo),
                        "flagged": not diag.ok,
                    }
                )
        if rep % 20 == 19:
            print(f"{rep + 1} replications, {time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    raw = pd.DataFrame(rows)
    table = (
        raw.groupby(["quantity", "overlap"], sort=False)
        .agg(coverage=("covered", "mean"), mean_width=("width", "mean"), flagged=("flagged", "sum"))
        .reset_index()
    )
    table["replications"] = reps
    wide = table.pivot_table(index="quantity", columns="overlap", values="coverage")[list(OVERLAPS)]
    wide = wide.loc[list(truth)]
    width = table.pivot_table(index="quantity", columns="overlap", values="mean_width")[
        list(OVERLAPS)
    ]
    width = width.loc[list(truth)]
    print(wide.round(3).to_string())
    if args.reps:
        return
    table.to_csv(HERE / "survival_coverage.csv", index=False)
    flagged = {
        o: int(raw[(raw["overlap"] == o) & (raw["quantity"] == "log_hr")]["flagged"].sum())
        for o in OVERLAPS
    }
    mcse = math.sqrt(0.95 * 0.05 / reps)
    lines = [
        "# Coverage of the survival synthesis on simulated Kaplan-Meier data",
        "",
        f"Generated by `python validation/survival/survival_coverage.py` (seed {SEED}; hccmeta "
        f"{hm.__version__}; {reps} replications; {seconds / 60:.0f} minutes on 2 shared "
        "cores). A trial like the n=34 study: Weibull arms of 12 (reference, median 9 "
        f"months) and 22 patients (HR {HR}, median {M_EXP:.1f} months), shape {SHAPE}, "
        "uniform accrual over 48 months, analysis 12 months after the last enrolment, 1% "
        "a month lost to follow-up. Reported as a paper would and derived as the effects "
        "layer does by default: Kaplan-Meier medians with SE 1 / sqrt(d ln(2)^2), survival "
        "at 6, 12 and 24 months (whole percent, n at risk imputed as the arm's size), the "
        "log-rank p with the total deaths by Tierney's method. One study per fit; the "
        "study's own log HR, medians and landmark survival are checked.",
        "",
        f"Share of 95% intervals that contain the truth (Monte Carlo SE about {mcse:.3f} "
        "at 0.95); in brackets the mean interval width (log HR: log scale; medians: "
        "months; survival: probability).",
        "",
        "| quantity | truth | " + " | ".join(f"overlap='{o}'" for o in OVERLAPS) + " |",
        "|---|---|" + "---|" * len(OVERLAPS),
    ]
    for name, value in truth.items():
        cells = [f"{wide.loc[name, o]:.3f} ({width.loc[name, o]:.2f})" for o in OVERLAPS]
        lines.append(f"| {name} | {value:.3f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "`joint` is the default; `families` and `none` are its sensitivity variants. Fits "
        "flagged by the diagnostics (after one retry), kept in: "
        + ", ".join(f"{o} {flagged[o]} of {reps}" for o in OVERLAPS)
        + ".",
        "",
    ]
    (HERE / "survival_coverage.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
