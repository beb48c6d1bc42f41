"""Selecting the derived effects an analysis takes, oriented the way its question asks.

A :class:`~hccmeta.analyses.registry.Selector` filters the effects table of
:func:`hccmeta.derive_effects`. Contrasts that match with exposed and reference swapped
are reversed (``yi -> -yi`` on the log scale). Where a study offers the same comparison
more than once (adjusted and univariate), the selector's ``prefer_analysis`` order picks
one; where the selected effects differ in endpoint, time origin, adjustment, criteria or
subgroup variable, the analysis must declare it (``mixes``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hccmeta.analyses.levels import combine_levels
from hccmeta.analyses.registry import MIXABLE, Selector
from hccmeta.errors import InputError

__all__ = ["check_mixing", "select_effects"]

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

#: Measures whose contrasts change sign when exposed and reference are swapped.
_ANTISYMMETRIC = {"log_hr", "log_or", "log_rr", "rd", "log_ratio", "generic"}


def _isin(series: pd.Series, values: Sequence[object] | None) -> np.ndarray:
    """Element-wise membership as a NumPy mask (all True when ``values`` is None)."""
    if values is None:
        return np.ones(len(series), dtype=bool)
    return np.array(series.isin(list(values)), dtype=bool)  # writable: callers use &=


def _reverse(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    for a, b in _SWAP:
        if a in out.columns and b in out.columns:
            out[a], out[b] = rows[b].to_numpy(), rows[a].to_numpy()
    out["yi"] = -rows["yi"]
    out["reversed"] = True
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
        The matching rows, with a boolean column ``reversed``.

    Notes
    -----
    The criteria are combined as NumPy masks over the whole table and the rows are taken
    once at the end: the table has some 45 columns, and every intermediate row
    selection would copy all of them (this runs for every analysis and every
    sensitivity variant).
    """
    combining = [m for m in sel.levels if m.combine]
    df = combine_levels(effects, combining) if combining else effects
    base = np.array(df["primary"].astype(bool), dtype=bool)  # a writable copy
    base &= np.asarray(df["kind"] == sel.kind) & np.asarray(df["measure"] == sel.measure)
    for col in ("endpoint", "event", "grade", "criteria", "time_origin", "analysis", "study"):
        base &= _isin(df[col], getattr(sel, col if col != "study" else "studies"))
    if sel.time is not None:
        base &= _isin(df["time"], sel.time)
    if sel.records is not None:
        base &= _isin(df["record"], sel.records)
    if sel.exclude_records is not None:
        base &= ~_isin(df["record"], sel.exclude_records)
    if sel.whole_arms:
        base &= np.asarray(df["subgroup_variable"].isna())
    base &= _isin(df["subgroup_variable"], sel.subgroup_variable)

    def side(exp: str, ref: str) -> np.ndarray:
        m = _isin(df[f"{exp}_regimen"], sel.exposed_regimen)
        m &= _isin(df[f"{exp}_level"], sel.exposed_level)
        m &= _isin(df[f"{exp}_arm"], sel.exposed_arm)
        if sel.kind == "contrast":
            m &= _isin(df[f"{ref}_regimen"], sel.reference_regimen)
            m &= _isin(df[f"{ref}_level"], sel.reference_level)
        return m

    forward = base & side("exposed", "reference")
    parts = [df[forward].assign(reversed=False)]
    if sel.kind == "contrast" and sel.measure in _ANTISYMMETRIC:
        backward = base & side("reference", "exposed") & ~forward
        if backward.any():
            parts.append(_reverse(df[backward]))
    out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return _one_per_study(out, sel)


def _one_per_study(rows: pd.DataFrame, sel: Selector) -> pd.DataFrame:
    """One effect per study (per landmark time for survival proportions)."""
    if rows.empty:
        return rows.reset_index(drop=True)
    order = {a: i for i, a in enumerate(sel.prefer_analysis)}
    pref = rows["analysis"].map(order).fillna(len(order)).to_numpy(float)
    # pandas 3: astype(str) keeps NaN missing, so fill the landmark time first
    key = (
        rows["study"].astype(str) + "|" + rows["time"].astype(float).fillna(-1.0).map(repr)
    ).to_numpy(object)
    best: dict[object, float] = {}
    for k, p in zip(key, pref.tolist(), strict=True):
        best[k] = min(best.get(k, p), p)
    keep = np.array([p == best[k] for k, p in zip(key, pref.tolist(), strict=True)], dtype=bool)
    kept_keys = key[keep]
    if len(set(kept_keys)) < len(kept_keys):
        dup = rows[keep][pd.Series(kept_keys).duplicated(keep=False).to_numpy()]
        listed = "; ".join(f"{s}: {', '.join(g['effect'])}" for s, g in dup.groupby("study"))
        raise InputError(
            "the selection matches more than one effect of a study (make it narrower): " + listed
        )
    return (rows if keep.all() else rows[keep]).reset_index(drop=True)


def check_mixing(rows: pd.DataFrame, mixes: Sequence[str], analysis: str) -> None:
    """Raise if the rows differ in a property the analysis does not declare it mixes."""
    for prop in MIXABLE:
        if prop in mixes or prop not in rows.columns:
            continue
        values = sorted({str(v) for v in rows[prop].dropna().unique()})
        if len(values) > 1:
            raise InputError(
                f"analysis {analysis!r} would pool effects that differ in {prop} "
                f"({', '.join(values)}) but does not declare it under 'mixes'"
            )
