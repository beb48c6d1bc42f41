"""The posteriors of an analysis as one netCDF file.

An analysis may have several fits (one per regimen of a per-regimen analysis); its file
holds them as one ``xarray.DataTree`` with a child per role (or the single fit at the
root), with the attributes of every fit (priors, data hash, versions, seed, diagnostics)
and the analysis name, the study-data hash and the seed at the root. Creation
timestamps that ArviZ puts on its groups are dropped, so the same seed gives the same
file.

The file layout (netCDF4 with h5py, else a flattened classic netCDF file) is that of
:mod:`hccmeta.models.netcdf`, which every fit's ``to_netcdf`` shares;
:func:`read_posteriors` turns either file back into the DataTree.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from hccmeta.models.netcdf import FLAT_LAYOUT, read_tree, write_tree

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from hccmeta.analyses.run import AnalysisResult

__all__ = ["FLAT_LAYOUT", "posterior_tree", "read_posteriors", "write_posteriors", "write_tree"]

_DROP_ATTRS = frozenset({"created_at"})


def _fit_tree(fit: Any) -> xr.DataTree:
    tree = getattr(fit, "datatree", None)
    if tree is None:
        tree = fit.tree
    return tree


def posterior_tree(result: AnalysisResult) -> xr.DataTree:
    """The fits of a result as one DataTree (a child per role when there are several);
    see :func:`hccmeta.analyses.tree.result_tree`."""
    from hccmeta.analyses.tree import result_tree

    return result_tree(result)


def write_posteriors(result: AnalysisResult, path: str | os.PathLike[str]) -> str:
    """Write the fits of ``result`` to ``path``; returns the format written
    (``"netcdf4"`` or ``"netcdf3-flat"``)."""
    return write_tree(posterior_tree(result), path)


def read_posteriors(path: str | os.PathLike[str]) -> xr.DataTree:
    """Read a file of :func:`write_posteriors` back into a DataTree
    (:func:`hccmeta.models.netcdf.read_tree`)."""
    return read_tree(path)
