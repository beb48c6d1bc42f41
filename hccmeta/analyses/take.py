"""Taking an analysis's effects: its selectors applied to the derived effects under a
variation (studies left out, a subset, the univariate preference), per role (regimen,
factor, statistic family) where it has several.

Shared by the runners (:mod:`hccmeta.analyses.run`, :mod:`hccmeta.analyses.mcmc_runners`)
and the sensitivity planners (:mod:`hccmeta.sensitivity.variants`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pandas as pd

from hccmeta.analyses.levels import check_levels
from hccmeta.analyses.registry import Alternative, Analysis, Selector
from hccmeta.analyses.select import select_effects, text_columns
from hccmeta.errors import InputError
from hccmeta.scoped import Scoped

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.run import Variation

__all__ = [
    "alternative_of",
    "selection_memo",
    "selectors",
    "subset_rows",
    "take",
    "take_roles",
]

#: Selections remembered inside :func:`selection_memo`: (id of the effects table, the
#: selectors, ``what``) -> (the table, held so that its id is not reused, the rows).
_Memo = dict[tuple[int, str, tuple[str, ...]], tuple[pd.DataFrame, pd.DataFrame]]
_MEMO: Scoped[_Memo | None] = Scoped(None)


@contextmanager
def selection_memo() -> Iterator[None]:
    """Within the block, :func:`take` selects from a given effects table with given
    selectors once and reuses the rows: the sensitivity analyses select the same
    effects for most of their variants (leaving a study out or changing a prior happens
    after the selection). The effects tables must not be changed in place within the
    block (derived effects never are: they are shared between fits). Nested blocks
    share the outer block's memo. The text columns of each table are converted once
    (:func:`hccmeta.analyses.select.text_columns`)."""
    outer = _MEMO.get()
    with _MEMO.using(outer if outer is not None else {}), text_columns():
        yield


def selectors(select: Selector | list[Selector] | None) -> list[Selector]:
    """A selector field of the registry (one, a list, or none) as a list."""
    if select is None:
        return []
    return select if isinstance(select, list) else [select]


def subset_rows(rows: pd.DataFrame, subset: str | None) -> pd.DataFrame:
    """The rows of a subset of studies (:data:`hccmeta.analyses.run.SUBSETS`; None: all)."""
    if subset is None or rows.empty:
        return rows
    if subset == "prospective_only":  # the vocabulary's flag of the design
        return rows[rows["prospective"].astype(bool)]
    if subset == "adjusted_only":
        return rows[rows["analysis"] == "adjusted"]
    if subset == "full_text_only":
        return rows[rows["source_kind"] == "full_text"]
    # same_endpoint_origin: keep the most common (endpoint, time origin); ties -> the
    # one with more patients, then alphabetical
    key = rows["endpoint"].fillna("").astype(str) + "|" + rows["time_origin"].fillna("").astype(str)
    counts = key.value_counts()
    top = counts[counts == counts.max()].index
    if len(top) > 1:
        n = (rows["n_exposed"].fillna(0) + rows["n_reference"].fillna(0)).groupby(key).sum()
        top = n.loc[list(top)].sort_values(ascending=False).index[:1]
    return rows[key == top[0]]


def take(
    effects: pd.DataFrame,
    selects: list[Selector],
    variation: Variation,
    *,
    subset: bool = True,
    what: str = "",
) -> pd.DataFrame:
    """The effects the selectors take under ``variation`` (one per study and time; an
    InputError where a study matches twice, or where they compare levels that differ
    without a declared mapping: :func:`hccmeta.analyses.levels.check_levels`, naming
    ``what``), the left-out studies removed and, with ``subset``, the variation's subset
    taken."""
    if variation.prefer_univariate:
        order = ["univariate", "adjusted", "descriptive"]
        selects = [s.model_copy(update={"prefer_analysis": order}) for s in selects]
    memo = _MEMO.get()
    if memo is None:
        return _leave_out(_selected(effects, selects, what), variation, subset=subset)
    key = (id(effects), what, tuple(s.model_dump_json() for s in selects))
    hit = memo.get(key)
    if hit is None or hit[0] is not effects:
        hit = memo[key] = (effects, _selected(effects, selects, what))
    return _leave_out(hit[1], variation, subset=subset)


def _leave_out(rows: pd.DataFrame, variation: Variation, *, subset: bool) -> pd.DataFrame:
    """The selected rows without the left-out studies and, with ``subset``, the subset."""
    if rows.empty:
        return rows
    rows = rows[~rows["study"].isin(variation.exclude_studies)]
    if subset:
        rows = subset_rows(rows, variation.subset)
    return rows.reset_index(drop=True)


def _selected(effects: pd.DataFrame, selects: list[Selector], what: str) -> pd.DataFrame:
    """The rows the selectors take (checked: one per study and time, levels mapped)."""
    parts = [select_effects(effects, s) for s in selects]
    rows = (
        pd.concat([p for p in parts if not p.empty], ignore_index=True)
        if any(not p.empty for p in parts)
        else parts[0]
        if parts
        else pd.DataFrame()
    )
    if rows.empty:
        return rows
    dup = rows[rows.duplicated(["study", "time"], keep=False)]
    if not dup.empty:
        raise InputError(
            "more than one effect of a study matches: " + ", ".join(dup["effect"].astype(str))
        )
    check_levels(rows, [m for s in selects for m in s.levels], what=what)
    return rows


def take_roles(
    effects: pd.DataFrame, roles: Sequence[tuple[str, list[Selector]]], variation: Variation
) -> pd.DataFrame:
    """The rows of several roles (regimens, factors, statistic families) with a ``role``
    column; a subset is taken over all of them at once, so that "the most common endpoint
    and time origin" is that of the whole analysis, not of each role."""
    parts = [
        take(effects, selects, variation, subset=False, what=role).assign(role=role)
        for role, selects in roles
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame()
    rows = pd.concat(parts, ignore_index=True)
    return subset_rows(rows, variation.subset).reset_index(drop=True)


def alternative_of(analysis: Analysis, name: str) -> Alternative:
    """The alternative contrast mapping ``name`` of ``analysis`` (an InputError naming
    the known ones if there is none)."""
    for alt in analysis.alternatives:
        if alt.name == name:
            return alt
    known = ", ".join(a.name for a in analysis.alternatives) or "none"
    raise InputError(f"analysis {analysis.name!r} has no alternative {name!r} (known: {known})")
