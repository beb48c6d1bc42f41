"""Coverage of the effect-size conversions under the production defaults (issue 12).

Simulates survival trials, computes what a paper would print about each (Kaplan-Meier
medians with events or a CI, landmark survival with or without its CI or number at
risk, the log-rank p, a Cox HR with its CI and Wald p, response counts), rounds it as
papers do, converts it with the functions of :mod:`hccmeta.effects` exactly as
:func:`hccmeta.derive_effects` does with its default options
(:class:`hccmeta.effects.DeriveOptions`), and counts how often ``yi +- 1.96 sei`` holds
the true value. Target: 95% coverage within 0.93-0.97 (or the deviation explained in
coverage.md).

Designs
-------
- two-arm trials ("trial"): n per arm 12, 22, 50 or 79; reference median 9 months,
  HR 0.6 (exposed vs reference, proportional hazards); survival exponential (shape 1)
  or Weibull with shape 0.7 or 1.5 (a common shape keeps proportional hazards); uniform
  accrual over 24 months, analysis 24 months after the last enrolment and 1% loss to
  follow-up per month ("light" censoring), or analysis 6 months after the last
  enrolment and 3% loss per month ("heavy").
- subgroups of one cohort with unknown sizes ("subgroups"): N = 34, 54 or 79 patients,
  a factor present in 20%, 35% or 50% of them, HR 1.8, exponential, light censoring;
  the paper prints the two subgroup medians and the log-rank p only (as Lee et al.).
- response counts ("counts"): n 12, 22, 50 or 79 per arm, true probabilities 0.1, 0.3
  and 0.6 (one arm; the log OR of 0.6 vs 0.3).

Printed precision: medians, times and CI bounds of medians to 0.1 month; HRs and their
CI bounds to 3 decimals; p-values to 3 decimals ("p < 0.001" below); survival
proportions and their CI bounds to 2 decimals. A conversion is not applicable where
the printed numbers do not allow it (median not reached, p = 1, equal medians, S(t) = 0
or 1); the table gives the share of replicates where it was.

Run from the repository root (about 3 minutes on 2 cores with the default 1000
replicates per design):

    python validation/conversions/coverage.py [--replicates N] [--seed S]

It writes coverage.csv and coverage.md next to this file.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from hccmeta.effects import (
    Derived,
    DeriveOptions,
    cloglog_survival_from_ci,
    cloglog_survival_from_n,
    cloglog_survival_from_n_at_risk,
    log_hr_from_logrank,
    log_hr_from_medians_events,
    log_hr_from_medians_p,
    log_median_from_ci,
    log_median_from_events,
    log_ratio_from_ci,
    log_ratio_from_p,
    logit_proportion,
    two_arm_counts,
)
from hccmeta.effects.survival import min_log_hr_se, min_log_hr_se_subgroups

HERE = Path(__file__).resolve().parent
LN2 = math.log(2.0)
Z = float(stats.norm.ppf(0.975))
OPT = DeriveOptions()  # the production defaults
TARGET = (0.93, 0.97)


# ---------------------------------------------------------------------------- simulation
def simulate(
    rng: np.random.Generator,
    n: int,
    median: float,
    shape: float,
    censoring: str,
    hr: float = 1.0,
    x: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weibull event times (median ``median`` at x = 0, hazard ratio ``hr`` for x = 1)
    with administrative censoring and loss to follow-up."""
    follow_up, dropout = {"light": (24.0, 0.01), "heavy": (6.0, 0.03)}[censoring]
    scale = median / LN2 ** (1.0 / shape)
    if x is not None:
        scale = scale * np.where(x == 1, hr ** (-1.0 / shape), 1.0)
    t_event = scale * rng.weibull(shape, size=n)
    t_admin = 24.0 + follow_up - rng.uniform(0.0, 24.0, size=n)
    t_drop = rng.exponential(1.0 / dropout, size=n)
    t_cens = np.minimum(t_admin, t_drop)
    return np.minimum(t_event, t_cens), (t_event <= t_cens).astype(int)


