"""The result of :func:`hccmeta.pool`: summaries, tail probabilities, the DataTree.

Both engines return a :class:`PoolResult`. Numbers come from the exact posterior when the
engine is ``exact`` (exact means, sds, quantiles and tail probabilities; posterior draws
are exact samples from it, made when the DataTree is first asked for), and from the
posterior draws when it is ``mcmc``.

With an additive bias per study (``hccmeta.pool(..., bias=...)``) the result records the
bias distributions (:attr:`PoolResult.bias`, the ``bias`` attribute of the DataTree) and
reports each biased study's bias as a row ``bias[<study>]``; the ``theta[<study>]`` rows
are then the bias-corrected study effects. :class:`hccmeta.models.bias.CombinedResult`
extends the class with the learnt bias of the combined model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hccmeta.errors import InputError
from hccmeta.priors import Prior

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from hccmeta.models.mcmc import Diagnostics
    from hccmeta.priors import Normal

__all__ = [
    "RATIO_MEASURES",
    "SCALE_VARIABLES",
    "SUMMARY_COLUMNS",
    "PoolResult",
    "check_ci_prob",
    "data_hash",
    "package_versions",
]

FloatArray = NDArray[np.float64]

#: Columns of every summary table; the interval is central at ``ci_prob``.
SUMMARY_COLUMNS = ("mean", "median", "sd", "ci_lower", "ci_upper")
#: Measures analysed on the log scale; their summaries can be back-transformed with exp.
RATIO_MEASURES = frozenset({"hr", "or", "rr"})
#: Draws of the exact engine's DataTree: the same shape as the MCMC default.
EXACT_CHAINS, EXACT_DRAWS = 4, 1000
#: Variance parameters: no ratio scale, and their exact marginals come from the
#: quadrature rather than from the mixture of normals.
SCALE_VARIABLES = frozenset({"tau", "sigma_b"})


def data_hash(study: Sequence[str], yi: FloatArray, sei: FloatArray) -> str:
    """sha256 of the inputs: study labels and the exact binary values of yi and sei
    (as ``float.hex``), so the same data give the same hash on every platform."""
    payload = json.dumps(
        {
            "study": [str(s) for s in study],
            "yi": [float(v).hex() for v in yi],
            "sei": [float(v).hex() for v in sei],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def package_versions(method: str) -> dict[str, str]:
    """Versions of the packages behind a result."""
    names = ["hccmeta", "numpy", "scipy", "xarray", "arviz-base"]
    if method == "mcmc":
        names += ["pymc", "pytensor", "nutpie", "arviz-stats"]
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[name] = "unknown"
    return out


def check_ci_prob(ci_prob: float, argument: str = "ci_prob") -> float:
    """``ci_prob`` as a float in (0, 1); an :class:`InputError` for anything else (a
    percentage such as 95 gets a hint)."""
    try:
        value = float(ci_prob)
    except (TypeError, ValueError):
        raise InputError(f"{argument} must be a number in (0, 1), got {ci_prob!r}") from None
    if 1.0 < value <= 100.0:
        raise InputError(
            f"{argument} = {ci_prob!r} looks like a percentage: give the interval "
            f"probability as a fraction ({value / 100:g})"
        )
    if not 0.0 < value < 1.0:
        raise InputError(f"{argument} must lie in (0, 1), got {ci_prob!r}")
    return value


class PoolResult:
    """A fitted normal-normal random-effects (or fixed-effect) meta-analysis.

    Attributes
    ----------
    method : {"exact", "mcmc"}
    model : {"random", "fixed", "combined"}
        ``"combined"``: :func:`hccmeta.models.pool_combined` (a
        :class:`~hccmeta.models.bias.CombinedResult`).
    measure : {"hr", "or", "rr", "rd", "generic"}
        The effect measure; ratio measures are analysed on the log scale.
    study : tuple of str
        Study labels (the ``study`` dimension).
    yi, sei : ndarray
        Estimates and standard errors on the analysis scale.
    prior_mu, prior_tau : Prior
        The priors (``prior_tau`` is None for the fixed-effect model).
    seed : int
        Seed of the sampler (mcmc) or of the exact draws (exact).
    ci_prob : float
        Default probability of the central intervals.
    diagnostics : Diagnostics or None
        MCMC diagnostics; None for the exact engine (no sampling to diagnose).
    bias : tuple of (Normal or None), or None
        The additive bias distribution of each study (None: no bias term), or None for
        the unadjusted model.
    prior_note : str or None
        How the priors were chosen when a rule chose them (a generic measure without
        priors: :func:`hccmeta.models.normal.scaled_priors`); None otherwise.
    """

    def __init__(
        self,
        *,
        method: Literal["exact", "mcmc"],
        model: str,
        measure: str,
        study: Sequence[str],
        yi: FloatArray,
        sei: FloatArray,
        prior_mu: Prior,
        prior_tau: Prior | None,
        seed: int,
        ci_prob: float,
        exact: Any = None,
        draws: Mapping[str, FloatArray] | None = None,
        sample_stats: xr.Dataset | None = None,
        diagnostics: Diagnostics | None = None,
        bias: Sequence[Normal | None] | None = None,
        prior_note: str | None = None,
    ) -> None:
        self.prior_note = prior_note
        self.method = method
        self.model = model
        self.measure = measure
        self.study = tuple(study)
        self.yi = np.asarray(yi, dtype=float)
        self.sei = np.asarray(sei, dtype=float)
        self.prior_mu = prior_mu
        self.prior_tau = prior_tau
        self.seed = int(seed)
        self.ci_prob = check_ci_prob(ci_prob)
        self.diagnostics = diagnostics
        self.bias: tuple[Normal | None, ...] | None = tuple(bias) if bias is not None else None
        self._exact = exact
        self._draws = dict(draws) if draws is not None else None
        self._sample_stats = sample_stats
        self._tree: xr.DataTree | None = None

    # -- basics ---------------------------------------------------------------------------

    @property
    def k(self) -> int:
        """Number of studies."""
        return int(self.yi.size)

    @property
    def ok(self) -> bool:
        """False when an MCMC fit failed its diagnostics (always True for exact fits)."""
        return self.diagnostics is None or self.diagnostics.ok

    @property
    def data_hash(self) -> str:
        """sha256 of the inputs (see :func:`data_hash`)."""
        return data_hash(self.study, self.yi, self.sei)

    @property
    def is_ratio(self) -> bool:
        """Whether the measure is a ratio analysed on the log scale."""
        return self.measure in RATIO_MEASURES

    def _extra_repr(self) -> str:
        if self.bias is None:
            return ""
        n = sum(b is not None for b in self.bias)
        return f", bias-adjusted ({n} of {self.k} studies with a bias term)"

    def __repr__(self) -> str:
        tau = repr(self.prior_tau) if self.prior_tau is not None else "0 (fixed effect)"
        flag = "" if self.ok else ", diagnostics FAILED"
        return (
            f"{type(self).__name__}(method={self.method!r}, model={self.model!r}, "
            f"measure={self.measure!r}, k={self.k}, prior_mu={self.prior_mu!r}, "
            f"prior_tau={tau}{self._extra_repr()}{flag})"
        )

    # -- variables ------------------------------------------------------------------------

    def _extra_variables(self) -> list[tuple[str, int | str, tuple[str, int | None]]]:
        """The variables after the theta rows: ``(label, exact location, (draws key,
        study index or None))``; the exact location is a mixture row (int) or the name
        of a scale parameter (str). Here: ``bias[<study>]`` of each study with a bias
        term (the mixture rows after theta_1..k, in study order)."""
        out: list[tuple[str, int | str, tuple[str, int | None]]] = []
        if self.bias is not None:
            biased = [i for i, b in enumerate(self.bias) if b is not None]
            for pos, i in enumerate(biased):
                out.append((f"bias[{self.study[i]}]", 2 + self.k + pos, ("bias", i)))
        return out

    @property
    def variables(self) -> list[str]:
        """Row labels of :meth:`summary`: mu, tau, theta_new, theta[<study>]..., then
        bias[<study>] for each study with a bias term (and the combined model's
        mu_b, sigma_b)."""
        base = ["mu", "tau", "theta_new", *(f"theta[{s}]" for s in self.study)]
        return base + [label for label, _, _ in self._extra_variables()]

    def _locate(self, var: str) -> tuple[int | str, tuple[str, int | None]]:
        """Where ``var`` lives: (exact mixture row or scale name, (draws key, index))."""
        if var == "tau":
            return "tau", ("tau", None)
        if var == "mu":
            return 0, ("mu", None)
        if var == "theta_new":
            return 1, ("theta_new", None)
        label = var[6:-1] if var.startswith("theta[") and var.endswith("]") else var
        if label in self.study:
            i = self.study.index(label)
            return 2 + i, ("theta", i)
        for name, loc, draw in self._extra_variables():
            if var == name:
                return loc, draw
        raise InputError(
            f"var = {var!r}: unknown variable; expected one of {', '.join(self.variables)}"
        )

    def _flat_draws(self, var: str) -> FloatArray:
        _, (key, index) = self._locate(var)
        values = self.posterior_draws()[key]
        return (values if index is None else values[..., index]).ravel()

    # -- summaries ------------------------------------------------------------------------

    def summary(
        self,
        *,
        ci_prob: float | None = None,
        scale: Literal["analysis", "ratio"] = "analysis",
    ) -> pd.DataFrame:
        """Posterior summary: one row per variable, columns ``mean, median, sd,
        ci_lower, ci_upper`` (a central interval of probability ``ci_prob``, 0.95 by
        default; the column names never depend on it).

        Parameters
        ----------
        ci_prob : float, optional
            Interval probability, a fraction in (0, 1); default :attr:`ci_prob`.
        scale : {"analysis", "ratio"}
            ``"ratio"`` back-transforms a ratio measure (HR, OR, RR) with exp: medians
            and interval bounds are exp of those on the log scale, mean and sd are those
            of exp(X). The rows ``tau`` and ``sigma_b`` (standard deviations on the log
            scale) are left out on the ratio scale.

        Returns
        -------
        pandas.DataFrame
            Index :attr:`variables` (named ``variable``): ``mu, tau, theta_new,
            theta[<study>]...``, then ``bias[<study>]`` rows of a bias-adjusted fit
            (and ``mu_b``, ``sigma_b`` of the combined model).
        """
        prob = self.ci_prob if ci_prob is None else check_ci_prob(ci_prob)
        if scale not in ("analysis", "ratio"):
            raise InputError(f"scale must be 'analysis' or 'ratio', got {scale!r}")
        if scale == "ratio" and not self.is_ratio:
            raise InputError(
                f"scale='ratio' needs a ratio measure (hr, or, rr); this result's measure "
                f"is {self.measure!r}"
            )
        probs = np.array([0.5, (1.0 - prob) / 2.0, (1.0 + prob) / 2.0])
        names = self.variables
        table = np.empty((len(names), 5))
        if self._exact is not None:
            mix = self._exact.mixture
            q = mix.quantile(probs)
            if scale == "analysis":
                mean, sd = mix.mean(), mix.sd()
            else:
                with np.errstate(over="ignore", invalid="ignore"):  # checked below
                    mean, sd = mix.exp_moments()
                    q = np.exp(q)
            for i, name in enumerate(names):
                loc, _ = self._locate(name)
                if isinstance(loc, str):
                    s_mean, s_sd = self._exact.scale_mean_sd(loc)
                    s_q = self._exact.scale_quantile(loc, probs)
                    table[i] = [s_mean, s_q[0], s_sd, s_q[1], s_q[2]]
                else:
                    table[i] = [mean[loc], q[loc, 0], sd[loc], q[loc, 1], q[loc, 2]]
        else:
            for i, name in enumerate(names):
                x = self._flat_draws(name)
                if scale == "ratio" and name not in SCALE_VARIABLES:
                    with np.errstate(over="ignore"):  # checked below
                        x = np.exp(x)
                qs = np.quantile(x, probs)
                table[i] = [x.mean(), qs[0], x.std(ddof=1), qs[1], qs[2]]
        df = pd.DataFrame(table, index=pd.Index(names, name="variable"), columns=SUMMARY_COLUMNS)
        if scale == "ratio":
            df = df.drop(index=[n for n in names if n in SCALE_VARIABLES])
            self._check_ratio_table(df)
            if not self.theta_new_ratio_mean_exists:
                df.loc["theta_new", ["mean", "sd"]] = np.nan
            df.attrs["undefined_moments"] = (
                [] if self.theta_new_ratio_mean_exists else ["theta_new"]
            )
        elif not np.all(np.isfinite(df.to_numpy())):
            raise InputError(
                f"the posterior is numerically degenerate under prior_mu {self.prior_mu!r} and "
                f"prior_tau {self.prior_tau!r}: a summary is not finite; choose priors on "
                "the scale of the data"
            )
        return df

    @property
    def theta_new_ratio_mean_exists(self) -> bool:
        """Whether ``E[exp(theta_new)]`` (the mean ratio of a new study) is finite.

        Given tau, ``exp(theta_new)`` is log-normal with log-variance ``Var(mu | tau) +
        tau^2``, so its mean grows like ``exp(tau^2 / 2)``; it is finite only where the
        posterior of tau has a tail lighter than that of a standard half-normal: a
        bounded prior (Uniform), a HalfNormal with scale < 1, or the fixed-effect model.
        Under HalfCauchy, HalfStudentT, LogNormal, InverseGamma or a HalfNormal with
        scale >= 1 the mean is infinite, whatever a sample or a truncated quadrature
        gives: :meth:`summary` reports its mean and sd as NaN on the ratio scale.
        """
        prior = self.prior_tau
        if prior is None or math.isfinite(prior.upper):
            return True
        return prior.family == "HalfNormal" and prior.params()["scale"] < 1.0

    def _check_ratio_table(self, df: pd.DataFrame) -> None:
        """Refuse a back-transformed summary whose quantiles overflow or underflow
        (exp of a log ratio beyond +-709): a numerically degenerate posterior."""
        for name, row in df.iterrows():
            for col in ("median", "ci_lower", "ci_upper"):
                value = float(row[col])
                if not math.isfinite(value) or value == 0.0:
                    raise InputError(
                        f"the posterior is numerically degenerate on the ratio scale: the "
                        f"{col} of {name} is {value:g} (exp of a log ratio beyond +-709) "
                        f"under prior_mu {self.prior_mu!r} and prior_tau {self.prior_tau!r}; "
                        "choose priors on the scale of the data"
                    )

    def ratio_summary(self, *, ci_prob: float | None = None) -> pd.DataFrame:
        """:meth:`summary` back-transformed to the ratio scale (HR, OR, RR)."""
        return self.summary(ci_prob=ci_prob, scale="ratio")

    # -- tail probabilities ---------------------------------------------------------------

    def prob_below(
        self, threshold: float, var: str = "mu", *, scale: Literal["analysis", "ratio"] = "analysis"
    ) -> float:
        """Posterior probability that ``var`` lies below ``threshold``.

        ``scale="ratio"`` takes the threshold on the ratio scale (e.g. HR 0.8) for a
        ratio measure.
        """
        t = self._threshold(threshold, scale, var)
        if self._exact is not None:
            loc, _ = self._locate(var)
            if isinstance(loc, str):
                return float(self._exact.scale_cdf(loc, np.array([t]))[0])
            mix = self._exact.mixture
            return float(mix.cdf(np.full((mix.n_rows, 1), t))[loc, 0])
        return float(np.mean(self._flat_draws(var) < t))

    def prob_above(
        self, threshold: float, var: str = "mu", *, scale: Literal["analysis", "ratio"] = "analysis"
    ) -> float:
        """Posterior probability that ``var`` lies above ``threshold``."""
        return 1.0 - self.prob_below(threshold, var, scale=scale)

    def _threshold(self, threshold: float, scale: str, var: str) -> float:
        try:
            t = float(threshold)
        except (TypeError, ValueError):
            raise InputError(f"threshold must be a number, got {threshold!r}") from None
        if math.isnan(t):
            raise InputError("threshold must be a number, got NaN")
        if scale == "analysis":
            return t
        if scale != "ratio":
            raise InputError(f"scale must be 'analysis' or 'ratio', got {scale!r}")
        if not self.is_ratio:
            raise InputError(f"scale='ratio' needs a ratio measure, not {self.measure!r}")
        if var in SCALE_VARIABLES:
            raise InputError(f"{var} has no ratio scale; give its threshold on the log scale")
        if t <= 0:
            raise InputError(f"threshold {t:g} on the ratio scale must be > 0")
        return math.log(t)

    @property
    def p_mu_below_0(self) -> float:
        """P(mu < 0): for a log ratio, the probability that the pooled ratio is below 1."""
        return self.prob_below(0.0, "mu")

    @property
    def p_theta_new_below_0(self) -> float:
        """P(theta_new < 0): the probability that a new study's effect is below 0."""
        return self.prob_below(0.0, "theta_new")

    def tail_probabilities(self, thresholds: Sequence[float] = (0.0,)) -> pd.DataFrame:
        """P(X < t) for mu and theta_new at each threshold (analysis scale)."""
        rows = [
            {"variable": v, "threshold": float(t), "prob_below": self.prob_below(t, v)}
            for v in ("mu", "theta_new")
            for t in thresholds
        ]
        return pd.DataFrame(rows)

    # -- draws and the DataTree -----------------------------------------------------------

    def posterior_draws(self) -> dict[str, FloatArray]:
        """Posterior draws (chain, draw[, study]): mu, tau, theta, theta_new."""
        if self._draws is None:
            assert self._exact is not None
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1]))
            flat = self._exact.sample(rng, EXACT_CHAINS * EXACT_DRAWS)
            shape = (EXACT_CHAINS, EXACT_DRAWS)
            self._draws = {
                name: value.reshape(shape + value.shape[1:]) for name, value in flat.items()
            }
        return self._draws

    def _prior_draws(self, shape: tuple[int, int]) -> dict[str, FloatArray]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 2]))
        mu = self.prior_mu.rvs(rng, shape)
        tau = self.prior_tau.rvs(rng, shape) if self.prior_tau is not None else np.zeros(shape)
        theta_new = mu + tau * rng.standard_normal(shape)
        out = {"mu": mu, "tau": tau, "theta_new": theta_new}
        for name, prior in self._extra_priors().items():
            out[name] = prior.rvs(rng, shape)
        return out

    def _extra_priors(self) -> dict[str, Prior]:
        """Priors of scalar parameters beyond mu and tau (the combined model's mu_b and
        sigma_b), by the name of their posterior variable."""
        return {}

    def bias_moments(self) -> tuple[FloatArray, FloatArray]:
        """Mean and variance of each study's bias given the hyperparameters, as arrays
        (chain, draw, study) or (study,): here the fixed bias distributions (zeros for
        studies without a bias term)."""
        m = np.zeros(self.k)
        v2 = np.zeros(self.k)
        if self.bias is not None:
            for i, b in enumerate(self.bias):
                if b is not None:
                    m[i], v2[i] = b.mean, b.sd**2
        return m, v2

    def pointwise_log_likelihood(self) -> FloatArray:
        """Log-likelihood of each study's estimate at each posterior draw (chain, draw,
        study): ``log N(y_i; theta_i + E[b_i], s_i^2 + Var[b_i])``, the likelihood given
        the bias-corrected study effect with the study's bias integrated out (just
        ``log N(y_i; theta_i, s_i^2)`` without a bias term)."""
        from scipy import stats

        draws = self.posterior_draws()
        m, v2 = self.bias_moments()
        if not np.any(v2) and not np.any(m):
            return np.asarray(stats.norm.logpdf(self.yi, draws["theta"], self.sei), dtype=float)
        return np.asarray(
            stats.norm.logpdf(self.yi, draws["theta"] + m, np.sqrt(self.sei**2 + v2)),
            dtype=float,
        )

    @property
    def datatree(self) -> xr.DataTree:
        """The fit as an ``xarray.DataTree`` (ArviZ 1.x layout).

        Groups: ``posterior`` (mu, tau, theta[study], theta_new), ``prior`` (mu, tau,
        theta_new drawn from the priors), ``observed_data`` (y), ``constant_data``
        (sei), ``log_likelihood`` (y), ``log_prior`` (mu, tau), and ``sample_stats``
        (MCMC only). Attributes: method, model, measure, priors (repr), data hash,
        seed, package versions, diagnostics.
        """
        if self._tree is None:
            self._tree = self._build_tree()
        return self._tree

    def _build_tree(self) -> xr.DataTree:
        import xarray as xr

        post = self.posterior_draws()
        chains, draws = post["mu"].shape
        coords = {
            "chain": np.arange(chains),
            "draw": np.arange(draws),
            "study": np.array(self.study, dtype=object).astype(str),
        }
        cd = ("chain", "draw")
        variables = {
            "mu": (cd, post["mu"]),
            "tau": (cd, post["tau"]),
            "theta": ((*cd, "study"), post["theta"]),
            "theta_new": (cd, post["theta_new"]),
        }
        if "bias" in post:
            variables["bias"] = ((*cd, "study"), post["bias"])
        for name in self._extra_priors():
            variables[name] = (cd, post[name])
        posterior = xr.Dataset(variables, coords=coords)
        prior_draws = self._prior_draws((chains, draws))
        prior = xr.Dataset(
            {name: (cd, value) for name, value in prior_draws.items()},
            coords={"chain": coords["chain"], "draw": coords["draw"]},
        )
        observed = xr.Dataset({"y": (("study",), self.yi)}, coords={"study": coords["study"]})
        constant = xr.Dataset({"sei": (("study",), self.sei)}, coords={"study": coords["study"]})
        loglik = self.pointwise_log_likelihood()
        log_likelihood = xr.Dataset({"y": ((*cd, "study"), loglik)}, coords=coords)
        lp_tau = (
            self.prior_tau.logpdf(post["tau"])
            if self.prior_tau is not None
            else np.zeros((chains, draws))
        )
        lp = {"mu": (cd, self.prior_mu.logpdf(post["mu"])), "tau": (cd, lp_tau)}
        for name, extra_prior in self._extra_priors().items():
            lp[name] = (cd, extra_prior.logpdf(post[name]))
        log_prior = xr.Dataset(lp, coords={"chain": coords["chain"], "draw": coords["draw"]})
        groups: dict[str, xr.Dataset] = {
            "posterior": posterior,
            "prior": prior,
            "observed_data": observed,
            "constant_data": constant,
            "log_likelihood": log_likelihood,
            "log_prior": log_prior,
        }
        if self._sample_stats is not None:
            groups["sample_stats"] = self._sample_stats
        tree = xr.DataTree.from_dict({f"/{name}": ds for name, ds in groups.items()})
        tree.attrs.update(self.attrs())
        return tree

    def attrs(self) -> dict[str, str | int | float]:
        """Attributes recorded in the DataTree (and netCDF file)."""
        out: dict[str, str | int | float] = {
            "created_by": "hccmeta.pool",
            "method": self.method,
            "model": self.model,
            "measure": self.measure,
            "k": self.k,
            "prior_mu": repr(self.prior_mu),
            "prior_tau": repr(self.prior_tau) if self.prior_tau is not None else "none (tau = 0)",
            "data_hash": self.data_hash,
            "seed": self.seed,
            "ci_prob": self.ci_prob,
            "package_versions": json.dumps(package_versions(self.method), sort_keys=True),
        }
        if self.bias is not None:
            out["bias"] = json.dumps(self.bias_text(), sort_keys=False)
        for name, prior in self._extra_priors().items():
            out[f"prior_{name}"] = repr(prior)
        if self.prior_note:
            out["prior_note"] = self.prior_note
        if self.method == "exact":
            out["posterior_draws"] = (
                "independent exact draws from the numerically integrated posterior"
            )
        if self.diagnostics is not None:
            out["diagnostics"] = json.dumps(self.diagnostics.to_dict(), sort_keys=True)
            out["diagnostics_ok"] = int(self.diagnostics.ok)
        return out

    def to_netcdf(self, path: str | os.PathLike[str]) -> str:
        """Write the DataTree (all groups and attributes) to a netCDF file.

        With h5py installed the file is netCDF4 with one HDF5 group per DataTree group
        (``xarray.open_datatree``). Without it (h5netcdf cannot write HDF5 without h5py)
        the groups are flattened into one classic netCDF file, in the layout of
        :mod:`hccmeta.models.netcdf` (read it back with
        :func:`hccmeta.models.netcdf.read_tree`).

        Returns
        -------
        str
            ``"netcdf4"`` or ``"netcdf3-flat"``.
        """
        from hccmeta.models.netcdf import write_tree

        return write_tree(self.datatree, path)

    def bias_text(self) -> dict[str, str]:
        """Each study's bias distribution as a readable string (``"none"``: no bias
        term); empty for the unadjusted model."""
        if self.bias is None:
            return {}
        return {
            s: (repr(b) if b is not None else "none")
            for s, b in zip(self.study, self.bias, strict=True)
        }

    # -- comparison ------------------------------------------------------------------------

    def frequentist(self, method: Literal["REML", "DL", "FE"] = "REML") -> Any:
        """The frequentist estimate on the same data (:func:`hccmeta.models.frequentist.rma`,
        validated against metafor), for comparison; with fixed bias distributions, on the
        bias-adjusted data ``y_i - m_i`` with variances ``s_i^2 + v_i^2``."""
        from hccmeta.models.frequentist import rma

        m, v2 = self.bias_moments()
        return rma(self.yi - m, sei=np.sqrt(self.sei**2 + v2), method=method, level=self.ci_prob)

    # -- plain-Python form ----------------------------------------------------------------

    def estimate(self, var: str, *, ci_prob: float | None = None) -> dict[str, Any]:
        """One variable as the estimate keys shared with ``hccmeta run --json``:
        ``mean, median, sd, ci_lower, ci_upper`` (analysis scale) and ``natural_scale,
        natural_median, natural_ci_lower, natural_ci_upper`` (HR, OR or RR: exp of the
        median and interval bounds; null for generic and rd measures and for tau)."""
        table = self.summary(ci_prob=ci_prob)
        values = table.to_numpy(dtype=float)[table.index.get_loc(var)]
        row = dict(zip(SUMMARY_COLUMNS, (float(v) for v in values), strict=True))
        out: dict[str, Any] = dict(row)
        natural = self.is_ratio and var != "tau"
        out["natural_scale"] = self.measure.upper() if natural else None
        for key, col in (("natural_median", "median"), ("natural_ci_lower", "ci_lower"),
                         ("natural_ci_upper", "ci_upper")):  # fmt: skip
            out[key] = math.exp(row[col]) if natural else None
        return out

    def to_dict(self, *, ci_prob: float | None = None) -> dict[str, Any]:
        """The JSON object of ``hccmeta pool --json``.

        The keys of SPEC section 7 -- ``method, measure, k, mu, tau, theta_new,
        p_mu_below_0`` -- where ``mu``, ``tau`` and ``theta_new`` hold the estimate keys of
        :meth:`estimate` (analysis scale, log for ratio measures, and the natural scale);
        and ``model``, ``ci_prob``, ``p_theta_new_below_0``, ``priors`` (``{"mu", "tau"}``
        as printed), ``prior_note`` (how a rule chose them, or null), ``studies`` (one
        entry per study: ``study, yi, sei`` and its shrunken estimate ``theta`` with the
        estimate keys), ``diagnostics`` (MCMC; null for the exact engine), ``seed`` and
        ``data_hash``; with a bias term, ``bias`` (each study's bias distribution).
        """
        out: dict[str, Any] = {"method": self.method, "measure": self.measure, "k": self.k}
        for name in ("mu", "tau", "theta_new"):
            out[name] = self.estimate(name, ci_prob=ci_prob)
        out["p_mu_below_0"] = self.p_mu_below_0
        out["model"] = self.model
        out["ci_prob"] = self.ci_prob if ci_prob is None else check_ci_prob(ci_prob)
        out["p_theta_new_below_0"] = self.p_theta_new_below_0
        tau = repr(self.prior_tau) if self.prior_tau is not None else "none (tau = 0)"
        out["priors"] = {"mu": repr(self.prior_mu), "tau": tau}
        out["prior_note"] = self.prior_note
        out["studies"] = [
            {
                "study": s,
                "yi": float(y),
                "sei": float(se),
                "theta": self.estimate(f"theta[{s}]", ci_prob=ci_prob),
            }
            for s, y, se in zip(self.study, self.yi, self.sei, strict=True)
        ]
        out["diagnostics"] = self.diagnostics.to_dict() if self.diagnostics is not None else None
        if self.bias is not None:
            out["bias"] = self.bias_text()
        out["seed"] = self.seed
        out["data_hash"] = self.data_hash
        return out
