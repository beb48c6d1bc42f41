"""Frequentist coverage of the survival synthesis (hccmeta.models.survival.fit_survival)
on simulated Kaplan-Meier data of a trial like the n=34 study: the shipped default
(overlap="joint") against the two sensitivity variants (overlap="families", the 1/m
weights, and "none", every statistic as if independent).

Each replication: two Weibull arms (n = 12 reference, 22 experimental; shape 1.2,
reference median 9 months, HR 0.45, so the experimental median is 17.5 months), uniform
accrual over 48 months (tests/simulate.py). What a paper like the n=34 study prints, and
what the effects layer derives from it by default:

- each arm's Kaplan-Meier median (0.1 month; "not reached" leaves it out) with the SE of
  the Kaplan-Meier median from the arm's deaths, ``1 / sqrt(d ln(2)^2)``;
- each arm's Kaplan-Meier survival at 6, 12 and 24 months (whole percent) with the
  arm's size as the number at risk (no censoring before t assumed: n_eff = n);
- the log-rank p (two-sided) and the total number of deaths D, turned into a log HR by
  Tierney's method: ``V = D n_1 n_0 / N^2``, ``ln HR = -+ z_{1-p/2} / sqrt(V)`` (sign of
  O - E), ``SE = 1 / sqrt(V)``.

Four scenarios (SCENARIOS), on the same simulated event times:

- ``default``: analysis 12 months after the last enrolment and 1% a month lost to
  follow-up, so that about a quarter of the patients are censored before 24 months,
  which the default imputation (n at risk = the arm's size, for a paper that prints
  neither numbers at risk nor the end of follow-up) does not know; every overlap (the
  shipped ``joint`` and its sensitivity variants ``families`` and ``none``);
- ``no_early_censoring``: analysis 24 months after the last enrolment, nobody lost:
  the joint likelihood's assumption (no censoring before the statistics' times) holds;
- ``follow_up_known``: the default's censoring, with each landmark's number at risk
  from the entry period and the end of follow-up (the production default where a paper
  prints both: ``hccmeta.effects.survival.n_at_risk_under_accrual``);
- ``at_risk_known``: the default's censoring, with each landmark's effective size from
  the Kaplan-Meier curve (``S (1 - S) / Var_Greenwood``), as printed numbers at risk
  allow.

The last three separate the likelihood's calibration from the imputation's.

One study per fit (the random-effects priors of the model as shipped; the study's own
quantities are what is checked: ``log_hr_study``, ``median_study`` and the survival at 6,
12 and 24 months of each arm's fitted curve). Each fit 2 chains x 500 draws after 500
tuning draws (at most one retry); fits the diagnostics flag stay in.

Run from the repository root (about half an hour on 2 cores):
    python validation/survival/survival_coverage.py [--reps N] [--scenarios NAME ...]
        [--overlaps NAME ...] [--update] [--render]
It writes survival_coverage.csv and survival_coverage.md here (not with --reps,
--overlaps or --scenarios; with --scenarios and --update it replaces those scenarios'
rows; --render rewrites the .md from the .csv).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import hccmeta as hm  # noqa: E402
from hccmeta.effects.survival import n_at_risk_under_accrual  # noqa: E402
from hccmeta.models import mcmc  # noqa: E402
from hccmeta.models.survival import fit_survival  # noqa: E402
from tests.simulate import kaplan_meier, logrank, simulate_arm, weibull_survival  # noqa: E402

SEED = 20260411
REPS = 200
DIAGNOSTIC_REPS = 100
LN2 = math.log(2.0)
SHAPE, M_REF, HR = 1.2, 9.0, 0.45
M_EXP = M_REF * HR ** (-1.0 / SHAPE)
N_REF, N_EXP = 12, 22
ACCRUAL = 48.0
TIMES = (6.0, 12.0, 24.0)
OVERLAPS = ("joint", "families", "none")
SETTINGS = mcmc.SamplerSettings(draws=500, tune=500, chains=2, target_accept=0.9, max_retries=1)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """How the trial is followed up and what the landmarks' effective sizes are."""

    name: str
    description: str
    follow_up: float  # months from the last enrolment to the analysis
    dropout: float  # loss to follow-up per month
    n_eff: str  # "n": the arm's size (the production default); "greenwood": from the KM;
    # "accrual": from the entry period and the end of follow-up (the production default
    # where a paper prints them)
    overlaps: tuple[str, ...]


