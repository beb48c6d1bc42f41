"""Randomised and non-randomised evidence in one model, with the bias made explicit and
learnt where randomised evidence exists: :func:`pool_combined`.

The model (a bias-adjusted random-effects model in the spirit of Welton et al. 2009, JRSS
A 172:119, and of the bias-corrected meta-analysis of Verde 2021, Biometrical J 63:406,
with every non-randomised study biased rather than a mixture)::

    theta_i ~ N(mu, tau^2)                      every study
    y_i ~ N(theta_i, s_i^2)                     randomised
    y_i ~ N(theta_i + b_i, s_i^2)               non-randomised
    b_i ~ N(mu_b, sigma_b^2)
    mu ~ prior_mu, tau ~ prior_tau, mu_b ~ prior_bias_mean, sigma_b ~ prior_bias_sd

``mu`` is the effect at the level of the randomised evidence; ``theta_i`` are the
bias-corrected study effects; ``mu_b`` (the mean bias of the non-randomised studies) is
learnt from the difference between the two designs, ``sigma_b`` from their excess
heterogeneity -- both weakly when there are few studies, so their priors matter (the
defaults, :data:`hccmeta.priors.DEFAULT_BIAS_MEAN` and
:data:`~hccmeta.priors.DEFAULT_BIAS_SD`, are documented there). Without randomised
studies, mu is identified only through the prior of mu_b; without non-randomised ones the
model is the plain random-effects model.

Engines:

- ``method="mcmc"`` (default): PyMC + nutpie, compiled once per structure (number of
  studies and prior families; data, design indicators and hyperparameters are
  ``pm.Data``). The sampler sees one non-centred deviation per study, ``y_i ~ N(mu + r_i
  mu_b + sqrt(tau^2 + r_i sigma_b^2) u_i, s_i^2)``; the split of a non-randomised study's
  deviation into ``theta_i - mu`` and ``b_i - mu_b`` is drawn afterwards from its exact
  conditional distribution (the data inform only the sum).
- ``method="exact"``: 2-D quadrature over (tau, sigma_b) with (mu, mu_b) conjugate
  (:mod:`hccmeta.models.bias_exact`); needs Normal priors on mu and mu_b.

PyMC and nutpie are imported inside the functions.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from hccmeta.errors import InputError
from hccmeta.models.normal import MEASURES, check_estimates
from hccmeta.models.result import PoolResult, check_ci_prob
from hccmeta.priors import (
    DEFAULT_BIAS_MEAN,
    DEFAULT_BIAS_SD,
    DEFAULT_MU,
    DEFAULT_TAU,
    Normal,
    Prior,
    check_mu_prior,
    check_tau_prior,
)

if TYPE_CHECKING:  # pragma: no cover
    import pymc as pm
    import xarray as xr

    from hccmeta.models.mcmc import Diagnostics, SamplerSettings

__all__ = ["CombinedResult", "pool_combined"]

FloatArray = NDArray[np.float64]


class CombinedResult(PoolResult):
    """The result of :func:`pool_combined`: a :class:`PoolResult` (``mu`` is the
    randomised-level effect, ``theta[<study>]`` the bias-corrected study effects) with the
    learnt bias: rows ``mu_b``, ``sigma_b`` and ``bias[<study>]`` for each
    non-randomised study.

    Attributes
    ----------
    randomised : tuple of bool
        The design of each study.
    prior_bias_mean, prior_bias_sd : Prior
        Priors of mu_b and sigma_b.
    """

    def __init__(
        self,
        *,
        randomised: Sequence[bool],
        prior_bias_mean: Prior,
        prior_bias_sd: Prior,
        **kwargs: Any,
    ) -> None:
        super().__init__(model="combined", **kwargs)
        self.randomised = tuple(bool(r) for r in randomised)
        self.prior_bias_mean = prior_bias_mean
        self.prior_bias_sd = prior_bias_sd

    @property
    def non_randomised(self) -> tuple[str, ...]:
        """Labels of the non-randomised studies."""
        return tuple(s for s, r in zip(self.study, self.randomised, strict=True) if not r)

    def _extra_repr(self) -> str:
        return (
            f", {len(self.non_randomised)} of {self.k} studies non-randomised, "
            f"prior_bias_mean={self.prior_bias_mean!r}, prior_bias_sd={self.prior_bias_sd!r}"
        )

    def _extra_variables(self) -> list[tuple[str, int | str, tuple[str, int | None]]]:
        out: list[tuple[str, int | str, tuple[str, int | None]]] = [
            ("mu_b", 2 + self.k, ("mu_b", None)),
            ("sigma_b", "sigma_b", ("sigma_b", None)),
        ]
        nrs = [i for i, r in enumerate(self.randomised) if not r]
        for pos, i in enumerate(nrs):
            out.append((f"bias[{self.study[i]}]", 3 + self.k + pos, ("bias", i)))
        return out

    def _extra_priors(self) -> dict[str, Prior]:
        return {"mu_b": self.prior_bias_mean, "sigma_b": self.prior_bias_sd}

    def bias_moments(self) -> tuple[FloatArray, FloatArray]:
        """Mean and variance of each study's bias at each draw (chain, draw, study):
        ``mu_b`` and ``sigma_b^2`` for non-randomised studies, 0 for randomised ones."""
        draws = self.posterior_draws()
        r = 1.0 - np.asarray(self.randomised, dtype=float)
        m = draws["mu_b"][..., None] * r
        v2 = draws["sigma_b"][..., None] ** 2 * r
        return np.asarray(m, dtype=float), np.asarray(v2, dtype=float)

    @property
    def data_hash(self) -> str:
        """sha256 of the inputs: study labels, yi, sei (as :func:`data_hash`) and the
        design of each study."""
        payload = json.dumps({"base": super().data_hash, "randomised": list(self.randomised)})
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def frequentist(self, method: Literal["REML", "DL", "FE"] = "REML") -> Any:
        """The frequentist estimate of the randomised studies alone (the level ``mu``
        refers to), for comparison; an :class:`InputError` without randomised studies."""
        from hccmeta.models.frequentist import rma

        keep = np.asarray(self.randomised, dtype=bool)
        if not keep.any():
            raise InputError("frequentist(): there are no randomised studies to compare with")
        return rma(self.yi[keep], sei=self.sei[keep], method=method, level=self.ci_prob)

    def attrs(self) -> dict[str, str | int | float]:
        out = super().attrs()
        out["created_by"] = "hccmeta.models.pool_combined"
        out["randomised"] = json.dumps(
            {s: r for s, r in zip(self.study, self.randomised, strict=True)}
        )
        return out

    def to_dict(self, *, ci_prob: float | None = None) -> dict[str, Any]:
        """:meth:`PoolResult.to_dict` plus ``mu_b``, ``sigma_b`` and the designs."""
        out = super().to_dict(ci_prob=ci_prob)
        table = self.summary(ci_prob=ci_prob)
        values = table.to_numpy(dtype=float)
        for name in ("mu_b", "sigma_b"):
            row = values[table.index.get_loc(name)]
            out[name] = {col: float(v) for col, v in zip(table.columns, row, strict=True)}
        out["randomised"] = dict(zip(self.study, self.randomised, strict=True))
        return out


# --------------------------------------------------------------------------------------
# checks


def _check_randomised(randomised: Any, k: int) -> NDArray[np.bool_]:
    if isinstance(randomised, str | bytes) or not isinstance(randomised, Sequence | np.ndarray):
        raise InputError(
            f"randomised must be a sequence of True/False, one per study, got {randomised!r}"
        )
    values = list(randomised)
    if len(values) != k:
        raise InputError(f"randomised has {len(values)} entries for {k} studies")
    for i, v in enumerate(values):
        if not isinstance(v, bool | np.bool_):
            raise InputError(f"randomised[{i}] = {v!r} is not True or False")
    return np.array(values, dtype=bool)


# --------------------------------------------------------------------------------------
# the MCMC engine


def _builder(k: int, prior_mu: Prior, prior_tau: Prior, prior_mb: Prior, prior_sb: Prior) -> Any:
    def build() -> pm.Model:
        import pymc as pm
        import pytensor.tensor as pt

        with pm.Model(coords={"study": np.arange(k)}) as model:
            y = pm.Data("y", np.zeros(k), dims="study")
            sei = pm.Data("sei", np.ones(k), dims="study")
            r = pm.Data("nrs", np.zeros(k), dims="study")
            mu = prior_mu.to_pymc("mu")
            tau = prior_tau.to_pymc("tau")
            mu_b = prior_mb.to_pymc("mu_b")
            sigma_b = prior_sb.to_pymc("sigma_b")
            u = pm.Normal("u", 0.0, 1.0, dims="study")
            scale = pt.sqrt(tau**2 + r * sigma_b**2)
            pm.Normal("y_obs", mu=mu + r * mu_b + scale * u, sigma=sei, observed=y, dims="study")
        return model

    return build


def _fit_mcmc(
    y: FloatArray,
    s: FloatArray,
    nrs: NDArray[np.bool_],
    study: Sequence[str],
    priors: tuple[Prior, Prior, Prior, Prior],
    *,
    seed: int,
    settings: SamplerSettings | None,
) -> tuple[dict[str, FloatArray], xr.Dataset, Diagnostics]:
    from hccmeta.models import mcmc
    from hccmeta.models.normal_mcmc import DEFAULT_SETTINGS

    prior_mu, prior_tau, prior_mb, prior_sb = priors
    k = int(y.size)
    r = nrs.astype(float)
    data: dict[str, np.ndarray | float] = {
        "y": y,
        "sei": s,
        "nrs": r,
        **prior_mu.data("mu"),
        **prior_tau.data("tau"),
        **prior_mb.data("mu_b"),
        **prior_sb.data("sigma_b"),
    }
    key = ("combined", *(p.family for p in priors))
    trace, diagnostics = mcmc.sample(
        key,
        _builder(k, *priors),
        data,
        seed=seed,
        settings=settings if settings is not None else DEFAULT_SETTINGS,
        var_names=["mu", "tau", "mu_b", "sigma_b", "u"],
        coords={"study": list(study)},
    )
    post = trace["posterior"].to_dataset()
    mu, tau, mu_b, sb = (
        np.asarray(post[name].values, dtype=float) for name in ("mu", "tau", "mu_b", "sigma_b")
    )
    u = np.asarray(post["u"].transpose("chain", "draw", "study").values, dtype=float)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    t2, sb2 = (tau**2)[..., None], (sb**2)[..., None]
    total = t2 + r * sb2
    deviation = np.sqrt(total) * u
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, t2 / total, 1.0)
        cond_sd = np.sqrt(np.where(total > 0, t2 * sb2 * r / total, 0.0))
    theta = mu[..., None] + share * deviation + cond_sd * rng.standard_normal(u.shape)
    bias = np.where(r > 0, mu_b[..., None] + deviation - (theta - mu[..., None]), 0.0)
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    stats = trace["sample_stats"].to_dataset()
    keep = [name for name, var in stats.data_vars.items() if var.dtype.kind in "biuf"]
    draws = {
        "mu": mu,
        "tau": tau,
        "theta": theta,
        "theta_new": theta_new,
        "mu_b": mu_b,
        "sigma_b": sb,
        "bias": bias,
    }
    return draws, stats[keep], diagnostics


# --------------------------------------------------------------------------------------
# the API


def pool_combined(
    yi: Any,
    sei: Any,
    *,
    randomised: Sequence[bool],
    study: Sequence[Any] | None = None,
    measure: str = "generic",
    prior_mu: Prior | str | None = None,
    prior_tau: Prior | str | None = None,
    prior_bias_mean: Prior | str = DEFAULT_BIAS_MEAN,
    prior_bias_sd: Prior | str = DEFAULT_BIAS_SD,
    method: Literal["exact", "mcmc"] = "mcmc",
    seed: int = 0,
    settings: SamplerSettings | None = None,
    ci_prob: float = 0.95,
) -> CombinedResult:
    """Combine randomised and non-randomised studies with a learnt additive bias.

    See the module docstring for the model. ``mu`` is the effect at the level of the
    randomised evidence; the non-randomised studies carry ``b_i ~ N(mu_b, sigma_b^2)``.

    Parameters
    ----------
    yi, sei : array_like
        Estimates on the analysis scale (log for ratio measures) and standard errors.
    randomised : sequence of bool, keyword-only
        True for a randomised study (no bias term), False for a non-randomised one.
    study : sequence, keyword-only, optional
        Study labels (unique); default ``"1", "2", ...``.
    measure : {"hr", "or", "rr", "rd", "generic"}
        The effect measure (ratio measures can be summarised on the ratio scale).
    prior_mu, prior_tau : Prior or str, optional
        Priors of mu and tau, as in :func:`hccmeta.pool` (defaults ``Normal(0, 1)`` and
        ``HalfNormal(0.5)``, meant for log ratios).
    prior_bias_mean : Prior or str, keyword-only
        Prior of the mean bias mu_b (Normal or Uniform); default
        :data:`hccmeta.priors.DEFAULT_BIAS_MEAN` = ``Normal(0, 0.5)``.
    prior_bias_sd : Prior or str, keyword-only
        Prior of the between-study SD of the bias sigma_b; default
        :data:`hccmeta.priors.DEFAULT_BIAS_SD` = ``HalfNormal(0.3)``.
    method : {"mcmc", "exact"}
        The engine; ``"exact"`` needs Normal priors on mu and mu_b.
    seed : int
        Seed of the sampler, of the draws made after it, and of the exact draws.
    settings : SamplerSettings, optional
        MCMC settings (default: 4 chains x 1000 draws, target acceptance 0.95).
    ci_prob : float
        Probability of the central intervals of the summaries.

    Returns
    -------
    CombinedResult
        Rows ``mu, tau, theta_new, theta[<study>]..., mu_b, sigma_b,
        bias[<non-randomised study>]...``.

    Raises
    ------
    InputError
        Naming the argument: bad estimates or SEs, a design flag that is not a bool or
        a list of the wrong length, priors that do not fit their parameter, the exact
        engine with a non-Normal prior on mu or mu_b, unknown measure or method.
    """
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    if method not in ("exact", "mcmc"):
        raise InputError(f"method must be 'exact' or 'mcmc', got {method!r}")
    ci = check_ci_prob(ci_prob)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    y, s, labels = check_estimates(yi, sei, study)
    nrs = ~_check_randomised(randomised, y.size)
    mu_prior = check_mu_prior(prior_mu if prior_mu is not None else DEFAULT_MU)
    tau_prior = check_tau_prior(prior_tau if prior_tau is not None else DEFAULT_TAU)
    mb_prior = check_mu_prior(prior_bias_mean, argument="prior_bias_mean")
    sb_prior = check_tau_prior(prior_bias_sd, argument="prior_bias_sd")
    if measure in ("generic", "rd") and (prior_mu is None or prior_tau is None):
        scale = max(float(np.max(np.abs(y))), float(np.max(s)))
        if scale > 5.0:
            warnings.warn(
                f"pool_combined: the default priors (mu ~ {DEFAULT_MU!r}, tau ~ "
                f"{DEFAULT_TAU!r}) are meant for log ratios, but these data reach {scale:g}; "
                "give prior_mu and prior_tau on the scale of the data",
                UserWarning,
                stacklevel=2,
            )
    common: dict[str, Any] = {
        "measure": measure,
        "study": labels,
        "yi": y,
        "sei": s,
        "prior_mu": mu_prior,
        "prior_tau": tau_prior,
        "seed": int(seed),
        "ci_prob": ci,
        "randomised": ~nrs,
        "prior_bias_mean": mb_prior,
        "prior_bias_sd": sb_prior,
    }
    if method == "exact":
        from hccmeta.models.bias_exact import CombinedExactPosterior

        for name, prior in (("prior_mu", mu_prior), ("prior_bias_mean", mb_prior)):
            if not isinstance(prior, Normal):
                raise InputError(
                    f"{name}: the exact engine of pool_combined needs a Normal prior, got "
                    f"{prior!r}; use method='mcmc'"
                )
        assert isinstance(mu_prior, Normal) and isinstance(mb_prior, Normal)
        exact = CombinedExactPosterior(y, s, nrs, mu_prior, tau_prior, mb_prior, sb_prior)
        return CombinedResult(method="exact", exact=exact, **common)

    from hccmeta.models.mcmc import SamplerSettings

    if settings is not None and not isinstance(settings, SamplerSettings):
        raise InputError(f"settings must be a SamplerSettings, got {settings!r}")
    draws, stats, diagnostics = _fit_mcmc(
        y,
        s,
        nrs,
        labels,
        (mu_prior, tau_prior, mb_prior, sb_prior),
        seed=int(seed),
        settings=settings,
    )
    return CombinedResult(
        method="mcmc", draws=draws, sample_stats=stats, diagnostics=diagnostics, **common
    )
