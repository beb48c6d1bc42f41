"""Statements in words that a clinician can read (after RoBMA's ``interpret()``).

For each analysis: the pooled estimate and its 95% credible interval on the natural
scale (HR, OR, months, probability), worded by the design behind it (a non-randomised
comparison is an association, not an effect: Cochrane Handbook chapter 15), its
certainty of evidence (GRADE) with what lowered it, the bias-adjusted estimate where
non-randomised evidence contributes to a comparison of interventions, the probability
of benefit to two digits as a statement conditional on the model, and plain warnings:
where the prior dominates (k <= 2), where the MCMC diagnostics failed, where the studies
differ in a way the analysis pools across, and where sensitivity variants change the
conclusion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from hccmeta.analyses.certainty import estimate_type
from hccmeta.data.labels import relabel
from hccmeta.report.tables import fmt_interval, fmt_number
from hccmeta.report.words import readable_priors, variant_text

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.run import AnalysisResult

__all__ = ["certainty_text", "has_null", "interpret", "p_text", "variant_range"]

_RATIO = {"HR": "hazard ratio", "OR": "odds ratio", "RR": "risk ratio"}
_MIXES = {
    "endpoint": "endpoint",
    "time_origin": "time origin",
    "analysis": "adjustment (adjusted vs univariate estimates)",
    "criteria": "response criteria",
    "subgroup_variable": "how a factor is defined",
}
#: The prior that dominates a one-study estimate (hccmeta.analyses.dominance), in words.
_DOMINANT = {
    "mu": "the pooled mean",
    "tau": "the between-study SD",
    "mu and tau": "the pooled mean and the between-study SD",
}
#: What lowered a certainty rating, by the column of the certainty table.
_DOMAINS = {
    "risk_of_bias": "risk of bias",
    "inconsistency": "inconsistency",
    "indirectness": "indirectness",
    "imprecision": "imprecision",
    "publication_bias": "publication bias",
}


def has_null(row: pd.Series) -> bool:
    """Whether an estimate has a no-effect value to draw a conclusion about: the
    contrasts (HR, OR, RR; 0 on the log scale) do and name the side of benefit; a median
    survival or a proportion per regimen does not."""
    return isinstance(row.get("benefit"), str)


def variant_range(variants: pd.DataFrame) -> str:
    """The range of the variants' medians on the natural scale, e.g. '5.9 to 8.4
    months' or '38% to 61%'."""
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


def p_text(p: float, scale: str, side: str) -> str:
    """``P(HR < 1) = 0.99``: a posterior probability to two digits (never 0 or 1: a
    probability that rounds to them is shown as < 0.01 or > 0.99)."""
    return f"P({scale} {'<' if side == 'below' else '>'} 1) {_p_number(p)}"


def _p_number(p: float) -> str:
    """'= 0.95', '> 0.99' or '< 0.01'."""
    if p > 0.995:
        return "> 0.99"
    if p < 0.005:
        return "< 0.01"
    return f"= {p:.2f}"


def certainty_text(
    row: pd.Series | dict[str, Any], rating: pd.Series | None = None, *, short: bool = False
) -> str:
    """'very low certainty (rated down for risk of bias, indirectness and imprecision)';
    ``short``: 'very low (risk of bias, indirectness, imprecision)'."""
    level = row.get("certainty")
    if not isinstance(level, str):
        return "not rated" if short else "certainty not rated"
    if short:
        text = level.replace("_", " ")
        if rating is not None:
            down = [words for col, words in _DOMAINS.items() if int(rating[col]) < 0]
            if int(rating["rated_up"]):
                down.append("rated up: large effect")
            text += f" ({', '.join(down)})" if down else ""
        return text
    text = f"{level.replace('_', ' ')} certainty"
    if rating is not None:
        down = [words for col, words in _DOMAINS.items() if int(rating[col]) < 0]
        up = int(rating["rated_up"])
        if down:
            listed = down[0] if len(down) == 1 else ", ".join(down[:-1]) + f" and {down[-1]}"
            text += f" (rated down for {listed}"
            text += "; rated up for a large effect)" if up else ")"
        elif up:
            text += " (rated up for a large effect)"
    return text


def _patients(row: pd.Series) -> str:
    n = row["n_patients"]
    k = int(row["k"])
    studies = f"{k} stud{'y' if k == 1 else 'ies'}"
    if isinstance(n, float) and math.isnan(n):
        return f"{studies} (group sizes not all reported)"
    return f"{studies} ({int(n)} patients)"


