"""The conflict table of an analysis: one cross-validated predictive p per statistic.

For every statistic that enters a model (one row of ``AnalysisResult.effects``), the
leave-one-study-out posterior-predictive conflict p-value (Presanis et al. 2013;
:func:`hccmeta.models.conflict.loo_conflict_p`): is the study's estimate surprising
given what the other studies of the same estimand predict?

- normal-normal models (``random_effects``, ``per_regimen``): exact, with the analysis's
  own priors and effects model (method ``loo_predictive_exact``);
- the MCMC models (``prognostic_joint``, ``proportions``, ``survival_multiformat``):
  refitting them once per study left out is too slow for every run, so the same exact
  normal-normal computation is applied to each estimand's statistics (``yi``, ``sei``)
  with the default priors of their measure (method ``loo_predictive_normal_approx``):
  the joint prognostic model's shared heterogeneity scale, the binomial likelihood and
  the multi-format Weibull synthesis are approximated by a normal-normal model per
  factor, regimen, statistic family and landmark time;
- a statistic with no other study of its estimand has ``p`` NaN (method
  ``no_other_study``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hccmeta.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.run import AnalysisResult

__all__ = ["CONFLICT_COLUMNS", "conflict_table"]

#: Columns of ``AnalysisResult.conflicts``.
CONFLICT_COLUMNS = ("study", "record", "statistic", "p", "method")

_EXACT_MODELS = {"random_effects", "per_regimen"}


def _statistic(row: Any) -> str:
    """The statistic's name: its effect id without the record prefix."""
    effect, record = str(row["effect"]), str(row["record"])
    return effect[len(record) + 1 :] if effect.startswith(record + "/") else effect


def conflict_table(result: AnalysisResult) -> pd.DataFrame:
    """The conflict p-value of every statistic of ``result`` (columns
    :data:`CONFLICT_COLUMNS`); empty when the analysis has no eligible records."""
    from hccmeta.analyses.run import default_priors
    from hccmeta.models.conflict import loo_conflict_p

    rows = result.effects
    if rows.empty:
        return pd.DataFrame(columns=list(CONFLICT_COLUMNS))
    exact = result.analysis.model in _EXACT_MODELS
    keys = ["role", "measure", "time"] if not exact else ["role"]
    frame = rows.assign(
        role=rows["role"].astype(str) if "role" in rows.columns else "",
        # landmark times are separate estimands; an assessment time of counts is not
        time=rows["time"].astype(float).where(rows["measure"] == "cloglog_survival").fillna(-1.0),
    )
    out: list[dict[str, Any]] = []
    for key, part in frame.groupby(keys, sort=False, dropna=False):
        role = key[0] if isinstance(key, tuple) else key
        measure = str(part["measure"].iloc[0])
        fit = result.fits.get(str(role)) if exact else None
        if fit is not None:
            prior_mu, prior_tau = fit.prior_mu, fit.prior_tau
            method = "loo_predictive_exact"
        else:
            prior_mu, prior_tau = default_priors(measure)
            method = "loo_predictive_exact" if exact else "loo_predictive_normal_approx"
        try:
            p = loo_conflict_p(
                part["yi"].to_numpy(float),
                part["sei"].to_numpy(float),
                prior_mu=prior_mu,
                prior_tau=prior_tau,
                study=part["study"].astype(str).tolist(),
            )
        except InputError:
            p = np.full(len(part), math.nan)
        for (_, row), pi in zip(part.iterrows(), p, strict=True):
            missing = not math.isfinite(float(pi))
            out.append(
                {
                    "study": str(row["study"]),
                    "record": str(row["record"]),
                    "statistic": _statistic(row),
                    "p": float(pi),
                    "method": "no_other_study" if missing else method,
                }
            )
    return pd.DataFrame(out, columns=list(CONFLICT_COLUMNS))
