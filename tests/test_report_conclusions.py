"""When a sensitivity variant changes the conclusion of an analysis, worked by hand on
small tables: the rule of :func:`hccmeta.sensitivity.table.conclusion_changes` (the
``changes_conclusion`` and ``change_reason`` columns of the sensitivity table) and the
range the statement gives for estimates without a no-effect value."""

from __future__ import annotations

import math

import pandas as pd

from hccmeta.report.interpret import has_null, p_text, variant_range
from hccmeta.sensitivity.table import conclusion_changes, to_table


def _row(
    hr: float, lo: float, hi: float, p: float = math.nan, benefit: str | None = "below"
) -> dict:
    """A row on the log scale from a hazard ratio and its interval."""
    return {
        "median": math.log(hr),
        "ci_lower": math.log(lo),
        "ci_upper": math.log(hi),
        "p_benefit": p,
        "benefit": benefit,
        "status": "ok",
        "scale": "log_hr",
        "natural_scale": "HR",
        "natural_median": hr,
        "natural_ci_lower": lo,
        "natural_ci_upper": hi,
    }


def _changes(primary: dict, variants: list[dict]) -> tuple[list[bool], list[str]]:
    changed, why = conclusion_changes(pd.Series(primary), pd.DataFrame(variants))
    return changed.tolist(), why.tolist()


def test_interval_crossing_no_effect_changes_the_conclusion() -> None:
    # OS: HR 0.37 (0.20 to 0.83) excludes 1; a variant with HR 0.45 (0.18 to 1.10)
    # does not, and one with HR 0.40 (0.25 to 0.70) keeps the conclusion.
    primary = _row(0.37, 0.20, 0.83, 0.988)
    changed, why = _changes(primary, [_row(0.45, 0.18, 1.10), _row(0.40, 0.25, 0.70)])
    assert changed == [True, False]
    assert why == [
        "its 95% interval includes no effect (the primary's lies below no effect)",
        "",
    ]


def test_interval_newly_excluding_no_effect_changes_the_conclusion() -> None:
    # Child-Pugh B vs A: HR 2.00 (0.94 to 3.72) includes 1; a fixed-effect variant's
    # 1.33 to 2.97 excludes it (its median 2.0 stays inside the primary interval).
    primary = _row(2.0, 0.94, 3.72, 0.967, "above")
    changed, why = _changes(primary, [_row(2.0, 1.33, 2.97, 0.999, "above")])
    assert changed == [True]
    assert why == ["its 95% interval lies above no effect (the primary's includes no effect)"]


def test_a_median_outside_the_primary_interval_changes_it_whatever_the_side() -> None:
    # Issue 12 item 5: OR 6.19 (1.19 to 27.2) under a vague mu prior becomes 48.9 (2.1 to
    # 2000): both intervals exclude 1, but the median is 8 times larger and outside the
    # primary interval: the magnitude changes the conclusion.
    primary = _row(6.19, 1.19, 27.2, 0.983, "above")
    variant = _row(48.9, 2.1, 2000.0, 0.99, "above")
    changed, why = _changes(primary, [variant])
    assert changed == [True]
    assert why == [
        "its median (HR 48.90) lies outside the primary 95% interval (HR 1.19 to HR 27.20)"
    ]


def test_a_variant_inside_the_primary_interval_on_the_same_side_keeps_it() -> None:
    # Hand-foot skin reaction: OR 0.94 (0.26 to 3.34); a variant at 1.02 (0.25 to 3.9)
    # crosses 1 with its median only, well inside the primary interval: no change.
    primary = _row(0.94, 0.26, 3.34, 0.532)
    assert _changes(primary, [_row(1.02, 0.25, 3.9, 0.48)]) == ([False], [""])


def test_both_reasons_are_given_when_both_apply() -> None:
    primary = _row(0.37, 0.20, 0.83, 0.988)
    changed, why = _changes(primary, [_row(0.95, 0.40, 2.2)])
    assert changed == [True]
    assert why[0].count(";") == 1
    assert why[0].startswith("its 95% interval includes no effect")
    assert "its median (HR 0.95) lies outside the primary 95% interval" in why[0]


def test_variant_without_an_estimate_is_not_a_change() -> None:
    primary = _row(0.37, 0.20, 0.83, 0.988)
    failed = {**_row(0.5, 0.3, 0.9), "status": "failed"}
    nan = {**_row(0.5, 0.3, 0.9), "ci_lower": math.nan}
    assert _changes(primary, [failed, nan]) == ([False, False], ["", ""])


def test_medians_and_proportions_change_only_when_outside_the_primary_interval() -> None:
    # Median TTP: 7.2 months (2.9 to 19.6) on the log scale; 0 is one month, not "no
    # effect". A variant at 0.8 months (below the primary interval) changes it even
    # though its interval "crosses 0"; one at 8.4 months does not.
    months = {**_row(7.2, 2.9, 19.6, math.nan, None), "natural_scale": "months"}
    months["scale"] = "log_median"
    assert not has_null(pd.Series(months))
    low = {**_row(0.8, 0.3, 2.0, math.nan, None), "natural_scale": "months"}
    ok = {**_row(8.4, 3.1, 22.0, math.nan, None), "natural_scale": "months"}
    changed, why = _changes(months, [low, ok])
    assert changed == [True, False]
    assert why[0] == (
        "its median (0.8 months) lies outside the primary 95% interval (2.9 months to 19.6 months)"
    )


def test_the_table_fills_the_columns_per_analysis_and_estimand() -> None:
    base = {"analysis": "a", "variant_group": "x", "description": "d", "estimand": "effect"}
    rows = [
        {**base, **_row(0.37, 0.20, 0.83, 0.99), "variant": "primary"},
        {**base, **_row(0.45, 0.18, 1.10), "variant": "v1"},
        {**base, **_row(0.40, 0.25, 0.70), "variant": "v2"},
        # another estimand of the same analysis: its own primary
        {**base, **_row(2.0, 1.5, 2.5, 0.99, "above"), "variant": "primary", "estimand": "f"},
        {**base, **_row(1.2, 0.9, 1.6, 0.8, "above"), "variant": "v1", "estimand": "f"},
    ]
    table = to_table(rows)
    assert table["changes_conclusion"].tolist() == [False, True, False, False, True]
    assert table.loc[4, "change_reason"].startswith("its 95% interval includes no effect")
    assert table["change_reason"].iloc[0] == ""


def test_p_benefit_has_two_digits_and_never_reads_certain() -> None:
    assert p_text(0.988, "HR", "below") == "P(HR < 1) = 0.99"
    assert p_text(0.5321, "OR", "above") == "P(OR > 1) = 0.53"
    assert p_text(0.9996, "HR", "below") == "P(HR < 1) > 0.99"
    assert p_text(0.0004, "HR", "below") == "P(HR < 1) < 0.01"


def test_variant_range_on_the_natural_scale() -> None:
    months = pd.DataFrame(
        {
            "status": ["ok", "ok", "failed", "ok"],
            "natural_scale": ["months"] * 4,
            "natural_median": [7.21, 5.94, 1.0, 8.36],
            "median": [math.log(7.21), math.log(5.94), 0.0, math.log(8.36)],
            "scale": ["log_median"] * 4,
        }
    )
    # the failed row's value is not a result and is left out
    assert variant_range(months) == "5.9 to 8.4 months"
    probability = months.assign(
        natural_scale="probability", natural_median=[0.51, 0.384, 0.99, 0.606]
    )
    assert variant_range(probability) == "38% to 61%"
