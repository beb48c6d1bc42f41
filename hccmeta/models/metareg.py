"""Bayesian random-effects meta-regression on study-level covariates (MCMC).

``y_i ~ N(theta_i, s_i^2)``, ``theta_i = mu + x_i' beta + u_i``, ``u_i ~ N(0, tau^2)``,
non-centred (``u_i = tau z_i``), sampled with nutpie through the shared base
(:mod:`hccmeta.models.mcmc`). Data, covariates and every prior hyperparameter are
``pm.Data`` containers: the compiled model is keyed on the prior families, the number of
studies and the number of covariates.

Covariates are a DataFrame (numeric columns as they are; text, categorical or boolean
columns as 0/1 indicators of each level but the first) or an array; ``mu`` is the
expected effect where every covariate is 0 (the reference levels).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hccmeta.defaults import DEFAULT_SEED
from hccmeta.errors import InputError
from hccmeta.models.result import (
    SUMMARY_COLUMNS,
    check_ci_prob,
    data_hash,
    package_versions,
)
from hccmeta.priors import DEFAULT_MU, DEFAULT_TAU, Normal, Prior, check_mu_prior, check_tau_prior

if TYPE_CHECKING:  # pragma: no cover
    import pymc as pm
    import xarray as xr

    from hccmeta.models.mcmc import Diagnostics, SamplerSettings

__all__ = ["MetaRegResult", "design_matrix", "metareg"]

FloatArray = NDArray[np.float64]

#: Default prior of each regression coefficient (log-ratio scale, like mu's).
DEFAULT_BETA = Normal(0.0, 1.0)


def design_matrix(covariates: pd.DataFrame | ArrayLike, k: int) -> tuple[FloatArray, list[str]]:
    """Covariates as a (k, p) float matrix and its column names.

    Text, categorical and boolean DataFrame columns become indicators of each level but
    the first (sorted); numeric columns stay as they are. Raises :class:`InputError` for
    missing values, a wrong number of rows, or a column that is constant (its
    coefficient would not be identified).
    """
    if isinstance(covariates, pd.DataFrame):
        frame = covariates.reset_index(drop=True)
        parts: list[pd.DataFrame] = []
        for col in frame.columns:
            series = frame[col]
            if series.isna().any():
                i = int(np.flatnonzero(series.isna().to_numpy())[0])
                raise InputError(f"covariates[{col!r}][{i}] is missing")
            if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
                parts.append(pd.DataFrame({str(col): series.astype(float)}))
            else:
                levels = sorted(series.astype(str).unique())
                for level in levels[1:]:
                    parts.append(
                        pd.DataFrame(
                            {f"{col}[{level}]": (series.astype(str) == level).astype(float)}
                        )
                    )
        X = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)
        names = [str(c) for c in X.columns]
        matrix = X.to_numpy(dtype=float)
    else:
        try:
            matrix = np.asarray(covariates, dtype=float)
        except (TypeError, ValueError):
            raise InputError("covariates must be numeric (or a DataFrame)") from None
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        if matrix.ndim != 2:
            raise InputError(f"covariates must be a (k, p) matrix, got shape {matrix.shape}")
        bad = np.argwhere(~np.isfinite(matrix))
        if bad.size:
            i, j = (int(v) for v in bad[0])
            raise InputError(f"covariates[{i}, {j}] is missing or not finite")
        names = [f"x{j + 1}" for j in range(matrix.shape[1])]
    if matrix.shape[0] != k:
        raise InputError(f"covariates have {matrix.shape[0]} rows for {k} studies")
    if matrix.shape[1] == 0:
        raise InputError("covariates have no columns")
    for j, name in enumerate(names):
        if np.ptp(matrix[:, j]) == 0:
            raise InputError(
                f"covariate {name!r} is the same in every study: its coefficient is not identified"
            )
    return matrix, names


class MetaRegResult:
    """A fitted meta-regression: draws, summary, diagnostics, DataTree."""

    def __init__(
        self,
        *,
        study: Sequence[str],
        covariates: Sequence[str],
        yi: FloatArray,
        sei: FloatArray,
        X: FloatArray,
        prior_mu: Prior,
        prior_tau: Prior,
        prior_beta: Prior,
        measure: str,
        seed: int,
        ci_prob: float,
        draws: dict[str, FloatArray],
        sample_stats: xr.Dataset,
        diagnostics: Diagnostics,
    ) -> None:
        self.study = tuple(study)
        self.covariates = tuple(covariates)
        self.yi, self.sei, self.X = yi, sei, X
        self.prior_mu, self.prior_tau, self.prior_beta = prior_mu, prior_tau, prior_beta
        self.measure = measure
        self.seed = seed
        self.ci_prob = ci_prob
        self.diagnostics = diagnostics
        self._draws = draws
        self._stats = sample_stats
        self._tree: xr.DataTree | None = None

    @property
    def ok(self) -> bool:
        """False when the fit failed its diagnostics."""
        return self.diagnostics.ok

    @property
    def k(self) -> int:
        return int(self.yi.size)

    def posterior_draws(self) -> dict[str, FloatArray]:
        """Draws (chain, draw[, covariate | study]) of mu, tau, beta, theta."""
        return self._draws

    def summary(self, *, ci_prob: float | None = None) -> pd.DataFrame:
        """Rows mu, tau, beta[<covariate>]..., theta[<study>]...; columns ``mean,
        median, sd, ci_lower, ci_upper`` (central interval at ``ci_prob``)."""
        prob = self.ci_prob if ci_prob is None else check_ci_prob(ci_prob)
        probs = [0.5, (1 - prob) / 2, (1 + prob) / 2]
        d = self._draws
        series: list[tuple[str, FloatArray]] = [("mu", d["mu"]), ("tau", d["tau"])]
        series += [(f"beta[{c}]", d["beta"][..., j]) for j, c in enumerate(self.covariates)]
        series += [(f"theta[{s}]", d["theta"][..., i]) for i, s in enumerate(self.study)]
        rows = []
        for _, x in series:
            flat = x.ravel()
            q = np.quantile(flat, probs)
            rows.append([flat.mean(), q[0], flat.std(ddof=1), q[1], q[2]])
        return pd.DataFrame(
            rows,
            index=pd.Index([n for n, _ in series], name="variable"),
            columns=SUMMARY_COLUMNS,
        )

    def prob_below(self, threshold: float, var: str = "mu") -> float:
        """Posterior probability that ``var`` (mu, tau or beta[<covariate>]) < threshold."""
        d = self._draws
        if var in ("mu", "tau"):
            x = d[var]
        elif var.startswith("beta[") and var[5:-1] in self.covariates:
            x = d["beta"][..., self.covariates.index(var[5:-1])]
        else:
            raise InputError(f"var = {var!r}: expected mu, tau or beta[<covariate>]")
        return float(np.mean(x < float(threshold)))

    @property
    def datatree(self) -> xr.DataTree:
        """posterior, observed_data, constant_data (sei, X), sample_stats; attributes
        record priors, data hash, seed, versions and diagnostics."""
        if self._tree is None:
            import xarray as xr

            d = self._draws
            chains, draws = d["mu"].shape
            cd = ("chain", "draw")
            coords = {
                "chain": np.arange(chains),
                "draw": np.arange(draws),
                "study": np.array(self.study, dtype=str),
                "covariate": np.array(self.covariates, dtype=str),
            }
            post = xr.Dataset(
                {
                    "mu": (cd, d["mu"]),
                    "tau": (cd, d["tau"]),
                    "beta": ((*cd, "covariate"), d["beta"]),
                    "theta": ((*cd, "study"), d["theta"]),
                },
                coords=coords,
            )
            obs = xr.Dataset({"y": (("study",), self.yi)}, coords={"study": coords["study"]})
            const = xr.Dataset(
                {"sei": (("study",), self.sei), "X": (("study", "covariate"), self.X)},
                coords={"study": coords["study"], "covariate": coords["covariate"]},
            )
            tree = xr.DataTree.from_dict(
                {
                    "/posterior": post,
                    "/observed_data": obs,
                    "/constant_data": const,
                    "/sample_stats": self._stats,
                }
            )
            tree.attrs.update(
                {
                    "created_by": "hccmeta.models.metareg.metareg",
                    "method": "mcmc",
                    "measure": self.measure,
                    "prior_mu": repr(self.prior_mu),
                    "prior_tau": repr(self.prior_tau),
                    "prior_beta": repr(self.prior_beta),
                    "data_hash": data_hash(
                        [*self.study, *self.covariates],
                        np.concatenate([self.yi, self.X.ravel()]),
                        self.sei,
                    ),
                    "seed": self.seed,
                    "package_versions": json.dumps(package_versions("mcmc"), sort_keys=True),
                    "diagnostics": json.dumps(self.diagnostics.to_dict(), sort_keys=True),
                    "diagnostics_ok": int(self.diagnostics.ok),
                }
            )
            self._tree = tree
        return self._tree


def _builder(k: int, p: int, prior_mu: Prior, prior_tau: Prior, prior_beta: Prior) -> Any:
    def build() -> pm.Model:
        import pymc as pm

        with pm.Model(coords={"study": np.arange(k), "covariate": np.arange(p)}) as model:
            y = pm.Data("y", np.zeros(k), dims="study")
            sei = pm.Data("sei", np.ones(k), dims="study")
            X = pm.Data("X", np.zeros((k, p)), dims=("study", "covariate"))
            mu = prior_mu.to_pymc("mu")
            tau = prior_tau.to_pymc("tau")
            beta = prior_beta.to_pymc("beta", dims="covariate")
            z = pm.Normal("z", 0.0, 1.0, dims="study")
            theta = pm.Deterministic("theta", mu + pm.math.dot(X, beta) + tau * z, dims="study")
            pm.Normal("y_obs", mu=theta, sigma=sei, observed=y, dims="study")
        return model

    return build


def metareg(
    yi: ArrayLike,
    sei: ArrayLike,
    covariates: pd.DataFrame | ArrayLike,
    *,
    study: Sequence[Any] | None = None,
    measure: str = "generic",
    prior_mu: Prior | str | None = None,
    prior_tau: Prior | str | None = None,
    prior_beta: Prior | str | None = None,
    ci_prob: float = 0.95,
    seed: int = DEFAULT_SEED,
    settings: SamplerSettings | None = None,
) -> MetaRegResult:
    """Random-effects meta-regression ``theta_i = mu + x_i' beta + u_i`` (MCMC).

    Parameters
    ----------
    yi, sei : array_like
        Estimates (analysis scale) and standard errors.
    covariates : DataFrame or array_like
        Study-level covariates, one row per study (see :func:`design_matrix`).
    study : sequence, optional
        Study labels.
    measure : str
        Effect measure (recorded).
    prior_mu, prior_tau : Prior or str, optional
        As in :func:`hccmeta.pool` (defaults Normal(0, 1), HalfNormal(0.5)).
    prior_beta : Prior or str, optional
        Prior of every coefficient: Normal or Uniform (default Normal(0, 1)).
    ci_prob : float
        Interval probability of :meth:`MetaRegResult.summary`.
    seed : int
        Sampler seed.
    settings : SamplerSettings, optional
        Sampler settings and diagnostic thresholds.
    """
    from hccmeta.models import mcmc
    from hccmeta.models.normal import MEASURES, as_vector, check_positive, study_labels

    if measure not in MEASURES:
        raise InputError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    y = as_vector("yi", yi)
    s = check_positive("sei", as_vector("sei", sei), "a standard error")
    if s.size != y.size:
        raise InputError(f"yi has {y.size} values but sei has {s.size}")
    k = y.size
    X, names = design_matrix(covariates, k)
    p = X.shape[1]
    if k < p + 2:
        raise InputError(
            f"{k} studies for {p} covariate(s): a meta-regression needs at least p + 2 studies "
            "(intercept, coefficients and heterogeneity)"
        )
    labels = study_labels(study, k)
    ci = check_ci_prob(ci_prob)
    mu_prior = check_mu_prior(prior_mu if prior_mu is not None else DEFAULT_MU)
    tau_prior = check_tau_prior(prior_tau if prior_tau is not None else DEFAULT_TAU)
    beta_prior = check_mu_prior(
        prior_beta if prior_beta is not None else DEFAULT_BETA, argument="prior_beta"
    )
    data: dict[str, np.ndarray | float] = {
        "y": y,
        "sei": s,
        "X": X,
        **mu_prior.data("mu"),
        **tau_prior.data("tau"),
        **beta_prior.data("beta"),
    }
    key = ("metareg", mu_prior.family, tau_prior.family, beta_prior.family)
    from hccmeta.models.normal_mcmc import DEFAULT_SETTINGS

    trace, diagnostics = mcmc.sample(
        key,
        _builder(k, p, mu_prior, tau_prior, beta_prior),
        data,
        seed=seed,
        settings=settings if settings is not None else DEFAULT_SETTINGS,
        var_names=["mu", "tau", "beta", "theta"],
        coords={"study": labels, "covariate": names},
    )
    post = trace["posterior"].to_dataset()
    draws = {
        "mu": np.asarray(post["mu"].values, float),
        "tau": np.asarray(post["tau"].values, float),
        "beta": np.asarray(post["beta"].transpose("chain", "draw", "covariate").values, float),
        "theta": np.asarray(post["theta"].transpose("chain", "draw", "study").values, float),
    }
    stats = trace["sample_stats"].to_dataset()
    keep = [n for n, v in stats.data_vars.items() if v.dtype.kind in "biuf"]
    return MetaRegResult(
        study=labels,
        covariates=names,
        yi=y,
        sei=s,
        X=X,
        prior_mu=mu_prior,
        prior_tau=tau_prior,
        prior_beta=beta_prior,
        measure=measure,
        seed=seed,
        ci_prob=ci,
        draws=draws,
        sample_stats=stats[keep],
        diagnostics=diagnostics,
    )
