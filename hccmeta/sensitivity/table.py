"""The sensitivity table: its columns and the rows a variant outcome turns into.

One row per variant and estimand, with fixed columns (:data:`SENSITIVITY_COLUMNS`):
the analysis, the variant (its name, its group and what it changed, in words), the
estimate on the analysis scale and, for ratios, medians, and probabilities, on the
natural scale, the probability of benefit, the number of studies, and the status:

- ``ok``: the variant was fitted (or importance-reweighted with a reliable Pareto k);
- ``no_eligible_records``: under the variant no derived effect matches the estimand (a
  subset with no study, a study left out that was the only one of a regimen);
- ``failed``: the variant raised an error a variant can legitimately raise (bad input,
  an MCMC fit nutpie could not sample, a numerical failure), or its MCMC diagnostics
  failed even after the retries, or importance reweighting was unreliable; ``error``
  says which and why. A failed variant is never dropped and never given numbers that
  look like a clean estimate without that status.

``changes_conclusion`` says whether a fitted variant changes the primary conclusion
(``change_reason`` says how; :func:`conclusion_changes`): for an estimate with a
no-effect value (a hazard, odds or risk ratio) when the 95% interval's relation to no
effect changes (it starts or stops including it, or moves to its other side) or when the
variant's median lies outside the primary 95% interval; for a median or a proportion,
when the variant's median lies outside the primary 95% interval. It is False on the
primary rows and on rows without an estimate.

The last two columns belong to the power-scaling rows (variant group
``power_scaling``): ``psense`` is ArviZ's power-scaling sensitivity of the estimand to
the prior or to the likelihood, ``psense_diagnosis`` ArviZ's diagnosis with its 0.05
threshold (see :mod:`hccmeta.sensitivity.power`); both are empty on other rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = [
    "ESTIMATE_FIELDS",
    "GROUPS",
    "SENSITIVITY_COLUMNS",
    "STATUSES",
    "conclusion_changes",
    "empty_table",
    "failed_rows",
    "no_eligible_rows",
    "ok_rows",
    "to_table",
]

#: Columns of the sensitivity table, in order.
SENSITIVITY_COLUMNS: tuple[str, ...] = (
    "analysis",
    "variant",
    "variant_group",
    "description",
    "estimand",
    "scale",
    "mean",
    "median",
    "sd",
    "ci_lower",
    "ci_upper",
    "natural_scale",
    "natural_median",
    "natural_ci_lower",
    "natural_ci_upper",
    "benefit",
    "p_benefit",
    "k",
    "status",
    "error",
    "changes_conclusion",
    "change_reason",
    "psense",
    "psense_diagnosis",
)

#: Columns copied from an analysis result's estimate rows.
ESTIMATE_FIELDS: tuple[str, ...] = (
    "estimand",
    "scale",
    "mean",
    "median",
    "sd",
    "ci_lower",
    "ci_upper",
    "natural_scale",
    "natural_median",
    "natural_ci_lower",
    "natural_ci_upper",
    "benefit",
    "p_benefit",
    "k",
)

#: Variant groups, in the order the table and the plot list them.
GROUPS: tuple[str, ...] = (
    "primary",
    "prior_tau",
    "prior_mu",
    "effects_model",
    "leave_one_out",
    "conversion",
    "subset",
    "alternative",
    "bias",
    "power_scaling",
)

STATUSES = ("ok", "failed", "no_eligible_records")

_NUMERIC = (
    "mean",
    "median",
    "sd",
    "ci_lower",
    "ci_upper",
    "natural_median",
    "natural_ci_lower",
    "natural_ci_upper",
    "p_benefit",
    "psense",
)


def _base(analysis: str, variant: str, group: str, description: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SENSITIVITY_COLUMNS)
    row.update(analysis=analysis, variant=variant, variant_group=group, description=description)
    for col in _NUMERIC:
        row[col] = math.nan
    row["error"] = ""
    row["psense_diagnosis"] = ""
    return row


def ok_rows(
    analysis: str,
    variant: str,
    group: str,
    description: str,
    estimates: pd.DataFrame,
    *,
    estimands: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    status: str = "ok",
    error: str = "",
) -> list[dict[str, Any]]:
    """Rows from the estimate table of a fitted variant.

    Estimands of the primary analysis (``estimands``) that the variant does not report
    (every study of a regimen was left out) get a ``no_eligible_records`` row, so that
    each variant shows every primary estimand.
    """
    rows = []
    for _, est in estimates.iterrows():
        row = _base(analysis, variant, group, description)
        for col in ESTIMATE_FIELDS:
            row[col] = est[col]
        row["status"], row["error"] = status, error
        rows.append(row)
    seen = set(estimates["estimand"]) if not estimates.empty else set()
    missing = [e for e in estimands if e not in seen]
    if missing:
        rows += no_eligible_rows(analysis, variant, group, description, missing, labels=labels)
    return rows


def no_eligible_rows(
    analysis: str,
    variant: str,
    group: str,
    description: str,
    estimands: Iterable[str | None],
    *,
    labels: Mapping[str, str] | None = None,
    scales: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One ``no_eligible_records`` row per estimand (no numbers)."""
    rows = []
    for est in list(estimands) or [None]:
        row = _base(analysis, variant, group, description)
        row.update(estimand=est, status="no_eligible_records", k=0)
        if scales and est is not None and est in scales:
            row["scale"] = scales[est]
        rows.append(row)
    return rows


