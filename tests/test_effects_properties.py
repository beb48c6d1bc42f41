"""Property-based tests of hccmeta.effects (hypothesis) and its invalid-input errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hccmeta.effects import (
    from_ci,
    log_ratio_from_ci,
    log_ratio_from_p,
    logit_proportion,
    two_arm_counts,
)
from hccmeta.effects.survival import (
    cloglog_survival_from_ci,
    cloglog_survival_from_n,
    cloglog_survival_from_n_at_risk,
    log_hr_from_logrank,
    log_hr_from_medians_events,
    log_hr_from_medians_p,
    log_median_from_ci,
    log_median_from_events,
    min_log_hr_se,
)
from hccmeta.errors import InputError

#: Round trips through exp/log and normal quantiles lose a few ulps.
ROUND_TRIP_RTOL = 1e-9

ratios = st.floats(min_value=0.01, max_value=100, allow_nan=False)
log_ses = st.floats(min_value=0.01, max_value=3)
levels = st.floats(min_value=0.5, max_value=0.999)
pvalues = st.floats(min_value=1e-12, max_value=0.999)
medians = st.floats(min_value=0.1, max_value=200)
#: Per-test settings (not a global profile, which would change other modules' tests).
PROPS = settings(max_examples=200, deadline=None)


@PROPS
@given(ratios, log_ses, levels)
def test_ci_round_trip(ratio: float, se: float, level: float) -> None:
    """A CI built from (ln ratio, SE) at level L gives back ln ratio and SE."""
    z = stats.norm.ppf((1 + level) / 2)
    lo, hi = ratio * math.exp(-z * se), ratio * math.exp(z * se)
    d = log_ratio_from_ci(ratio, lo, hi, level=level)
    assert float(d.yi) == pytest.approx(math.log(ratio), rel=ROUND_TRIP_RTOL, abs=1e-12)
    assert float(d.sei) == pytest.approx(se, rel=ROUND_TRIP_RTOL)


@PROPS
@given(st.floats(min_value=-5, max_value=5), log_ses, levels)
def test_generic_ci_round_trip(y: float, se: float, level: float) -> None:
    z = stats.norm.ppf((1 + level) / 2)
    d = from_ci(y, y - z * se, y + z * se, level=level, log=False)
    assert float(d.sei) == pytest.approx(se, rel=1e-7)


@PROPS
@given(ratios.filter(lambda r: abs(math.log(r)) > 1e-6), pvalues)
def test_p_round_trip(ratio: float, p: float) -> None:
    """The Wald p of (yi, sei) derived from (HR, p) is p again."""
    d = log_ratio_from_p(ratio, p)
    p_back = 2 * stats.norm.sf(abs(float(d.yi)) / float(d.sei))
    assert p_back == pytest.approx(p, rel=1e-6)


@PROPS
@given(medians, medians, pvalues)
def test_medians_swap_flips_sign(m1: float, m0: float, p: float) -> None:
    """Swapping exposed and reference flips the sign and keeps the SE."""
    if math.isclose(m1, m0, rel_tol=1e-9):
        return
    a = log_hr_from_medians_p(m1, m0, p)
    b = log_hr_from_medians_p(m0, m1, p)
    assert float(a.yi) == pytest.approx(-float(b.yi))
    assert float(a.sei) == pytest.approx(float(b.sei))
    # a shorter median in the exposed group means HR > 1
    assert (float(a.yi) > 0) == (m1 < m0)


@PROPS
@given(medians, medians, st.integers(1, 500), st.integers(1, 500))
def test_medians_events_swap(m1: float, m0: float, d1: int, d0: int) -> None:
    if math.isclose(m1, m0, rel_tol=1e-9):
        return
    a = log_hr_from_medians_events(m1, m0, d1, d0)
    b = log_hr_from_medians_events(m0, m1, d0, d1)
    assert float(a.yi) == pytest.approx(-float(b.yi))
    assert float(a.sei) == pytest.approx(float(b.sei))


@PROPS
@given(pvalues, st.integers(1, 100), st.integers(1, 100), st.data())
def test_peto_swap(p: float, n1: int, n0: int, data: st.DataObject) -> None:
    d = data.draw(st.integers(1, n1 + n0))
    a = log_hr_from_logrank(p, d, n1, n0, direction=1)
    b = log_hr_from_logrank(p, d, n0, n1, direction=-1)
    assert float(a.yi) == pytest.approx(-float(b.yi))
    assert float(a.sei) == pytest.approx(float(b.sei))


@st.composite
def tables(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n1 = draw(st.integers(1, 300))
    n0 = draw(st.integers(1, 300))
    return draw(st.integers(0, n1)), n1, draw(st.integers(0, n0)), n0


@pytest.mark.parametrize("measure", ["log_or", "log_rr", "rd"])
@PROPS
@given(t=tables())
def test_counts_swap_arms(measure: str, t: tuple[int, int, int, int]) -> None:
    """Swapping the arms flips the sign of log OR, log RR and RD; the SE is unchanged."""
    a, n1, c, n0 = t
    x = two_arm_counts(a, n1, c, n0, measure=measure)  # type: ignore[arg-type]
    y = two_arm_counts(c, n0, a, n1, measure=measure)  # type: ignore[arg-type]
    assert float(x.yi) == pytest.approx(-float(y.yi), abs=1e-12)
    assert float(x.sei) == pytest.approx(float(y.sei))
    assert bool(x.flags["continuity_correction"]) == bool(y.flags["continuity_correction"])


@PROPS
@given(t=tables())
def test_or_swap_events_and_nonevents(t: tuple[int, int, int, int]) -> None:
    """Counting non-events instead of events flips the sign of the log OR."""
    a, n1, c, n0 = t
    x = two_arm_counts(a, n1, c, n0)
    y = two_arm_counts(n1 - a, n1, n0 - c, n0)
    assert float(x.yi) == pytest.approx(-float(y.yi), abs=1e-12)
    assert float(x.sei) == pytest.approx(float(y.sei))


@PROPS
@given(st.integers(1, 300), st.data())
def test_logit_complement(n: int, data: st.DataObject) -> None:
    x = data.draw(st.integers(0, n))
    a, b = logit_proportion(x, n), logit_proportion(n - x, n)
    assert float(a.yi) == pytest.approx(-float(b.yi), abs=1e-12)
    assert float(a.sei) == pytest.approx(float(b.sei))


@PROPS
@given(ratios.filter(lambda r: abs(math.log(r)) > 1e-3), pvalues, pvalues)
def test_monotone_in_p_ratio(ratio: float, p1: float, p2: float) -> None:
    """For a fixed estimate, a smaller p gives a smaller SE."""
    if math.isclose(p1, p2, rel_tol=1e-6):
        return
    lo, hi = sorted((p1, p2))
    assert float(log_ratio_from_p(ratio, lo).sei) < float(log_ratio_from_p(ratio, hi).sei)


@PROPS
@given(medians, medians, pvalues, pvalues)
def test_monotone_in_p_medians(m1: float, m0: float, p1: float, p2: float) -> None:
    if math.isclose(m1, m0, rel_tol=1e-6) or math.isclose(p1, p2, rel_tol=1e-6):
        return
    lo, hi = sorted((p1, p2))
    a = log_hr_from_medians_p(m1, m0, lo)
    b = log_hr_from_medians_p(m1, m0, hi)
    assert float(a.sei) < float(b.sei)
    assert float(a.yi) == float(b.yi)


@PROPS
@given(st.integers(2, 200), st.integers(1, 100), st.integers(1, 100), pvalues, pvalues)
def test_monotone_in_p_peto(d: int, n1: int, n0: int, p1: float, p2: float) -> None:
    """Peto: the SE depends on events only; a smaller p gives a larger |ln HR|."""
    d = min(d, n1 + n0)
    if math.isclose(p1, p2, rel_tol=1e-6):
        return
    lo, hi = sorted((p1, p2))
    a = log_hr_from_logrank(lo, d, n1, n0, direction=1)
    b = log_hr_from_logrank(hi, d, n1, n0, direction=1)
    assert float(a.sei) == pytest.approx(float(b.sei))
    assert float(a.yi) > float(b.yi)


@PROPS
@given(st.floats(0.02, 0.98), st.floats(0.01, 0.2), st.integers(5, 500))
def test_landmark_ci_vs_peto_consistent(s: float, half: float, n: int) -> None:
    """A narrower CI (more patients at risk) gives a smaller SE on the cloglog scale."""
    lo, hi = max(s - half, 0.005), min(s + half, 0.995)
    wide = cloglog_survival_from_ci(s, lo, hi)
    narrow = cloglog_survival_from_ci(s, (s + lo) / 2, (s + hi) / 2)
    assert float(narrow.sei) < float(wide.sei)
    assert float(cloglog_survival_from_n_at_risk(s, 2 * n).sei) < float(
        cloglog_survival_from_n_at_risk(s, n).sei
    )


# ---- every invalid input raises InputError naming the argument and value ------------------

INVALID: list[tuple[str, Callable[[], Any], str]] = [
    ("p zero", lambda: log_ratio_from_p(2.0, 0.0), "p = 0"),
    ("p above 1", lambda: log_ratio_from_p(2.0, 1.5), "p = 1.5"),
    ("p negative", lambda: log_hr_from_medians_p(3.7, 8.4, -0.01), "p = -0.01"),
    ("p NaN", lambda: log_hr_from_medians_p(3.7, 8.4, float("nan")), "p = nan"),
    ("p in percent", lambda: log_hr_from_logrank(4, 30, 10, 10, direction=1), "p = 4"),
    ("relation", lambda: log_ratio_from_p(2.0, 0.01, relation="~"), "relation = '~'"),
    ("ratio zero", lambda: log_ratio_from_ci(0.0, 0.5, 2.0), "estimate = 0"),
    ("ratio negative", lambda: log_ratio_from_p(-2.0, 0.01), "ratio = -2"),
    ("lower non-positive", lambda: log_ratio_from_ci(1.0, -0.5, 2.0), "lower = -0.5"),
    ("reversed CI", lambda: log_ratio_from_ci(1.0, 2.0, 0.5), "reversed"),
    ("equal bounds", lambda: log_ratio_from_ci(1.0, 1.0, 1.0), "reversed or equal"),
    ("estimate outside CI", lambda: log_ratio_from_ci(3.0, 0.5, 2.0), "outside its CI"),
    ("level 95", lambda: log_ratio_from_ci(1.0, 0.5, 2.0, level=95), "level = 95"),
    ("level 1", lambda: log_ratio_from_ci(1.0, 0.5, 2.0, level=1.0), "level = 1"),
    ("level zero", lambda: from_ci(1.0, 0.5, 2.0, level=0.0), "level = 0"),
    ("median zero", lambda: log_hr_from_medians_p(0.0, 8.4, 0.01), "median_exp = 0"),
    ("median negative", lambda: log_hr_from_medians_p(3.7, -8.4, 0.01), "median_ref = -8.4"),
    ("equal medians", lambda: log_hr_from_medians_p(5, 5, 0.5), "equal medians"),
    ("median CI reversed", lambda: log_median_from_ci(7.1, 7.5, 4.8), "reversed"),
    ("median events zero", lambda: log_median_from_events(7.1, 0), "events = 0"),
    ("events fractional", lambda: log_median_from_events(7.1, 2.5), "events = 2.5"),
    (
        "km factor below 1",
        lambda: log_median_from_events(7.1, 10, km_factor=0.5),
        "km_factor",
    ),
    ("weibull shape", lambda: log_hr_from_medians_p(3.7, 8.4, 0.01, shape=0), "shape = 0"),
    ("floor events above n", lambda: min_log_hr_se(10, 10, 21), "events = 21"),
    ("floor n zero", lambda: min_log_hr_se(0, 10), "n_exp = 0"),
    ("events zero arm", lambda: log_hr_from_medians_events(3, 4, 0, 5), "events_exp = 0"),
    (
        "peto events above n",
        lambda: log_hr_from_logrank(0.01, 40, 10, 10, direction=1),
        "events = 40",
    ),
    ("peto direction", lambda: log_hr_from_logrank(0.01, 10, 10, 10, direction=0), "direction = 0"),
    ("events above n", lambda: two_arm_counts(13, 12, 0, 12), "events_exp = 13"),
    ("ref events above n", lambda: two_arm_counts(1, 12, 13, 12), "events_ref = 13"),
    ("negative count", lambda: two_arm_counts(-1, 12, 0, 12), "events_exp = -1"),
    ("zero n", lambda: two_arm_counts(0, 0, 0, 12), "n_exp = 0"),
    ("fractional count", lambda: logit_proportion(1.5, 12), "events = 1.5"),
    ("one-arm above n", lambda: logit_proportion(13, 12), "events = 13"),
    ("measure", lambda: two_arm_counts(1, 2, 1, 2, measure="or"), "measure = 'or'"),  # type: ignore[arg-type]
    ("survival in percent", lambda: cloglog_survival_from_n(95, 22), "survival = 95"),
    ("survival 1", lambda: cloglog_survival_from_n(1.0, 22), "survival = 1"),
    ("survival 0", lambda: cloglog_survival_from_n_at_risk(0.0, 22), "survival = 0"),
    ("survival CI outside", lambda: cloglog_survival_from_ci(0.8, 0.4, 0.6), "outside its CI"),
    ("n at risk zero", lambda: cloglog_survival_from_n_at_risk(0.5, 0), "n_at_risk = 0"),
    ("vector index", lambda: log_ratio_from_p([2.0, 3.0], [0.01, 2.0]), "index (1,)"),
    ("non-numeric", lambda: log_ratio_from_p("two", 0.01), "'two'"),  # type: ignore[arg-type]
    ("bad p_bound", lambda: log_ratio_from_p(2.0, 0.01, p_bound="half"), "p_bound"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("case", "call", "text"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_input_raises(case: str, call: Callable[[], Any], text: str) -> None:
    with pytest.raises(InputError, match=None) as exc:
        call()
    assert text in str(exc.value), str(exc.value)


@PROPS
@given(st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0 + 1e-9)))
def test_any_p_outside_unit_interval_raises(p: float) -> None:
    with pytest.raises(InputError, match=r"\bp = "):
        log_ratio_from_p(2.0, p)


@PROPS
@given(st.floats(max_value=0.0, allow_nan=False), ratios, ratios)
def test_any_non_positive_ratio_raises(bad: float, lo: float, hi: float) -> None:
    with pytest.raises(InputError):
        log_ratio_from_ci(bad, min(lo, hi), max(lo, hi) + 1)


@PROPS
@given(st.integers(1, 100), st.integers(1, 50))
def test_any_events_above_n_raises(n: int, excess: int) -> None:
    with pytest.raises(InputError, match="events_exp"):
        two_arm_counts(n + excess, n, 0, n)
    with pytest.raises(InputError, match="events ="):
        logit_proportion(n + excess, n)


@PROPS
@given(st.floats(1.0 + 1e-9, 100.0))
def test_any_level_in_percent_raises(level: float) -> None:
    with pytest.raises(InputError, match="level"):
        log_ratio_from_ci(1.0, 0.5, 2.0, level=level)


@PROPS
@given(ratios, ratios)
def test_any_reversed_ci_raises(a: float, b: float) -> None:
    if a == b:
        return
    lo, hi = sorted((a, b))
    with pytest.raises(InputError, match="reversed"):
        log_ratio_from_ci(np.nan, hi, lo)
