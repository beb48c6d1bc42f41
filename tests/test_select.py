"""Selecting effects: the NumPy masks over text columns kept for a block
(:func:`hccmeta.analyses.select.text_columns`) and the studies of a selection without its
table (:func:`hccmeta.analyses.select.selected_studies`) give what pandas' own filters
give, row for row, with the same refusals."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

import hccmeta as hm
from hccmeta.analyses import select as select_module
from hccmeta.analyses.registry import LevelMap, Selector, load_registry
from hccmeta.analyses.select import select_effects, selected_studies, text_columns
from hccmeta.effects import derive_effects
from hccmeta.errors import InputError
from hccmeta.sensitivity.variants import all_selectors

from .conftest import STUDY_DATA


@pytest.fixture(scope="module")
def effects() -> pd.DataFrame:
    return derive_effects(hm.load_studies(STUDY_DATA)).effects


def _pandas_rows(eff: pd.DataFrame, sel: Selector) -> pd.DataFrame:
    """The primary rows matching ``sel`` as derived, by pandas' own filters (the
    selector's text criteria only: what the NumPy masks replace)."""
    keep = eff["primary"].astype(bool) & (eff["kind"] == sel.kind) & (eff["measure"] == sel.measure)
    for col, values in (("endpoint", sel.endpoint), ("study", sel.studies),
                        ("exposed_regimen", sel.exposed_regimen),
                        ("reference_regimen", sel.reference_regimen),
                        ("subgroup_variable", sel.subgroup_variable),
                        ("exposed_level", sel.exposed_level),
                        ("reference_level", sel.reference_level)):  # fmt: skip
        if values is not None:
            keep &= eff[col].isin(list(values))
    return eff[keep]


def test_every_registered_selector_agrees_inside_and_outside_the_block(
    effects: pd.DataFrame,
) -> None:
    registry = load_registry(STUDY_DATA)
    sels = [s for name in registry.names for s in all_selectors(registry.get(name))]
    assert sels
    outside: list[pd.DataFrame | str] = []
    for sel in sels:
        try:
            outside.append(select_effects(effects, sel))
        except InputError as exc:
            outside.append(str(exc))
    with text_columns():
        for sel, before in zip(sels, outside, strict=True):
            if isinstance(before, str):
                for func in (select_effects, selected_studies):
                    with pytest.raises(InputError) as info:
                        func(effects, sel)
                    assert str(info.value) == before
                continue
            got = select_effects(effects, sel)
            pd.testing.assert_frame_equal(got, before, check_exact=True)
            assert list(got.dtypes) == list(before.dtypes)
            assert selected_studies(effects, sel) == [str(s) for s in before["study"]]


def test_text_criteria_match_pandas_filters(effects: pd.DataFrame) -> None:
    """Contrasts as derived, one per study: the rows pandas' ``==`` and ``isin`` keep,
    with a criterion on a column with missing values (the subgroup variable)."""
    sub = effects[
        effects["primary"].astype(bool)
        & (effects["kind"] == "contrast")
        & effects["subgroup_variable"].notna()
    ]
    by = ["measure", "endpoint", "subgroup_variable", "exposed_level", "reference_level"]
    studies = sub.groupby(by)["study"].agg(lambda s: len(s) if s.is_unique else 0)
    measure, endpoint, variable, exposed, reference = studies.idxmax()
    sel = Selector(kind="contrast", measure=str(measure), endpoint=[str(endpoint)],
                   subgroup_variable=[str(variable)], exposed_level=[str(exposed)],
                   reference_level=[str(reference)])  # fmt: skip
    expected = _pandas_rows(effects, sel)
    with text_columns():
        got = select_effects(effects, sel)
    assert sorted(got["effect"]) == sorted(expected["effect"])
    assert len(got) > 0


def test_a_new_table_is_not_answered_from_an_old_one(effects: pd.DataFrame) -> None:
    """Columns are kept per table object: another table (even at a reused address) is
    read afresh, and a freed table's columns are dropped."""
    row = effects[effects["primary"].astype(bool)].iloc[0]
    study = str(row["study"])
    sel = Selector(kind=str(row["kind"]), measure=str(row["measure"]),
                   records=[str(row["record"])])  # fmt: skip
    with text_columns():
        store = select_module._TEXT.get()
        assert store is not None
        assert set(selected_studies(effects, sel)) == {study}
        renamed = effects.assign(study=np.where(effects["study"] == study, "renamed", "x"))
        assert selected_studies(renamed, sel) == ["renamed"]
        n = len(store)
        del renamed
        gc.collect()
        assert len(store) == n - 1
    assert select_module._TEXT.get() is None


def test_a_study_matching_twice_is_refused_alike(effects: pd.DataFrame) -> None:
    m = LevelMap(variable="child_pugh_class", level="A", combine=["A5", "A6"],
                 reason="class A is scores 5 and 6")  # fmt: skip
    sel = Selector(kind="contrast", measure="log_hr", subgroup_variable=["child_pugh_class"],
                   exposed_level=["B"], reference_level=["A5", "A"], levels=[m])  # fmt: skip
    with pytest.raises(InputError, match="more than one effect") as a:
        select_effects(effects, sel)
    with pytest.raises(InputError, match="more than one effect") as b:
        selected_studies(effects, sel)
    assert str(a.value) == str(b.value)
    assert "terashima2016" in str(a.value)
