"""The estimate rows of an analysis: their columns, how each measure is back-transformed
to its natural scale, and the row a runner builds for one estimand."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ESTIMATE_COLUMNS", "NATURAL", "estimate_row", "n_patients", "natural_columns"]

#: How each measure is back-transformed for the natural-scale columns.
NATURAL: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray], bool]] = {
    # measure: (name of the natural scale, transform, transform is decreasing)
    "log_hr": ("HR", np.exp, False),
    "log_or": ("OR", np.exp, False),
    "log_rr": ("RR", np.exp, False),
    "log_median": ("months", np.exp, False),
    "logit_p": ("probability", lambda x: 1.0 / (1.0 + np.exp(-x)), False),
    "cloglog_survival": ("probability", lambda x: np.exp(-np.exp(x)), True),
}


#: Columns of ``AnalysisResult.estimates`` (and of the sensitivity table), in order.
ESTIMATE_COLUMNS = (
    "estimand",
    "label",
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
    "n_patients",
    "studies",
)


def n_patients(rows: pd.DataFrame) -> float:
    """Patients in the compared groups; NaN if a study does not report its group sizes."""
    if rows.empty:
        return 0.0
    n = rows["n_exposed"].astype(float)
    if "reference" in rows.columns:
        contrast = rows["kind"] == "contrast"
        n = n + rows["n_reference"].astype(float).where(contrast, 0.0)
    return float(n.sum()) if n.notna().all() else math.nan


def estimate_row(
    estimand: str,
    label: str,
    scale: str,
    stats: Mapping[str, float],
    *,
    natural: str | None,
    p_benefit: float,
    k: int,
    n_patients: float,
    benefit: str | None = None,
    basis: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """One estimate row (:data:`ESTIMATE_COLUMNS`); ``basis`` are the effect rows behind
    it: their studies fill ``studies`` and their ids are kept (key ``effect_ids``, not a
    column) for the certainty rating."""
    used = basis if basis is not None else pd.DataFrame(columns=["study", "effect"])
    out: dict[str, Any] = {
        "estimand": estimand,
        "label": label,
        "scale": scale,
        **{c: float(stats[c]) for c in ("mean", "median", "sd", "ci_lower", "ci_upper")},
        "natural_scale": None,
        "natural_median": math.nan,
        "natural_ci_lower": math.nan,
        "natural_ci_upper": math.nan,
        "benefit": benefit if math.isfinite(p_benefit) else None,
        "p_benefit": p_benefit,
        "k": k,
        "n_patients": n_patients,
        "studies": ";".join(sorted(set(used["study"].astype(str)))),
        "effect_ids": list(dict.fromkeys(used["effect"].astype(str))),
    }
    if natural is not None and scale in NATURAL:
        out.update(natural_columns(scale, stats))
    return out


def natural_columns(scale: str, stats: Mapping[str, float]) -> dict[str, Any]:
    """``natural_scale, natural_median, natural_ci_lower, natural_ci_upper`` of an
    estimate on the analysis scale ``scale`` (its ``median, ci_lower, ci_upper``):
    HR, OR, RR, months (exp), probability (inverse logit; survival: exp(-exp(x))); the
    scale name None and the values NaN for a scale without a natural one."""
    if scale not in NATURAL:
        return {"natural_scale": None, "natural_median": math.nan,
                "natural_ci_lower": math.nan, "natural_ci_upper": math.nan}  # fmt: skip
    name, fn, decreasing = NATURAL[scale]
    lo, med, hi = (float(fn(np.asarray(stats[c]))) for c in ("ci_lower", "median", "ci_upper"))
    if decreasing:
        lo, hi = hi, lo
    return {"natural_scale": name, "natural_median": med, "natural_ci_lower": lo,
            "natural_ci_upper": hi}  # fmt: skip
