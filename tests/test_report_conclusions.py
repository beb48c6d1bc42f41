"""When a sensitivity variant changes the conclusion of an analysis, worked by hand on
small tables: the rule of :func:`hccmeta.report.interpret.conclusion_changes` and what
the statement says for estimates without a no-effect value."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hccmeta.report.interpret import LEAN, conclusion_changes, has_null, variant_range


def _row(median: float, lo: float, hi: float, p: float, benefit: str | None = "below") -> dict:
    return {
        "median": median,
        "ci_lower": lo,
        "ci_upper": hi,
        "p_benefit": p,
        "benefit": benefit,
        "status": "ok",
        "scale": "log_hr",
        "natural_scale": "HR",
        "natural_median": math.exp(median),
    }


def _changes(primary: dict, variants: list[dict]) -> list[bool]:
    return conclusion_changes(pd.Series(primary), pd.DataFrame(variants)).tolist()


def test_interval_crossing_no_effect_changes_the_conclusion() -> None:
    # OS: HR 0.37 (0.20 to 0.83) excludes 1; a variant with HR 0.45 (0.18 to 1.10)
    # does not, and one with HR 0.40 (0.25 to 0.70) keeps the conclusion.
    primary = _row(math.log(0.37), math.log(0.20), math.log(0.83), 0.988)
    variants = [
        _row(math.log(0.45), math.log(0.18), math.log(1.10), 0.95),
        _row(math.log(0.40), math.log(0.25), math.log(0.70), 0.999),
    ]
    assert _changes(primary, variants) == [True, False]


def test_interval_newly_excluding_no_effect_changes_the_conclusion() -> None:
    # Child-Pugh B vs A: HR 2.00 (0.94 to 3.72) includes 1; the fixed-effect variant's
    # 1.33 to 2.97 excludes it.
    primary = _row(math.log(2.0), math.log(0.94), math.log(3.72), 0.967, "above")
    variants = [_row(math.log(2.0), math.log(1.33), math.log(2.97), 0.999, "above")]
    assert _changes(primary, variants) == [True]


def test_median_crossing_changes_a_leaning_estimate() -> None:
    # P(HR > 1) = 0.93 leans (>= LEAN): a variant whose median HR is 0.9 reverses it.
    primary = _row(math.log(1.95), math.log(0.71), math.log(4.11), 0.933, "above")
    variants = [
        _row(math.log(0.9), math.log(0.3), math.log(2.5), 0.42, "above"),
        _row(math.log(1.5), math.log(0.5), math.log(3.5), 0.80, "above"),
    ]
    assert _changes(primary, variants) == [True, False]


@pytest.mark.parametrize("p", [0.532, 0.5, 0.7])
def test_median_crossing_does_not_change_an_estimate_on_no_effect(p: float) -> None:
    # Hand-foot skin reaction: OR 0.94 (0.26 to 3.34), P(OR < 1) = 53%: the median of a
    # variant at OR 1.02 crosses 1 by Monte Carlo error alone; no conclusion changes.
    assert max(p, 1 - p) < LEAN
    primary = _row(math.log(0.94), math.log(0.26), math.log(3.34), p)
    variants = [_row(math.log(1.02), math.log(0.25), math.log(3.9), 0.48)]
    assert _changes(primary, variants) == [False]


def test_leaning_threshold_is_inclusive() -> None:
    primary = _row(-0.2, -1.0, 0.6, LEAN)
    assert _changes(primary, [_row(0.05, -0.8, 0.9, 0.45)]) == [True]
    primary_other_side = _row(0.2, -0.6, 1.0, 1 - LEAN)
    assert _changes(primary_other_side, [_row(-0.05, -0.9, 0.8, 0.55)]) == [True]


def test_variant_without_finite_interval_is_not_a_change() -> None:
    primary = _row(math.log(0.37), math.log(0.20), math.log(0.83), 0.988)
    assert _changes(primary, [_row(0.1, float("nan"), float("nan"), 0.4)]) == [False]


def test_estimates_without_a_no_effect_value_have_no_conclusion_to_change() -> None:
    # Median TTP on the log scale: 0 is one month, not "no effect".
    primary = {**_row(math.log(7.2), math.log(2.9), math.log(19.6), float("nan"), None)}
    primary.update(natural_scale="months", scale="log_median")
    assert not has_null(pd.Series(primary))
    assert has_null(pd.Series(_row(0.1, -0.2, 0.4, 0.3)))
    # A variant whose interval sits above 1 month where the primary one does too, or
    # one that dips below: neither is a conclusion.
    variants = [_row(math.log(0.8), math.log(0.3), math.log(2.0), float("nan"), None)]
    assert _changes(primary, variants) == [False]


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
