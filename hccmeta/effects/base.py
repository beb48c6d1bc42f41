"""The shared pieces of the effect-size layer: the result type and argument checks.

Every derivation function of :mod:`hccmeta.effects` returns a :class:`Derived`: NumPy
arrays ``yi`` (estimate on the analysis scale) and ``sei`` (its standard error), the
measure and method tags, and one boolean mask per assumption the derivation relied on
(``flags``), so that vectorised calls can record per element which assumption applied
(a continuity correction only where a cell is zero, a p-value bound only where one was
printed).

Arguments are checked element-wise; invalid input raises
:class:`hccmeta.errors.InputError` naming the argument, the offending value and (for
arrays) its index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from hccmeta.errors import InputError
from hccmeta.numeric import NumberError, check_magnitude, check_se

__all__ = [
    "ASSUMPTIONS",
    "DEFAULT_CI_LEVEL",
    "Derived",
    "PBoundRule",
    "effect_problem",
    "z_two_sided",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: The confidence level assumed where a source prints a CI without stating its level.
DEFAULT_CI_LEVEL = 0.95

#: How a p-value printed as a bound ("p < 0.001") is turned into a number:
#: ``"bound"`` uses the bound itself; ``"midpoint"`` the middle of the interval it
#: implies (x/2 for "< x", (1 + x)/2 for "> x").
PBoundRule = Literal["bound", "midpoint"]

#: Assumption tags and what each means (the ``assumptions`` column of the effects table).
ASSUMPTIONS: dict[str, str] = {
    "exponential": "survival is exponential in each group, so HR = M_ref / M_exp and "
    "the variance of ln(median) follows from the exponential density at the median",
    "weibull_shape": "survival is Weibull with a common, assumed shape k in each group, "
    "so ln HR = k ln(M_ref / M_exp)",
    "p_bound": "a p-value printed as a bound ('p < x') was turned into a number (see the "
    "p_bound option)",
    "p_normal_approximation": "the test behind the p-value is taken to be a Wald/score "
    "test whose statistic is the estimate over its SE",
    "peto_variance": "Peto's approximation of a variance (log-rank V = D n1 n2 / N^2, or "
    "S^2 (1 - S) / n at risk for a survival proportion)",
    "direction_from_medians": "the sign of a two-sided test's effect was taken from the "
    "order of the two medians",
    "imputed_n_at_risk": "the number at risk at a landmark time was imputed as n S(t) "
    "(no censoring before t), giving the binomial variance S (1 - S) / n",
    "censoring_from_accrual": "the number at risk at a landmark time allows for the "
    "censoring the study's entry period and end of follow-up imply (entry uniform over "
    "the period, every patient alive followed to its end, nobody lost; Greenwood's "
    "variance under the group's own curve through its landmarks)",
    "continuity_correction": "0.5 was added to every cell of a 2x2 table (or both cells of "
    "one arm) with a zero cell (metafor's add = 1/2, to = 'only0')",
    "double_zero": "no events (or only events) in both arms: the table carries no "
    "information about a ratio; kept, as metafor's escalc keeps it (drop00 = FALSE)",
    "ci_level_assumed": "the source prints a CI without its level; 0.95 was assumed",
    "one_sided_bound": "only one confidence bound is printed; it is taken as a one-sided "
    "bound at the stated level",
    "estimate_from_ci": "no point estimate is printed; the log-scale midpoint of the CI was used",
    "km_median_variance": "the variance of ln(median) from d events is that of a "
    "Kaplan-Meier median, 1 / (d (ln 2)^2) = 2.08 / d (exponential survival; the events "
    "stand for the information, which allows for censoring)",
    "exponential_mle_median_variance": "the variance of ln(median) from d events is that "
    "of the exponential-MLE (parametric) median, 1 / d, smaller than a Kaplan-Meier "
    "median's (a sensitivity variant: median_variance='exponential_mle')",
    "events_from_other_record": "the events of the population that the groups partition "
    "are printed in another record of the study (e.g. 'sixteen patients were alive' of 79)",
    "se_floor_split_assumed": "the sizes of the two subgroups are not printed: the SE "
    "floor takes the least favourable split allowed (each subgroup at least "
    "subgroup_share_min of its arm), i.e. the largest floor",
    "recombined_reference": "the contrast against a merged level (e.g. Child-Pugh A = "
    "A(5) + A(6)) was recombined from a model's contrasts against one of its sub-levels: "
    "the merged level's hazard is the size-weighted mean of its sub-levels' hazards",
    "reference_covariance_shared": "the unprinted covariance of two contrasts against a "
    "common base level is that of level estimates with variances proportional to 1 / n",
    "reference_covariance_zero": "the unprinted covariance of two contrasts against a "
    "common base level was set to zero (the larger variance)",
    "conditional_on_inclusion": "the study admitted only patients meeting a condition "
    "that its statistics are conditional on (e.g. at least three months of sorafenib; "
    "see the study's inclusion_conditions)",
    "estimate_at_ci_bound": "the printed estimate equals one of its CI bounds (rounding)",
    "imputed_events": "events per group were not printed: the events of the population "
    "the groups partition were split in proportion to the group sizes",
    "events_by_difference": "a group's events are the printed total minus the printed "
    "events of the other groups of the partition",
    "p_from_other_record": "the p-value comes from another record of the same comparison "
    "(see the p_choice option)",
    "p_test_not_stated": "the source does not name the test behind the p-value; it is "
    "taken to be the log-rank (or Wald) test of the comparison",
    "count_from_rate": "only a rate is printed: the count is the whole number that, over "
    "n, rounds to it",
    "se_floor": "the SE derived from a p-value was below the smallest SE the group sizes "
    "(and events, where printed) allow and was raised to it (see the se_floor option); "
    "the pair no longer reproduces the printed p",
    "response_from_categories": "objective response = CR + PR and disease control = CR + "
    "PR + SD, from the category counts",
}


def z_two_sided(p: ArrayLike) -> FloatArray:
    """The standard-normal quantile ``z_{1 - p/2}`` of a two-sided p-value."""
    return np.asarray(-special.ndtri(np.asarray(p, dtype=float) / 2.0), dtype=float)


def z_of_level(level: ArrayLike) -> FloatArray:
    """The quantile ``z_{(1 + L)/2}`` of a two-sided confidence level L."""
    return np.asarray(special.ndtri((1.0 + np.asarray(level, dtype=float)) / 2.0), dtype=float)


@dataclass(frozen=True)
class Derived:
    """Effect estimates derived by one method, element-wise over the inputs.

    Attributes
    ----------
    measure : str
        The analysis scale: ``log_hr``, ``log_or``, ``log_rr``, ``rd``, ``logit_p``,
        ``log_median``, ``cloglog_survival``, ``log_ratio`` or ``generic``.
    method : str
        How the estimate was obtained, e.g. ``"medians_logrank_p"``.
    yi : ndarray
        Estimates on the analysis scale (0-d for scalar input).
    sei : ndarray
        Their standard errors.
    flags : mapping of str to bool ndarray
        For each assumption tag (see :data:`ASSUMPTIONS`), where it applied.
    """

    measure: str
    method: str
    yi: FloatArray
    sei: FloatArray
    flags: Mapping[str, BoolArray] = field(default_factory=dict)

    @property
    def vi(self) -> FloatArray:
        """Sampling variances, ``sei ** 2``."""
        return np.asarray(self.sei**2, dtype=float)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the broadcast inputs."""
        return tuple(np.shape(self.yi))

    def assumptions(self, index: int | tuple[int, ...] = ()) -> tuple[str, ...]:
        """The assumption tags that apply to one element (all of them for scalars)."""
        return tuple(
            sorted(
                tag
                for tag, mask in self.flags.items()
                if bool(np.broadcast_to(mask, self.shape)[index])
            )
        )