SCENARIOS = {
    "default": Scenario(
        "default",
        "the production defaults for a paper that prints neither numbers at risk nor the "
        "end of follow-up: censoring before the landmark times (uniform accrual over 48 "
        "months, analysis 12 months after the last enrolment, 1% a month lost), n at risk "
        "imputed as the arm's size",
        12.0, 0.01, "n", OVERLAPS,
    ),
    "no_early_censoring": Scenario(
        "no_early_censoring",
        "the default likelihood's assumption holds: nobody censored before 24 months "
        "(analysis 24 months after the last enrolment, nobody lost), n at risk = the "
        "arm's size",
        24.0, 0.0, "n", ("joint",),
    ),
    "follow_up_known": Scenario(
        "follow_up_known",
        "the default trial's censoring, with the landmarks' numbers at risk from the entry "
        "period and the end of follow-up, as the effects layer derives them where a paper "
        "prints both (hccmeta.effects.survival.n_at_risk_under_accrual: uniform entry over "
        "48 months, follow-up to 12 months after the last entry; the 1% a month lost is "
        "not known to it)",
        12.0, 0.01, "accrual", ("joint",),
    ),
    "at_risk_known": Scenario(
        "at_risk_known",
        "the default trial's censoring, but the landmarks' effective sizes from the "
        "Kaplan-Meier curve (S (1 - S) / Greenwood variance), as a paper printing the "
        "numbers at risk allows",
        12.0, 0.01, "greenwood", ("joint",),
    ),
}  # fmt: skip


