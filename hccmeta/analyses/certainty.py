"""Certainty of evidence for every estimate: the GRADE approach, made mechanical and named.

Each estimate of an analysis is rated ``high``, ``moderate``, ``low`` or ``very_low``
with short reasons (GRADE Handbook; Cochrane Handbook chapter 14; Schünemann et al.
2019 for ROBINS-I; Iorio et al. 2015 and Foroutan et al. 2020 for prognosis):

1. **Start.** A comparison of interventions starts high when randomised, low when not
   (when both designs contribute, from the design carrying most of the weight); a
   prognostic-factor estimate and an absolute outcome under a regimen (overall
   prognosis) start high: cohorts are the right design for them.
2. **Risk of bias.** Each study's assessment for the records behind the estimate (RoB 2 /
   ROBINS-I for comparisons of interventions, QUIPS otherwise) gives a deficit
   (:data:`ROB_DEFICIT`); the estimate is rated down by the largest deficit that
   studies carrying at least half of the weight reach. A study without an assessment
   counts as not assessed (deficit 1).
3. **Inconsistency.** Not assessable with one study; with two or more, rated down by one
   level when I^2 >= 50% and Cochran's Q has p < 0.10, by two when I^2 >= 75% and
   p < 0.01 (DerSimonian-Laird, one estimate per study); with two studies the check is
   weak and the reason says so.
4. **Indirectness.** From the registry's ``directness`` of each study (rated down by the
   level that studies carrying at least half of the weight reach); an undeclared study
   is taken as direct and named.
5. **Imprecision.** Ratios: two levels when the 95% credible interval includes both
   appreciable benefit and appreciable harm (:data:`APPRECIABLE`: 0.75 and 1.25, the
   GRADE Handbook's default relative change of 25%); one level when it includes no
   effect, or when it excludes it but fewer patients contribute than the optimal
   information size (:data:`OIS_EVENTS` events, enough to detect a ratio of 0.75 with
   80% power at a two-sided 5% level: a patient count below it cannot reach it).
   Absolute outcomes: medians by the ratio of the interval's bounds
   (:data:`MEDIAN_RATIO`), probabilities by the interval's width (:data:`PROB_WIDTH`).
6. **Publication bias.** Not assessable with fewer than 10 studies (and the evidence
   base is the studies in ``study_data/``, not a systematic search); with 10 or more,
   rated down when Egger's test has p < 0.10.
7. **Rating up** (GRADE's rule: non-randomised evidence with no reason to rate down for
   risk of bias, inconsistency, indirectness or imprecision): one level for a large
   effect (the whole interval beyond a ratio of 2 or 1/2), two for a very large one
   (5 or 1/5). Dose-response and opposing residual confounding are not assessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from hccmeta.analyses.registry import Analysis
from hccmeta.data import Evidence
from hccmeta.data.bias import JUDGEMENTS, TOOLS, Assessment, assessment_for, design_class

__all__ = [
    "APPRECIABLE",
    "CERTAINTY_COLUMNS",
    "LEVELS",
    "MEDIAN_RATIO",
    "OIS_EVENTS",
    "PROB_WIDTH",
    "ROB_DEFICIT",
    "StudyRating",
    "estimate_type",
    "rate_estimates",
    "study_ratings",
    "weighted_level",
]

#: Certainty levels, from the lowest.
LEVELS = ("very_low", "low", "moderate", "high")

#: Columns of the certainty table of an analysis (one row per estimand).
CERTAINTY_COLUMNS = (
    "estimand",
    "type",
    "design",
    "start",
    "risk_of_bias",
    "inconsistency",
    "indirectness",
    "imprecision",
    "publication_bias",
    "rated_up",
    "certainty",
    "certainty_reasons",
)

#: Levels to rate down for a study's overall risk-of-bias judgement. Non-randomised
#: comparisons already start low, so ROBINS-I 'moderate' (what a good non-randomised
#: study reaches) costs nothing more (Schünemann et al. 2019).
ROB_DEFICIT: dict[tuple[str, str], int] = {
    ("rob2", "low"): 0,
    ("rob2", "some_concerns"): 1,
    ("rob2", "high"): 2,
    ("robins_i", "low"): 0,
    ("robins_i", "moderate"): 0,
    ("robins_i", "serious"): 1,
    ("robins_i", "no_information"): 1,
    ("robins_i", "critical"): 2,
    ("quips", "low"): 0,
    ("quips", "moderate"): 1,
    ("quips", "high"): 2,
}
#: Deficit of a result without a risk-of-bias assessment.
NOT_ASSESSED_DEFICIT = 1

#: Ratios that count as appreciable benefit or harm (GRADE Handbook 5.2: a relative
#: change of 25%).
APPRECIABLE = (0.75, 1.25)
#: Events needed to detect a ratio of 0.75 with 80% power at a two-sided 5% level:
#: 4 (z_0.975 + z_0.8)^2 / ln(0.75)^2 = 379.4 (Schoenfeld's formula).
OIS_EVENTS = 380
#: A median's 95% interval whose upper bound is at least this many times its lower
#: bound is imprecise (one level; two levels at the square of it). Our threshold.
MEDIAN_RATIO = 2.0
#: A probability's 95% interval at least this wide is imprecise (one level; two levels
#: at 0.5). Our threshold.
PROB_WIDTH = (0.30, 0.50)
#: Inconsistency thresholds: (I^2, Q p-value) for one and for two levels.
INCONSISTENCY = ((0.50, 0.10), (0.75, 0.01))
#: Fewest studies for a test of small-study effects (Cochrane Handbook 13.3.5.4).
MIN_STUDIES_PUBLICATION_BIAS = 10
#: Large and very large effects (ratio scale) for rating up non-randomised evidence.
LARGE_EFFECT = (2.0, 5.0)

EstimateType = Literal["intervention", "prognostic_factor", "absolute"]
_TOOLS_FOR: dict[str, tuple[str, ...]] = {
    "intervention": ("rob2", "robins_i"),
    "prognostic_factor": ("quips",),
    "absolute": ("quips",),
}
_TYPE_WORDS = {
    "intervention": "comparison of interventions",
    "prognostic_factor": "prognostic factor",
    "absolute": "outcome under a regimen (overall prognosis)",
}


def estimate_type(analysis: Analysis, row: pd.Series) -> EstimateType:
    """What an estimate is: a comparison of interventions (a ratio with a side of
    benefit), a prognostic factor, or an absolute outcome under one regimen."""
    if analysis.model == "prognostic_joint":
        return "prognostic_factor"
    if isinstance(row.get("benefit"), str):
        return "intervention"
    return "absolute"


@dataclass(frozen=True)
class StudyRating:
    """What one study contributes to the certainty of one estimate."""

    study: str
    weight: float
    randomised: bool
    assessment: Assessment | None
    rob_deficit: int
    directness_level: int
    indirect: tuple[str, ...]
    directness_declared: bool


def _assessments(
    evidence: Evidence, study: str, rows: pd.DataFrame, kind: EstimateType
) -> Assessment | None:
    """The most severe assessment among the study's rows behind the estimate."""
    rob = evidence.study(study).risk_of_bias
    found: list[Assessment] = []
    for _, r in rows.iterrows():
        groups = None
        if r.get("kind") == "contrast" and isinstance(r.get("reference"), str):
            groups = (str(r["exposed"]), str(r["reference"]))
        a = assessment_for(rob, str(r["record"]), groups=groups, tools=_TOOLS_FOR[kind])
        if a is None and kind == "absolute":
            a = assessment_for(rob, str(r["record"]), groups=groups)
        if a is not None:
            found.append(a)
    if not found:
        return None
    return max(found, key=lambda a: ROB_DEFICIT[(a.tool, a.overall)])


