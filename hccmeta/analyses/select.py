"""Selecting the derived effects an analysis takes, oriented the way its question asks.

A :class:`~hccmeta.analyses.registry.Selector` filters the effects table of
:func:`hccmeta.derive_effects`. Contrasts that match with exposed and reference swapped
are reversed (``yi -> -yi`` on the log scale). Where a study offers the same comparison
more than once (adjusted and univariate), the selector's ``prefer_analysis`` order picks
one; where the selected effects differ in endpoint, time origin, adjustment, criteria or
subgroup variable, the analysis must declare it (``mixes``).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

import numpy as np
import pandas as pd

from hccmeta.analyses.levels import combine_levels
from hccmeta.analyses.registry import MIXABLE, LevelMap, Selector
from hccmeta.errors import InputError
from hccmeta.scoped import Scoped

__all__ = [
    "AS_DERIVED",
    "REVERSED",
    "check_mixing",
    "criteria_mask",
    "select_effects",
    "selected_studies",
    "text_columns",
]

#: Columns swapped when a contrast is reversed.
_SWAP = [
    ("exposed", "reference"),
    ("exposed_arm", "reference_arm"),
    ("exposed_regimen", "reference_regimen"),
    ("exposed_level", "reference_level"),
    ("exposed_label", "reference_label"),
    ("n_exposed", "n_reference"),
    ("events_exposed", "events_reference"),
]

#: Values of the ``orientation`` column of selected effects.
AS_DERIVED = "as derived"
REVERSED = "reversed"

#: Measures whose contrasts change sign when exposed and reference are swapped.
_ANTISYMMETRIC = {"log_hr", "log_or", "log_rr", "rd", "log_ratio", "generic"}


#: The text columns of effects tables as NumPy object arrays (missing values as None),
#: by id of the table, with a weak reference that tells a live table from a reused id;
#: kept within :func:`text_columns` blocks only. A selection combines a dozen column
#: criteria, and pandas' comparisons and membership tests on Arrow-backed text cost far
#: more than the comparisons themselves.
_Columns = dict[int, tuple["weakref.ref[pd.DataFrame]", dict[object, Any]]]
_TEXT: Scoped[_Columns | None] = Scoped(None)


def text_columns() -> AbstractContextManager[None]:
    """Within the block, the text columns of each effects table selected from are
    converted once, and its levels recombined once per mapping (the tables must not be
    changed in place within the block); nested blocks share the outer block's."""
    outer = _TEXT.get()
    return _TEXT.using(outer if outer is not None else {})


def _watch(df: pd.DataFrame, store: _Columns) -> weakref.ref[pd.DataFrame]:
    """A weak reference to ``df`` that drops its entry when the table is freed."""
    key = id(df)
    return weakref.ref(df, lambda _ref: store.pop(key, None))


def _kept(df: pd.DataFrame) -> dict[object, Any]:
    """What is kept for ``df`` within the :func:`text_columns` block (outside it, a
    dictionary of this call only)."""
    store = _TEXT.get()
    if store is None:
        return {}
    entry = store.get(id(df))
    if entry is None or entry[0]() is not df:
        entry = store[id(df)] = (_watch(df, store), {})
    return entry[1]


def _text(df: pd.DataFrame, col: str) -> np.ndarray | None:
    """Column ``col`` of ``df`` as an object array with None for missing values, or None
    if it is not a text column (its criteria then go through pandas)."""
    cols = _kept(df)
    if col not in cols:
        series = df[col]
        values = None
        if pd.api.types.is_string_dtype(series.dtype):
            raw = series.to_numpy(dtype=object)
            values = np.array([v if isinstance(v, str) else None for v in raw], dtype=object)
            if not all(isinstance(v, str) or pd.isna(v) for v in raw):
                values = None
        cols[col] = values
    return cast("np.ndarray | None", cols[col])


def _combined(effects: pd.DataFrame, maps: list[LevelMap]) -> pd.DataFrame:
    """:func:`~hccmeta.analyses.levels.combine_levels`, once per table and mappings
    within the :func:`text_columns` block."""
    kept = _kept(effects)
    key = ("combine", tuple(m.model_dump_json() for m in maps))
    if key not in kept:
        kept[key] = combine_levels(effects, maps)
    return cast(pd.DataFrame, kept[key])


