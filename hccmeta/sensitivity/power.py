"""Power-scaling prior and likelihood sensitivity (Kallioinen et al. 2024, Stat Comput
34:57) with arviz-stats ``psense``.

For each estimand of the primary analysis, two rows of variant group
``power_scaling``:

- ``prior_power_0.8``: the posterior with the prior raised to the power 0.8 (weakened),
  ``likelihood_power_0.8``: with the likelihood raised to 0.8 -- both by Pareto-smoothed
  importance reweighting of the primary draws, the way priorsense's
  ``powerscale_sequence`` shows them (its lower default alpha); ``failed`` if the Pareto
  k exceeds 0.7;
- the column ``psense``: ArviZ's sensitivity of the estimand to power-scaling that
  component (``arviz_stats.psense``: the derivative of the cumulative Jensen-Shannon
  distance at alpha = 1, from alpha 0.99 and 1.01), and ``psense_diagnosis`` with
  ArviZ's threshold 0.05 (``psense_summary``): ``prior-data conflict`` when both values
  are >= 0.05, ``strong prior / weak likelihood`` when the prior's is > 0.05 and the
  likelihood's < 0.05, ``ok`` otherwise.

Which densities are scaled, model by model (see :mod:`hccmeta.sensitivity.draws`):

- normal-normal (exact engine; its 4000 exact posterior draws): prior = mu and tau
  priors; likelihood = ``y_i | theta_i`` (conditional on the study effects, as the
  fit's DataTree has it);
- joint prognostic model: prior = mu_f, the heterogeneity scale and the h_f; likelihood
  = the marginal likelihood of each log HR (theta integrated out, as the model samples);
- binomial models: prior = the top-level priors (log OR, its tau, the baseline mean and
  SD; or mu and tau per regimen); likelihood = the binomial of each study arm;
- multi-format survival synthesis: the ``log_prior`` and ``log_likelihood`` groups of its
  DataTree -- prior = mu_hr, tau, the baseline mean and SD, ln k (Weibull); likelihood =
  each median, landmark and contrast term times its overlap weight (conditional on the
  study log HRs and baselines);
- any other model: only if its DataTree has ``log_prior`` and ``log_likelihood``
  groups; otherwise the rows are ``failed`` with the reason.

With one or two studies, a prior sensitivity above 0.05 on tau (and so on the pooled
estimate) is expected: the heterogeneity is not learnt from the data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hccmeta.analyses.run import AnalysisResult
from hccmeta.sensitivity.draws import FitView, estimate_template, weighted_estimate, weighted_stats
from hccmeta.sensitivity.reweight import KHAT_MAX, psis
from hccmeta.sensitivity.table import failed_rows, ok_rows

__all__ = ["ALPHA", "THRESHOLD", "power_scaling_failed", "power_scaling_rows"]

#: The power applied to the prior or likelihood in the power-scaling rows.
ALPHA = 0.8
#: ArviZ's threshold of the sensitivity diagnostic.
THRESHOLD = 0.05

_COMPONENTS = ("prior", "likelihood")


def _diagnosis(prior: float, likelihood: float) -> str:
    if prior >= THRESHOLD and likelihood >= THRESHOLD:
        return "prior-data conflict"
    if prior > THRESHOLD > likelihood:
        return "strong prior / weak likelihood"
    return "ok"


def _psense(
    view: FitView, log_prior: np.ndarray, loglik: np.ndarray
) -> dict[str, dict[str, float]]:
    import xarray as xr
    from arviz_stats import psense

    cd = ("chain", "draw")
    names = list(view.estimands)
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                {f"v{i}": (cd, view.estimands[n]) for i, n in enumerate(names)}
            ),
            "log_prior": xr.Dataset({"prior": (cd, log_prior)}),
            "log_likelihood": xr.Dataset({"y": ((*cd, "obs"), loglik)}),
        }
    )
    out: dict[str, dict[str, float]] = {}
    for group in _COMPONENTS:
        ds = psense(tree, group=group)
        out[group] = {n: float(ds[f"v{i}"]) for i, n in enumerate(names)}
    return out


def power_scaling_failed(result: AnalysisResult, reason: str) -> list[dict[str, Any]]:
    """``failed`` power-scaling rows for every estimand, with ``reason``."""
    templates = estimate_template(result)
    scales = {e: str(t["scale"]) for e, t in templates.items()}
    rows: list[dict[str, Any]] = []
    for comp in _COMPONENTS:
        rows += failed_rows(
            result.name, f"{comp}_power_{ALPHA}", "power_scaling",
            f"{comp} power-scaled by alpha = {ALPHA}", list(templates),
            f"not available: {reason}", scales=scales,
        )  # fmt: skip
    return rows


def power_scaling_rows(result: AnalysisResult, views: list[FitView]) -> list[dict[str, Any]]:
    """The ``power_scaling`` rows of an analysis (see the module docstring)."""
    name = result.name
    templates = estimate_template(result)
    scales = {e: str(t["scale"]) for e, t in templates.items()}
    rows: list[dict[str, Any]] = []
    for view in views:
        estimands = [e for e in view.estimands if e in templates]
        if not estimands:
            continue
        log_prior = view.log_prior()
        loglik = view.log_likelihood
        if log_prior is None or loglik is None:
            reason = view.note or "the fit has no log prior / log likelihood"
            for comp in _COMPONENTS:
                desc = f"{comp} power-scaled by alpha = {ALPHA}"
                rows += failed_rows(
                    name, f"{comp}_power_{ALPHA}", "power_scaling", desc, estimands,
                    f"not available: {reason}", scales=scales,
                )  # fmt: skip
            continue
        try:
            rows += _view_rows(name, view, estimands, templates, scales, log_prior, loglik)
        except ArithmeticError as exc:  # e.g. every importance weight zero
            for comp in _COMPONENTS:
                rows += failed_rows(
                    name, f"{comp}_power_{ALPHA}", "power_scaling",
                    f"{comp} power-scaled by alpha = {ALPHA}", estimands,
                    f"{type(exc).__name__}: {exc}", scales=scales,
                )  # fmt: skip
    order = {e: i for i, e in enumerate(templates)}
    rows.sort(
        key=lambda r: (0 if r["variant"].startswith("prior") else 1, order.get(r["estimand"], 0))
    )
    return rows


def _view_rows(
    name: str,
    view: FitView,
    estimands: list[str],
    templates: dict[str, dict[str, Any]],
    scales: dict[str, str],
    log_prior: np.ndarray,
    loglik: np.ndarray,
) -> list[dict[str, Any]]:
    """The power-scaling rows of one fit (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    sens = _psense(view, log_prior, loglik)
    diag = {e: _diagnosis(sens["prior"][e], sens["likelihood"][e]) for e in estimands}
    loglik_total = loglik.reshape((*loglik.shape[:2], -1)).sum(axis=-1)
    for comp, dens in (("prior", log_prior), ("likelihood", loglik_total)):
        variant = f"{comp}_power_{ALPHA}"
        smoothed, khat = psis((ALPHA - 1.0) * dens)
        desc = (
            f"{comp} raised to the power {ALPHA} (weakened), by Pareto-smoothed "
            f"importance reweighting of the primary draws (Pareto k {khat:.2f}); psense: "
            f"ArviZ power-scaling sensitivity to the {comp} (> {THRESHOLD} flags it)"
        )
        for est in estimands:
            if khat <= KHAT_MAX:
                draws = view.estimands[est]
                below = weighted_stats(draws)["p_below"]
                row_est = weighted_estimate(templates[est], draws, smoothed, p_below_primary=below)
                new = ok_rows(name, variant, "power_scaling", desc, pd.DataFrame([row_est]))
            else:
                new = failed_rows(
                    name, variant, "power_scaling", desc, [est],
                    f"importance reweighting unreliable: Pareto k {khat:.2f} > {KHAT_MAX}",
                    scales=scales,
                )  # fmt: skip
            for r in new:
                value = sens[comp][est]
                r["psense"] = value if math.isfinite(value) else math.nan
                r["psense_diagnosis"] = diag[est]
            rows += new
    return rows