def study_ratings(
    analysis: Analysis,
    estimand: str,
    kind: EstimateType,
    basis: pd.DataFrame,
    evidence: Evidence,
) -> list[StudyRating]:
    """Per contributing study: its weight (share of the inverse-variance weight of the
    rows behind the estimate), design, risk-of-bias assessment and directness."""
    out = []
    sei = basis["sei"].astype(float)
    inv = sei.where(sei > 0) ** -2
    inv = inv.fillna(inv.mean() if inv.notna().any() else 1.0)
    per_study = inv.groupby(basis["study"].astype(str)).sum()
    total = float(per_study.sum())
    for study, w in per_study.items():
        rows = basis[basis["study"].astype(str) == study]
        a = _assessments(evidence, str(study), rows, kind)
        randomised = (
            design_class(evidence.study(str(study)).design, evidence.vocabulary) == "randomised"
        )
        deficit = ROB_DEFICIT[(a.tool, a.overall)] if a is not None else NOT_ASSESSED_DEFICIT
        d = analysis.directness_of(str(study), estimand)
        out.append(
            StudyRating(
                study=str(study),
                weight=float(w) / total if total > 0 else 1.0 / len(per_study),
                randomised=randomised,
                assessment=a,
                rob_deficit=deficit,
                directness_level=d.level if d is not None else 0,
                indirect=tuple(d.indirect) if d is not None else (),
                directness_declared=d is not None,
            )
        )
    return out


