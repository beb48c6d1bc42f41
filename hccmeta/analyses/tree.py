"""The fits of an analysis result as one ``xarray.DataTree``.

An analysis may have several fits (one per regimen of a per-regimen analysis); its tree
holds them with a child per role (or the single fit at the root), with the attributes
of every fit (priors, data hash, versions, seed, diagnostics) and the analysis name,
the study-data hash and the seed at the root. Creation timestamps that ArviZ puts on
its groups are dropped, so the same seed gives the same file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = ["result_tree"]

_DROP_ATTRS = frozenset({"created_at"})


def _fit_tree(fit: Any) -> xr.DataTree:
    tree = getattr(fit, "datatree", None)
    if tree is None:
        tree = fit.tree
    return tree


def result_tree(result: Any) -> xr.DataTree:
    """The fits of a result as one DataTree (a child per role when there are several)."""
    import xarray as xr

    from hccmeta.analyses.run import JOINT_FIT, SINGLE_FIT  # run imports this module

    fits = dict(result.fits)
    single = list(fits) in ([SINGLE_FIT], [JOINT_FIT])
    if single:
        tree = _fit_tree(next(iter(fits.values()))).copy()
    else:
        tree = xr.DataTree()
        for role, fit in fits.items():
            tree[role] = _fit_tree(fit).copy()
    for node in tree.subtree:
        node.attrs = {k: v for k, v in node.attrs.items() if k not in _DROP_ATTRS}
    tree.attrs.update(
        {
            "analysis": result.name,
            "study_data_hash": result.data_hash,
            "seed": int(result.seed),
            "roles": "" if single else ",".join(fits),
        }
    )
    return tree
