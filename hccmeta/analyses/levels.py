"""Levels of the groups an analysis compares: declared mappings, recombination, the check.

Two contrasts are pooled only when they compare the same levels: the same exposed level
and the same reference level (for subgroups: variable and level; for whole arms: the
regimen). Where studies compare other levels for the same idea, the analysis declares
it (:class:`~hccmeta.analyses.registry.LevelMap`, with its reason):

- ``same_as``: a level taken to be the question's level as it is;
- ``combine``: sub-levels merged into the question's level. A model that reports each
  level against one base level (Terashima et al.: Child-Pugh B vs A(5) and A(6) vs A(5))
  gets a recombined contrast against the merged level (B vs A(5) + A(6) = class A),
  with the estimate and variance of :func:`hccmeta.effects.levels.log_hr_merged_reference`.

:func:`check_levels` refuses the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from hccmeta.effects.levels import log_hr_merged_reference
from hccmeta.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.registry import LevelMap

__all__ = ["check_levels", "combine_levels", "level_key"]

#: Method tag of a recombined contrast (see hccmeta.effects.levels).
RECOMBINED = "recombined_reference"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def combine_levels(effects: pd.DataFrame, maps: Sequence[LevelMap]) -> pd.DataFrame:
    """``effects`` with, for each ``combine`` mapping, the recombined contrasts.

    For each record whose preferred log HRs compare levels of ``map.variable`` with one
    base level b of ``map.combine`` (every other level of ``combine`` among them), each
    contrast of a level E outside ``combine`` against b gives a new row: E against the
    merged level ``map.level``, method ``recombined_reference``. Records that lack a
    contrast or a group size are left as they are.
    """
    new_rows: list[dict[str, Any]] = []
    for m in maps:
        if not m.combine:
            continue
        cand = effects[
            effects["primary"].astype(bool)
            & (effects["kind"] == "contrast")
            & (effects["measure"] == "log_hr")
            & (effects["subgroup_variable"] == m.variable)
            & effects["reference_level"].isin(m.combine)
        ]
        for (_, _, base), rows in cand.groupby(["study", "record", "reference_level"]):
            by_level = {str(r["exposed_level"]): r for _, r in rows.iterrows()}
            others = [lv for lv in m.combine if lv != base]
            if not all(lv in by_level for lv in others):
                continue
            parts = [by_level[lv] for lv in others]
            n_base = rows["n_reference"].iloc[0]
            sizes = [r["n_exposed"] for r in parts]
            if _missing(n_base) or any(_missing(n) for n in sizes):
                continue
            for level, row in by_level.items():
                if level in m.combine or _missing(row["n_exposed"]):
                    continue
                d = log_hr_merged_reference(
                    float(row["yi"]),
                    float(row["sei"]),
                    [float(r["yi"]) for r in parts],
                    [float(r["sei"]) for r in parts],
                    int(n_base),
                    [int(n) for n in sizes],
                    n_exposed=int(row["n_exposed"]),
                    covariance=m.covariance,
                )
                tags = set(filter(None, str(row["assumptions"] or "").split(";")))
                for r in parts:
                    tags |= set(filter(None, str(r["assumptions"] or "").split(";")))
                tags |= set(d.assumptions())
                ref_groups = "+".join([str(row["reference"]), *(str(r["exposed"]) for r in parts)])
                levels = " + ".join([str(base), *others])
                out: dict[str, Any] = {str(k): v for k, v in row.to_dict().items()}
                out.update(
                    effect=f"{row['record']}/{row['exposed']}~{ref_groups}/log_hr/{RECOMBINED}",
                    yi=float(d.yi),
                    sei=float(d.sei),
                    vi=float(d.sei) ** 2,
                    method=RECOMBINED,
                    assumptions=";".join(sorted(tags)),
                    reference=ref_groups,
                    reference_level=m.level,
                    reference_label=f"{m.level} ({levels}, recombined)",
                    n_reference=int(n_base) + sum(int(n) for n in sizes),
                    events_reference=None,
                    contrast_source="recombined",
                    p=math.nan,
                    p_relation=None,
                    p_test=None,
                    primary=True,
                )
                new_rows.append(out)
    if not new_rows:
        return effects
    extra = pd.DataFrame(new_rows, columns=effects.columns).astype(effects.dtypes.to_dict())
    return pd.concat([effects, extra], ignore_index=True)


def level_key(row: pd.Series | dict[str, Any], side: str) -> tuple[str, str]:
    """(variable, level) of one side ('exposed' or 'reference') of a contrast row; for a
    whole-arm contrast ('regimen', regimen)."""
    var = row["subgroup_variable"]
    if _missing(var):
        return "regimen", str(row[f"{side}_regimen"])
    parts = str(var).split("/")
    if bool(row.get("reversed", False)):
        parts = parts[::-1]
    v = parts[0] if side == "exposed" else parts[-1]
    return v, str(row[f"{side}_level"])


def check_levels(rows: pd.DataFrame, maps: Sequence[LevelMap], *, what: str = "") -> None:
    """Raise unless the contrasts of ``rows`` compare the same levels, up to ``maps``.

    Every side of every contrast is mapped to its canonical (variable, level): a level a
    mapping lists (``same_as``) to the mapping's level; then all exposed sides must agree
    and all reference sides must agree.
    """
    if rows.empty or "kind" not in rows.columns:
        return
    contrasts = rows[rows["kind"] == "contrast"]
    if len(contrasts) < 2:
        return
    canon: dict[tuple[str, str], tuple[str, str]] = {}
    for m in maps:
        for src in m.sources():
            canon[src] = (m.variable, m.level)
    for side in ("exposed", "reference"):
        found: dict[tuple[str, str], list[str]] = {}
        for _, row in contrasts.iterrows():
            key = level_key(row, side)
            found.setdefault(canon.get(key, key), []).append(str(row["study"]))
        if len(found) > 1:
            listed = "; ".join(
                f"{v}={lv} ({', '.join(dict.fromkeys(studies))})"
                for (v, lv), studies in found.items()
            )
            where = f"{what}: " if what else ""
            raise InputError(
                f"{where}would pool contrasts whose {side} levels differ ({listed}) "
                "without a declared level mapping: declare it under 'levels' (same_as or "
                "combine, with its reason) or select one level"
            )
