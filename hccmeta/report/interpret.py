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

__all__ = ["conclusion", "conclusion_changes", "interpret"]

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


def conclusion_changes(primary: pd.Series, variants: pd.DataFrame) -> pd.Series:
    """For each variant row: does it change the primary conclusion (a 95% interval that
    excludes no effect becomes one that includes it, or the reverse, or the direction of
    the median flips)?"""
    base = conclusion(primary)
    sign = math.copysign(1.0, primary["median"])
    out = []
    for _, row in variants.iterrows():
        if not (math.isfinite(row["ci_lower"]) and math.isfinite(row["ci_upper"])):
            out.append(False)
            continue
        flips = math.copysign(1.0, row["median"]) != sign and abs(row["median"]) > 1e-12
        out.append(conclusion(row) != base or flips)
    return pd.Series(out, index=variants.index, dtype=bool)


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
        if not rows.empty:
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