def failed_rows(
    analysis: str,
    variant: str,
    group: str,
    description: str,
    estimands: Iterable[str | None],
    error: str,
    *,
    scales: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One ``failed`` row per estimand, with the error (type and message)."""
    rows = []
    for est in list(estimands) or [None]:
        row = _base(analysis, variant, group, description)
        row.update(estimand=est, status="failed", error=error)
        if scales and est is not None and est in scales:
            row["scale"] = scales[est]
        rows.append(row)
    return rows


def empty_table() -> pd.DataFrame:
    """A table with the columns and no rows."""
    return to_table([])


def to_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The rows as a DataFrame with :data:`SENSITIVITY_COLUMNS` and stable dtypes; the
    ``changes_conclusion`` and ``change_reason`` columns are filled by comparing every
    variant row with the primary row of its analysis and estimand."""
    df = pd.DataFrame(list(rows), columns=list(SENSITIVITY_COLUMNS))
    for col in _NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["k"] = pd.to_numeric(df["k"], errors="coerce").astype("Int64")
    for col in ("analysis", "variant", "variant_group", "description", "status"):
        df[col] = df[col].astype(str)
    for col in ("error", "psense_diagnosis"):
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    df = df.reset_index(drop=True)
    changes = pd.Series(False, index=df.index, dtype=bool)
    reasons = pd.Series("", index=df.index, dtype=object)
    for _, part in df.groupby(["analysis", "estimand"], sort=False, dropna=False):
        primary = part[(part["variant"] == "primary") & (part["status"] == "ok")]
        if primary.empty:
            continue
        variants = part[part["variant"] != "primary"]
        changed, why = conclusion_changes(primary.iloc[0], variants)
        changes.loc[variants.index] = changed
        reasons.loc[variants.index] = why
    df["changes_conclusion"] = changes
    df["change_reason"] = reasons.astype(str)
    return df


def _relation(lo: float, hi: float) -> str:
    """Where a 95% interval lies relative to no effect (0 on the analysis scale)."""
    if hi < 0:
        return "below"
    if lo > 0:
        return "above"
    return "includes"


def _natural(row: pd.Series, column: str) -> str:
    value = row[f"natural_{column}"]
    scale = row.get("natural_scale")
    if not isinstance(value, float) or not math.isfinite(value):
        return f"{row[column]:.3g}"
    if scale == "probability":
        return f"{100 * value:.0f}%"
    if scale == "months":
        return f"{value:.1f} months"
    return f"{scale} {value:.2f}" if isinstance(scale, str) else f"{value:.3g}"


def conclusion_changes(primary: pd.Series, variants: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Whether each variant row changes the primary conclusion, and why (in words).

    An estimate with a no-effect value (a ``benefit`` side: HR, OR, RR; 0 on the
    analysis scale) changes when its 95% interval's relation to no effect changes
    (below / includes / above) or when its median lies outside the primary 95%
    interval; any other estimate (a median, a proportion) changes when its median lies
    outside the primary 95% interval. Rows without an estimate never change it.
    """
    has_null = isinstance(primary.get("benefit"), str)
    base = _relation(float(primary["ci_lower"]), float(primary["ci_upper"]))
    lo, hi = float(primary["ci_lower"]), float(primary["ci_upper"])
    words = {"below": "lies below no effect", "above": "lies above no effect",
             "includes": "includes no effect"}  # fmt: skip
    changed, why = [], []
    for _, row in variants.iterrows():
        v_lo, v_hi, med = float(row["ci_lower"]), float(row["ci_upper"]), float(row["median"])
        if row["status"] != "ok" or not all(math.isfinite(x) for x in (v_lo, v_hi, med)):
            changed.append(False)
            why.append("")
            continue
        parts = []
        if has_null and _relation(v_lo, v_hi) != base:
            parts.append(
                f"its 95% interval {words[_relation(v_lo, v_hi)]} (the primary's {words[base]})"
            )
        if not lo <= med <= hi:
            parts.append(
                f"its median ({_natural(row, 'median')}) lies outside the primary 95% "
                f"interval ({_natural(primary, 'ci_lower')} to {_natural(primary, 'ci_upper')})"
            )
        changed.append(bool(parts))
        why.append("; ".join(parts))
    return (
        pd.Series(changed, index=variants.index, dtype=bool),
        pd.Series(why, index=variants.index, dtype=object),
    )
