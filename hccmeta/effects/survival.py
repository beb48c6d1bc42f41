"""Time-to-event statistics: hazard ratios from medians, log-rank tests, medians, landmarks.

Conventions
-----------
*Direction.* A hazard ratio is of the exposed group relative to the reference group;
``yi = ln HR > 0`` means the exposed group fares worse. Under the exponential
assumption (constant hazard ``ln 2 / M`` in each group)::

    ln HR = ln(h_exp / h_ref) = ln(M_ref / M_exp)

so a shorter median in the exposed group gives HR > 1. Under a Weibull model with a
common, known shape k and proportional hazards, ``ln HR = k ln(M_ref / M_exp)``
(``shape=k``; k = 1 is the exponential).

*Medians.* The analysis scale of a median is ``ln M``.

*Landmark survival.* A survival proportion S(t) is analysed as
``cloglog(1 - S) = ln(-ln S) = ln H(t)``, the log cumulative hazard: larger means worse
survival, and under proportional hazards two groups differ by ln HR on this scale at every
t. By the delta method, ``d ln(-ln S) / dS = 1 / (S ln S)``, so::

    SE[ln H] = SE[S] / |S ln S|

and with Peto's variance ``Var[S] = S^2 (1 - S) / n_risk``::

    SE[ln H] = sqrt((1 - S) / n_risk) / |ln S|

(checked against a numerical derivative and by simulation in the tests). With a CI
for S the bounds are transformed instead (exact when the CI was computed on the
log-log scale, as most software does, and close to the delta method otherwise):
``SE = (ln(-ln L) - ln(-ln U)) / (2 z)``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from hccmeta.effects.base import (
    Derived,
    FloatArray,
    PBoundRule,
    as_float,
    broadcast,
    check_count,
    check_level,
    check_not_above,
    check_positive,
    check_proportion,
    effective_p,
    mask,
    z_of_level,
    z_two_sided,
)
from hccmeta.effects.ratios import from_ci
from hccmeta.errors import InputError

__all__ = [
    "KM_MEDIAN_VARIANCE_FACTOR",
    "MedianVariance",
    "cloglog_of_survival",
    "cloglog_survival_from_ci",
    "cloglog_survival_from_follow_up",
    "cloglog_survival_from_n",
    "cloglog_survival_from_n_at_risk",
    "log_hr_from_logrank",
    "log_hr_from_medians_events",
    "log_hr_from_medians_p",
    "log_median_from_ci",
    "log_median_from_events",
    "min_log_hr_se",
    "min_log_hr_se_subgroups",
    "n_at_risk_under_accrual",
    "survival_of_cloglog",
]

#: Variance of ln(Kaplan-Meier median) relative to ln(exponential-MLE median), without
#: censoring, by the delta method (the default of :func:`log_median_from_events`): the
#: sample median of an exponential sample has asymptotic variance
#: 1 / (4 n f(M)^2) = 1 / (n lambda^2), so Var[ln M_KM] =
#: 1 / (n (ln 2)^2), against Var[ln M_MLE] = 1 / d = 1 / n: a factor 1 / (ln 2)^2 = 2.08.
KM_MEDIAN_VARIANCE_FACTOR = 1.0 / math.log(2.0) ** 2

#: The variance of a log median from events: Kaplan-Meier (default) or exponential MLE.
MedianVariance = Literal["km", "exponential_mle"]


def _check_shape(shape: float) -> float:
    if not (isinstance(shape, int | float) and math.isfinite(shape) and shape > 0):
        raise InputError(f"shape = {shape!r}: a Weibull shape must be a number > 0")
    return float(shape)


def _model_flags(shape: float, size: tuple[int, ...]) -> dict[str, np.ndarray]:
    return {
        "exponential": mask(shape == 1.0, size),
        "weibull_shape": mask(shape != 1.0, size),
    }


def _log_median_ratio(median_exp: ArrayLike, median_ref: ArrayLike) -> FloatArray:
    m1 = check_positive("median_exp", median_exp)
    m0 = check_positive("median_ref", median_ref)
    m1, m0 = broadcast(m1, m0)
    if (m1 == m0).any():
        i = tuple(np.argwhere(np.atleast_1d(m1 == m0))[0])
        raise InputError(
            f"median_exp = median_ref = {np.atleast_1d(m1)[i]:g}: equal medians give "
            "ln HR = 0, which carries no information about its SE"
        )
    return np.asarray(np.log(m0 / m1), dtype=float)


def log_hr_from_medians_p(
    median_exp: ArrayLike,
    median_ref: ArrayLike,
    p: ArrayLike,
    *,
    relation: ArrayLike = "=",
    p_bound: PBoundRule = "bound",
    shape: float = 1.0,
) -> Derived:
    """Log HR from two medians and the two-sided p-value of their (log-rank) test.

    ``ln HR = k ln(M_ref / M_exp)`` (k = ``shape``; 1 = exponential) and
    ``SE = |ln HR| / z_{1 - p/2}``, in the spirit of Tierney et al. (2007): the log-rank
    statistic is treated as the Wald statistic of ln HR. A p printed as a bound
    (``relation`` '<', '>') is resolved by ``p_bound`` and flagged ``p_bound``; for
    "p < x", the bound itself gives an upper bound on the SE.
    """
    k = _check_shape(shape)
    y = k * _log_median_ratio(median_exp, median_ref)
    pe, bound = effective_p(p, relation, p_bound=p_bound)
    y, pe, boundf = broadcast(y, pe, bound)
    with np.errstate(divide="ignore"):
        sei = np.abs(y) / z_two_sided(pe)
    return Derived(
        measure="log_hr",
        method="medians_logrank_p",
        yi=y,
        sei=np.asarray(sei, dtype=float),
        flags={
            **_model_flags(k, y.shape),
            "p_bound": mask(boundf, y.shape),
            "p_normal_approximation": mask(True, y.shape),
        },
    )


def log_hr_from_medians_events(
    median_exp: ArrayLike,
    median_ref: ArrayLike,
    events_exp: ArrayLike,
    events_ref: ArrayLike,
    *,
    shape: float = 1.0,
    variance: MedianVariance = "km",
    km_factor: float = KM_MEDIAN_VARIANCE_FACTOR,
) -> Derived:
    """Log HR from two Kaplan-Meier medians and the events in each group.

    ``ln HR = k ln(M_ref / M_exp)``. Its variance is that of the difference of the two
    log medians times k^2: with ``variance="km"`` (default) the Kaplan-Meier variance of
    each (:func:`log_median_from_events`), ``SE = sqrt((1/d_exp + 1/d_ref) / (ln 2)^2)``
    whatever k (flagged ``km_median_variance``); with ``"exponential_mle"``
    ``SE = sqrt(1/d_exp + 1/d_ref)``, the variance of the ratio of two exponential-MLE
    rates, too small for medians read off Kaplan-Meier curves (a sensitivity variant;
    the coverage study in validation/conversions/ finds 85-87% for 95% intervals under
    exponential survival).
    """
    k = _check_shape(shape)
    y = k * _log_median_ratio(median_exp, median_ref)
    d1 = check_count("events_exp", events_exp, positive=True)
    d0 = check_count("events_ref", events_ref, positive=True)
    y, d1, d0 = broadcast(y, d1, d0)
    if variance not in ("km", "exponential_mle"):
        raise InputError(f"variance = {variance!r}: must be 'km' or 'exponential_mle'")
    if not (isinstance(km_factor, int | float) and math.isfinite(km_factor) and km_factor >= 1.0):
        raise InputError(f"km_factor = {km_factor!r}: a variance factor must be >= 1")
    factor = float(km_factor) if variance == "km" else 1.0
    sei = np.sqrt(factor * (1.0 / d1 + 1.0 / d0))
    return Derived(
        measure="log_hr",
        method="medians_events",
        yi=y,
        sei=np.asarray(sei, dtype=float),
        flags={
            **_model_flags(k, y.shape),
            "km_median_variance": mask(variance == "km", y.shape),
            "exponential_mle_median_variance": mask(variance != "km", y.shape),
        },
    )


def log_hr_from_logrank(
    p: ArrayLike,
    events: ArrayLike,
    n_exp: ArrayLike,
    n_ref: ArrayLike,
    *,
    direction: ArrayLike,
    relation: ArrayLike = "=",
    p_bound: PBoundRule = "bound",
) -> Derived:
    """Log HR from a two-sided log-rank p, the total events and the group sizes (Peto).

    With D events in total and groups of n_exp and n_ref patients, Peto's approximation
    of the log-rank variance under equal follow-up is ``V = D n_exp n_ref / N^2``; then
    ``O - E = direction * sqrt(V) z_{1 - p/2}`` for the exposed group,
    ``ln HR = (O - E) / V`` and ``SE = 1 / sqrt(V)`` (Tierney et al. 2007).

    Parameters
    ----------
    direction : array_like of +1 / -1
        The sign of ln HR, which a two-sided p does not give: +1 if the exposed group
        did worse (e.g. its median is shorter), -1 if it did better.
    """
    pe, bound = effective_p(p, relation, p_bound=p_bound)
    d = check_count("events", events, positive=True)
    n1 = check_count("n_exp", n_exp, positive=True)
    n0 = check_count("n_ref", n_ref, positive=True)
    sgn = as_float("direction", direction)
    bad = ~np.isin(sgn, [-1.0, 1.0])
    if bad.any():
        raise InputError(
            f"direction = {np.atleast_1d(sgn)[np.argwhere(np.atleast_1d(bad))[0][0]]:g}: "
            "must be +1 (exposed worse) or -1 (exposed better)"
        )
    pe, boundf, d, n1, n0, sgn = broadcast(pe, bound, d, n1, n0, sgn)
    check_not_above("events", d, "n_exp + n_ref", n1 + n0)
    v = d * n1 * n0 / (n1 + n0) ** 2
    o_minus_e = sgn * np.sqrt(v) * z_two_sided(pe)
    y = o_minus_e / v
    return Derived(
        measure="log_hr",
        method="logrank_peto",
        yi=np.asarray(y, dtype=float),
        sei=np.asarray(1.0 / np.sqrt(v), dtype=float),
        flags={"peto_variance": mask(True, y.shape), "p_bound": mask(boundf, y.shape)},
    )


def min_log_hr_se(
    n_exp: ArrayLike, n_ref: ArrayLike, events: ArrayLike | None = None
) -> FloatArray:
    """The smallest SE of a log HR that two groups of these sizes can support.

    The information about ln HR is at most Peto's log-rank variance
    ``V = D n_exp n_ref / N^2``; with every patient an event (D = N) this is
    ``n_exp n_ref / N``, so ``SE >= sqrt(1/n_exp + 1/n_ref)``; with D events known,
    ``SE >= N / sqrt(D n_exp n_ref)``. An SE derived from a p-value below this bound
    (two nearly equal medians with a large p give ``|ln HR| / z`` with both small) is an
    artefact of rounding, not information.
    """
    n1 = check_count("n_exp", n_exp, positive=True)
    n0 = check_count("n_ref", n_ref, positive=True)
    if events is None:
        return np.asarray(np.sqrt(1.0 / n1 + 1.0 / n0), dtype=float)
    d = check_count("events", events, positive=True)
    n1, n0, d = broadcast(n1, n0, d)
    check_not_above("events", d, "n_exp + n_ref", n1 + n0)
    return np.asarray((n1 + n0) / np.sqrt(d * n1 * n0), dtype=float)


def min_log_hr_se_subgroups(
    parent_n: float,
    *,
    n_exp: float | None = None,
    n_ref: float | None = None,
    events: float | None = None,
    share_min: float = 0.1,
) -> tuple[float, bool]:
    """The SE floor of a log HR between two subgroups of an arm of ``parent_n`` patients.

    With both sizes printed this is :func:`min_log_hr_se`; with one, the other is
    ``parent_n`` minus it. With neither, the split is not known and the floor takes the
    *least favourable* split allowed: each subgroup holds at least ``share_min`` of the
    arm, and ``sqrt(1/n_e + 1/n_r)`` is largest at ``q N`` vs ``(1 - q) N`` (an even split,
    the smallest floor, would be the least conservative choice). With D events known the
    floor is ``N / sqrt(D n_e n_r)`` (Peto's log-rank information ``D n_e n_r / N^2`` is
    the most a comparison of these groups can carry).

    Returns
    -------
    floor : float
        The smallest SE the printed numbers allow (NaN if the sizes do not fit).
    split_assumed : bool
        True where the split was assumed (neither size printed).
    """
    big = float(parent_n)
    assumed = False
    if n_exp and n_ref:
        n1, n0 = float(n_exp), float(n_ref)
    elif n_exp or n_ref:
        n1 = float(n_exp) if n_exp else big - float(n_ref or 0)
        n0 = float(n_ref) if n_ref else big - float(n_exp or 0)
    else:
        if not 0 < share_min <= 0.5:
            raise InputError(f"share_min = {share_min!r}: must lie in (0, 0.5]")
        n1, n0, assumed = share_min * big, (1.0 - share_min) * big, True
    if n1 <= 0 or n0 <= 0:
        return math.nan, assumed
    if events is not None and 0 < events <= n1 + n0:
        return (n1 + n0) / math.sqrt(float(events) * n1 * n0), assumed
    return math.sqrt(1.0 / n1 + 1.0 / n0), assumed


def log_median_from_ci(
    median: ArrayLike, lower: ArrayLike, upper: ArrayLike, *, level: ArrayLike | None = None
) -> Derived:
    """Log median and SE from the median and its CI: ``(ln U - ln L) / (2 z)``.

    One-sided bounds and missing levels as in :func:`hccmeta.effects.ratios.from_ci`.
    """
    d = from_ci(median, lower, upper, level=level, log=True, measure="log_median")
    return Derived("log_median", "median_ci", d.yi, d.sei, d.flags)


def log_median_from_events(
    median: ArrayLike,
    events: ArrayLike,
    *,
    variance: MedianVariance = "km",
    km_factor: float = KM_MEDIAN_VARIANCE_FACTOR,
    shape: float = 1.0,
) -> Derived:
    """Log median and SE from a Kaplan-Meier median and the number of events.

    ``variance="km"`` (default): the asymptotic variance of the log of a Kaplan-Meier
    median, ``Var[ln M] = 1 / (d (ln 2)^2) = 2.08 / d`` for exponential survival. Without
    censoring the sample median of n exponential times has ``Var[M] = 1 / (4 n f(M)^2)``
    with ``f(M) = lambda / 2``, so ``Var[ln M] = 1 / (n (lambda M)^2) = 1 / (n (ln 2)^2)``;
    with censoring the number of events d stands for n (the information about the
    curve; exact for censoring after the median would give ``1 / (n (ln 2)^2) <= 1 / (d
    (ln 2)^2)``, so the rule is conservative there, and close for censoring spread over
    follow-up). With a known Weibull shape k, ``f(M) M = k ln 2 / 2`` and the SE is
    divided by k. Flagged ``km_median_variance``.

    ``variance="exponential_mle"``: ``Var[ln M] = 1 / (d k^2)``, the variance of the
    *parametric* (exponential-MLE) median, too small for a Kaplan-Meier median; only as a
    named sensitivity variant (flagged ``exponential_mle_median_variance``).

    Parameters
    ----------
    km_factor : float
        The variance factor of the Kaplan-Meier rule (>= 1; default ``1 / (ln 2)^2``).
    """
    k = _check_shape(shape)
    m = check_positive("median", median)
    d = check_count("events", events, positive=True)
    m, d = broadcast(m, d)
    if variance not in ("km", "exponential_mle"):
        raise InputError(f"variance = {variance!r}: must be 'km' or 'exponential_mle'")
    if not (isinstance(km_factor, int | float) and math.isfinite(km_factor) and km_factor >= 1.0):
        raise InputError(f"km_factor = {km_factor!r}: a variance factor must be >= 1")
    factor = float(km_factor) if variance == "km" else 1.0
    sei = np.sqrt(factor / d) / k
    return Derived(
        measure="log_median",
        method="median_events",
        yi=np.log(m),
        sei=np.asarray(sei, dtype=float),
        flags={
            **_model_flags(k, m.shape),
            "km_median_variance": mask(variance == "km", m.shape),
            "exponential_mle_median_variance": mask(variance != "km", m.shape),
        },
    )


def cloglog_of_survival(survival: ArrayLike) -> FloatArray:
    """``cloglog(1 - S) = ln(-ln S)``, the log cumulative hazard, for S in (0, 1)."""
    s = check_proportion("survival", survival)
    return np.asarray(np.log(-np.log(s)), dtype=float)


def survival_of_cloglog(theta: ArrayLike) -> FloatArray:
    """Inverse of :func:`cloglog_of_survival`: ``S = exp(-exp(theta))``."""
    return np.asarray(np.exp(-np.exp(np.asarray(theta, dtype=float))), dtype=float)


def cloglog_survival_from_ci(
    survival: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    *,
    level: ArrayLike | None = None,
) -> Derived:
    """``ln H(t)`` and SE from a survival proportion and its (two-sided) CI.

    The bounds are transformed: ``SE = (ln(-ln L) - ln(-ln U)) / (2 z_{(1+L)/2})``.
    """
    s = check_proportion("survival", survival)
    lo = check_proportion("lower", lower)
    hi = check_proportion("upper", upper)
    lev, assumed = check_level("level", level)
    s, lo, hi, lev, assumedf = broadcast(s, lo, hi, lev, assumed)
    rev = ~(lo < hi)
    if rev.any():
        raise InputError(
            f"lower = {np.atleast_1d(lo)[rev.ravel()][0]:g}, upper = "
            f"{np.atleast_1d(hi)[rev.ravel()][0]:g}: CI bounds reversed or equal"
        )
    out = ~((lo <= s) & (s <= hi))
    if out.any():
        raise InputError(
            f"survival = {np.atleast_1d(s)[out.ravel()][0]:g} lies outside its CI "
            f"({np.atleast_1d(lo)[out.ravel()][0]:g}, {np.atleast_1d(hi)[out.ravel()][0]:g})"
        )
    z = z_of_level(lev)
    y = np.log(-np.log(s))
    sei = (np.log(-np.log(lo)) - np.log(-np.log(hi))) / (2.0 * z)
    return Derived(
        measure="cloglog_survival",
        method="landmark_ci",
        yi=y,
        sei=np.asarray(sei, dtype=float),
        flags={"ci_level_assumed": mask(assumedf, y.shape)},
    )


def cloglog_survival_from_n_at_risk(survival: ArrayLike, n_at_risk: ArrayLike) -> Derived:
    """``ln H(t)`` and SE from S(t) and the number at risk at t (Peto's variance).

    ``Var[S] = S^2 (1 - S) / n_risk`` and, by the delta method,
    ``SE[ln H] = sqrt((1 - S) / n_risk) / |ln S|``. Flagged ``peto_variance``.
    """
    s = check_proportion("survival", survival)
    n = check_count("n_at_risk", n_at_risk, positive=True)
    s, n = broadcast(s, n)
    y = np.log(-np.log(s))
    sei = np.sqrt((1.0 - s) / n) / np.abs(np.log(s))
    return Derived(
        measure="cloglog_survival",
        method="landmark_peto",
        yi=y,
        sei=np.asarray(sei, dtype=float),
        flags={"peto_variance": mask(True, y.shape)},
    )


def cloglog_survival_from_n(survival: ArrayLike, n: ArrayLike) -> Derived:
    """``ln H(t)`` and SE from S(t) and the group's size at time 0 (an imputation).

    With no censoring before t the number at risk is ``n S``, Peto's variance becomes
    the binomial ``S (1 - S) / n`` and ``SE[ln H] = sqrt((1 - S) / (n S)) / |ln S|``.
    Censoring before t makes the true SE larger. Flagged ``imputed_n_at_risk`` and
    ``peto_variance``.
    """
    s = check_proportion("survival", survival)
    n0 = check_count("n", n, positive=True)
    return _cloglog_binomial(s, n0, "landmark_binomial", ())


def _cloglog_binomial(s: FloatArray, n: FloatArray, method: str, extra: tuple[str, ...]) -> Derived:
    """``ln(-ln S)`` with the binomial SE ``sqrt((1 - S) / (n S)) / |ln S|`` of an imputed
    number at risk ``n S`` (validated ``s`` and ``n``), flagged ``peto_variance``,
    ``imputed_n_at_risk`` and ``extra``."""
    s, n = broadcast(s, n)
    y = np.log(-np.log(s))
    sei = np.sqrt((1.0 - s) / (n * s)) / np.abs(np.log(s))
    flags = ("peto_variance", "imputed_n_at_risk", *extra)
    return Derived(
        measure="cloglog_survival",
        method=method,
        yi=y,
        sei=np.asarray(sei, dtype=float),
        flags={f: mask(True, y.shape) for f in flags},
    )


def n_at_risk_under_accrual(
    n: float,
    times: ArrayLike,
    survival: ArrayLike,
    *,
    accrual: float,
    min_follow_up: float,
) -> FloatArray:
    """The effective number at risk at each landmark of one group whose patients entered
    uniformly over ``accrual`` months and were followed until a common end, at least
    ``min_follow_up`` months after the last entry (administrative censoring only).

    Greenwood's variance of ``ln S_KM(t)`` with censoring is ``(1 / n) int_0^t h(u) /
    (S(u) G(u)) du``, with ``G`` the probability of still being followed at ``u``: here
    ``G(u) = 1`` up to ``F = min_follow_up`` and ``(F + A - u) / A`` after it (potential
    follow-up uniform on ``[F, F + A]``). The effective number at risk is the size
    whose binomial variance ``(1 - S) / (n_eff S)`` equals it::

        n_eff(t) = n (exp(H(t)) - 1) / int_0^t h(u) exp(H(u)) / G(u) du

    which is ``n`` where nobody can have been censored before ``t``. The curve between
    the landmarks is the group's own: piecewise constant hazard through ``(0, 0)`` and
    every ``(t_j, -ln S_j)``; on a piece after ``F`` the integral is
    ``h A exp(H_a - h a) exp(h c) (E1(h (c - b)) - E1(h (c - a)))`` with ``c = F + A``.

    Parameters
    ----------
    n : float
        The group's size at time 0.
    times, survival : array_like
        The group's landmarks (months, increasing) and Kaplan-Meier survival at each
        (non-increasing, in (0, 1]).
    accrual : float
        Months over which patients entered (``A > 0``).
    min_follow_up : float
        Months from the last entry to the end of follow-up (``F >= 0``).

    Returns
    -------
    numpy.ndarray
        ``n_eff`` at each landmark; NaN where ``t >= F + A`` (nobody followed that long).
    """
    from scipy.special import exp1

    t = as_float("times", times).ravel()
    s = as_float("survival", survival).ravel()
    n0 = float(check_count("n", n, positive=True))
    a_len = float(check_positive("accrual", accrual))
    f_min = float(min_follow_up)
    if not f_min >= 0:
        raise InputError(f"min_follow_up = {f_min:g}: must be >= 0")
    if t.shape != s.shape or t.size == 0:
        raise InputError("times and survival: one survival per landmark time")
    if np.any(t <= 0) or np.any(np.diff(t) <= 0):
        raise InputError(f"times {list(t)}: must be positive and increasing")
    if np.any(s <= 0) or np.any(s > 1) or np.any(np.diff(s) > 0):
        raise InputError(f"survival {list(s)}: must lie in (0, 1] and not increase")
    c = f_min + a_len
    knots_t = np.concatenate([[0.0], t])
    knots_h = np.concatenate([[0.0], -np.log(s)])
    out = np.full(t.shape, np.nan)
    total = 0.0  # int_0^{t_j} h exp(H) / G du, accumulated piece by piece
    for j in range(t.size):
        lo, hi = knots_t[j], knots_t[j + 1]
        h_lo, h_hi = knots_h[j], knots_h[j + 1]
        if hi >= c:
            break  # nobody followed to t_j (nor later)
        rate = (h_hi - h_lo) / (hi - lo)
        # the part before F: nobody censored, int h exp(H) = exp(H_b) - exp(H_a)
        mid = min(max(f_min, lo), hi)
        h_mid = h_lo + rate * (mid - lo)
        total += math.exp(h_mid) - math.exp(h_lo)
        if hi > mid and rate > 0:
            # after F: G(u) = (c - u) / A, in closed form with the exponential integral
            total += (
                rate
                * a_len
                * math.exp(h_mid - rate * mid + rate * c)
                * (float(exp1(rate * (c - hi))) - float(exp1(rate * (c - mid))))
            )
        out[j] = n0 * math.expm1(h_hi) / total if total > 0 else n0
    return out


def cloglog_survival_from_follow_up(survival: ArrayLike, n_at_risk: ArrayLike) -> Derived:
    """``ln H(t)`` and SE from S(t) and an effective number at risk from the study's
    entry and follow-up dates (:func:`n_at_risk_under_accrual`; not a whole number): the
    binomial variance ``(1 - S) / (n_eff S)``, ``SE[ln H] = sqrt((1 - S) / (n_eff S)) /
    |ln S|``. Flagged ``imputed_n_at_risk``, ``censoring_from_accrual`` and
    ``peto_variance``."""
    s = check_proportion("survival", survival)
    n = check_positive("n_at_risk", n_at_risk)
    return _cloglog_binomial(s, n, "landmark_follow_up", ("censoring_from_accrual",))
