"""Counts: two-arm 2x2 tables (log OR, log RR, risk difference) and one-arm logits.

Conventions
-----------
``events_exp / n_exp`` is the exposed (treatment) arm, ``events_ref / n_ref`` the
reference arm; ``yi > 0`` means more events in the exposed arm. The closed forms and the
continuity correction follow metafor's ``escalc`` defaults exactly (``add = 1/2``,
``to = "only0"``, ``drop00 = FALSE``, ``vtype = "LS"``): 0.5 is added to *every* cell of
a table that has *any* zero cell (events or non-events, either arm; a table with no
events in both arms is kept and corrected), for the estimate and its variance alike, and
for the risk difference too. Tables without a zero cell are left alone. For one arm
(metafor's ``PLO``), 0.5 is added to the events and the non-events when either is zero.

With cells a, b (exposed events, non-events) and c, d (reference), after correction::

    log OR = ln(a d / (b c)),           var = 1/a + 1/b + 1/c + 1/d
    log RR = ln(a / n1) - ln(c / n2),   var = 1/a - 1/n1 + 1/c - 1/n2
    RD     = a / n1 - c / n2,           var = p1 (1 - p1) / n1 + p2 (1 - p2) / n2
    logit p = ln(x / (n - x)),          var = 1/x + 1/(n - x)

The binomial models of :mod:`hccmeta.models` use the counts themselves and need no
correction.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from hccmeta.effects.base import (
    Derived,
    FloatArray,
    broadcast,
    check_count,
    check_not_above,
    mask,
)
from hccmeta.errors import InputError

__all__ = ["CountMeasure", "logit_proportion", "two_arm_counts"]

CountMeasure = Literal["log_or", "log_rr", "rd"]

#: metafor's default amount added to the cells of a table with a zero cell.
CONTINUITY_CORRECTION = 0.5


def _check_add(add: float) -> float:
    if not np.isfinite(add) or add < 0:
        raise InputError(f"add = {add!r}: the continuity correction must be >= 0")
    return float(add)


def two_arm_counts(
    events_exp: ArrayLike,
    n_exp: ArrayLike,
    events_ref: ArrayLike,
    n_ref: ArrayLike,
    *,
    measure: CountMeasure = "log_or",
    add: float = CONTINUITY_CORRECTION,
) -> Derived:
    """Log odds ratio, log risk ratio or risk difference of two arms' event counts.

    Parameters
    ----------
    events_exp, n_exp : array_like
        Events and patients in the exposed arm.
    events_ref, n_ref : array_like
        Events and patients in the reference arm.
    measure : {"log_or", "log_rr", "rd"}
        The effect measure.
    add : float
        Added to every cell of a table with a zero cell (0 disables the correction;
        a zero cell then gives an infinite estimate or variance).

    Returns
    -------
    Derived
        With the flag ``continuity_correction`` where a table was corrected, and
        ``double_zero`` where neither arm has an event (or both have only events): such a
        table says nothing about a ratio (its corrected log OR merely reflects the arm
        sizes) and is kept only as metafor's ``escalc`` keeps it (``drop00 = FALSE``).
    """
    if measure not in ("log_or", "log_rr", "rd"):
        raise InputError(f"measure = {measure!r}: must be 'log_or', 'log_rr' or 'rd'")
    add = _check_add(add)
    x1 = check_count("events_exp", events_exp)
    m1 = check_count("n_exp", n_exp, positive=True)
    x2 = check_count("events_ref", events_ref)
    m2 = check_count("n_ref", n_ref, positive=True)
    x1, m1, x2, m2 = broadcast(x1, m1, x2, m2)
    check_not_above("events_exp", x1, "n_exp", m1)
    check_not_above("events_ref", x2, "n_ref", m2)
    a, b, c, d = x1, m1 - x1, x2, m2 - x2
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    inc = np.where(zero, add, 0.0)
    a, b, c, d = a + inc, b + inc, c + inc, d + inc
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "log_or":
            yi = np.log(a * d / (b * c))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
        elif measure == "log_rr":
            yi = np.log(p1) - np.log(p2)
            vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
        else:
            yi = p1 - p2
            vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return Derived(
        measure=measure,
        method="counts_2x2",
        yi=np.asarray(yi, dtype=float),
        sei=np.asarray(np.sqrt(vi), dtype=float),
        flags={
            "continuity_correction": mask(zero & (add > 0), np.shape(yi)),
            "double_zero": mask(double, np.shape(yi)),
        },
    )


def logit_proportion(
    events: ArrayLike, n: ArrayLike, *, add: float = CONTINUITY_CORRECTION
) -> Derived:
    """Logit of a proportion ``events / n`` of one arm (metafor's ``PLO``).

    ``yi = ln(x / (n - x))``, ``var = 1/x + 1/(n - x)``, with ``add`` added to ``x``
    and ``n - x`` where either is zero (flag ``continuity_correction``).
    """
    add = _check_add(add)
    x = check_count("events", events)
    m = check_count("n", n, positive=True)
    x, m = broadcast(x, m)
    check_not_above("events", x, "n", m)
    zero = (x == 0) | (x == m)
    inc = np.where(zero, add, 0.0)
    a, b = x + inc, (m - x) + inc
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(a / b)
        vi = 1 / a + 1 / b
    return Derived(
        measure="logit_p",
        method="counts_1arm",
        yi=np.asarray(yi, dtype=float),
        sei=np.asarray(np.sqrt(vi), dtype=float),
        flags={"continuity_correction": mask(zero & (add > 0), np.shape(yi))},
    )


def proportion_from_logit(yi: ArrayLike) -> FloatArray:
    """Back-transform a logit to a proportion."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(yi, dtype=float))), dtype=float)