def _value(row: pd.Series, column: str) -> str:
    """A number of ``row`` on its natural scale: '59%', '9.0 months', '6.19'."""
    x, scale = float(row[column]), row.get("natural_scale")
    if scale == "probability":
        return f"{100 * x:.0f}%"
    return f"{fmt_number(x, 1)} months" if scale == "months" else fmt_number(x)


def _ratio_ci(row: pd.Series, prefix: str = "natural_") -> str:
    return fmt_interval(row[f"{prefix}ci_lower"], row[f"{prefix}ci_upper"])


def _design_words(row: pd.Series, kind: str) -> str:
    if kind != "intervention":
        return ""
    design = row.get("design")
    return {"randomised": "randomised", "mixed": "randomised and non-randomised"}.get(
        str(design), "non-randomised"
    )


def _design_note(result: AnalysisResult) -> str:
    """One sentence on what the estimates are, by design and kind of question."""
    kinds = {estimate_type(result.analysis, row) for _, row in result.estimates.iterrows()}
    out = []
    designs = set(result.estimates["design"].dropna().astype(str))
    if "intervention" in kinds and designs - {"randomised"}:
        out.append(
            "In the non-randomised studies the treatments compared were associated with "
            "these differences; they are not treatment effects: the patients who received "
            "each treatment differed in ways the studies could not fully account for."
        )
    if "prognostic_factor" in kinds:
        out.append("These are prognostic associations, not the effects of changing the factors.")
    return " ".join(out)


def _estimate_sentence(
    row: pd.Series, analysis: Any, rating: pd.Series | None, bias_prior: str | None
) -> str:
    kind = estimate_type(analysis, row)
    scale = row.get("natural_scale")
    label = str(row["label"])
    label = label[:1].upper() + label[1:]
    if scale in _RATIO:
        name = _RATIO[str(scale)]
        text = f"{label}: pooled {name} {fmt_number(row['natural_median'])}"
        text += f" (95% CrI {_ratio_ci(row)})"
    elif scale == "months":
        ci = fmt_interval(row["natural_ci_lower"], row["natural_ci_upper"], 1)
        text = f"{label}: {fmt_number(row['natural_median'], 1)} months (95% CrI {ci})"
    elif scale == "probability":
        text = (
            f"{label}: {100 * row['natural_median']:.0f}% "
            f"(95% CrI {100 * row['natural_ci_lower']:.0f}% to "
            f"{100 * row['natural_ci_upper']:.0f}%)"
        )
    else:
        text = (
            f"{label}: {fmt_number(row['median'])} on the {row['scale']} scale "
            f"(95% CrI {fmt_interval(row['ci_lower'], row['ci_upper'])})"
        )
    text += f", from {_patients(row)}"
    design = _design_words(row, kind)
    text += f"; {design + ', ' if design else ''}{certainty_text(row, rating)}."
    adjusted = row.get("bias_adjusted_natural_median")
    if isinstance(adjusted, float) and math.isfinite(adjusted) and scale in _RATIO:
        prior = f" ({bias_prior}, on the log scale)" if bias_prior else ""
        text += (
            f" Allowing for bias{prior}: {scale} {fmt_number(adjusted)} "
            f"(95% CrI {_ratio_ci(row, 'bias_adjusted_natural_')})."
        )
    p = row.get("p_benefit")
    if isinstance(p, float) and math.isfinite(p) and scale in _RATIO:
        side = row.get("benefit") if isinstance(row.get("benefit"), str) else analysis.benefit
        text += f" {p_text(float(p), str(scale), str(side))}"
        p_adj = row.get("bias_adjusted_p_benefit")
        if isinstance(p_adj, float) and math.isfinite(p_adj):
            text += f", or {_p_number(float(p_adj)).removeprefix('= ')} allowing for bias,"
        if kind == "intervention" and row.get("design") == "randomised":
            lowers = "lowers" if side == "below" else "raises"
            what = "hazard" if scale == "HR" else "odds" if scale == "OR" else "risk"
            text += f": the probability that the treatment {lowers} the {what}, given the"
            text += " model and its priors."
        else:
            text += " given the model and its priors."
    return text


