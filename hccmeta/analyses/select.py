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

import pandas as pd

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


def _isin(series: pd.Series, values: Sequence[object] | None) -> pd.Series:
    if values is None:
        return pd.Series(True, index=series.index)
    return series.isin(list(values))


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
    """
    df = effects[effects["primary"].astype(bool)]
    base = (df["kind"] == sel.kind) & (df["measure"] == sel.measure)
    for col in ("endpoint", "event", "grade", "criteria", "time_origin", "analysis", "study"):
        base &= _isin(df[col], getattr(sel, col if col != "study" else "studies"))
    if sel.time is not None:
        base &= df["time"].isin(sel.time)
    if sel.records is not None:
        base &= df["record"].isin(sel.records)
    if sel.exclude_records is not None:
        base &= ~df["record"].isin(sel.exclude_records)
    if sel.whole_arms:
        base &= df["subgroup_variable"].isna()
    base &= _isin(df["subgroup_variable"], sel.subgroup_variable)
    df = df[base]

    def side(d: pd.DataFrame, exp: str, ref: str) -> pd.Series:
        m = _isin(d[f"{exp}_regimen"], sel.exposed_regimen)
        m &= _isin(d[f"{exp}_level"], sel.exposed_level)
        m &= _isin(d[f"{exp}_arm"], sel.exposed_arm)
        if sel.kind == "contrast":
            m &= _isin(d[f"{ref}_regimen"], sel.reference_regimen)
            m &= _isin(d[f"{ref}_level"], sel.reference_level)
        return m

    forward = df[side(df, "exposed", "reference")].assign(reversed=False)
    parts = [forward]
    if sel.kind == "contrast" and sel.measure in _ANTISYMMETRIC:
        backward = df[side(df, "reference", "exposed") & ~df.index.isin(forward.index)]
        parts.append(_reverse(backward))
    out = pd.concat([p for p in parts if not p.empty] or [forward], ignore_index=True)
    return _one_per_study(out, sel)


def _one_per_study(rows: pd.DataFrame, sel: Selector) -> pd.DataFrame:
    """One effect per study (per landmark time for survival proportions)."""
    if rows.empty:
        return rows
    order = {a: i for i, a in enumerate(sel.prefer_analysis)}
    # pandas 3: astype(str) keeps NaN missing, so fill the landmark time first
    key = rows["study"].astype(str) + "|" + rows["time"].astype(float).fillna(-1.0).map(repr)
    rows = rows.assign(_pref=rows["analysis"].map(order).fillna(len(order)), _key=key)
    best = rows.groupby("_key")["_pref"].transform("min")
    rows = rows[rows["_pref"] == best]
    dup = rows[rows.duplicated("_key", keep=False)]
    if not dup.empty:
        listed = "; ".join(f"{s}: {', '.join(g['effect'])}" for s, g in dup.groupby("study"))
        raise InputError(
            "the selection matches more than one effect of a study (make it narrower): " + listed
        )
    return rows.drop(columns=["_pref", "_key"]).reset_index(drop=True)


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
