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

from hccmeta.models.netcdf_flat import FLAT_LAYOUT, SEP, write_datatree

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from hccmeta.analyses.run import AnalysisResult

__all__ = ["FLAT_LAYOUT", "posterior_tree", "read_posteriors", "write_posteriors", "write_tree"]

_SEP = SEP


def posterior_tree(result: AnalysisResult) -> xr.DataTree:
    """The fits of a result as one DataTree (a child per role when there are several);
    see :func:`hccmeta.analyses.tree.result_tree`."""
    from hccmeta.analyses.tree import result_tree

    return result_tree(result)


def _has_h5py() -> bool:
    return importlib.util.find_spec("h5py") is not None


def write_posteriors(result: AnalysisResult, path: str | os.PathLike[str]) -> str:
    """Write the fits of ``result`` to ``path``; returns the format written
    (``"netcdf4"`` or ``"netcdf3-flat"``)."""
    return write_tree(posterior_tree(result), path)


def write_tree(tree: xr.DataTree, path: str | os.PathLike[str]) -> str:
    """Write a tree of :func:`posterior_tree` to ``path``; returns the format written."""
    return write_datatree(tree, path, h5py=_has_h5py())


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