def interpret(
    result: AnalysisResult,
    sensitivity: pd.DataFrame | None = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> str:
    """A short statement of an analysis result in words.

    Parameters
    ----------
    result : AnalysisResult
        The primary result of an analysis.
    sensitivity : DataFrame, optional
        Its sensitivity table (:func:`hccmeta.sensitivity`, with the
        ``changes_conclusion`` column); the variants that change the conclusion about the
        primary estimand are then counted and described.
    labels : mapping, keyword-only, optional
        ``{study id: label}`` (:attr:`hccmeta.data.Evidence.study_labels`): studies are
        named by their labels ('Lee 2017').

    Priors are printed readably (``HalfNormal(0.5)``,
    :func:`hccmeta.report.words.readable_priors`) and a variant by its description
    (:func:`hccmeta.report.words.variant_text`), never by its name.
    """
    labels = labels or {}
    a = result.analysis
    if result.status != "ok":
        reason = relabel(result.message.split(": ", 1)[-1], labels)
        return f"{a.title}: no eligible records. {reason}"
    ratings = (
        result.certainty.set_index("estimand")
        if not result.certainty.empty
        else pd.DataFrame(columns=["estimand"]).set_index("estimand")
    )
    bias_prior = result.priors.get("bias")
    bias_prior = readable_priors(bias_prior) if bias_prior else bias_prior
    parts = [
        _estimate_sentence(
            row,
            a,
            ratings.loc[row["estimand"]] if row["estimand"] in ratings.index else None,
            bias_prior,
        )
        for _, row in result.estimates.iterrows()
    ]
    n_estimates = len(parts)
    note = _design_note(result)
    if note:
        parts.append(note)
    for study, conditions in result.conditions.items():
        parts.append(
            f"{labels.get(study, study)} enrolled only patients who {'; '.join(conditions)}: "
            "its statistics are conditional on that."
        )
    warnings = []
    k_min = int(result.estimates["k"].min())
    if k_min <= 2:
        prior = result.priors.get("tau") or next(
            (v for key, v in result.priors.items() if key.endswith("tau")), None
        )
        what = "this estimate" if n_estimates == 1 else "some of these estimates"
        warnings.append(
            f"Only {k_min} stud{'y' if k_min == 1 else 'ies'} inform"
            f"{'s' if k_min == 1 else ''} {what}: "
            "the between-study heterogeneity cannot be learnt from the data, so its prior"
            + (f" ({readable_priors(prior)})" if prior else "")
            + " sets the width of the interval, and the result depends on the prior as much"
            " as on the studies."
        )
    named = result.estimates.get("dominant_prior")
    dominated = result.estimates[named.notna()] if named is not None else result.estimates[:0]
    if not dominated.empty:
        warnings.append(
            "With one study the prior dominates: "
            + "; ".join(
                f"{row['label']} {_value(row, 'natural_median')} against the study's own "
                f"{_value(row, 'study_estimate')} (95% CI {_value(row, 'study_ci_lower')} to "
                f"{_value(row, 'study_ci_upper')}), set by the prior of "
                f"{_DOMINANT[str(row['dominant_prior'])]} "
                f"({readable_priors(str(row['dominant_prior_text']))})"
                for _, row in dominated.iterrows()
            )
            + "."
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
        warnings += _sensitivity_sentences(result, sensitivity, labels)
    return relabel(" ".join(parts + warnings), labels)


def _sensitivity_sentences(
    result: AnalysisResult, sensitivity: pd.DataFrame, labels: Mapping[str, str]
) -> list[str]:
    est = result.primary_estimand
    out = []
    rows = sensitivity[(sensitivity["estimand"] == est) & (sensitivity["status"] == "ok")]
    rows = rows[rows["variant"] != "primary"]
    if not rows.empty:
        changed = rows[rows["changes_conclusion"].astype(bool)]
        spread = ""
        primary = result.estimates[result.estimates["estimand"] == est].iloc[0]
        if not has_null(primary):
            spread = f"; their medians range from {variant_range(rows)}"
        if changed.empty:
            out.append(
                f"None of the {len(rows)} sensitivity variants changes the conclusion{spread}."
            )
        else:
            names = "; ".join(
                variant_text(d, labels) for d in changed["description"].astype(str).head(4)
            )
            more = "" if len(changed) <= 4 else f"; and {len(changed) - 4} more"
            out.append(
                f"{len(changed)} of {len(rows)} sensitivity variants change the conclusion"
                f"{spread}: {names}{more}."
            )
    failed = sensitivity[sensitivity["status"] == "failed"]
    if not failed.empty:
        out.append(f"{failed['variant'].nunique()} sensitivity variants failed (see the table).")
    return out
