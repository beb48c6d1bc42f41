"""nutpie's draws (Arrow record batches, one per chain) as an ArviZ DataTree, fast.

nutpie 0.16 converts a finished run with ``nutpie.sample._arrow_to_arviz``: every
column of every chain is converted through pyarrow twice (warm-up and kept draws, the
warm-up slice empty when warm-up is not saved), and :func:`arviz_base.from_dict` builds
one DataArray per variable and aligns them into a Dataset. That took 0.13 s per run
here, as long as sampling a small random-effects model (0.13 s of 0.35 s; 146 runs in
a report). :func:`arrow_to_datatree` builds the same DataTree -- the same groups,
variables, dtypes, dimensions, coordinates and attributes (``created_at`` is the time
of the call) -- from NumPy arrays in one Dataset per group; where a run holds anything
it does not handle (saved warm-up, kept unconstrained draws), it returns None and nutpie's own
conversion is used. :mod:`hccmeta.models.mcmc` installs it with its other nutpie
wrappers; ``tests/test_pool_mcmc.py`` checks it against nutpie's conversion.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["arrow_to_datatree"]


_Column = tuple[np.ndarray, Any, list[int], list[str], np.ndarray | None]


def _column(batch: Any, name: str) -> _Column:
    """One chain's values of column ``name`` (as nutpie reads them: rows first, missing
    rows left out), their dtype, item shape and dims, and the mask of missing rows (None
    if there are none)."""
    import pyarrow  # type: ignore[import-untyped]

    col = batch.column(name)
    meta = col.field.metadata
    dims = meta.get(b"dims", b"")
    item_dims = dims.decode("utf-8").split(",") if dims else []
    shape = meta.get(b"shape", b"")
    item_shape = [int(s) for s in shape.decode("utf-8").split(",")] if shape else []
    arr = pyarrow.array(col)
    missing = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
    if hasattr(arr, "flatten"):
        arr = arr.flatten()
    dtype = arr.type.to_pandas_dtype()
    values = arr.to_numpy(zero_copy_only=False)
    if missing is not None and values.shape[0] == batch.num_rows:
        values = values[~missing]
    rows = batch.num_rows if missing is None else int((~missing).sum())
    return values.reshape((rows, *item_shape)), dtype, item_shape, item_dims, missing


def _group(
    batches: Sequence[Any], skip: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Every column of the chains' batches as an array (chain, draw, ...), with dims, as
    nutpie's ``_add_arrow_data`` fills them: missing values NaN (floats), None (text) or
    0 (the rest)."""
    n_chains = len(batches)
    n_draws = max(b.num_rows for b in batches)
    data: dict[str, np.ndarray] = {}
    dims: dict[str, list[str]] = {}
    for name in batches[0].column_names:
        if name in skip:
            continue
        out: np.ndarray | None = None
        for chain, batch in enumerate(batches):
            values, dtype, item_shape, item_dims, missing = _column(batch, name)
            if out is None:
                shape = (n_chains, n_draws, *item_shape)
                if dtype in (np.float64, np.float32):
                    out = np.full(shape, np.nan, dtype=dtype)
                elif dtype == np.dtype("O"):
                    out = np.full(shape, None, dtype=dtype)
                else:
                    out = np.zeros(shape, dtype=dtype)
                dims[name] = item_dims
            if missing is None:
                out[chain, : batch.num_rows] = values
            else:
                out[chain, : batch.num_rows][~missing] = values
        assert out is not None
        data[name] = out
    return data, dims


def _dataset(
    data: Mapping[str, np.ndarray],
    dims: Mapping[str, list[str]],
    coords: Mapping[str, Any],
    attrs: Mapping[str, Any] | None,
) -> Any:
    """As :func:`arviz_base.dict_to_dataset` with sample dims (chain, draw), index
    origin 0 and no event-dim skipping: a dim without coordinates gets 0, 1, ...; a
    dim without a name is ``<variable>_dim_<i>``."""
    import arviz_base
    import xarray as xr

    variables: dict[str, tuple[list[str], np.ndarray]] = {}
    index: dict[str, Any] = {}
    for name, values in data.items():
        own = [d for d in dims.get(name, []) if d not in ("chain", "draw")]
        var_dims = ["chain", "draw", *own]
        if len(var_dims) > values.ndim:
            return None
        missing = 0
        while len(var_dims) < values.ndim:
            var_dims.append(f"{name}_dim_{missing}")
            missing += 1
        for dim, length in zip(var_dims, values.shape, strict=True):
            if dim in index:
                if len(index[dim]) != length:
                    return None
                continue
            index[dim] = coords[dim] if dim in coords else np.arange(length)
        variables[name] = (var_dims, values)
    if "draw" in index and "chain" in index and len(index["chain"]) > len(index["draw"]):
        return None  # ArviZ would warn: left to it
    full_attrs = {
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "creation_library": "ArviZ",
        "creation_library_version": arviz_base.__version__,
        "creation_library_language": "Python",
        "sample_dims": ["chain", "draw"],
        **(attrs or {}),
    }
    return xr.Dataset(data_vars=variables, coords=index, attrs=full_attrs)


def arrow_to_datatree(
    draw_batches: Sequence[Any],
    stat_batches: Sequence[Any],
    *,
    skip_vars: Sequence[str] | None = None,
    reparameterized_names: Sequence[str] | None = None,
    keep_unconstrained_draw: bool = False,
    coords: Mapping[str, Any] | None = None,
    save_warmup: bool | None = None,
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> Any:
    """The DataTree nutpie's ``_arrow_to_arviz`` builds from the same arguments (groups
    ``posterior`` and ``sample_stats``), or None where this does not apply (see the
    module docstring)."""
    import xarray as xr

    if kwargs or keep_unconstrained_draw or save_warmup:
        return None
    if len(draw_batches) != len(stat_batches) or not draw_batches:
        return None
    # the warm-up rows (nutpie returns them even when it does not keep them) go
    draws, stats = [], []
    for draw, stat in zip(draw_batches, stat_batches, strict=True):
        if draw.num_rows != stat.num_rows:
            return None
        tune = int(stat.column("tuning").to_numpy().sum())
        draws.append(draw.slice(tune, draw.num_rows - tune))
        stats.append(stat.slice(tune, stat.num_rows - tune))
    # reparameterised variables' unconstrained draws are dropped unless kept; the
    # statistics ``chain`` and ``draw`` give way to the coordinates of those names
    got = _group(draws, list(reparameterized_names or ()))
    stat_data = _group(stats, [*(skip_vars or ()), "chain", "draw"])
    coords = dict(coords or {})
    attrs = dict(attrs or {})
    dims = {**got[1], **stat_data[1]}
    posterior = _dataset(got[0], dims, coords, attrs.get("posterior"))
    sample_stats = _dataset(stat_data[0], dims, coords, attrs.get("sample_stats"))
    if posterior is None or sample_stats is None:
        return None
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": sample_stats})
