"""Reading effect sizes from a CSV file: the input shapes of ``hccmeta pool`` / ``convert``.

A CSV has a column ``study`` and one of these sets of columns (matched in this order;
other columns are ignored):

==============================================  ========================================
columns                                         meaning
==============================================  ========================================
``yi, sei``                                     estimate on the analysis scale and SE
``yi, vi``                                      estimate and sampling variance
``estimate, ci_lower, ci_upper[, ci_level]``    estimate and CI; ratio measures (hr, or,
                                                rr) on their natural scale; ``ci_level``
                                                a fraction, 0.95 where absent or blank
``events_t, n_t, events_c, n_c``                two arms' counts (or, rr, rd)
==============================================  ========================================

The analysis scale is the log scale for ``hr``, ``or`` and ``rr``; the natural scale for
``rd`` and ``generic``. Counts get metafor's default continuity correction (0.5 added to
every cell of a table with a zero cell). Every problem raises
:class:`~hccmeta.errors.InputError` naming the file, line, data row and column.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from hccmeta.effects.counts import two_arm_counts
from hccmeta.effects.ratios import from_ci
from hccmeta.errors import InputError

__all__ = ["CSV_MEASURES", "CSV_SHAPES", "CsvMeasure", "read_effect_csv"]

CsvMeasure = Literal["hr", "or", "rr", "rd", "generic"]

#: Measures a CSV can hold, and their analysis scale.
CSV_MEASURES: dict[str, str] = {
    "hr": "log_hr",
    "or": "log_or",
    "rr": "log_rr",
    "rd": "rd",
    "generic": "generic",
}

#: The accepted column sets, in the order they are matched.
CSV_SHAPES: tuple[tuple[str, ...], ...] = (
    ("yi", "sei"),
    ("yi", "vi"),
    ("estimate", "ci_lower", "ci_upper"),
    ("events_t", "n_t", "events_c", "n_c"),
)

#: Relative disagreement tolerated between ``sei`` and ``sqrt(vi)`` when a file has
#: both (as ``hccmeta convert`` writes them): printing to 6+ significant digits.
_SE_VI_RTOL = 1e-4

_NAN_WORDS = frozenset({"nan", "na", "n/a", "null", "none", "-"})


class _Row:
    """One data row with its position, for messages."""

    def __init__(self, path: str, line: int, row: int, cells: dict[str, str]) -> None:
        self.path, self.line, self.row, self.cells = path, line, row, cells

    def where(self, column: str | None = None) -> str:
        col = f", column '{column}'" if column else ""
        return f"{self.path}, line {self.line} (row {self.row}){col}"

    def error(self, column: str | None, message: str) -> InputError:
        return InputError(f"{self.where(column)}: {message}")

    def number(self, column: str, *, optional: bool = False) -> float:
        raw = self.cells.get(column, "").strip()
        if raw == "":
            if optional:
                return math.nan
            raise self.error(column, "empty cell (a number is required)")
        if raw.lower() in _NAN_WORDS:
            raise self.error(column, f"missing value {raw!r} (a number is required)")
        try:
            value = float(raw)
        except ValueError:
            raise self.error(column, f"{raw!r} is not a number") from None
        if math.isnan(value):
            raise self.error(column, f"missing value {raw!r} (NaN)")
        if math.isinf(value):
            raise self.error(column, f"{raw!r} is not finite")
        return value

    def count(self, column: str) -> float:
        value = self.number(column)
        if value < 0:
            raise self.error(column, f"count {value:g} is negative")
        if value != round(value):
            raise self.error(column, f"count {value:g} is not a whole number")
        return value


def _read_rows(path: Path, shown: str) -> tuple[list[str], list[_Row]]:
    if not path.is_file():
        raise InputError(f"{shown}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown}: not a UTF-8 text file ({exc.reason})") from None
    reader = csv.reader(text.splitlines())
    header: list[str] | None = None
    header_line = 0
    rows: list[_Row] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                header_line = line
                seen: set[str] = set()
                for i, name in enumerate(header, start=1):
                    if name == "":
                        raise InputError(f"{shown}, line {line}: column {i} has no name")
                    if name in seen:
                        raise InputError(f"{shown}, line {line}: duplicate column '{name}'")
                    seen.add(name)
                continue
            if len(cells) != len(header):
                raise InputError(
                    f"{shown}, line {line} (row {len(rows) + 1}): {len(cells)} cells, but "
                    f"the header (line {header_line}) has {len(header)} columns"
                )
            rows.append(_Row(shown, line, len(rows) + 1, dict(zip(header, cells, strict=True))))
    except csv.Error as exc:
        raise InputError(f"{shown}, line {reader.line_num}: malformed CSV ({exc})") from None
    if header is None:
        raise InputError(f"{shown}: empty file (no header and no data rows)")
    if not rows:
        raise InputError(f"{shown}: empty file (a header but no data rows)")
    return header, rows


def _shape(header: Sequence[str], shown: str) -> tuple[str, ...]:
    if "study" not in header:
        raise InputError(f"{shown}: missing column 'study' (columns found: {', '.join(header)})")
    cols = set(header)
    for shape in CSV_SHAPES:
        if cols.issuperset(shape):
            return shape
    # name what is missing from the nearest shape
    best = max(CSV_SHAPES, key=lambda s: len(cols.intersection(s)) / len(s))
    if not cols.intersection(best):
        raise InputError(
            f"{shown}: missing columns: need 'study' and one of 'yi,sei' | 'yi,vi' | "
            "'estimate,ci_lower,ci_upper[,ci_level]' | 'events_t,n_t,events_c,n_c' "
            f"(columns found: {', '.join(header)})"
        )
    missing = [c for c in best if c not in cols]
    if best[0] == "yi":
        missing = ["sei' or 'vi"]
    raise InputError(
        f"{shown}: missing column{'s' if len(missing) > 1 else ''} "
        + ", ".join(f"'{m}'" for m in missing)
        + f" (for the columns {','.join(best)}; columns found: {', '.join(header)})"
    )


def read_effect_csv(path: str | os.PathLike[str], measure: str = "generic") -> pd.DataFrame:
    """Read a CSV of effect sizes into ``study, yi, vi, sei`` on the analysis scale.

    Parameters
    ----------
    path : path-like
        The CSV file (see the module docstring for its accepted column sets).
    measure : {"hr", "or", "rr", "rd", "generic"}
        What the file holds. ``yi`` columns are taken as on the analysis scale (log for
        ratio measures); ``estimate`` and CI columns on the natural scale.

    Returns
    -------
    pandas.DataFrame
        Columns ``study`` (str), ``yi``, ``vi``, ``sei`` (float), one row per data row.
        ``attrs`` records ``measure`` (the analysis scale), ``shape`` (the column set
        used) and ``continuity_corrected`` (studies whose table was corrected).

    Raises
    ------
    InputError
        Naming the file, line, row and column of the first problem.
    """
    shown = os.fspath(path)
    if measure not in CSV_MEASURES:
        raise InputError(f"measure = {measure!r}: must be one of {', '.join(CSV_MEASURES)}")
    header, rows = _read_rows(Path(path), shown)
    shape = _shape(header, shown)
    studies: list[str] = []
    for r in rows:
        name = r.cells["study"].strip()
        if not name:
            raise r.error("study", "empty study label")
        studies.append(name)

    ratio = measure in ("hr", "or", "rr")
    corrected: list[str] = []
    if shape[0] == "yi":
        yi = np.array([r.number("yi") for r in rows])
        has_sei, has_vi = "sei" in header, "vi" in header
        sei = np.empty(len(rows))
        for i, r in enumerate(rows):
            s = r.number("sei") if has_sei else math.nan
            v = r.number("vi") if has_vi else math.nan
            if has_sei and s <= 0:
                raise r.error("sei", f"standard error {s:g} must be > 0")
            if has_vi and v <= 0:
                raise r.error("vi", f"variance {v:g} must be > 0")
            if has_sei and has_vi and abs(math.sqrt(v) - s) > _SE_VI_RTOL * s:
                raise r.error("vi", f"vi = {v:g} disagrees with sei = {s:g} (sei^2 = {s * s:g})")
            sei[i] = s if has_sei else math.sqrt(v)
    elif shape[0] == "estimate":
        est, lo, hi, lev = (np.empty(len(rows)) for _ in range(4))
        has_level = "ci_level" in header
        for i, r in enumerate(rows):
            est[i], lo[i], hi[i] = r.number("estimate"), r.number("ci_lower"), r.number("ci_upper")
            if ratio:
                for col, v in (("estimate", est[i]), ("ci_lower", lo[i]), ("ci_upper", hi[i])):
                    if v <= 0:
                        raise r.error(
                            col,
                            f"{v:g} is not positive: a {measure.upper()} is a ratio > 0 "
                            "(give ratios on their natural scale, not logged)",
                        )
            if not lo[i] < hi[i]:
                raise r.error(
                    "ci_lower", f"CI reversed or empty: ci_lower {lo[i]:g} >= ci_upper {hi[i]:g}"
                )
            if not lo[i] <= est[i] <= hi[i]:
                raise r.error(
                    "estimate", f"estimate {est[i]:g} lies outside its CI ({lo[i]:g}, {hi[i]:g})"
                )
            level = r.number("ci_level", optional=True) if has_level else math.nan
            if math.isnan(level):
                level = 0.95
            elif 1 < level <= 100:
                raise r.error(
                    "ci_level",
                    f"{level:g} looks like a percentage: give the level as a fraction "
                    f"({level / 100:g})",
                )
            elif not 0 < level < 1:
                raise r.error("ci_level", f"confidence level {level:g} must lie in (0, 1)")
            lev[i] = level
        d = from_ci(est, lo, hi, level=lev, log=ratio, measure=CSV_MEASURES[measure])
        yi, sei = d.yi, d.sei
    else:
        if measure not in ("or", "rr", "rd"):
            raise InputError(
                f"{shown}: columns events_t,n_t,events_c,n_c give an or, rr or rd, not "
                f"measure '{measure}'"
            )
        cells = np.empty((len(rows), 4))
        for i, r in enumerate(rows):
            et, nt, ec, nc = (r.count(c) for c in ("events_t", "n_t", "events_c", "n_c"))
            for col, v in (("n_t", nt), ("n_c", nc)):
                if v == 0:
                    raise r.error(col, "group size 0 (must be > 0)")
            if et > nt:
                raise r.error("events_t", f"events_t {et:g} exceeds n_t {nt:g}")
            if ec > nc:
                raise r.error("events_c", f"events_c {ec:g} exceeds n_c {nc:g}")
            cells[i] = (et, nt, ec, nc)
        d = two_arm_counts(*cells.T, measure=CSV_MEASURES[measure])  # type: ignore[arg-type]
        yi, sei = d.yi, d.sei
        corrected = [s for s, c in zip(studies, d.flags["continuity_correction"], strict=True) if c]
    out = pd.DataFrame(
        {
            "study": pd.Series(studies, dtype=str),
            "yi": np.asarray(yi, dtype=float),
            "vi": np.asarray(sei, dtype=float) ** 2,
            "sei": np.asarray(sei, dtype=float),
        }
    )
    out.attrs.update(
        measure=CSV_MEASURES[measure], shape=",".join(shape), continuity_corrected=corrected
    )
    return out
