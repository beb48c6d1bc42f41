"""Statements in words that a clinician can read (after RoBMA's ``interpret()``).

For each analysis: the pooled estimate and its 95% credible interval on the natural
scale (HR, OR, months, probability), the probability of benefit, how many studies and
patients stand behind it, and plain warnings where the prior dominates (k <= 2), where
the MCMC diagnostics failed, where the studies differ in a way the analysis pools
across, and where a sensitivity variant changes the conclusion.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from hccmeta.report.tables import fmt_interval, fmt_number

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.run import AnalysisResult

__all__ = ["LEAN", "conclusion", "conclusion_changes", "has_null", "interpret", "variant_range"]

_RATIO = {"HR": "hazard ratio", "OR": "odds ratio", "RR": "risk ratio"}
_MIXES = {
    "endpoint": "endpoint",
    "time_origin": "time origin",
    "analysis": "adjustment (adjusted vs univariate estimates)",
    "criteria": "response criteria",
    "subgroup_variable": "how a factor is defined",
}


def conclusion(row: pd.Series) -> str:
    """The qualitative conclusion of an estimate on the analysis scale: 'below' (the
    95% interval lies below 0), 'above', or 'uncertain' (it contains 0)."""
    if row["ci_upper"] < 0:
        return "below"
    if row["ci_lower"] > 0:
        return "above"
    return "uncertain"


#: The primary estimate leans to one side of no effect when the posterior probability of
#: that side is at least this (odds of 3 to 1). Only then does a variant whose median
#: crosses no effect change the conclusion; the median of an estimate that sits on no
#: effect (an odds ratio of 0.94, P = 53%) crosses it at the Monte Carlo level.
LEAN = 0.75


def has_null(row: pd.Series) -> bool:
    """Whether an estimate has a no-effect value to draw a conclusion about: the
    contrasts (HR, OR, RR; 0 on the log scale) do and name the side of benefit; a median
    survival or a proportion per regimen does not."""
    return isinstance(row.get("benefit"), str)


def conclusion_changes(primary: pd.Series, variants: pd.DataFrame) -> pd.Series:
    """For each variant row: does it change the primary conclusion? It does when a 95%
    interval that excludes no effect becomes one that includes it (or the reverse), or
    when the primary estimate leans to one side (probability of that side at least
    :data:`LEAN`) and the variant's median crosses no effect. Always False for estimates
    without a no-effect value (:func:`has_null`); :func:`variant_range` describes those."""
    if not has_null(primary):
        return pd.Series(False, index=variants.index, dtype=bool)
    base = conclusion(primary)
    sign = math.copysign(1.0, primary["median"])
    p = float(primary["p_benefit"])
    leans = math.isfinite(p) and max(p, 1.0 - p) >= LEAN
    out = []
    for _, row in variants.iterrows():
        if not (math.isfinite(row["ci_lower"]) and math.isfinite(row["ci_upper"])):
            out.append(False)
            continue
        flips = leans and math.copysign(1.0, row["median"]) != sign and abs(row["median"]) > 1e-12
        out.append(conclusion(row) != base or flips)
    return pd.Series(out, index=variants.index, dtype=bool)


def variant_range(variants: pd.DataFrame) -> str:
    """The range of the variants' medians on the natural scale, e.g. '5.9 to 8.4
    months' or '38% to 61%': what the sensitivity analysis says about an estimate
    without a no-effect value."""
    ok = variants[variants["status"] == "ok"] if "status" in variants else variants
    if ok.empty:
        return ""
    scale = ok["natural_scale"].iloc[0] if "natural_scale" in ok else None
    lo, hi = ok["natural_median"].min(), ok["natural_median"].max()
    if scale == "months":
        return f"{fmt_number(lo, 1)} to {fmt_number(hi, 1)} months"
    if scale == "probability":
        return f"{100 * lo:.0f}% to {100 * hi:.0f}%"
    if isinstance(scale, str) and scale in _RATIO:
        return f"{fmt_number(lo)} to {fmt_number(hi)}"
    lo, hi = ok["median"].min(), ok["median"].max()
    return f"{fmt_number(lo)} to {fmt_number(hi)} on the {ok['scale'].iloc[0]} scale"


def _patients(row: pd.Series) -> str:
    n = row["n_patients"]
    k = int(row["k"])
    studies = f"{k} stud{'y' if k == 1 else 'ies'}"
    if isinstance(n, float) and math.isnan(n):
        return f"{studies} (group sizes not all reported)"
    return f"{studies} ({int(n)} patients)"


def _estimate_sentence(row: pd.Series, benefit: str) -> str:
    scale = row.get("natural_scale")
    label = str(row["label"])
    label = label[:1].upper() + label[1:]
    if scale in _RATIO:
        name = _RATIO[str(scale)]
        ci = fmt_interval(row["natural_ci_lower"], row["natural_ci_upper"])
        text = (
            f"{label}: pooled {name} {fmt_number(row['natural_median'])} "
            f"(95% credible interval {ci})"
        )
        if pd.notna(row["p_benefit"]):
            # the side the estimate row names (a hazard ratio below 1 in a survival
            # synthesis; for a prognostic factor, HR > 1: the factor is adverse)
            side_of = row.get("benefit") if isinstance(row.get("benefit"), str) else benefit
            below = side_of == "below"
            side = "< 1" if below else "> 1"
            text += f"; probability that the {name} is {side}: {100 * row['p_benefit']:.1f}%"
    elif scale == "months":
        ci = fmt_interval(row["natural_ci_lower"], row["natural_ci_upper"], 1)
        text = (
            f"{label}: {fmt_number(row['natural_median'], 1)} months (95% credible interval {ci})"
        )
    elif scale == "probability":
        text = (
            f"{label}: {100 * row['natural_median']:.0f}% "
            f"(95% credible interval {100 * row['natural_ci_lower']:.0f}% to "
            f"{100 * row['natural_ci_upper']:.0f}%)"
        )
    else:
        text = (
            f"{label}: {fmt_number(row['median'])} on the {row['scale']} scale "
            f"(95% credible interval {fmt_interval(row['ci_lower'], row['ci_upper'])})"
        )
    return text + f", from {_patients(row)}."


def interpret(result: AnalysisResult, sensitivity: pd.DataFrame | None = None) -> str:
    """A short statement of an analysis result in words.

    Parameters
    ----------
    result : AnalysisResult
        The primary result of an analysis.
    sensitivity : DataFrame, optional
        Its sensitivity table (:func:`hccmeta.sensitivity`); variants that change the
        conclusion of the primary estimand are then named.
    """
    a = result.analysis
    if result.status != "ok":
        return f"{a.title}: no eligible records. {result.message.split(': ', 1)[-1]}"
    parts = [_estimate_sentence(row, a.benefit) for _, row in result.estimates.iterrows()]
    warnings = []
    k_min = int(result.estimates["k"].min())
    if k_min <= 2:
        prior = result.priors.get("tau") or next(
            (v for key, v in result.priors.items() if key.endswith("tau")), None
        )
        what = "this estimate" if len(parts) == 1 else "some of these estimates"
        warnings.append(
            f"Only {k_min} stud{'y' if k_min == 1 else 'ies'} inform"
            f"{'s' if k_min == 1 else ''} {what}: "
            "the between-study heterogeneity cannot be learnt from the data, so its prior"
            + (f" ({prior})" if prior else "")
            + " dominates the width of the interval, and the result depends on the prior"
            " as much as on the studies."
        )
    differ = [
        m
        for m in a.mixes
        if m in result.effects.columns and len(set(result.effects[m].dropna().astype(str))) > 1
    ]
    if differ:
        warnings.append(
            "The pooled studies differ in "
            + ", ".join(_MIXES[m] for m in differ)
            + "; they are pooled deliberately (see the mapping), and the sensitivity analysis"
            " shows what that choice changes."
        )
    if not result.ok:
        warnings.append(
            "WARNING: the MCMC diagnostics of this fit failed even after retries; "
            "treat the numbers as unreliable."
        )
    if sensitivity is not None and not sensitivity.empty:
        est = result.primary_estimand
        primary = result.estimates[result.estimates["estimand"] == est].iloc[0]
        rows = sensitivity[(sensitivity["estimand"] == est) & (sensitivity["status"] == "ok")]
        rows = rows[rows["variant"] != "primary"]
        if not rows.empty and not has_null(primary):
            warnings.append(
                f"Across the {len(rows)} sensitivity variants its median ranges from "
                f"{variant_range(rows)}."
            )
        elif not rows.empty:
            changed = rows[conclusion_changes(primary, rows).to_numpy()]
            if changed.empty:
                warnings.append(
                    f"None of the {len(rows)} sensitivity variants changes the conclusion."
                )
            else:
                names = ", ".join(changed["variant"].astype(str).head(6))
                more = "" if len(changed) <= 6 else f" and {len(changed) - 6} more"
                warnings.append(
                    f"{len(changed)} of {len(rows)} sensitivity variants change the "
                    f"conclusion: {names}{more}."
                )
        failed = sensitivity[sensitivity["status"] == "failed"]
        if not failed.empty:
            warnings.append(
                f"{failed['variant'].nunique()} sensitivity variants failed (see the table)."
            )
    return " ".join(parts + warnings)