def report(rng: np.random.Generator, scenario: Scenario) -> dict[str, pd.DataFrame]:
    """What the paper prints about one simulated trial, as the model's inputs."""
    kw = {"shape": SHAPE, "accrual": ACCRUAL, "follow_up": scenario.follow_up,
          "dropout_rate": scenario.dropout}  # fmt: skip
    arms = {
        "ref": simulate_arm(rng, n=N_REF, median=M_REF, **kw),
        "exp": simulate_arm(rng, n=N_EXP, median=M_EXP, **kw),
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
        printed = {t: round(km.at(t)[0], 2) for t in TIMES}
        by_accrual: dict[float, float] = {}
        if scenario.n_eff == "accrual":
            curve = [(t, x) for t, x in printed.items() if x > 0]
            if curve and all(b[1] <= a[1] for a, b in itertools.pairwise(curve)):
                got = n_at_risk_under_accrual(
                    arm.n,
                    [t for t, _ in curve],
                    [x for _, x in curve],
                    accrual=ACCRUAL,
                    min_follow_up=scenario.follow_up,
                )
                by_accrual = {t: float(x) for (t, _), x in zip(curve, got, strict=True)}
        for t in TIMES:
            s, var = km.at(t)
            n_eff = float(arm.n)
            if scenario.n_eff == "greenwood" and 0.0 < s < 1.0 and var > 0.0:
                n_eff = s * (1.0 - s) / var
            if math.isfinite(by_accrual.get(t, math.nan)):
                n_eff = by_accrual[t]
            lm.append(
                {"study": "sim", "arm": label, "time": t, "survival": round(s, 2), "n_eff": n_eff}
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


def run_scenario(
    scenario: Scenario, reps: int, truth: dict[str, float]
) -> tuple[pd.DataFrame, float]:
    """Every replication of one scenario, every overlap it checks: one row per
    replication, overlap and quantity."""
    rng = np.random.default_rng(SEED)  # the same trials' event times in every scenario
    rows = []
    start = time.perf_counter()
    for rep in range(reps):
        data = report(rng, scenario)
        fit_seed = int(rng.integers(2**31))
        for overlap in scenario.overlaps:
            draws, diag = fit_draws(data, overlap, fit_seed)
            for name, value in truth.items():
                lo, hi = np.quantile(draws[name], [0.025, 0.975])
                rows.append(
                    {
                        "scenario": scenario.name,
                        "replication": rep,
                        "overlap": overlap,
                        "quantity": name,
                        "covered": bool(lo <= value <= hi),
                        "width": float(hi - lo),
                        "flagged": not diag.ok,
                    }
                )
        if rep % 20 == 19:
            print(f"{scenario.name}: {rep + 1} replications, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    return pd.DataFrame(rows), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, help=f"replications (default {REPS}; not written)")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument(
        "--overlaps", nargs="+", choices=OVERLAPS, help="only these overlaps (not written)"
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="run --scenarios only and replace their rows in the written tables",
    )
    parser.add_argument(
        "--render", action="store_true", help="rewrite the .md from the .csv (no sampling)"
    )
    args = parser.parse_args()
    if args.render:
        write_markdown(pd.read_csv(HERE / "survival_coverage.csv"), truths())
        return
    if args.overlaps:
        for name, sc in list(SCENARIOS.items()):
            kept = tuple(o for o in sc.overlaps if o in args.overlaps)
            SCENARIOS[name] = dataclasses.replace(sc, overlaps=kept)
        args.scenarios = [n for n in args.scenarios if SCENARIOS[n].overlaps]
    truth = truths()
    raws, seconds, n_reps = [], {}, {}
    for name in args.scenarios:
        n_reps[name] = args.reps or (REPS if name == "default" else DIAGNOSTIC_REPS)
        raw, seconds[name] = run_scenario(SCENARIOS[name], n_reps[name], truth)
        raws.append(raw)
    raw = pd.concat(raws, ignore_index=True)
    table = (
        raw.groupby(["scenario", "quantity", "overlap"], sort=False)
        .agg(coverage=("covered", "mean"), mean_width=("width", "mean"), flagged=("flagged", "sum"))
        .reset_index()
    )
    table["replications"] = table["scenario"].map(n_reps)
    table["seconds"] = table["scenario"].map(seconds)
    cov = table.set_index(["quantity", "scenario", "overlap"])
    print(
        pd.DataFrame(
            {
                f"{sc}/{o}": [cov.loc[(q, sc, o), "coverage"] for q in truth]
                for sc in args.scenarios
                for o in SCENARIOS[sc].overlaps
            },
            index=list(truth),
        )
        .round(3)
        .to_string()
    )
    if args.reps or args.overlaps:
        return
    if args.update:
        old = pd.read_csv(HERE / "survival_coverage.csv")
        table = pd.concat([old[~old["scenario"].isin(args.scenarios)], table], ignore_index=True)
    elif args.scenarios != list(SCENARIOS):
        return
    order = {sc: i for i, sc in enumerate(SCENARIOS)}
    table = table.sort_values("scenario", key=lambda c: c.map(order), kind="stable")
    table.to_csv(HERE / "survival_coverage.csv", index=False)
    write_markdown(table, truth)


def write_markdown(table: pd.DataFrame, truth: dict[str, float]) -> None:
    """survival_coverage.md from the table of every scenario written so far."""
    scenarios = [sc for sc in SCENARIOS if sc in set(table["scenario"])]
    n_reps = table.groupby("scenario")["replications"].first().to_dict()
    per_scenario = table.groupby("scenario")["seconds"].first()
    columns = [(sc, o) for sc in scenarios for o in SCENARIOS[sc].overlaps]
    cov = table.set_index(["quantity", "scenario", "overlap"])
    timed = [sc for sc in scenarios if np.isfinite(per_scenario[sc])]
    minutes = ", ".join(f"{sc} {per_scenario[sc] / 60:.0f}" for sc in timed)
    untimed = [sc for sc in scenarios if sc not in timed]
    if untimed:
        # rows from a run before the table recorded its times: its total, from the text
        # it wrote
        found = re.search(
            r"; (\d+) minutes on 2 cores", (HERE / "survival_coverage.md").read_text()
        )
        total = f"{found.group(1)} together" if found else "not recorded"
        minutes = "; ".join(x for x in (", ".join(untimed) + f" {total}", minutes) if x)
    flagged = {(sc, o): int(cov.loc[("log_hr", sc, o), "flagged"]) for sc, o in columns}
    lines = [
        "# Coverage of the survival synthesis on simulated Kaplan-Meier data",
        "",
        f"Generated by `python validation/survival/survival_coverage.py` (seed {SEED}; hccmeta "
        f"{hm.__version__}; minutes on 2 cores per scenario: {minutes}). A trial like the "
        f"n=34 study: Weibull arms of 12 (reference, median 9 months) and 22 patients (HR "
        f"{HR}, median {M_EXP:.1f} months), shape {SHAPE}, uniform accrual over 48 months. "
        "Reported as a paper would and derived as the effects layer does by default: "
        "Kaplan-Meier medians with SE 1 / sqrt(d ln(2)^2), survival at 6, 12 and 24 "
        "months (whole percent), the log-rank p with the total deaths by Tierney's method. "
        "One study per fit; the study's own log HR, medians and landmark survival are "
        "checked.",
        "",
        "Scenarios (the same simulated event times in each; only follow-up and what is "
        "known of the numbers at risk differ):",
        "",
    ]
    lines += [f"- **{sc}** ({n_reps[sc]} replications): {SCENARIOS[sc].description}."
              for sc in scenarios]  # fmt: skip
    mcse = [f"{math.sqrt(0.95 * 0.05 / r):.3f} at {r} replications"
            for r in sorted(set(n_reps.values()), reverse=True)]  # fmt: skip
    lines += [
        "",
        "Share of 95% intervals that contain the truth (Monte Carlo SE "
        + ", ".join(mcse)
        + "); in brackets the mean interval width (log HR: log scale; medians: months; "
        "survival: probability).",
        "",
        "| quantity | truth | " + " | ".join(f"{sc}, overlap='{o}'" for sc, o in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for name, value in truth.items():
        cells = [
            f"{cov.loc[(name, sc, o), 'coverage']:.3f} ({cov.loc[(name, sc, o), 'mean_width']:.2f})"
            for sc, o in columns
        ]
        lines.append(f"| {name} | {value:.3f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "`joint` is the default; `families` and `none` are its sensitivity variants. Fits "
        "flagged by the diagnostics (after one retry), kept in: "
        + ", ".join(f"{sc}/{o} {flagged[(sc, o)]} of {n_reps[sc]}" for sc, o in columns)
        + ".",
        "",
    ]
    (HERE / "survival_coverage.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