def weighted_level(values: Sequence[int], weights: Sequence[float]) -> int:
    """The largest level that studies carrying at least half of the weight reach."""
    best = 0
    for level in sorted(set(values)):
        share = sum(w for v, w in zip(values, weights, strict=True) if v >= level)
        if share >= 0.5 - 1e-12:
            best = level
    return best


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _names(ratings: Sequence[StudyRating]) -> str:
    return ", ".join(r.study for r in ratings)


# ---------------------------------------------------------------------------- domains
def _start(kind: EstimateType, ratings: Sequence[StudyRating]) -> tuple[int, str, str]:
    """(level index, design, reason)."""
    rand = sum(r.weight for r in ratings if r.randomised)
    design = (
        "randomised"
        if all(r.randomised for r in ratings)
        else "non_randomised"
        if not any(r.randomised for r in ratings)
        else "mixed"
    )
    if kind != "intervention":
        what = _TYPE_WORDS[kind]
        return 3, design, f"{what}: starts high ({design.replace('_', '-')} studies)"
    if design == "randomised":
        return 3, design, "randomised evidence: starts high"
    if design == "non_randomised":
        return 1, design, "non-randomised evidence: starts low"
    start = 3 if rand >= 0.5 else 1
    return (
        start,
        design,
        f"randomised and non-randomised evidence ({_pct(rand)} of the weight randomised): "
        f"starts {LEVELS[start]}",
    )


def _down(level: int, text: str) -> str:
    """'serious (-1)' style: the levels rated down, shown only when there are some."""
    return f"{text} (-{level})" if level else text


def _risk_of_bias(
    kind: EstimateType, start: int, ratings: Sequence[StudyRating]
) -> tuple[int, str]:
    deficits = []
    for r in ratings:
        d = r.rob_deficit
        if kind == "intervention" and start == 3 and not r.randomised:
            d += 2  # non-randomised evidence in a body rated from randomised evidence
        deficits.append(d)
    down = min(weighted_level(deficits, [r.weight for r in ratings]), 2)
    parts = []
    for r in ratings:
        if r.assessment is None:
            parts.append(f"{r.study} not assessed")
            continue
        a = r.assessment
        worst = [
            d.domain.replace("_", " ")
            for d in a.domains
            if JUDGEMENTS[a.tool].index(d.judgement) >= JUDGEMENTS[a.tool].index(a.overall)
            and d.judgement != "low"
        ]
        detail = f" ({', '.join(worst)})" if worst and a.overall != "low" else ""
        parts.append(f"{r.study} {a.overall.replace('_', ' ')}{detail} by {TOOLS[a.tool]}")
    label = ("not serious", "serious", "very serious")[down]
    return down, _down(down, f"risk of bias {label}") + ": " + "; ".join(parts)