def effect_problem(yi: float, sei: float) -> tuple[str, str] | None:
    """Whether an effect size can be computed with (the numeric-input policy of
    :mod:`hccmeta.numeric`): ``yi`` finite and at most 1e12 in absolute value, ``sei`` in
    [1e-12, 1e12] (so that ``vi = sei**2`` is neither 0 nor infinite). Returns None, or
    ``("yi" | "sei", message)``."""
    try:
        check_magnitude(float(yi), what="the estimate")
    except NumberError as exc:
        return "yi", str(exc)
    try:
        check_se(float(sei), what="the standard error")
    except NumberError as exc:
        return "sei", str(exc)
    return None


# ---- argument checks ---------------------------------------------------------------


def _show(value: float) -> str:
    return f"{value:g}"


def _fail(name: str, arr: NDArray[np.generic], bad: BoolArray, what: str) -> InputError:
    idx = np.argwhere(np.atleast_1d(bad))[0]
    flat = np.atleast_1d(arr)
    val = flat[tuple(idx)]
    where = "" if arr.ndim == 0 else f" (at index {tuple(int(i) for i in idx)})"
    shown = _show(float(val)) if np.issubdtype(flat.dtype, np.number) else repr(str(val))
    return InputError(f"{name} = {shown}{where}: {what}")