@dataclass(frozen=True)
class KM:
    time: np.ndarray
    surv: np.ndarray
    greenwood: np.ndarray
    n: int
    events: int

    def at(self, t: float) -> tuple[float, float]:
        j = int(np.searchsorted(self.time, t, side="right")) - 1
        if j < 0:
            return 1.0, 0.0
        return float(self.surv[j]), float(self.greenwood[j])

    def median(self) -> float:
        below = np.flatnonzero(self.surv <= 0.5)
        return float(self.time[below[0]]) if below.size else math.nan

    def median_ci(self) -> tuple[float, float]:
        """Brookmeyer-Crowley 95% CI with the log-log transform (R survfit's
        conf.type = "log-log"): the first times the lower / upper confidence curves of
        S reach 0.5 (NaN where one does not)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = np.log(-np.log(self.surv))
            se = np.sqrt(self.greenwood) / np.abs(np.log(self.surv))
            lower_s = np.exp(-np.exp(theta + Z * se))
            upper_s = np.exp(-np.exp(theta - Z * se))
        lower_s = np.where(self.surv <= 0, 0.0, lower_s)
        upper_s = np.where(self.surv <= 0, 0.0, upper_s)
        lo = np.flatnonzero(lower_s <= 0.5)
        hi = np.flatnonzero(upper_s <= 0.5)
        return (
            float(self.time[lo[0]]) if lo.size else math.nan,
            float(self.time[hi[0]]) if hi.size else math.nan,
        )


def kaplan_meier(time_: np.ndarray, event: np.ndarray) -> KM:
    ts = np.sort(time_)
    ut, d = np.unique(time_[event == 1], return_counts=True)
    at_risk = time_.size - np.searchsorted(ts, ut, side="left")
    surv = np.cumprod(1.0 - d / at_risk)
    with np.errstate(divide="ignore"):
        gw = np.cumsum(np.where(at_risk > d, d / (at_risk * (at_risk - d)), np.inf))
    return KM(ut, surv, gw, int(time_.size), int(event.sum()))


def logrank_cox(
    t1: np.ndarray, e1: np.ndarray, t0: np.ndarray, e0: np.ndarray
) -> tuple[float, float, float, float]:
    """(O - E of group 1, its log-rank p, Cox log HR of group 1, its SE) (Breslow ties)."""
    ut, d = np.unique(np.concatenate([t1[e1 == 1], t0[e0 == 1]]), return_counts=True)
    u1, c1 = np.unique(t1[e1 == 1], return_counts=True)
    d1 = np.zeros(ut.size)
    d1[np.searchsorted(ut, u1)] = c1
    s1, s0 = np.sort(t1), np.sort(t0)
    n1 = t1.size - np.searchsorted(s1, ut, side="left")
    n0 = t0.size - np.searchsorted(s0, ut, side="left")
    n = n1 + n0
    o_e = float(np.sum(d1 - d * n1 / n))
    with np.errstate(invalid="ignore", divide="ignore"):
        v = float(np.sum(np.where(n > 1, d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1), 0.0)))
    p = float(2.0 * stats.norm.sf(abs(o_e) / math.sqrt(v))) if v > 0 else 1.0
    beta = 0.0
    info = math.nan
    for _ in range(50):
        w1 = n1 * math.exp(beta)
        frac = w1 / (w1 + n0)
        score = float(np.sum(d1 - d * frac))
        info = float(np.sum(d * frac * (1.0 - frac)))
        if not info > 0:
            return o_e, p, math.nan, math.nan
        step = score / info
        beta += step
        if abs(step) < 1e-10:
            break
        if abs(beta) > 20:
            return o_e, p, math.nan, math.nan
    return o_e, p, beta, 1.0 / math.sqrt(info)


# ------------------------------------------------------------------- printed rounding
def r1(x: float) -> float:
    return round(x, 1)


def printed_p(p: float) -> tuple[float, str]:
    if p < 0.001:
        return 0.001, "<"
    return max(round(p, 3), 0.001), "="


# -------------------------------------------------------------------------- bookkeeping
class Tally:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, ...], list[tuple[float, float, float]]] = {}
        self.tried: dict[tuple[str, ...], int] = {}

    def attempt(self, key: tuple[str, ...], fn: Callable[[], Derived | None], truth: float) -> None:
        self.tried[key] = self.tried.get(key, 0) + 1
        try:
            d = fn()
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return
        if d is None:
            return
        yi, sei = float(d.yi), float(d.sei)
        if not (math.isfinite(yi) and math.isfinite(sei) and sei > 0):
            return
        self.rows.setdefault(key, []).append((yi, sei, truth))

    def table(self, columns: tuple[str, ...]) -> pd.DataFrame:
        out = []
        for key, vals in self.rows.items():
            a = np.asarray(vals)
            yi, sei, truth = a[:, 0], a[:, 1], a[:, 2]
            covered = np.abs(yi - truth) <= Z * sei
            cov = float(covered.mean())
            out.append(
                {
                    **dict(zip(columns, key, strict=True)),
                    "replicates": self.tried[key],
                    "applicable": len(vals) / self.tried[key],
                    "coverage": cov,
                    "mc_se": math.sqrt(cov * (1 - cov) / len(vals)),
                    "bias": float(np.mean(yi - truth)),
                    "se_ratio": float(np.mean(sei) / np.std(yi - truth, ddof=1)),
                }
            )
        return pd.DataFrame(out)


# ------------------------------------------------------------------------------ designs
def trial_design(rng: np.random.Generator, reps: int, tally: Tally) -> None:
    m_ref, hr = 9.0, 0.6
    for censoring in ("light", "heavy"):
        for shape in (1.0, 0.7, 1.5):
            m_exp = m_ref * hr ** (-1.0 / shape)
            survival = "exponential" if shape == 1.0 else f"weibull k={shape:g}"
            for n in (12, 22, 50, 79):
                scen = (survival, censoring, str(n))
                for _ in range(reps):
                    _trial(rng, n, m_ref, m_exp, shape, censoring, hr, scen, tally)


def _trial(
    rng: np.random.Generator,
    n: int,
    m_ref: float,
    m_exp: float,
    shape: float,
    censoring: str,
    hr: float,
    scen: tuple[str, str, str],
    tally: Tally,
) -> None:
    t0, e0 = simulate(rng, n, m_ref, shape, censoring)
    t1, e1 = simulate(rng, n, m_exp, shape, censoring)
    km0, km1 = kaplan_meier(t0, e0), kaplan_meier(t1, e1)
    _, p, beta, se_beta = logrank_cox(t1, e1, t0, e0)
    log_hr = math.log(hr)
    me, mr = r1(km1.median()), r1(km0.median())
    d_all = km0.events + km1.events
    pp, rel = printed_p(p)

    # -- medians (reference arm): with events, and with a CI
    def med_events(variance: str) -> Derived | None:
        if not (mr > 0 and km0.events > 0):
            return None
        return log_median_from_events(
            mr,
            km0.events,
            variance=variance,
            km_factor=OPT.km_median_factor,  # type: ignore[arg-type]
        )

    truth_m = math.log(m_ref)
    tally.attempt(
        ("median_events", "default (Kaplan-Meier)", *scen),
        lambda: med_events(OPT.median_variance),
        truth_m,
    )
    tally.attempt(
        ("median_events", "variant exponential_mle", *scen),
        lambda: med_events("exponential_mle"),
        truth_m,
    )

    def med_ci() -> Derived | None:
        lo, hi = km0.median_ci()
        if not (mr > 0 and math.isfinite(lo) and math.isfinite(hi)):
            return None
        lo, hi = r1(lo), r1(hi)
        if not (lo < hi and lo <= mr <= hi and lo > 0):
            return None
        return log_median_from_ci(mr, lo, hi, level=0.95)

    tally.attempt(("median_ci", "default", *scen), med_ci, truth_m)

    # -- hazard ratios
    def cox_ci() -> Derived | None:
        if not math.isfinite(beta):
            return None
        h = round(math.exp(beta), 3)
        lo = round(math.exp(beta - Z * se_beta), 3)
        hi = round(math.exp(beta + Z * se_beta), 3)
        if not (0 < lo < h < hi):
            return None
        return log_ratio_from_ci(h, lo, hi, level=0.95)

    def cox_p() -> Derived | None:
        if not math.isfinite(beta):
            return None
        h = round(math.exp(beta), 3)
        wp, wrel = printed_p(float(2 * stats.norm.sf(abs(beta) / se_beta)))
        if h == 1.0 or wp >= 1.0:
            return None
        return log_ratio_from_p(h, wp, relation=wrel, p_bound=OPT.p_bound)  # type: ignore[arg-type]

    def peto() -> Derived | None:
        if not (me > 0 and mr > 0 and me != mr and pp < 1.0 and d_all > 0):
            return None
        # the sign from the order of the medians, as derive_effects does
        return log_hr_from_logrank(
            pp, d_all, n, n, direction=1.0 if mr > me else -1.0, relation=rel,
            p_bound=OPT.p_bound,
        )  # fmt: skip

    def medians_events() -> Derived | None:
        if not (me > 0 and mr > 0 and me != mr and km0.events > 0 and km1.events > 0):
            return None
        return log_hr_from_medians_events(me, mr, km1.events, km0.events)

    def medians_p() -> Derived | None:
        if not (me > 0 and mr > 0 and me != mr and pp < 1.0):
            return None
        d = log_hr_from_medians_p(me, mr, pp, relation=rel, p_bound=OPT.p_bound)  # type: ignore[arg-type]
        floor = float(min_log_hr_se(n, n, d_all)) if OPT.se_floor else 0.0
        return Derived(d.measure, d.method, d.yi, np.asarray(max(float(d.sei), floor)), d.flags)

    tally.attempt(("ratio_ci", "Cox HR with 95% CI", *scen), cox_ci, log_hr)
    tally.attempt(("ratio_p", "Cox HR with Wald p", *scen), cox_p, log_hr)
    tally.attempt(("logrank_peto", "log-rank p + D + n (Tierney)", *scen), peto, log_hr)
    tally.attempt(("medians_events", "medians + events per arm", *scen), medians_events, log_hr)
    tally.attempt(
        ("medians_logrank_p", "medians + p, SE floor (sizes, D known)", *scen), medians_p, log_hr
    )

    # -- landmark survival of the reference arm at 6 and 12 months
    for t in (6.0, 12.0):
        s_true = math.exp(-LN2 * (t / m_ref) ** shape)
        truth = math.log(-math.log(s_true))
        s, gw = km0.at(t)
        s_pr = round(s, 2)
        at_risk = int(np.sum(t0 >= t))

        def binom(s_pr: float = s_pr) -> Derived | None:
            return cloglog_survival_from_n(s_pr, n) if 0 < s_pr < 1 else None

        def peto_lm(s_pr: float = s_pr, at_risk: int = at_risk) -> Derived | None:
            return (
                cloglog_survival_from_n_at_risk(s_pr, at_risk) if 0 < s_pr < 1 and at_risk else None
            )

        def lm_ci(s: float = s, gw: float = gw, s_pr: float = s_pr) -> Derived | None:
            if not (0 < s < 1 and 0 < s_pr < 1 and math.isfinite(gw)):
                return None
            th, se = math.log(-math.log(s)), math.sqrt(gw) / abs(math.log(s))
            lo = round(math.exp(-math.exp(th + Z * se)), 2)
            hi = round(math.exp(-math.exp(th - Z * se)), 2)
            if not (0 < lo < hi < 1 and lo <= s_pr <= hi):
                return None
            return cloglog_survival_from_ci(s_pr, lo, hi, level=0.95)

        lab = f"t={t:g}"
        tally.attempt(
            ("landmark_binomial", f"S({lab}) + n (imputed n at risk)", *scen), binom, truth
        )
        tally.attempt(("landmark_peto", f"S({lab}) + n at risk", *scen), peto_lm, truth)
        tally.attempt(("landmark_ci", f"S({lab}) with 95% CI (log-log)", *scen), lm_ci, truth)


def subgroup_design(rng: np.random.Generator, reps: int, tally: Tally) -> None:
    hr, m0 = 1.8, 9.0
    for big in (34, 54, 79):
        for q in (0.2, 0.35, 0.5):
            scen = ("exponential", "light", f"N={big}, share {q:g}")
            for _ in range(reps):
                x = (rng.uniform(size=big) < q).astype(int)
                me = mr = pp = math.nan
                rel = "="
                if x.sum() >= 2 and (1 - x).sum() >= 2:
                    t, e = simulate(rng, big, m0, 1.0, "light", hr=hr, x=x)
                    km1 = kaplan_meier(t[x == 1], e[x == 1])
                    km0 = kaplan_meier(t[x == 0], e[x == 0])
                    _, p, _, _ = logrank_cox(t[x == 1], e[x == 1], t[x == 0], e[x == 0])
                    me, mr = r1(km1.median()), r1(km0.median())
                    pp, rel = printed_p(p)

                key = "medians_logrank_p, subgroup sizes unknown"
                for variant, share in (
                    ("default (least favourable split)", OPT.subgroup_share_min),
                    ("even split (previous default)", 0.5),
                ):
                    d = _subgroup_conversion(me, mr, pp, rel, big, share)
                    tally.attempt((key, variant, *scen), lambda d=d: d, math.log(hr))


def _subgroup_conversion(
    me: float, mr: float, pp: float, rel: str, big: int, share: float
) -> Derived | None:
    """Medians + p with the SE floor of two subgroups of unknown sizes of ``big``."""
    if not (me > 0 and mr > 0 and me != mr and pp < 1.0):
        return None
    d = log_hr_from_medians_p(me, mr, pp, relation=rel, p_bound=OPT.p_bound)  # type: ignore[arg-type]
    floor, _ = min_log_hr_se_subgroups(big, share_min=share)
    sei = max(float(d.sei), floor)
    return Derived(d.measure, d.method, d.yi, np.asarray(sei), d.flags)


def counts_design(rng: np.random.Generator, reps: int, tally: Tally) -> None:
    for n in (12, 22, 50, 79):
        for p in (0.1, 0.3, 0.6):
            scen = ("binomial", "-", f"n={n}, p={p:g}")
            truth = math.log(p / (1 - p))
            for _ in range(reps):
                one = logit_proportion(int(rng.binomial(n, p)), n, add=OPT.continuity_correction)
                tally.attempt(
                    ("counts_1arm", "logit, 0.5 added to a zero cell", *scen),
                    lambda one=one: one,
                    truth,
                )
        scen = ("binomial", "-", f"n={n} per arm, 0.6 vs 0.3")
        truth = math.log(0.6 / 0.4) - math.log(0.3 / 0.7)
        for _ in range(reps):
            x1, x0 = int(rng.binomial(n, 0.6)), int(rng.binomial(n, 0.3))
            two = two_arm_counts(x1, n, x0, n, measure="log_or", add=OPT.continuity_correction)
            tally.attempt(
                ("counts_2x2", "log OR, 0.5 added to a zero cell", *scen),
                lambda two=two: two,
                truth,
            )


# ------------------------------------------------------------------------------- output
COLUMNS = ("conversion", "variant", "survival", "censoring", "scenario")


def _flag(cov: float) -> str:
    return "" if TARGET[0] <= cov <= TARGET[1] else ("low" if cov < TARGET[0] else "high")


def write_markdown(table: pd.DataFrame, path: Path, *, reps: int, seed: int, secs: float) -> None:
    lines = [
        "# Coverage of the effect-size conversions under the production defaults",
        "",
        f"Written by `validation/conversions/coverage.py` ({reps} replicates per design, "
        f"seed {seed}, {secs:.0f} s). Each conversion is applied as `derive_effects` applies it "
        "with `DeriveOptions()` to what a paper prints (rounded), and the table gives the "
        "share of `yi +- 1.96 sei` that holds the true value (target 0.93-0.97; `flag` marks "
        "the rest), its Monte Carlo SE, the mean bias of `yi`, and the mean SE over the "
        "empirical SD of `yi` (`se_ratio`, 1 when the SE is right). `applicable`: share of "
        "replicates whose printed numbers allow the conversion.",
        "",
        "## Summary (coverage over the scenarios of each conversion)",
        "",
    ]
    summ = (
        table.groupby(["conversion", "variant"], sort=False)
        .agg(
            scenarios=("coverage", "size"),
            min_coverage=("coverage", "min"),
            median_coverage=("coverage", "median"),
            max_coverage=("coverage", "max"),
            in_target=("coverage", lambda c: int(((c >= TARGET[0]) & (c <= TARGET[1])).sum())),
        )
        .reset_index()
    )
    lines.append("| conversion | variant | scenarios | in 0.93-0.97 | min | median | max |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in summ.itertuples(index=False):
        lines.append(
            f"| {r.conversion} | {r.variant} | {r.scenarios} | {r.in_target} | "
            f"{r.min_coverage:.3f} | {r.median_coverage:.3f} | {r.max_coverage:.3f} |"
        )
    lines += ["", "## Every scenario", ""]
    lines.append(
        "| conversion | variant | survival | censoring | scenario | applicable | coverage "
        "| MC SE | bias | se_ratio | flag |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.conversion} | {r.variant} | {r.survival} | {r.censoring} | {r.scenario} | "
            f"{r.applicable:.2f} | {r.coverage:.3f} | {r.mc_se:.3f} | {r.bias:+.3f} | "
            f"{r.se_ratio:.2f} | {_flag(r.coverage)} |"
        )
    notes = (HERE / "coverage_notes.md").read_text(encoding="utf-8")
    lines += ["", notes.rstrip(), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261212)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tally = Tally()
    start = time.perf_counter()
    trial_design(rng, args.replicates, tally)
    subgroup_design(rng, args.replicates, tally)
    counts_design(rng, args.replicates, tally)
    secs = time.perf_counter() - start
    table = tally.table(COLUMNS)
    table["flag"] = [_flag(c) for c in table["coverage"]]
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "coverage.csv", index=False, float_format="%.4f")
    write_markdown(table, args.out / "coverage.md", reps=args.replicates, seed=args.seed, secs=secs)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