def _isin(df: pd.DataFrame, col: str, values: Sequence[object] | None) -> np.ndarray:
    """Element-wise membership of column ``col`` in ``values`` as a NumPy mask (all True
    when ``values`` is None); as pandas' ``isin`` (a missing value matches only None)."""
    if values is None:
        return np.ones(len(df), dtype=bool)
    text = _text(df, col)
    wanted = list(values)
    if text is not None and all(v is None or isinstance(v, str) for v in wanted):
        allowed = set(wanted)
        return np.fromiter((v in allowed for v in text), dtype=bool, count=len(text))
    return np.array(df[col].isin(wanted), dtype=bool)  # writable: callers use &=


def _equals(df: pd.DataFrame, col: str, value: str) -> np.ndarray:
    """Element-wise ``df[col] == value`` as a NumPy mask (missing values never equal)."""
    text = _text(df, col)
    if text is not None:
        return np.fromiter((v == value for v in text), dtype=bool, count=len(text))
    return np.asarray(df[col] == value, dtype=bool)


def _reverse(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    for a, b in _SWAP:
        if a in out.columns and b in out.columns:
            out[a], out[b] = rows[b].to_numpy(), rows[a].to_numpy()
    out["yi"] = -rows["yi"]
    out["reversed"] = True
    out["orientation"] = REVERSED
    return out


def select_effects(effects: pd.DataFrame, sel: Selector) -> pd.DataFrame:
    """The effects (preferred derivations) matching ``sel``, one per study, oriented.

    Parameters
    ----------
    effects : DataFrame
        ``DerivedEffects.effects`` (all derivations; only ``primary`` rows are taken).
    sel : Selector
        The criteria.

    Returns
    -------
    DataFrame
        The matching rows, oriented the way the selector asks, with a boolean column
        ``reversed`` and a column ``orientation``: ``"as derived"`` (exposed, reference
        and the sign of ``yi`` as in the effects table) or ``"reversed"`` (exposed and
        reference swapped, ``yi`` negated on the log scale).

    Notes
    -----
    The criteria are combined as NumPy masks over the whole table and the rows are taken
    once at the end: the table has some 45 columns, and every intermediate row
    selection would copy all of them (this runs for every analysis and every
    sensitivity variant).
    """
    df, forward, backward = _masks(effects, sel)
    keep = _keep_one_per_study(df, np.concatenate([np.flatnonzero(forward),
                                                   np.flatnonzero(backward)]), sel)  # fmt: skip
    parts = [df[forward].assign(reversed=False, orientation=AS_DERIVED)]
    if backward.any():
        parts.append(_reverse(df[backward]))
    out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return (out if keep.all() else out[keep]).reset_index(drop=True)


def selected_studies(effects: pd.DataFrame, sel: Selector) -> list[str]:
    """The studies of :func:`select_effects` (same rows, same errors), without building
    the selected table."""
    df, forward, backward = _masks(effects, sel)
    index = np.concatenate([np.flatnonzero(forward), np.flatnonzero(backward)])
    keep = _keep_one_per_study(df, index, sel)
    return [str(s) for s in df["study"].to_numpy(dtype=object)[index[keep]]]


def _masks(effects: pd.DataFrame, sel: Selector) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The table selected from (with recombined levels where ``sel`` asks for them) and
    the masks of its rows matching as derived (``forward``) and with exposed and
    reference swapped (``backward``; never both)."""
    combining = [m for m in sel.levels if m.combine]
    df = _combined(effects, combining) if combining else effects
    base = criteria_mask(df, sel) & np.asarray(df["primary"].astype(bool), dtype=bool)

    def side(exp: str, ref: str) -> np.ndarray:
        m = _isin(df, f"{exp}_regimen", sel.exposed_regimen)
        m &= _isin(df, f"{exp}_level", sel.exposed_level)
        m &= _isin(df, f"{exp}_arm", sel.exposed_arm)
        if sel.kind == "contrast":
            m &= _isin(df, f"{ref}_regimen", sel.reference_regimen)
            m &= _isin(df, f"{ref}_level", sel.reference_level)
        return m

    forward = base & side("exposed", "reference")
    if sel.kind == "contrast" and sel.measure in _ANTISYMMETRIC:
        backward = base & side("reference", "exposed") & ~forward
    else:
        backward = np.zeros(len(df), dtype=bool)
    return df, forward, backward


def criteria_mask(effects: pd.DataFrame, sel: Selector) -> np.ndarray:
    """The rows of ``effects`` that pass the criteria of ``sel`` no derivation option
    changes (kind, measure, endpoint, event, grade, criteria, time origin, adjustment,
    design, setting, study, landmark time, record, subgroup variable), whichever
    derivation is preferred and whichever way round the groups are: every row a
    selection can take is among them."""
    mask = _equals(effects, "kind", sel.kind) & _equals(effects, "measure", sel.measure)
    for col in ("endpoint", "event", "grade", "criteria", "time_origin", "analysis", "design",
                "setting"):  # fmt: skip
        mask &= _isin(effects, col, getattr(sel, col))
    mask &= _isin(effects, "study", sel.studies)
    if sel.time is not None:
        mask &= _isin(effects, "time", sel.time)
    if sel.records is not None:
        mask &= _isin(effects, "record", sel.records)
    if sel.exclude_records is not None:
        mask &= ~_isin(effects, "record", sel.exclude_records)
    if sel.whole_arms:
        mask &= np.asarray(effects["subgroup_variable"].isna())
    mask &= _isin(effects, "subgroup_variable", sel.subgroup_variable)
    return mask


def _keep_one_per_study(df: pd.DataFrame, index: np.ndarray, sel: Selector) -> np.ndarray:
    """Which of the rows ``index`` of ``df`` (in that order) to keep: one effect per
    study (per landmark time for survival proportions), the first of the selector's
    ``prefer_analysis`` order; an InputError where a study still matches twice."""
    if len(index) == 0:
        return np.ones(0, dtype=bool)
    order: dict[str, int] = {str(a): i for i, a in enumerate(sel.prefer_analysis)}
    analysis = df["analysis"].to_numpy(dtype=object)[index]
    pref = [order.get(a, len(order)) if isinstance(a, str) else len(order) for a in analysis]
    studies = df["study"].to_numpy(dtype=object)[index]
    times = df["time"].astype(float).fillna(-1.0).to_numpy(dtype=float)[index]
    key = [(str(s), float(t)) for s, t in zip(studies, times, strict=True)]
    best: dict[tuple[str, float], int] = {}
    for k, p in zip(key, pref, strict=True):
        best[k] = min(best.get(k, p), p)
    keep = np.array([p == best[k] for k, p in zip(key, pref, strict=True)], dtype=bool)
    kept = [k for k, kp in zip(key, keep, strict=True) if kp]
    if len(set(kept)) < len(kept):
        effect = df["effect"].to_numpy(dtype=object)[index][keep]
        count: dict[tuple[str, float], int] = {}
        for k in kept:
            count[k] = count.get(k, 0) + 1
        by_study: dict[str, list[str]] = {}
        for k, e in zip(kept, effect, strict=True):
            if count[k] > 1:
                by_study.setdefault(k[0], []).append(str(e))
        listed = "; ".join(f"{s}: {', '.join(by_study[s])}" for s in sorted(by_study))
        raise InputError(
            "the selection matches more than one effect of a study (make it narrower): " + listed
        )
    return keep


def check_mixing(rows: pd.DataFrame, mixes: Sequence[str], analysis: str) -> None:
    """Raise if the rows differ in a property the analysis does not declare it mixes.

    ``analysis`` (univariate, adjusted, descriptive) is compared among effects of
    survival records only: counts are counts whatever their record calls them (as
    :func:`hccmeta.effects.table.mark_primary` treats them).
    """
    for prop in MIXABLE:
        if prop in mixes or prop not in rows.columns:
            continue
        col = rows[prop]
        if prop == "analysis" and "type" in rows.columns:
            col = col[rows["type"] == "survival"]
        values = sorted({str(v) for v in col.dropna().unique()})
        if len(values) > 1:
            raise InputError(
                f"analysis {analysis!r} would pool effects that differ in {prop} "
                f"({', '.join(values)}) but does not declare it under 'mixes'"
            )
