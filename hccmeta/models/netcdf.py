"""DataTrees in netCDF files: the layout shared by every fit's ``to_netcdf`` and the
report's posterior files (:mod:`hccmeta.report.netcdf`).

With ``h5py`` installed a tree is written as netCDF4 (HDF5 groups, read it back with
``xarray.open_datatree(path)``). Without it -- h5netcdf cannot write HDF5 without
h5py -- the groups are flattened into one classic netCDF file (written by SciPy):
variable ``posterior.mu`` of group ``/sorafenib/posterior`` is stored as
``sorafenib.posterior.mu`` with its dimensions prefixed the same way;
:func:`read_tree` turns either file back into the DataTree.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = ["FLAT_LAYOUT", "flatten_tree", "has_h5py", "read_tree", "write_tree"]

#: Value of the ``hccmeta_layout`` attribute of a flattened (classic netCDF) file.
FLAT_LAYOUT = "flattened DataTree: <group path with '.'>.<variable>"
_SEP = "."


def has_h5py() -> bool:
    """True when h5py is installed (netCDF4 with HDF5 groups can be written)."""
    return importlib.util.find_spec("h5py") is not None


def flatten_tree(tree: xr.DataTree) -> xr.Dataset:
    """The groups of ``tree`` as one Dataset in the flat layout (:data:`FLAT_LAYOUT`)."""
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


def write_tree(tree: xr.DataTree, path: str | os.PathLike[str]) -> str:
    """Write ``tree`` to ``path``: netCDF4 with h5py, else the flat classic layout;
    returns the format written (``"netcdf4"`` or ``"netcdf3-flat"``)."""
    if has_h5py():
        tree.to_netcdf(os.fspath(path), engine="h5netcdf")
        return "netcdf4"
    flatten_tree(tree).to_netcdf(os.fspath(path), engine="scipy", format="NETCDF3_64BIT")
    return "netcdf3-flat"


def read_tree(path: str | os.PathLike[str]) -> xr.DataTree:
    """Read a file of :func:`write_tree` (either layout) back into a DataTree."""
    import xarray as xr

    with xr.open_dataset(os.fspath(path), engine="scipy" if not has_h5py() else None) as raw:
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
