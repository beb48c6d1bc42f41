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
    """The rows as a DataFrame with :data:`SENSITIVITY_COLUMNS` and stable dtypes."""
    df = pd.DataFrame(list(rows), columns=list(SENSITIVITY_COLUMNS))
    for col in _NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["k"] = pd.to_numeric(df["k"], errors="coerce").astype("Int64")
    for col in ("analysis", "variant", "variant_group", "description", "status"):
        df[col] = df[col].astype(str)
    df["error"] = df["error"].fillna("").astype(str)
    df["psense_diagnosis"] = df["psense_diagnosis"].fillna("").astype(str)
    return df.reset_index(drop=True)
