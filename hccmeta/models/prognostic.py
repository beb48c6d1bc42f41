"""Prognostic factors jointly: several factors' log hazard ratios pooled in one model.

Model
-----
Row ``i`` is one study's estimate ``y_i`` (standard error ``s_i``) of the log HR of
factor ``f[i]`` (exposed level vs reference level, e.g. Child-Pugh B vs A)::

    y_i      ~ Normal(theta_i, s_i^2)
    theta_i  ~ Normal(mu_f[i] + x_i' beta, tau_f[i]^2)
    mu_f     ~ prior_mu                                      (default Normal(0, 1))
    tau_f    = tau_scale * h_f,                              h_f ~ HalfNormal(1)
    tau_scale ~ prior_tau_scale                    (default LogNormal(log 0.5, 0.5))
    beta     ~ prior_beta                                    (default Normal(0, 0.5))

The heterogeneities are non-centred (``tau_f = tau_scale * h_f``). The study effects
``theta_i`` are integrated out analytically -- ``y_i ~ Normal(mu_f + x_i' beta, s_i^2 +
tau_f^2)`` -- and drawn afterwards from their exact conditional posterior
``Normal(v (y_i / s_i^2 + m_i / tau_f^2), v)``, ``v = 1 / (1 / s_i^2 + 1 / tau_f^2)``
(one draw per posterior draw, seeded). This goes one step beyond the non-centred
parameterisation: with one precise study per factor the non-centred ``theta = mu + tau
z`` still has a funnel between ``z`` and ``tau`` (2-18 divergent transitions in 4000 draws
on the Lee 2017 / Terashima 2016 factors at target_accept 0.9; the centred form is
worse), while the integrated form samples cleanly.

Why this hierarchical prior on the heterogeneities
--------------------------------------------------
Given ``tau_scale``, each ``tau_f ~ HalfNormal(tau_scale)``: the project's default prior
for a single log-HR meta-analysis, ``tau ~ HalfNormal(0.5)`` (Friede et al. 2017; Röver
et al. 2021), is the special case ``tau_scale = 0.5``, and a log-normal prior on the common
scale centred there (median 0.5, log-sd 0.5: 95% of its mass between 0.19 and 1.33, the
range of the named alternatives HalfNormal(0.25) ... HalfNormal(1)) lets the factors that
several studies report inform, through ``tau_scale``, the heterogeneity of the factors that
only one or two studies report. Unlike a log-normal prior on each ``tau_f`` itself
(``log tau_f ~ Normal(m, s)``), the half-normal keeps its mode at ``tau_f = 0``, so
homogeneity stays plausible for a factor with a single study, as under the default prior;
marginally each ``tau_f`` is a scale mixture of half-normals with median about 0.34 (that
of HalfNormal(0.5)) and a slightly heavier upper tail. A ``prior_tau_scale`` with a tiny
log-sd (e.g. ``LogNormal(log 0.5, 1e-3)``) fixes the scale and gives independent
HalfNormal(0.5) heterogeneities: one plain random-effects model per factor.

Adjusted vs univariate estimates, time origins
----------------------------------------------
Every row states whether its HR is ``adjusted`` (multivariable) and its ``time_origin``.
Rows that differ in either are never pooled silently: with more than one level present
the caller must choose, per covariate, ``"shift"`` (a common shift ``beta_adjusted`` for
adjusted rows, and ``beta_time_origin[o]`` for each non-reference origin, so that ``mu_f``
is the log HR of a *univariate* estimate at the *reference* origin and
``mu_adjusted = mu_f + beta_adjusted``) or ``"pool"`` (an explicit decision to ignore the
difference, recorded in the result). The design matrix of the shifts is returned in
``result.inputs["rows"]`` and in the DataTree's ``observed_data``.

Dimensions: ``factor``, ``study`` (and ``time_origin`` for the origin shifts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from hccmeta import priors as pr
from hccmeta.defaults import DEFAULT_SEED
from hccmeta.errors import InputError
from hccmeta.models import mcmc
from hccmeta.models._results import (
    Estimand,
    PosteriorResult,
    data_hash,
    make_tree,
    settings_attrs,
    versions,
)

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_TAU_SCALE",
    "fit_prognostic",
]

#: Default hyperprior of the common heterogeneity scale: median 0.5 (the project's
#: HalfNormal(0.5)), 95% between 0.19 and 1.33.
DEFAULT_TAU_SCALE = pr.LogNormal(mu=float(np.log(0.5)), sigma=0.5)
#: Default prior of a covariate shift on the log-HR scale (95% of ratios of HRs within
#: 0.38-2.7).
DEFAULT_BETA = pr.Normal(0.0, 0.5)

Mixing = Literal["error", "shift", "pool"]

_REQUIRED = ("factor", "study", "yi", "sei", "adjusted", "time_origin")


def _validate(data: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in _REQUIRED if c not in data.columns]
    if missing:
        raise InputError(
            f"data: missing column(s) {missing}; expected {list(_REQUIRED)} "
            "(one row per factor and study)"
        )
    if len(data) == 0:
        raise InputError("data: no rows")
    df = data.loc[:, list(_REQUIRED)].reset_index(drop=True).copy()
    for col in ("factor", "study", "time_origin"):
        empty = (df[col].isna() | (df[col].astype(str).str.strip() == "")).to_numpy()
        if empty.any():
            raise InputError(f"data: row {int(np.flatnonzero(empty)[0])}, column {col}: empty")
        df[col] = df[col].astype(str)
    for col in ("yi", "sei"):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if col == "sei":
            bad |= ~(values > 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "a finite number" if col == "yi" else "a finite number > 0"
            raise InputError(f"data: row {i}, column {col}: {data[col].iloc[i]!r} is not {what}")
        df[col] = values
    adjusted = df["adjusted"]
    ok = adjusted.map(lambda v: isinstance(v, bool | np.bool_))
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy())[0])
        raise InputError(
            f"data: row {i}, column adjusted: {adjusted.iloc[i]!r} is not a bool "
            "(True for a multivariable estimate)"
        )
    df["adjusted"] = adjusted.astype(bool)
    dup = df.duplicated(["factor", "study"], keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        first = df.iloc[rows[0]]
        raise InputError(
            f"data: rows {list(rows)} give factor {first['factor']!r} of study "
            f"{first['study']!r} more than once (e.g. a univariate and an adjusted HR of "
            "the same patients); keep one per factor and study"
        )
    return df


def _mixing_error(column: str, levels: Sequence[Any], option: str) -> InputError:
    return InputError(
        f"data mixes {column} levels {sorted(map(str, levels))}; pass {option}='shift' to "
        f"estimate a shift between them or {option}='pool' to pool them deliberately, or "
        "select the rows first"
    )


def fit_prognostic(
    data: pd.DataFrame,
    *,
    adjusted: Mixing = "error",
    time_origin: Mixing = "error",
    reference_time_origin: str | None = None,
    prior_mu: pr.Prior = pr.DEFAULT_MU,
    prior_tau_scale: pr.LogNormal = DEFAULT_TAU_SCALE,
    prior_beta: pr.Normal = DEFAULT_BETA,
    seed: int = DEFAULT_SEED,
    settings: mcmc.SamplerSettings | None = None,
) -> PosteriorResult:
    """Pool several prognostic factors' log HRs in one hierarchical model.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per factor and study with columns ``factor`` (str), ``study`` (str),
        ``yi`` (log HR of the factor's exposed level), ``sei`` (its SE, > 0),
        ``adjusted`` (bool: a multivariable estimate) and ``time_origin`` (str). At most
        one row per factor and study.
    adjusted, time_origin : {"error", "shift", "pool"}, keyword-only
        What to do when the rows mix adjusted and univariate estimates (or time origins):
        ``"error"`` (default) refuses, ``"shift"`` adds a shift term, ``"pool"`` pools them
        deliberately (recorded in the result's attributes). Ignored when only one level
        is present.
    reference_time_origin : str, keyword-only
        Reference level of the time-origin shift (default: the most frequent origin,
        ties alphabetically).
    prior_mu : Prior, keyword-only
        Prior of each factor's pooled log HR ``mu_f`` (Normal or Uniform; default
        Normal(0, 1)).
    prior_tau_scale : LogNormal, keyword-only
        Hyperprior of the common heterogeneity scale (default LogNormal(log 0.5, 0.5);
        see the module docstring).
    prior_beta : Normal, keyword-only
        Prior of each shift (default Normal(0, 0.5)).
    seed : int, keyword-only
        Seed of the sampler and of the predictive draws.
    settings : SamplerSettings, keyword-only
        Sampler settings (default 4 chains x 1000 draws).

    Returns
    -------
    PosteriorResult
        Estimands ``mu``, ``hr`` (= exp mu), ``tau``, ``theta_new`` / ``hr_new`` (the
        predictive log HR / HR of a new study, reference covariate levels), ``theta``
        (each study's shrunken log HR, dims ``factor, study``), ``tau_scale``; with the
        adjustment shift also ``beta_adjusted``, ``mu_adjusted`` and ``hr_adjusted``; with
        the origin shift ``beta_time_origin`` (dim ``time_origin``).
    """
    df = _validate(data)
    prior_mu = pr.check_mu_prior(prior_mu, argument="prior_mu")
    if not isinstance(prior_tau_scale, pr.LogNormal):
        raise InputError(f"prior_tau_scale must be a priors.LogNormal, got {prior_tau_scale!r}")
    if not isinstance(prior_beta, pr.Normal):
        raise InputError(f"prior_beta must be a priors.Normal, got {prior_beta!r}")
    for name, value in (("adjusted", adjusted), ("time_origin", time_origin)):
        if value not in ("error", "shift", "pool"):
            raise InputError(f"{name} must be 'error', 'shift' or 'pool', got {value!r}")
    settings = settings if settings is not None else mcmc.SamplerSettings(target_accept=0.9)

    factors = list(dict.fromkeys(df["factor"]))
    studies = list(dict.fromkeys(df["study"]))
    f_idx = df["factor"].map({f: i for i, f in enumerate(factors)}).to_numpy(dtype=np.int64)
    s_idx = df["study"].map({s: i for i, s in enumerate(studies)}).to_numpy(dtype=np.int64)
    n_obs, n_factor = len(df), len(factors)

    # -- covariates: explicit in the input, the design and the output ----------------
    adj_levels = sorted(df["adjusted"].unique())
    use_adj = len(adj_levels) > 1 and adjusted == "shift"
    if len(adj_levels) > 1 and adjusted == "error":
        raise _mixing_error("adjusted", adj_levels, "adjusted")
    origins = sorted(df["time_origin"].unique())
    if reference_time_origin is None:
        counts = df["time_origin"].value_counts()
        reference_time_origin = sorted(counts.index[counts == counts.max()])[0]
    elif reference_time_origin not in origins:
        raise InputError(
            f"reference_time_origin {reference_time_origin!r} is not among the rows' "
            f"time origins {origins}"
        )
    use_origin = len(origins) > 1 and time_origin == "shift"
    if len(origins) > 1 and time_origin == "error":
        raise _mixing_error("time_origin", origins, "time_origin")
    shifted_origins = [o for o in origins if o != reference_time_origin] if use_origin else []
    x_adj = df["adjusted"].to_numpy(dtype=float)
    x_origin = (
        np.column_stack([(df["time_origin"] == o).to_numpy(dtype=float) for o in shifted_origins])
        if shifted_origins
        else np.zeros((n_obs, 0))
    )
    n_origin = len(shifted_origins)

    data_values: dict[str, Any] = {
        "yi": df["yi"].to_numpy(),
        "sei": df["sei"].to_numpy(),
        "factor_idx": f_idx,
        **prior_mu.data("mu"),
        **prior_tau_scale.data("tau_scale"),
    }
    if use_adj:
        data_values["x_adjusted"] = x_adj
        data_values.update(prior_beta.data("beta_adjusted"))
    if use_origin:
        data_values["x_time_origin"] = x_origin
        data_values.update(prior_beta.data("beta_time_origin"))

    def build() -> Any:
        import pymc as pm

        coords = {
            "factor": factors,
            "time_origin": shifted_origins,
        }
        with pm.Model(coords=coords) as model:
            yi = pm.Data("yi", data_values["yi"])
            sei = pm.Data("sei", data_values["sei"])
            fi = pm.Data("factor_idx", f_idx)
            mu = prior_mu.to_pymc("mu", dims="factor")
            tau_scale = prior_tau_scale.to_pymc("tau_scale")
            h = pm.HalfNormal("tau_raw", sigma=1.0, dims="factor")
            tau = pm.Deterministic("tau", tau_scale * h, dims="factor")
            theta = mu[fi]
            if use_adj:
                xa = pm.Data("x_adjusted", x_adj)
                beta_adj = prior_beta.to_pymc("beta_adjusted")
                theta = theta + beta_adj * xa
            if use_origin:
                xo = pm.Data("x_time_origin", x_origin)
                beta_o = prior_beta.to_pymc("beta_time_origin", dims="time_origin")
                theta = theta + pm.math.dot(xo, beta_o)
            pm.Normal("y", mu=theta, sigma=pm.math.sqrt(sei**2 + tau[fi] ** 2), observed=yi)
        return model

    key = (
        "prognostic",
        prior_mu.family,
        prior_tau_scale.family,
        use_adj,
        use_origin,
        n_factor,
        n_obs,
        n_origin,
    )
    coords = {"factor": factors, "time_origin": shifted_origins}
    trace, diagnostics = mcmc.sample(
        key, build, data_values, seed=seed, settings=settings, coords=coords
    )

    # -- derived quantities ---------------------------------------------------------
    post = trace["posterior"].to_dataset()
    mu = post["mu"]
    tau = post["tau"]
    n_chain, n_draw = mu.shape[:2]
    shift = np.zeros((n_chain, n_draw, n_obs))
    if use_adj:
        shift = shift + post["beta_adjusted"].to_numpy()[..., None] * x_adj
    if use_origin:
        shift = shift + np.einsum("cdk,ok->cdo", post["beta_time_origin"].to_numpy(), x_origin)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 20_517]))
    theta_obs = _conditional_theta(
        df["yi"].to_numpy(),
        df["sei"].to_numpy(),
        mu.to_numpy()[..., f_idx] + shift,
        tau.to_numpy()[..., f_idx],
        rng,
    )
    theta = np.full((n_chain, n_draw, n_factor, len(studies)), np.nan)
    theta[..., f_idx, s_idx] = theta_obs
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    derived: dict[str, xr.DataArray] = {
        "hr": xr.apply_ufunc(np.exp, mu),
        "theta_new": theta_new,
        "hr_new": xr.apply_ufunc(np.exp, theta_new),
        "theta": xr.DataArray(
            theta,
            dims=("chain", "draw", "factor", "study"),
            coords={"factor": factors, "study": studies},
        ),
    }
    estimands = [
        Estimand("mu", "log", "pooled log HR of each factor (univariate, reference origin)"),
        Estimand("hr", "ratio", "pooled HR of each factor, exp(mu)"),
        Estimand("tau", "sd", "between-study SD of each factor's log HR"),
        Estimand("theta_new", "log", "predictive log HR in a new study"),
        Estimand("hr_new", "ratio", "predictive HR in a new study"),
        Estimand("tau_scale", "sd", "common scale of the heterogeneities"),
    ]
    if use_adj:
        mu_adj = mu + post["beta_adjusted"]
        derived["mu_adjusted"] = mu_adj
        derived["hr_adjusted"] = xr.apply_ufunc(np.exp, mu_adj)
        estimands += [
            Estimand("beta_adjusted", "log", "shift of adjusted vs univariate log HRs"),
            Estimand("mu_adjusted", "log", "pooled log HR of an adjusted estimate"),
            Estimand("hr_adjusted", "ratio", "pooled HR of an adjusted estimate"),
        ]
    if use_origin:
        estimands.append(
            Estimand(
                "beta_time_origin",
                "log",
                f"shift of each time origin vs {reference_time_origin!r}",
            )
        )
    estimands.append(Estimand("theta", "log", "each study's shrunken log HR"))

    rows = df.copy()
    rows["x_adjusted"] = x_adj if use_adj else 0.0
    for k, o in enumerate(shifted_origins):
        rows[f"x_time_origin[{o}]"] = x_origin[:, k]

    observed = xr.Dataset(
        {
            name: xr.DataArray(
                _matrix(values, f_idx, s_idx, n_factor, len(studies)),
                dims=("factor", "study"),
                coords={"factor": factors, "study": studies},
            )
            for name, values in (
                ("yi", df["yi"].to_numpy()),
                ("sei", df["sei"].to_numpy()),
                ("adjusted", x_adj),
                ("x_adjusted", rows["x_adjusted"].to_numpy(dtype=float)),
            )
        }
    )
    observed["time_origin"] = xr.DataArray(
        _matrix(df["time_origin"].to_numpy(dtype=object), f_idx, s_idx, n_factor, len(studies)),
        dims=("factor", "study"),
    ).astype(str)
    prior_text = {
        "mu": f"mu_f ~ {prior_mu}",
        "tau": f"tau_f = tau_scale * h_f, h_f ~ HalfNormal(1); tau_scale ~ {prior_tau_scale}",
    }
    if use_adj or use_origin:
        prior_text["beta"] = f"beta ~ {prior_beta}"
    attrs = {
        "model": "prognostic",
        "priors": prior_text,
        "data_hash": data_hash(df),
        "versions": versions(),
        "seed": int(seed),
        "covariates": {
            "adjusted": "shift" if use_adj else ("pool" if len(adj_levels) > 1 else "single"),
            "adjusted_levels": [bool(v) for v in adj_levels],
            "time_origin": "shift" if use_origin else ("pool" if len(origins) > 1 else "single"),
            "time_origin_levels": origins,
            "reference_time_origin": reference_time_origin,
        },
        **settings_attrs(settings, diagnostics),
    }
    tree = make_tree(trace, derived=derived, observed=observed, attrs=attrs, drop=("z", "tau_raw"))
    return PosteriorResult(
        model="prognostic",
        tree=tree,
        diagnostics=diagnostics,
        priors=prior_text,
        estimands=tuple(estimands),
        inputs={"rows": rows},
    )


def _conditional_theta(
    y: np.ndarray, s: np.ndarray, m: np.ndarray, tau: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One draw of each study effect from its conditional posterior given (m, tau):
    ``Normal(v (y / s^2 + m / tau^2), v)`` with ``v = 1 / (1 / s^2 + 1 / tau^2)``,
    written so that ``tau = 0`` gives ``theta = m`` exactly."""
    tau2, s2 = tau**2, s**2
    w = tau2 / (tau2 + s2)  # weight of the study's own estimate
    mean = w * y + (1.0 - w) * m
    sd = np.sqrt(w * s2)
    return mean + sd * rng.standard_normal(mean.shape)


def _matrix(
    values: np.ndarray, f_idx: np.ndarray, s_idx: np.ndarray, n_factor: int, n_study: int
) -> np.ndarray:
    if values.dtype == object:
        out = np.full((n_factor, n_study), "", dtype=object)
    else:
        out = np.full((n_factor, n_study), np.nan)
    out[f_idx, s_idx] = values
    return out
