"""The MCMC engine of the normal-normal model: PyMC, non-centred, sampled by nutpie.

``y_i ~ N(theta_i, s_i^2)``, ``theta_i = mu + tau z_i``, ``z_i ~ N(0, 1)`` (non-centred,
which samples well when tau is near zero). Data (``y``, ``sei``) and the priors'
hyperparameters are ``pm.Data`` containers, so one compiled model serves every dataset
with the same number of studies and every prior of the same families: the structure key
is ``("normal", model, prior families)`` and :func:`hccmeta.models.mcmc.sample` adds the
data shapes (k) to it. ``theta_new = mu + tau z_new`` is drawn after sampling from the
posterior draws of mu and tau (exact given them; no extra sampler dimension).

With an additive bias per study, ``y_i ~ N(theta_i + b_i, s_i^2)``, the bias is an explicit,
non-centred latent ``b_i = m_i + v_i w_i``, ``w_i ~ N(0, 1)``, with ``m`` and ``v`` as
``pm.Data`` (structure key ``(..., "bias")``): one compiled model serves every bias prior,
and ``v_i = 0`` (no bias term) makes ``b_i = m_i = 0`` exactly.

PyMC and nutpie are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from hccmeta.models import mcmc
from hccmeta.priors import Prior

if TYPE_CHECKING:  # pragma: no cover
    import pymc as pm

__all__ = ["DEFAULT_SETTINGS", "fit_mcmc", "structure_key"]

FloatArray = NDArray[np.float64]

#: Default sampler settings of the random-effects models: target acceptance 0.95 (as
#: brms users set adapt_delta for meta-analyses of few studies). At nutpie's 0.8, fits of
#: the Crins data (k = 6) showed 1-5 divergent transitions in 10 of 12 seeds, and every
#: such fit would be re-sampled by the diagnostics' retry; at 0.95, none of 12 did.
DEFAULT_SETTINGS = mcmc.SamplerSettings(target_accept=0.95)


def structure_key(
    prior_mu: Prior, prior_tau: Prior | None, *, bias: bool = False
) -> tuple[str, ...]:
    """The compile-cache key of the model (without k, which the base adds)."""
    extra = ("bias",) if bias else ()
    if prior_tau is None:
        return ("normal", "fixed", prior_mu.family, *extra)
    return ("normal", "random", prior_mu.family, prior_tau.family, *extra)


def _builder(k: int, prior_mu: Prior, prior_tau: Prior | None, *, bias: bool = False) -> Any:
    def build() -> pm.Model:
        import pymc as pm

        with pm.Model(coords={"study": np.arange(k)}) as model:
            y = pm.Data("y", np.zeros(k), dims="study")
            sei = pm.Data("sei", np.ones(k), dims="study")
            mu = prior_mu.to_pymc("mu")
            if prior_tau is None:
                theta = pm.Deterministic("theta", mu + 0.0 * y, dims="study")
            else:
                tau = prior_tau.to_pymc("tau")
                z = pm.Normal("z", 0.0, 1.0, dims="study")
                theta = pm.Deterministic("theta", mu + tau * z, dims="study")
            if bias:
                # explicit, non-centred latent bias b_i = m_i + v_i w_i; m and v are data,
                # so one compiled model serves every bias prior (v_i = 0: no bias term)
                m = pm.Data("bias_mean", np.zeros(k), dims="study")
                v = pm.Data("bias_sd", np.zeros(k), dims="study")
                w = pm.Normal("w_bias", 0.0, 1.0, dims="study")
                b = pm.Deterministic("bias", m + v * w, dims="study")
                pm.Normal("y_obs", mu=theta + b, sigma=sei, observed=y, dims="study")
            else:
                pm.Normal("y_obs", mu=theta, sigma=sei, observed=y, dims="study")
        return model

    return build


def fit_mcmc(
    yi: FloatArray,
    sei: FloatArray,
    study: Sequence[str],
    prior_mu: Prior,
    prior_tau: Prior | None,
    *,
    seed: int,
    settings: mcmc.SamplerSettings | None = None,
    bias_mean: FloatArray | None = None,
    bias_sd: FloatArray | None = None,
) -> tuple[dict[str, FloatArray], xr.Dataset, mcmc.Diagnostics]:
    """Sample the posterior; returns draws (chain, draw[, study]) of mu, tau, theta and
    theta_new (and ``bias`` with ``bias_mean``/``bias_sd``), the sampler statistics, and
    the diagnostics."""
    k = int(yi.size)
    data: dict[str, np.ndarray | float] = {"y": yi, "sei": sei, **prior_mu.data("mu")}
    if prior_tau is not None:
        data.update(prior_tau.data("tau"))
    has_bias = bias_mean is not None or bias_sd is not None
    if has_bias:
        data["bias_mean"] = np.zeros(k) if bias_mean is None else np.asarray(bias_mean, float)
        data["bias_sd"] = np.zeros(k) if bias_sd is None else np.asarray(bias_sd, float)
    var_names = ["mu", "theta"] if prior_tau is None else ["mu", "tau", "theta"]
    trace, diagnostics = mcmc.sample(
        structure_key(prior_mu, prior_tau, bias=has_bias),
        _builder(k, prior_mu, prior_tau, bias=has_bias),
        data,
        seed=seed,
        settings=settings if settings is not None else DEFAULT_SETTINGS,
        var_names=[*var_names, "bias"] if has_bias else var_names,
        coords={"study": list(study)},
    )
    post = trace["posterior"].to_dataset()
    mu = np.asarray(post["mu"].values, dtype=float)
    tau = (
        np.asarray(post["tau"].values, dtype=float) if prior_tau is not None else np.zeros_like(mu)
    )
    theta = np.asarray(post["theta"].transpose("chain", "draw", "study").values, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    stats = trace["sample_stats"].to_dataset()
    keep = [name for name, var in stats.data_vars.items() if var.dtype.kind in "biuf"]
    draws = {"mu": mu, "tau": tau, "theta": theta, "theta_new": theta_new}
    if has_bias:
        draws["bias"] = np.asarray(
            post["bias"].transpose("chain", "draw", "study").values, dtype=float
        )
    return draws, stats[keep], diagnostics