def _per_study_effects(basis: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """One (estimate, SE) per study for the heterogeneity check, where the rows allow."""
    if basis.empty:
        return None
    contrast = basis[basis["kind"] == "contrast"]
    groups = basis[basis["kind"] == "group"]
    if not contrast.empty and contrast["study"].is_unique:
        return contrast["yi"].to_numpy(float), contrast["sei"].to_numpy(float)
    if "role" in groups.columns and groups.groupby("study")["role"].nunique().min() == 2:
        ys, ss = [], []
        for _, g in groups.groupby("study"):
            if g["role"].nunique() != 2 or g[["events_exposed", "n_exposed"]].isna().any().any():
                return None
            (a, n1), (c, n2) = g[["events_exposed", "n_exposed"]].to_numpy(float)[:2]
            a, b, c, d = a + 0.5, n1 - a + 0.5, c + 0.5, n2 - c + 0.5
            ys.append(math.log(a * d / (b * c)))
            ss.append(math.sqrt(1 / a + 1 / b + 1 / c + 1 / d))
        return np.array(ys), np.array(ss)
    if basis["study"].is_unique:
        return basis["yi"].to_numpy(float), basis["sei"].to_numpy(float)
    return None


def _inconsistency(basis: pd.DataFrame, k: int) -> tuple[int, str]:
    if k < 2:
        return 0, "inconsistency not assessable (one study)"
    effects = _per_study_effects(basis)
    if effects is None:
        return 0, "inconsistency not assessable from the statistics reported"
    y, s = effects
    w = 1.0 / s**2
    mu = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - mu) ** 2))
    df = len(y) - 1
    from scipy import stats  # imported where used: slow to import

    p = float(stats.chi2.sf(q, df))
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    down = 0
    for level, (i2_min, p_max) in enumerate(INCONSISTENCY, start=1):
        if i2 >= i2_min and p < p_max:
            down = level
    weak = f"; only {k} studies, a weak check" if k == 2 else ""
    label = ("no serious inconsistency", "serious inconsistency", "very serious inconsistency")
    return down, _down(down, label[down]) + f": I² = {_pct(i2)}, Q p = {p:.2f}{weak}"


def _indirectness(ratings: Sequence[StudyRating]) -> tuple[int, str]:
    down = min(
        weighted_level([r.directness_level for r in ratings], [r.weight for r in ratings]), 2
    )
    indirect = [r for r in ratings if r.indirect]
    undeclared = [r for r in ratings if not r.directness_declared]
    label = ("no serious indirectness", "serious indirectness", "very serious indirectness")
    text = _down(down, label[down])
    if indirect:
        text += ": " + "; ".join(
            f"{r.study} indirect in {', '.join(e.replace('_', ' ') for e in r.indirect)} "
            f"({_pct(r.weight)} of the weight)"
            for r in indirect
        )
    if undeclared:
        text += f"; directness not declared for {_names(undeclared)} (taken as direct)"
    return down, text


