"""A small result base shared by the hierarchical models (prognostic, binomial, survival).

Each model returns a :class:`PosteriorResult`: the fit as an ``xarray.DataTree``
(``posterior``, ``observed_data``, ``sample_stats``; attributes: model, priors, data hash,
versions, seed, sampler settings, diagnostics), its :class:`~hccmeta.models.mcmc.Diagnostics`
and the list of its estimands, each on a named scale. :meth:`PosteriorResult.summary`
turns the estimands into one tidy table whose column names never depend on the interval
level.

Nothing here imports PyMC; the helpers work on plain xarray objects.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hccmeta.errors import InputError
from hccmeta.models.mcmc import Diagnostics, SamplerSettings

__all__ = [
    "SUMMARY_COLUMNS",
    "Estimand",
    "PosteriorResult",
    "data_hash",
    "make_tree",
    "versions",
]

#: The statistics columns of every summary table (central interval; names never depend
#: on its level).
SUMMARY_COLUMNS = ("mean", "median", "sd", "ci_lower", "ci_upper")

_SAMPLE_DIMS = ("chain", "draw")


@dataclass(frozen=True)
class Estimand:
    """A posterior variable reported by :meth:`PosteriorResult.summary`.

    Attributes
    ----------
    var : str
        Name of the variable in the ``posterior`` group.
    scale : str
        The scale it is on: ``"log"`` (log HR, log OR, log median), ``"ratio"`` (HR, OR),
        ``"logit"``, ``"probability"``, ``"months"``, ``"sd"`` (a heterogeneity), ...
    description : str
        One line saying what it is.
    """

    var: str
    scale: str
    description: str


def versions() -> dict[str, str]:
    """Versions of hccmeta and of the libraries a fit depends on."""
    out: dict[str, str] = {}
    for name in ("hccmeta", "pymc", "pytensor", "nutpie", "arviz", "numpy", "xarray"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - editable installs
            out[name] = "unknown"
    return out


def data_hash(*frames: pd.DataFrame | Mapping[str, Any]) -> str:
    """SHA-256 of the model inputs (DataFrames as CSV, mappings as sorted JSON)."""
    digest = hashlib.sha256()
    for frame in frames:
        if isinstance(frame, pd.DataFrame):
            digest.update(frame.to_csv(index=False, float_format="%.17g").encode())
        else:
            digest.update(json.dumps(frame, sort_keys=True, default=str).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def make_tree(
    trace: xr.DataTree,
    *,
    derived: Mapping[str, xr.DataArray],
    observed: xr.Dataset,
    attrs: Mapping[str, Any],
    drop: Iterable[str] = (),
    extra_groups: Mapping[str, xr.Dataset] | None = None,
) -> xr.DataTree:
    """The result's DataTree: the sampled posterior plus derived quantities, the
    observed data and the sampling statistics, with JSON-safe root attributes.

    Parameters
    ----------
    trace : xarray.DataTree
        What :func:`hccmeta.models.mcmc.sample` returned.
    derived : mapping of str to DataArray
        Quantities computed from the draws (estimands on their natural scale,
        predictive draws); added to ``posterior``.
    observed : xarray.Dataset
        The data the likelihood saw (``observed_data``).
    attrs : mapping
        Root attributes; values that are not str/int/float are stored as JSON strings
        (netCDF attributes must be plain).
    drop : iterable of str
        Posterior variables to drop (internal, e.g. non-centred z's kept only for
        diagnostics).
    extra_groups : mapping of str to Dataset, optional
        Further groups by name (e.g. ``log_likelihood`` and ``log_prior`` at the draws).
    """
    posterior = trace["posterior"].to_dataset()
    posterior = posterior.drop_vars([v for v in drop if v in posterior.data_vars])
    posterior = posterior.assign(dict(derived))
    groups: dict[str, xr.Dataset] = {"posterior": posterior, "observed_data": observed}
    if "sample_stats" in trace.children:
        stats = trace["sample_stats"].to_dataset()
        # object-typed columns (nutpie's divergence messages) do not serialise to netCDF
        keep = [v for v in stats.data_vars if stats[v].dtype != object]
        groups["sample_stats"] = stats[keep]
    groups.update(extra_groups or {})
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {key: _plain(value) for key, value in attrs.items()}
    return tree


def _plain(value: Any) -> str | int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str | int | float):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class PosteriorResult:
    """The result of one hierarchical-model fit.

    Attributes
    ----------
    model : str
        Name of the model (e.g. ``"prognostic"``).
    tree : xarray.DataTree
        ``posterior`` (parameters and derived estimands), ``observed_data``,
        ``sample_stats`` (the survival synthesis also ``log_likelihood`` and
        ``log_prior`` at the draws); root attributes ``model``, ``priors``, ``data_hash``,
        ``versions``, ``seed``, ``settings``, ``diagnostics`` and model-specific ones.
    diagnostics : Diagnostics
        R-hat, ESS, divergences, retries; ``diagnostics.ok`` is False for a fit that
        failed its checks even after the retries (never silently reported).
    priors : dict of str to str
        Each prior of the model, printed (also in ``tree.attrs["priors"]``).
    estimands : tuple of Estimand
        The variables :meth:`summary` reports, in order.
    inputs : dict of str to DataFrame
        The model's inputs after validation (what each row contributed, with the
        covariates or term types made explicit).
    """

    model: str
    tree: xr.DataTree
    diagnostics: Diagnostics
    priors: dict[str, str]
    estimands: tuple[Estimand, ...]
    inputs: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws (``chain``, ``draw``, model dimensions)."""
        return self.tree["posterior"].to_dataset()

    @property
    def ok(self) -> bool:
        """Whether the fit passed its diagnostics."""
        return self.diagnostics.ok

    def draws(self, var: str) -> np.ndarray:
        """The draws of ``var`` with chains and draws flattened into the first axis."""
        da = self._var(var)
        other = [str(d) for d in da.dims if d not in _SAMPLE_DIMS]
        return np.asarray(da.transpose(*_SAMPLE_DIMS, *other).to_numpy()).reshape(
            (-1, *[da.sizes[d] for d in other])
        )

    def _var(self, var: str) -> xr.DataArray:
        post = self.posterior
        if var not in post.data_vars:
            raise InputError(
                f"{self.model}: no posterior variable {var!r}; "
                f"known: {', '.join(map(str, post.data_vars))}"
            )
        return post[var]

    def summary(
        self, *, ci_prob: float = 0.95, var_names: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The estimands as one tidy table.

        Parameters
        ----------
        ci_prob : float, keyword-only
            Probability of the central (equal-tailed) interval; 0.95 by default.
        var_names : sequence of str, keyword-only
            Report only these estimands (default: all of :attr:`estimands`).

        Returns
        -------
        pandas.DataFrame
            One row per estimand and coordinate, indexed by a label such as
            ``"mu[child_pugh_b]"``; columns ``estimand``, ``scale``, one column per
            model dimension the estimand has (``factor``, ``study``, ``arm``, ``time``),
            then ``mean, median, sd, ci_lower, ci_upper``. Cells a model leaves
            undefined (a factor a study did not report) are left out.
        """
        if not 0.0 < ci_prob < 1.0:
            raise InputError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
        chosen = list(self.estimands)
        if var_names is not None:
            known = {e.var: e for e in self.estimands}
            unknown = [v for v in var_names if v not in known]
            if unknown:
                raise InputError(
                    f"{self.model}: unknown estimand(s) {unknown}; known: {list(known)}"
                )
            chosen = [known[v] for v in var_names]
        lo_q, hi_q = (1.0 - ci_prob) / 2.0, (1.0 + ci_prob) / 2.0
        rows: list[dict[str, Any]] = []
        labels: list[str] = []
        dim_order: list[str] = []
        for est in chosen:
            da = self._var(est.var)
            other = [str(d) for d in da.dims if d not in _SAMPLE_DIMS]
            for d in other:
                if d not in dim_order:
                    dim_order.append(d)
            flat = self.draws(est.var).reshape(-1, int(np.prod([da.sizes[d] for d in other])))
            coords = [da[d].to_numpy() for d in other]
            for j, index in enumerate(np.ndindex(*[da.sizes[d] for d in other])):
                x = flat[:, j]
                if np.all(np.isnan(x)):
                    continue
                x = x[~np.isnan(x)]
                values = [coords[k][i] for k, i in enumerate(index)]
                label = est.var + ("[" + ", ".join(_fmt(v) for v in values) + "]" if values else "")
                row: dict[str, Any] = {"estimand": est.var, "scale": est.scale}
                row.update({d: v for d, v in zip(other, values, strict=True)})
                row.update(
                    mean=float(np.mean(x)),
                    median=float(np.median(x)),
                    sd=float(np.std(x, ddof=1)) if x.size > 1 else math.nan,
                    ci_lower=float(np.quantile(x, lo_q)),
                    ci_upper=float(np.quantile(x, hi_q)),
                )
                rows.append(row)
                labels.append(label)
        columns = ["estimand", "scale", *dim_order, *SUMMARY_COLUMNS]
        table = pd.DataFrame(rows, columns=columns, index=pd.Index(labels, name="variable"))
        return table

    @property
    def datatree(self) -> xr.DataTree:
        """The fit as an ``xarray.DataTree`` (the same object as :attr:`tree`)."""
        return self.tree

    def prob_below(self, threshold: float, var: str) -> pd.Series:
        """Posterior probability that ``var`` lies below ``threshold``, per coordinate
        (e.g. ``prob_below(0.0, "mu")``: P(log HR < 0) for each factor)."""
        da = self._var(var)
        prob = (da < threshold).where(~np.isnan(da)).mean(dim=list(_SAMPLE_DIMS))
        if prob.ndim == 0:
            return pd.Series([float(prob)], index=[var], name=f"p_below_{threshold:g}")
        series = prob.to_series()
        series.name = f"p_below_{threshold:g}"
        return series

    def to_netcdf(self, path: str) -> None:
        """Write the DataTree (with its attributes) to a netCDF file."""
        self.tree.to_netcdf(path)


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def settings_attrs(settings: SamplerSettings, diagnostics: Diagnostics) -> dict[str, Any]:
    """The sampler settings of the final attempt and the diagnostics, as plain dicts."""
    used = diagnostics.settings if diagnostics.settings is not None else settings
    return {
        "settings": {
            "draws": used.draws,
            "tune": used.tune,
            "chains": used.chains,
            "target_accept": used.target_accept,
            "max_treedepth": used.max_treedepth,
        },
        "diagnostics": diagnostics.to_dict(),
    }
