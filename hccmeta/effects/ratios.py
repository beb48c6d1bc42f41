"""Estimates with a confidence interval or a p-value: ratios, and additive measures.

Conventions
-----------
A ratio (HR, OR, RR, ratio of medians) is of the *exposed* group relative to the
*reference* group; its analysis scale is the natural log, so ``yi > 0`` means the
exposed group has the larger hazard (odds, risk, median).

From a CI at level L (two-sided)::

    yi = ln(estimate),  SE = (ln U - ln L) / (2 z_{(1+L)/2})

A single printed bound is a one-sided bound at level L (``SE = |ln B - ln est| / z_L``);
pass ``level=0.975`` for one half of a two-sided 95% interval. From a two-sided p-value
of a Wald-type test::

    SE = |ln HR| / z_{1 - p/2}
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from hccmeta.effects.base import (
    Derived,
    FloatArray,
    PBoundRule,
    as_float,
    broadcast,
    check_level,
    check_positive,
    effective_p,
    mask,
    z_two_sided,
)
from hccmeta.errors import InputError

__all__ = ["from_ci", "log_ratio_from_ci", "log_ratio_from_p", "se_from_p"]


def _ci_checks(est: FloatArray, lo: FloatArray, hi: FloatArray) -> None:
    both = ~np.isnan(lo) & ~np.isnan(hi)
    rev = both & ~(lo < hi)
    if rev.any():
        i = tuple(np.argwhere(np.atleast_1d(rev))[0])
        where = "" if lo.ndim == 0 else f" (at index {tuple(int(k) for k in i)})"
        raise InputError(
            f"lower = {np.atleast_1d(lo)[i]:g}, upper = {np.atleast_1d(hi)[i]:g}{where}: "
            "CI bounds reversed or equal (lower must be < upper)"
        )
    if np.isnan(lo).all() and np.isnan(hi).all() and lo.size:
        raise InputError("lower and upper are both missing: a CI needs at least one bound")
    none = np.isnan(lo) & np.isnan(hi)
    if none.any():
        i = tuple(np.argwhere(np.atleast_1d(none))[0])
        raise InputError(f"lower and upper are both missing at index {i}: need one bound")
    has = ~np.isnan(est)
    outside = has & ((~np.isnan(lo) & (est < lo)) | (~np.isnan(hi) & (est > hi)))
    if outside.any():
        i = tuple(np.argwhere(np.atleast_1d(outside))[0])
        where = "" if est.ndim == 0 else f" (at index {tuple(int(k) for k in i)})"
        raise InputError(
            f"estimate = {np.atleast_1d(est)[i]:g}{where} lies outside its CI "
            f"({np.atleast_1d(lo)[i]:g}, {np.atleast_1d(hi)[i]:g})"
        )
    one_missing = np.isnan(lo) ^ np.isnan(hi)
    bad = one_missing & np.isnan(est)
    if bad.any():
        raise InputError("estimate is missing where only one CI bound is given")


def from_ci(
    estimate: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    *,
    level: ArrayLike | None = None,
    log: bool = True,
    measure: str | None = None,
    method: str = "ci",
) -> Derived:
    """Estimate and SE from a confidence interval, on the log or the natural scale.

    Parameters
    ----------
    estimate, lower, upper : array_like
        Point estimate and CI bounds on the natural scale (ratios > 0 when ``log``).
        NaN in ``lower`` or ``upper`` marks a one-sided interval; NaN in ``estimate``
        (only with both bounds) uses the midpoint of the CI on the analysis scale.
    level : array_like, optional
        Confidence level as a fraction (0.95); None or NaN: 0.95 assumed (flagged
        ``ci_level_assumed``). A two-sided level for two bounds, a one-sided level for
        one bound.
    log : bool
        Analyse on the log scale (ratios, medians); False for additive measures.
    measure : str, optional
        Measure tag of the result; default ``log_ratio`` (log) or ``generic``.
    method : str
        Method tag of the result.

    Returns
    -------
    Derived
        ``yi`` and ``sei`` on the analysis scale, with flags ``ci_level_assumed``,
        ``one_sided_bound``, ``estimate_from_ci`` and ``estimate_at_ci_bound``.
    """
    check = check_positive if log else as_float
    est = check("estimate", estimate, allow_nan=True)
    lo = check("lower", lower, allow_nan=True)
    hi = check("upper", upper, allow_nan=True)
    lev, assumed = check_level("level", level)
    est, lo, hi, lev, assumed_b = broadcast(est, lo, hi, lev, assumed)
    _ci_checks(est, lo, hi)
    f = np.log if log else (lambda x: x)
    with np.errstate(invalid="ignore"):
        fe, fl, fh = f(est), f(lo), f(hi)
    two = ~np.isnan(lo) & ~np.isnan(hi)
    from_ci_mid = np.isnan(est)
    yi = np.where(from_ci_mid, (fl + fh) / 2.0, fe)
    z2 = special.ndtri((1.0 + lev) / 2.0)
    z1 = special.ndtri(lev)
    one_bad = ~two & (lev <= 0.5)
    if one_bad.any():
        raise InputError(
            f"level = {np.atleast_1d(lev)[np.atleast_1d(one_bad)][0]:g}: a one-sided bound "
            "needs a level above 0.5"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        se_two = (fh - fl) / (2.0 * z2)
        bound = np.where(np.isnan(lo), fh, fl)
        se_one = np.abs(bound - yi) / z1
    sei = np.where(two, se_two, se_one)
    at_bound = ~from_ci_mid & (((yi == fl) & ~np.isnan(lo)) | ((yi == fh) & ~np.isnan(hi)))
    if (~two & at_bound).any():
        raise InputError("estimate equals its only CI bound: the SE would be 0")
    shape = yi.shape
    return Derived(
        measure=measure or ("log_ratio" if log else "generic"),
        method=method,
        yi=np.asarray(yi, dtype=float),
        sei=np.asarray(sei, dtype=float),
        flags={
            "ci_level_assumed": mask(assumed_b, shape),
            "one_sided_bound": mask(~two, shape),
            "estimate_from_ci": mask(from_ci_mid, shape),
            "estimate_at_ci_bound": mask(at_bound, shape),
        },
    )


def log_ratio_from_ci(
    ratio: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    *,
    level: ArrayLike | None = None,
    measure: str = "log_hr",
) -> Derived:
    """Log ratio (HR, OR, RR, ratio of medians) and SE from its CI at level ``level``.

    ``SE = (ln U - ln L) / (2 z_{(1+L)/2})``; see :func:`from_ci` for one-sided bounds
    and missing levels.
    """
    return from_ci(ratio, lower, upper, level=level, log=True, measure=measure, method="ratio_ci")


def se_from_p(y: ArrayLike, p: ArrayLike) -> FloatArray:
    """SE implied by an estimate on the analysis scale and its two-sided p-value.

    ``SE = |y| / z_{1 - p/2}`` (the test statistic is ``y / SE``). ``p = 1`` gives an
    infinite SE (no information). ``y = 0`` carries no information about the SE and
    raises InputError.
    """
    yy = as_float("y", y)
    pp = as_float("p", p)
    yy, pp = broadcast(yy, pp)
    zero = yy == 0
    if zero.any():
        raise InputError(
            "the estimate is exactly null (ratio 1, equal medians): a p-value gives no SE for it"
        )
    z = z_two_sided(pp)
    with np.errstate(divide="ignore"):
        return np.asarray(np.abs(yy) / z, dtype=float)


def log_ratio_from_p(
    ratio: ArrayLike,
    p: ArrayLike,
    *,
    relation: ArrayLike = "=",
    p_bound: PBoundRule = "bound",
    measure: str = "log_hr",
) -> Derived:
    """Log ratio and SE from the ratio and the two-sided p-value of its Wald test.

    ``yi = ln(ratio)``, ``SE = |yi| / z_{1 - p/2}``. A ``relation`` other than '='
    marks a printed bound, resolved by ``p_bound`` (see
    :func:`hccmeta.effects.base.effective_p`) and flagged ``p_bound``.
    """
    r = check_positive("ratio", ratio)
    pe, bound = effective_p(p, relation, p_bound=p_bound)
    r, pe, boundf = broadcast(r, pe, bound)
    if (r == 1).any():
        raise InputError("ratio = 1: a p-value gives no SE for a null estimate")
    yi = np.log(r)
    sei = se_from_p(yi, pe)
    return Derived(
        measure=measure,
        method="ratio_p",
        yi=yi,
        sei=sei,
        flags={
            "p_bound": mask(boundf, yi.shape),
            "p_normal_approximation": mask(True, yi.shape),
        },
    )
