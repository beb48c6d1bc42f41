"""The numeric-input policy: which numbers hccmeta accepts, from any input.

One policy for every number a user gives: the cells of a CSV (``hccmeta pool`` /
``convert``), the parameters of a prior SPEC string (``--prior-tau halfnormal:0.5``),
the numbers of a study file, and the estimates and standard errors the effects layer
hands to the models.

Syntax
    Plain decimal notation only: an optional sign, ASCII digits, an optional decimal
    point with digits, an optional exponent (``-0.97``, ``.5``, ``1e-3``, ``+2.5E+2``).
    Not numbers: ``0x36``, ``5_4``, ``-0_97``, ``1,5``, ``inf``, ``nan``, Arabic-Indic
    or other non-ASCII digits (``١٢``), which Python's ``float()`` / ``int()`` accept.
    An integer (a count, a sample size) is written as an integer: ``54``, not ``54.0``
    or ``5.4e1``. A study file's integers also may not start with 0 (``054``: YAML 1.1
    reads it as an octal number).

Bounds
    Every number is finite and at most :data:`MAX_MAGNITUDE` (1e12) in absolute
    value. A standard error lies in [:data:`MIN_SE`, :data:`MAX_SE`] = [1e-12, 1e12]
    (a variance in [1e-24, 1e24]); ``convert`` and ``pool`` never produce or accept
    an SE of 0 or infinity. A scale hyperparameter of a prior (a standard deviation,
    a scale) is at least :data:`MIN_SCALE` (1e-12). Counts are whole numbers in
    [0, :data:`MAX_COUNT`].

The functions raise :class:`NumberError` (a ``ValueError``) with a message that names
what is wrong but not where: callers add the file, line, column or argument.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "MAX_COUNT",
    "MAX_MAGNITUDE",
    "MAX_SE",
    "MIN_SCALE",
    "MIN_SE",
    "NumberError",
    "check_magnitude",
    "check_se",
    "parse_integer",
    "parse_number",
]

#: Largest absolute value of any input number.
MAX_MAGNITUDE = 1e12
#: Bounds of a standard error (given, from a variance, or derived).
MIN_SE = 1e-12
MAX_SE = 1e12
#: Smallest scale hyperparameter of a prior (sd, scale).
MIN_SCALE = 1e-12
#: Largest count (patients, events).
MAX_COUNT = 10**12

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class NumberError(ValueError):
    """A number that the numeric-input policy refuses; the message says why."""


def _why_not(text: str) -> str:
    low = text.strip().lower().lstrip("+-")
    if any(ch.isdigit() and not ("0" <= ch <= "9") for ch in text) or any(
        ord(ch) > 127 for ch in text
    ):
        return f"{text!r} is not a number (only ASCII digits 0-9 are accepted)"
    if "_" in text:
        return f"{text!r} is not a number (no '_' digit separators)"
    if low.startswith(("0x", "0o", "0b")):
        return f"{text!r} is not a number (plain decimal notation only: no hex, octal, binary)"
    if low in ("inf", "infinity", "nan"):
        return f"{text!r} is not a finite number"
    if "," in text:
        return f"{text!r} is not a number (use '.' as the decimal point, no thousands separators)"
    return f"{text!r} is not a number"


def check_magnitude(value: float, *, what: str = "the value") -> float:
    """``value`` if it is finite and ``|value| <= MAX_MAGNITUDE``, else :class:`NumberError`
    (``what`` names the value in the message)."""
    if math.isnan(value):
        raise NumberError(f"{what} is not a number (NaN)")
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise NumberError(
            f"{what} {value:g} is outside the accepted range (at most {MAX_MAGNITUDE:g} in "
            "absolute value)"
        )
    return value


def parse_number(text: str, *, what: str = "the value") -> float:
    """A float from ``text`` in plain decimal notation within the bounds.

    Surrounding whitespace is ignored. Raises :class:`NumberError`.
    """
    raw = text.strip()
    if not _DECIMAL.fullmatch(raw):
        raise NumberError(_why_not(raw))
    try:
        value = float(raw)
    except (OverflowError, ValueError):  # pragma: no cover - the pattern is float syntax
        raise NumberError(_why_not(raw)) from None
    return check_magnitude(value, what=what)


def parse_integer(text: str, *, what: str = "count") -> int:
    """An integer from ``text`` written as an integer (``54``; not ``54.0``, ``0x36``,
    ``5_4``), at most :data:`MAX_COUNT` in absolute value. Raises :class:`NumberError`."""
    raw = text.strip()
    if not _INTEGER.fullmatch(raw):
        if _DECIMAL.fullmatch(raw):
            value = float(raw)
            if math.isfinite(value) and value == round(value):
                raise NumberError(f"{what} {raw!r} must be written as an integer ({value:.0f})")
            raise NumberError(f"{what} {raw!r} is not a whole number")
        raise NumberError(_why_not(raw))
    value = int(raw)
    if abs(value) > MAX_COUNT:
        raise NumberError(f"{what} {value} is outside the accepted range (at most {MAX_COUNT:g})")
    return value


def check_se(value: float, *, what: str = "standard error") -> float:
    """``value`` if it is a standard error in [MIN_SE, MAX_SE], else :class:`NumberError`."""
    if math.isnan(value):
        raise NumberError(f"{what} is not a number (NaN)")
    if not value > 0:
        raise NumberError(f"{what} {value:g} must be > 0")
    if value < MIN_SE or value > MAX_SE or not math.isfinite(value):
        raise NumberError(
            f"{what} {value:g} is outside the accepted range [{MIN_SE:g}, {MAX_SE:g}] "
            "(too precise or too imprecise to compute with)"
        )
    return value