def as_float(name: str, value: ArrayLike, *, allow_nan: bool = False) -> FloatArray:
    """``value`` as a float array; InputError if it is not numeric or (unless allowed) NaN."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} = {value!r}: not a number") from None
    if not allow_nan and np.isnan(arr).any():
        raise _fail(name, arr, np.isnan(arr), "missing (NaN)")
    if np.isinf(arr).any():
        raise _fail(name, arr, np.isinf(arr), "not finite")
    return arr


def check_positive(name: str, value: ArrayLike, *, allow_nan: bool = False) -> FloatArray:
    """A float array of values > 0 (ratios, medians, times)."""
    arr = as_float(name, value, allow_nan=allow_nan)
    bad = ~(arr > 0) & ~np.isnan(arr)
    if bad.any():
        raise _fail(name, arr, bad, "must be > 0")
    return arr


def check_p(name: str, value: ArrayLike) -> FloatArray:
    """A float array of p-values in (0, 1]."""
    arr = as_float(name, value)
    bad = ~((arr > 0) & (arr <= 1))
    if bad.any():
        raise _fail(name, arr, bad, "a p-value must lie in (0, 1]")
    return arr


def check_proportion(name: str, value: ArrayLike, *, open_interval: bool = True) -> FloatArray:
    """A float array of proportions (fractions), strictly inside (0, 1) by default."""
    arr = as_float(name, value)
    big = (arr > 1) & (arr <= 100)
    if big.any():
        raise _fail(name, arr, big, "proportions are fractions in [0, 1], not percentages")
    bad = ~((arr > 0) & (arr < 1)) if open_interval else ~((arr >= 0) & (arr <= 1))
    if bad.any():
        rng = "(0, 1)" if open_interval else "[0, 1]"
        raise _fail(name, arr, bad, f"must lie in {rng}")
    return arr


def check_level(name: str, value: ArrayLike | None) -> tuple[FloatArray, BoolArray]:
    """Confidence levels as fractions in (0, 1); None or NaN means 'assumed 0.95'.

    Returns the levels (NaN replaced by :data:`DEFAULT_CI_LEVEL`) and the mask of the
    elements where the level was assumed.
    """
    if value is None:
        return np.asarray(DEFAULT_CI_LEVEL), np.asarray(True)
    arr = as_float(name, value, allow_nan=True)
    assumed = np.isnan(arr)
    pct = (arr > 1) & (arr <= 100)
    if pct.any():
        raise _fail(
            name, arr, pct, "give the confidence level as a fraction (0.95), not in percent"
        )
    bad = ~((arr > 0) & (arr < 1)) & ~assumed
    if bad.any():
        raise _fail(name, arr, bad, "a confidence level must lie in (0, 1)")
    return np.where(assumed, DEFAULT_CI_LEVEL, arr), np.asarray(assumed)


def check_count(name: str, value: ArrayLike, *, positive: bool = False) -> FloatArray:
    """A float array of whole, non-negative counts (> 0 with ``positive``)."""
    arr = as_float(name, value)
    bad = arr < 0
    if bad.any():
        raise _fail(name, arr, bad, "a count cannot be negative")
    frac = arr != np.round(arr)
    if frac.any():
        raise _fail(name, arr, frac, "a count must be a whole number")
    if positive and (arr == 0).any():
        raise _fail(name, arr, arr == 0, "must be > 0")
    return arr


def check_not_above(
    name: str, value: FloatArray, limit_name: str, limit: FloatArray, *, what: str = "above"
) -> None:
    """InputError where ``value > limit`` (events above n)."""
    v, lim = np.broadcast_arrays(value, limit)
    bad = v > lim
    if bad.any():
        idx = tuple(np.argwhere(np.atleast_1d(bad))[0])
        vv = np.atleast_1d(v)[idx]
        ll = np.atleast_1d(lim)[idx]
        where = "" if v.ndim == 0 else f" (at index {tuple(int(i) for i in idx)})"
        raise InputError(f"{name} = {vv:g} is {what} {limit_name} = {ll:g}{where}")


def check_relation(name: str, relation: ArrayLike) -> NDArray[np.str_]:
    """p-value relations: '=', '<', '<=', '>', '>='."""
    arr = np.asarray(relation, dtype=str)
    ok = np.isin(arr, ["=", "<", "<=", ">", ">="])
    if not ok.all():
        idx = tuple(np.argwhere(np.atleast_1d(~ok))[0])
        raise InputError(
            f"{name} = {str(np.atleast_1d(arr)[idx])!r}: must be one of '=', '<', '<=', '>', '>='"
        )
    return arr


def effective_p(
    p: ArrayLike, relation: ArrayLike = "=", *, p_bound: PBoundRule = "bound"
) -> tuple[FloatArray, BoolArray]:
    """The p-value to compute with, and where it came from a printed bound.

    ``"bound"`` takes the bound as if exact. For "p < x" this is conservative: the true
    p is smaller, its z larger, so the SE = |y| / z it implies is an upper bound. For
    "p > x" it is anti-conservative (the SE is a lower bound). ``"midpoint"`` uses x/2
    for "< x" and (1 + x)/2 for "> x".
    """
    parr = check_p("p", p)
    rel = check_relation("relation", relation)
    bound = np.asarray(rel != "=")
    if p_bound == "bound":
        out = parr
    elif p_bound == "midpoint":
        below = np.isin(rel, ["<", "<="])
        above = np.isin(rel, [">", ">="])
        out = np.where(below, parr / 2.0, np.where(above, (1.0 + parr) / 2.0, parr))
    else:
        raise InputError(f"p_bound = {p_bound!r}: must be 'bound' or 'midpoint'")
    return np.asarray(out, dtype=float), np.broadcast_to(bound, np.shape(out)).copy()


def broadcast(*arrays: ArrayLike) -> list[FloatArray]:
    """Broadcast inputs together; InputError naming the shapes if they do not fit."""
    try:
        return [np.asarray(a, dtype=float) for a in np.broadcast_arrays(*arrays)]
    except ValueError:
        shapes = ", ".join(str(np.shape(a)) for a in arrays)
        raise InputError(f"arguments of shapes {shapes} cannot be broadcast together") from None


def mask(value: ArrayLike, shape: tuple[int, ...]) -> BoolArray:
    """A boolean mask broadcast to ``shape`` (a writable copy)."""
    return np.broadcast_to(np.asarray(value, dtype=bool), shape).copy()