def _fmt(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _imprecision(row: pd.Series, kind: EstimateType) -> tuple[int, str]:
    lo, hi = float(row["natural_ci_lower"]), float(row["natural_ci_upper"])
    scale = row.get("natural_scale")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 2, "imprecision very serious (-2): no finite interval"
    if kind != "absolute":
        ci = f"95% CrI {_fmt(lo)} to {_fmt(hi)}"
        if lo <= APPRECIABLE[0] and hi >= APPRECIABLE[1]:
            return 2, (
                f"imprecision very serious (-2): the {ci} includes appreciable benefit "
                f"(<= {APPRECIABLE[0]}) and appreciable harm (>= {APPRECIABLE[1]})"
            )
        if lo <= 1.0 <= hi:
            return 1, f"imprecision serious (-1): the {ci} includes no effect (1)"
        n = float(row["n_patients"])
        if not math.isfinite(n):
            return 1, (
                f"imprecision serious (-1): the {ci} excludes no effect, but the group sizes "
                "are not all reported, so the optimal information size cannot be checked"
            )
        if n < OIS_EVENTS:
            return 1, (
                f"imprecision serious (-1): {n:.0f} patients, fewer than the ~{OIS_EVENTS} "
                f"events needed to detect a ratio of 0.75 (optimal information size)"
            )
        return 0, f"no serious imprecision: the {ci} excludes no effect"
    if scale == "months":
        ratio = hi / lo if lo > 0 else math.inf
        down = 2 if ratio >= MEDIAN_RATIO**2 else 1 if ratio >= MEDIAN_RATIO else 0
        label = ("no serious imprecision", "imprecision serious", "imprecision very serious")
        return down, _down(down, label[down]) + (
            f": 95% CrI {lo:.1f} to {hi:.1f} months (upper bound {ratio:.1f} times the lower)"
        )
    width = hi - lo
    down = 2 if width >= PROB_WIDTH[1] else 1 if width >= PROB_WIDTH[0] else 0
    label = ("no serious imprecision", "imprecision serious", "imprecision very serious")
    return down, _down(down, label[down]) + (
        f": 95% CrI {_pct(lo)} to {_pct(hi)} ({100 * width:.0f} percentage points wide)"
    )


def _publication_bias(basis: pd.DataFrame, k: int) -> tuple[int, str]:
    if k < MIN_STUDIES_PUBLICATION_BIAS:
        return 0, (
            f"publication bias not assessable (fewer than {MIN_STUDIES_PUBLICATION_BIAS} "
            "studies; the evidence base is the studies in study_data/, not a systematic search)"
        )
    effects = _per_study_effects(basis)
    if effects is None:
        return 0, "publication bias not assessable from the statistics reported"
    y, s = effects
    # Egger's regression: y/s = a + b (1/s); small-study effects when a != 0
    from scipy import stats  # imported where used: slow to import

    res = stats.linregress(1.0 / s, y / s)
    t = res.intercept / res.intercept_stderr
    p = float(2 * stats.t.sf(abs(t), len(y) - 2))
    down = 1 if p < 0.10 else 0
    label = "publication bias suspected" if down else "publication bias not detected"
    return down, _down(down, label) + f": Egger's test p = {p:.2f}"


def _rated_up(row: pd.Series, kind: EstimateType, design: str, downs: int) -> tuple[int, str]:
    if kind == "absolute" or design == "randomised":
        return 0, ""
    if downs > 0:
        return 0, ""
    lo, hi = float(row["natural_ci_lower"]), float(row["natural_ci_upper"])
    up = 0
    for level, big in enumerate(LARGE_EFFECT, start=1):
        if hi <= 1.0 / big or lo >= big:
            up = level
    if up == 0:
        return 0, ""
    return up, f"large effect (+{up}): the whole 95% CrI lies beyond {LARGE_EFFECT[up - 1]:g}"


def rate_estimates(
    analysis: Analysis,
    estimates: pd.DataFrame,
    effects: pd.DataFrame,
    basis: dict[str, list[str]],
    evidence: Evidence,
) -> pd.DataFrame:
    """The certainty table of an analysis: one row per estimand (:data:`CERTAINTY_COLUMNS`).

    Parameters
    ----------
    analysis : Analysis
        The definition (its ``directness`` and model).
    estimates : DataFrame
        The estimates (:data:`hccmeta.analyses.run.ESTIMATE_COLUMNS`).
    effects : DataFrame
        The effect rows the analysis used (with ``effect``, ``study``, ``record``,
        ``kind``, ``yi``, ``sei``...).
    basis : dict
        ``{estimand: [effect ids]}``: the rows behind each estimate.
    evidence : Evidence
        The studies (designs and risk-of-bias assessments).
    """
    rows: list[dict[str, Any]] = []
    by_id = effects.set_index("effect", drop=False) if not effects.empty else effects
    for _, row in estimates.iterrows():
        est = str(row["estimand"])
        ids = [i for i in basis.get(est, []) if i in by_id.index]
        rows_used = by_id.loc[ids] if ids else by_id.iloc[0:0]
        kind = estimate_type(analysis, row)
        if rows_used.empty:
            continue
        ratings = study_ratings(analysis, est, kind, rows_used, evidence)
        k = len(ratings)
        start, design, start_reason = _start(kind, ratings)
        rob, rob_reason = _risk_of_bias(kind, start, ratings)
        inc, inc_reason = _inconsistency(rows_used, k)
        ind, ind_reason = _indirectness(ratings)
        imp, imp_reason = _imprecision(row, kind)
        pub, pub_reason = _publication_bias(rows_used, k)
        downs = rob + inc + ind + imp + pub
        up, up_reason = _rated_up(row, kind, design, rob + inc + ind + imp)
        level = max(0, min(3, start - downs + up))
        reasons = [start_reason, rob_reason, inc_reason, ind_reason, imp_reason, pub_reason]
        if up_reason:
            reasons.append(up_reason)
        rows.append(
            {
                "estimand": est,
                "type": kind,
                "design": design,
                "start": LEVELS[start],
                "risk_of_bias": -rob,
                "inconsistency": -inc,
                "indirectness": -ind,
                "imprecision": -imp,
                "publication_bias": -pub,
                "rated_up": up,
                "certainty": LEVELS[level],
                "certainty_reasons": tuple(reasons),
            }
        )
    return pd.DataFrame(rows, columns=list(CERTAINTY_COLUMNS))
