"""Prior variants of MCMC models by Pareto-smoothed importance sampling (PSIS).

A change of prior leaves the likelihood alone, so the posterior under the new prior is
the primary posterior reweighted by ``p_new(theta) / p_old(theta)`` at each draw. The
weights are Pareto-smoothed (Vehtari et al. 2024, JMLR 25(72); arviz-stats ``psislw``)
and trusted only when the Pareto shape estimate ``k`` is at most 0.7 (their threshold
``min(1 - 1 / log10(S), 0.7)`` is 0.7 for the S = 4000 draws of a default fit). That is
typically the case for priors at least as concentrated as the primary's. A heavier-tailed
prior (a wider HalfNormal or a Uniform on tau where the data say little) gives ``k >
0.7``; such a variant is then reweighted from the posterior of the grid's heaviest-tailed
prior, HalfCauchy(0.5), which is always refitted by MCMC (its weights relative to any
lighter-tailed prior are bounded), and refitted itself only if that fails too. The
row's description says which route it took and the ``k``.

This is exact in the limit of many draws and costs milliseconds instead of one MCMC fit
(plus one compilation for every new prior family); it is the same importance-sampling
device as ArviZ's power-scaling diagnostic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hccmeta import priors as pr
from hccmeta.analyses.run import ESTIMATE_COLUMNS, AnalysisResult, Variation
from hccmeta.errors import InputError
from hccmeta.sensitivity.draws import FitView, estimate_template, weighted_estimate, weighted_stats

__all__ = ["KHAT_MAX", "Reweighted", "psis", "reweight_prior"]

FloatArray = NDArray[np.float64]

#: Largest Pareto k at which importance-sampling estimates are trusted.
KHAT_MAX = 0.7

_PRIOR_FIELDS = ("prior_mu", "prior_tau", "prior_tau_scale")


@dataclass
class Reweighted:
    """The outcome of reweighting: estimates, or why they are not trusted.

    Attributes
    ----------
    estimates : DataFrame or None
        Estimate rows (columns of ``AnalysisResult.estimates``); None when the variant
        must be refitted.
    khat : float
        Largest Pareto k over the fits (NaN if not computed).
    reason : str
        Why the variant is refitted (empty when reweighted).
    """

    estimates: pd.DataFrame | None
    khat: float
    reason: str = ""


def psis(log_weights: FloatArray) -> tuple[FloatArray, float]:
    """Pareto-smoothed log weights (same shape as the (chain, draw) input) and the
    Pareto k. Zero weights (``-inf``, e.g. draws outside a Uniform prior) stay zero."""
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)
    import xarray as xr

    lw = np.asarray(log_weights, dtype=float)
    zero = ~np.isfinite(lw)
    if zero.all():
        raise FloatingPointError("every importance weight is zero")
    finite = lw[~zero]
    if np.ptp(finite) <= 1e-12 * max(1.0, float(np.abs(finite).max())):
        # equal weights (the same prior): nothing to smooth, a perfect sample
        return np.where(zero, -np.inf, 0.0), -math.inf
    filled = np.where(zero, finite.min() - 1000.0, lw)
    # arviz-stats' psislw takes log *ratios* the way PSIS-LOO has them (the pointwise
    # log-likelihood, whose negation is the log weight): pass -log_weights
    da = xr.DataArray(-filled, dims=("chain", "draw"))
    smoothed, khat = da.azstats.psislw(dim=["chain", "draw"])
    out = np.where(zero, -np.inf, np.asarray(smoothed.transpose("chain", "draw").to_numpy()))
    return out, float(khat)


def _check(field: str, prior: Any, model: str) -> pr.Prior:
    if field == "prior_mu":
        return pr.check_mu_prior(prior, argument=field)
    if field == "prior_tau":
        return pr.check_tau_prior(prior, argument=field)
    if not isinstance(prior, pr.LogNormal):
        raise InputError(f"prior_tau_scale must be a priors.LogNormal, got {prior!r}")
    return prior


def reweight_prior(
    result: AnalysisResult, views: Sequence[FitView], variation: Variation
) -> Reweighted:
    """The estimates of ``result``'s analysis under the priors of ``variation``, by
    importance reweighting of the primary posterior draws.

    Raises
    ------
    InputError
        If a new prior does not fit its parameter (e.g. a HalfNormal on mu).
    """
    changes = {f: getattr(variation, f) for f in _PRIOR_FIELDS if getattr(variation, f) is not None}
    if not changes or replace(variation, settings=None) != Variation(**changes):
        return Reweighted(None, math.nan, "not a change of priors only")
    templates = estimate_template(result)
    rows: list[dict[str, Any]] = []
    worst = -math.inf
    for view in views:
        log_w: FloatArray | None = None
        for field, new in changes.items():
            if field in view.unaffected:
                continue
            param = view.settable.get(field)
            if param is None:
                return Reweighted(None, math.nan, f"{field} cannot be reweighted in this model")
            draws, old = view.priors[param]
            new = _check(field, new, result.analysis.model)
            with np.errstate(divide="ignore", invalid="ignore"):
                diff = new.logpdf(draws) - old.logpdf(draws)
            diff = diff.reshape((*diff.shape[:2], -1)).sum(axis=-1)
            log_w = diff if log_w is None else log_w + diff
        if log_w is None:  # no field this fit depends on changes: equal weights
            if not view.estimands:
                continue
            log_w = np.zeros(next(iter(view.estimands.values())).shape[:2])
        smoothed, khat = psis(log_w)
        worst = max(worst, khat)
        if not khat <= KHAT_MAX:  # NaN too
            return Reweighted(None, khat, f"Pareto k {khat:.2f} > {KHAT_MAX}")
        for estimand, draws in view.estimands.items():
            if estimand not in templates:
                continue
            below = weighted_stats(draws)["p_below"]
            rows.append(
                weighted_estimate(templates[estimand], draws, smoothed, p_below_primary=below)
            )
    order = {e: i for i, e in enumerate(templates)}
    rows.sort(key=lambda r: order.get(str(r["estimand"]), len(order)))
    if len(rows) != len(templates):
        return Reweighted(None, worst, "not every estimand has draws to reweight")
    return Reweighted(pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS)), worst)
