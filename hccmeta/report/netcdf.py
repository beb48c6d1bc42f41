"""The posteriors of an analysis as one netCDF file.

An analysis may have several fits (one per regimen of a per-regimen analysis); its file
holds them as one ``xarray.DataTree`` with a child per role (or the single fit at the
root), with the attributes of every fit (priors, data hash, versions, seed, diagnostics)
and the analysis name, the study-data hash and the seed at the root. Creation
timestamps that ArviZ puts on its groups are dropped, so the same seed gives the same
file.

With ``h5py`` installed the tree is written as netCDF4 (HDF5 groups, read it back with
``xarray.open_datatree(path)``). Without it -- h5netcdf cannot write HDF5 without
h5py -- the groups are flattened into one classic netCDF file (written by SciPy):
variable ``posterior.mu`` of group ``/sorafenib/posterior`` is stored as
``sorafenib.posterior.mu`` with its dimensions prefixed the same way;
:func:`read_posteriors` turns either file back into the DataTree.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from hccmeta.analyses.run import AnalysisResult

__all__ = ["FLAT_LAYOUT", "posterior_tree", "read_posteriors", "write_posteriors", "write_tree"]

#: Value of the ``hccmeta_layout`` attribute of a flattened (classic netCDF) file.
FLAT_LAYOUT = "flattened DataTree: <group path with '.'>.<variable>"
_SEP = "."
_DROP_ATTRS = frozenset({"created_at"})


def _fit_tree(fit: Any) -> xr.DataTree:
    tree = getattr(fit, "datatree", None)
    if tree is None:
        tree = fit.tree
    return tree


def posterior_tree(result: AnalysisResult) -> xr.DataTree:
    """The fits of a result as one DataTree (a child per role when there are several)."""
    import xarray as xr

    fits = dict(result.fits)
    if list(fits) == [""]:
        tree = _fit_tree(fits[""]).copy()
    else:
        tree = xr.DataTree()
        for role, fit in fits.items():
            tree[role or "fit"] = _fit_tree(fit).copy()
    for node in tree.subtree:
        node.attrs = {k: v for k, v in node.attrs.items() if k not in _DROP_ATTRS}
    tree.attrs.update(
        {
            "analysis": result.name,
            "study_data_hash": result.data_hash,
            "seed": int(result.seed),
            "roles": ",".join(r or "fit" for r in fits) if list(fits) != [""] else "",
        }
    )
    return tree


def _has_h5py() -> bool:
    return importlib.util.find_spec("h5py") is not None


def _flatten(tree: xr.DataTree) -> xr.Dataset:
    import xarray as xr

    variables: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    for node in tree.subtree:
        path = node.path.strip("/")
        prefix = path.replace("/", _SEP)
        for key, value in node.attrs.items():
            attrs[f"{prefix}{_SEP}{key}" if prefix else str(key)] = _attr(value)
        if not prefix:
            continue
        ds = node.to_dataset(inherit=False)
        rename = {str(d): f"{prefix}{_SEP}{d}" for d in ds.dims}
        for name, var in ds.variables.items():
            values = np.asarray(var.values)
            if values.dtype == np.uint64 or values.dtype == np.int64:
                values = (
                    values.astype(np.int32) if np.abs(values).max(initial=0) < 2**31 else values
                )
            if values.dtype.kind == "U":
                values = values.astype(object)
            variables[f"{prefix}{_SEP}{name}"] = xr.Variable(
                [rename[str(d)] for d in var.dims],
                values,
                attrs={k: _attr(v) for k, v in var.attrs.items()},
            )
    out = xr.Dataset(variables, attrs=attrs)
    out.attrs["hccmeta_layout"] = FLAT_LAYOUT
    return out


def _attr(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, list | tuple | dict):
        import json

        return json.dumps(value, sort_keys=True, default=str)
    return value


def write_posteriors(result: AnalysisResult, path: str | os.PathLike[str]) -> str:
    """Write the fits of ``result`` to ``path``; returns the format written
    (``"netcdf4"`` or ``"netcdf3-flat"``)."""
    return write_tree(posterior_tree(result), path)


def write_tree(tree: xr.DataTree, path: str | os.PathLike[str]) -> str:
    """Write a tree of :func:`posterior_tree` to ``path``; returns the format written."""
    if _has_h5py():
        tree.to_netcdf(os.fspath(path), engine="h5netcdf")
        return "netcdf4"
    _flatten(tree).to_netcdf(os.fspath(path), engine="scipy", format="NETCDF3_64BIT")
    return "netcdf3-flat"


def read_posteriors(path: str | os.PathLike[str]) -> xr.DataTree:
    """Read a file of :func:`write_posteriors` back into a DataTree."""
    import xarray as xr

    with xr.open_dataset(os.fspath(path), engine="scipy" if not _has_h5py() else None) as raw:
        ds = raw.load()
    if ds.attrs.get("hccmeta_layout") != FLAT_LAYOUT:
        return xr.open_datatree(os.fspath(path))
    groups: dict[str, dict[str, Any]] = {}
    group_attrs: dict[str, dict[str, Any]] = {}
    root_attrs: dict[str, Any] = {}
    owners: set[str] = set()
    for name in ds.variables:
        parts = str(name).split(_SEP)[:-1]
        owners |= {_SEP.join(parts[: i + 1]) for i in range(len(parts))}
    prefixes = sorted(owners, key=len, reverse=True)
    for key, value in ds.attrs.items():
        owner = next((p for p in prefixes if key.startswith(p + _SEP)), None)
        if owner is None:
            root_attrs[key] = value
        else:
            group_attrs.setdefault(owner, {})[key[len(owner) + 1 :]] = value
    for key, var in ds.variables.items():
        prefix, short = str(key).rsplit(_SEP, 1)
        dims = [str(d) for d in var.dims]
        dims = [d[len(prefix) + 1 :] if d.startswith(prefix + _SEP) else d for d in dims]
        groups.setdefault(prefix, {})[short] = xr.Variable(dims, var.values, attrs=var.attrs)
    root_attrs.pop("hccmeta_layout", None)
    datasets: Mapping[str, xr.Dataset] = {
        "/" + prefix.replace(_SEP, "/"): xr.Dataset(
            {k: v for k, v in vs.items() if k not in _coords(vs)},
            coords={k: vs[k] for k in _coords(vs)},
            attrs=group_attrs.get(prefix, {}),
        )
        for prefix, vs in groups.items()
    }
    for prefix, attrs in group_attrs.items():
        path = "/" + prefix.replace(_SEP, "/")
        if path not in datasets:
            datasets = {**datasets, path: xr.Dataset(attrs=attrs)}
    tree = xr.DataTree.from_dict(dict(datasets))
    tree.attrs = root_attrs
    return tree


def _coords(variables: Mapping[str, Any]) -> list[str]:
    return [k for k, v in variables.items() if v.dims == (k,)]
