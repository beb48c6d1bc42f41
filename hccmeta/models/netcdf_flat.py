"""Writing an ``xarray.DataTree`` without h5py: one classic netCDF file.

h5netcdf cannot write HDF5 groups without h5py; :func:`flatten_tree` then turns the
groups of a tree into one Dataset whose variable ``posterior.mu`` of group
``/sorafenib/posterior`` is stored as ``sorafenib.posterior.mu`` (dimensions prefixed
the same way), written by SciPy. :func:`hccmeta.report.netcdf.read_posteriors` reads
it back as the DataTree. Used by :meth:`hccmeta.models.result.PoolResult.to_netcdf`,
:meth:`hccmeta.analyses.run.AnalysisResult.to_netcdf` and the report.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = ["FLAT_LAYOUT", "SEP", "flatten_tree", "has_h5py", "write_datatree"]

#: Value of the ``hccmeta_layout`` attribute of a flattened (classic netCDF) file.
FLAT_LAYOUT = "flattened DataTree: <group path with '.'>.<variable>"
#: Separator of group path and variable name in a flattened file.
SEP = "."
_SEP = SEP


def has_h5py() -> bool:
    """Whether h5py is installed (then DataTrees are written as netCDF4 with groups)."""
    return importlib.util.find_spec("h5py") is not None


def write_datatree(tree: xr.DataTree, path: str | os.PathLike[str], *, h5py: bool) -> str:
    """Write ``tree``: netCDF4 with HDF5 groups if ``h5py``, else flattened into one
    classic netCDF file. Returns ``"netcdf4"`` or ``"netcdf3-flat"``."""
    if h5py:
        tree.to_netcdf(os.fspath(path), engine="h5netcdf")
        return "netcdf4"
    flatten_tree(tree).to_netcdf(os.fspath(path), engine="scipy", format="NETCDF3_64BIT")
    return "netcdf3-flat"


def flatten_tree(tree: xr.DataTree) -> xr.Dataset:
    """The groups of ``tree`` as one Dataset (the flattened layout above)."""
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
