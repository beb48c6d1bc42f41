"""Reading effect sizes from a CSV file: the input shapes of ``hccmeta pool`` / ``convert``.

A CSV is comma-separated, UTF-8, with a column ``study`` and exactly one of these sets
of columns (other columns are ignored, but a file may not hold the columns of two sets:
that is ambiguous and refused):

==============================================  ========================================
columns                                         meaning
==============================================  ========================================
``yi, sei`` (or ``yi, vi``, or both)            estimate on the analysis scale and SE
                                                (or sampling variance; both must agree)
``estimate, ci_lower, ci_upper[, ci_level]``    estimate and CI; ratio measures (hr, or,
                                                rr) on their natural scale; ``ci_level``
                                                a fraction, 0.95 where absent or blank
``events_t, n_t, events_c, n_c``                two arms' counts (or, rr, rd)
==============================================  ========================================

The analysis scale is the log scale for ``hr``, ``or`` and ``rr``; the natural scale for
``rd`` and ``generic``. Counts get metafor's default continuity correction (0.5 added to
every cell of a table with a zero cell). Numbers follow :mod:`hccmeta.numeric` (plain
decimal notation, finite, at most 1e12 in absolute value; counts written as integers);
every derived standard error lies in [1e-12, 1e12], so that no row gets ``sei = 0``,
``vi = 0`` or ``vi = inf``.

Every problem of the file is found in one pass and raised together as
:class:`~hccmeta.errors.InputProblems`, one line each: ``FILE:LINE: column C: message``
(``LINE`` the line of the file where the row starts), including every repeated study
label (naming the line of its first occurrence). A file that is not comma-separated
(``;``, tab, ``|``) is named as such.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from hccmeta.data.yamlio import read_file, utf8_problem
from hccmeta.effects.base import effect_problem
from hccmeta.effects.counts import two_arm_counts
from hccmeta.effects.ratios import from_ci
from hccmeta.errors import InputError, InputProblems, Problem, printable
from hccmeta.numeric import MAX_SE, MIN_SE, NumberError, check_se, parse_integer, parse_number

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

#: The columns of each input shape (a file may hold the columns of one only).
_FAMILIES: dict[str, tuple[str, ...]] = {
    "yi,sei": ("yi", "sei", "vi"),
    "estimate,ci_lower,ci_upper": ("estimate", "ci_lower", "ci_upper", "ci_level"),
    "events_t,n_t,events_c,n_c": ("events_t", "n_t", "events_c", "n_c"),
}

#: Relative disagreement tolerated between ``sei`` and ``sqrt(vi)`` when a file has
#: both (as ``hccmeta convert`` writes them): printing to 6+ significant digits.
_SE_VI_RTOL = 1e-4

#: Largest CSV file read.
_MAX_BYTES = 64 * 1024 * 1024

_NAN_WORDS = frozenset({"nan", "na", "n/a", "null", "none", "-"})
_DELIMITERS = {";": "semicolons (';')", "\t": "tabs", "|": "vertical bars ('|')"}


class _Row:
    """One data row with its position; collects the problems of its cells."""

    def __init__(
        self, path: str, line: int, cells: dict[str, str], out: list[tuple[int, str]]
    ) -> None:
        self.path, self.line, self.cells, self.out = path, line, cells, out
        self.bad = False

    def add(self, column: str | None, message: str) -> None:
        col = f" column {column}:" if column else ""
        self.out.append((self.line, f"{self.path}:{self.line}:{col} {message}"))
        self.bad = True

    def number(self, column: str, *, optional: bool = False) -> float:
        """The cell as a number (NaN, with a problem recorded, where it is not one)."""
        raw = self.cells.get(column, "").strip()
        if raw == "":
            if not optional:
                self.add(column, "empty cell (a number is required)")
            return math.nan
        if raw.lower() in _NAN_WORDS:
            self.add(column, f"missing value {raw!r} (a number is required)")
            return math.nan
        try:
            return parse_number(raw)
        except NumberError as exc:
            self.add(column, str(exc))
            return math.nan

    def count(self, column: str) -> float:
        raw = self.cells.get(column, "").strip()
        if raw == "" or raw.lower() in _NAN_WORDS:
            return self.number(column)
        try:
            value = parse_integer(raw, what=f"count {column}")
        except NumberError as exc:
            self.add(column, str(exc))
            return math.nan
        if value < 0:
            self.add(column, f"count {value} is negative")
            return math.nan
        return float(value)


def _delimiter_hint(first_line: str) -> str | None:
    for delim, name in _DELIMITERS.items():
        if delim in first_line and "," not in first_line:
            return name
    return None


def _read_rows(path: Path, shown: str) -> tuple[list[str], list[_Row], list[tuple[int, str]]]:
    """Header, data rows, and the list their problems are collected in. File-level
    problems (unreadable, not UTF-8, empty, bad header) raise at once."""
    if path.is_dir():
        raise InputError(f"{shown}: is a directory, not a CSV file")
    data = read_file(path, shown, max_bytes=_MAX_BYTES)
    if isinstance(data, Problem):
        if not os.path.lexists(path):
            raise InputError(f"{shown}: file not found")
        raise InputError(str(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(str(utf8_problem(data, exc, shown))) from None
    if "\0" in text:
        offset = text.index("\0")
        raise InputError(
            f"{shown}:{text.count(chr(10), 0, offset) + 1}: a NUL byte: not a text (CSV) file"
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[_Row] = []
    out: list[tuple[int, str]] = []
    start = 1
    try:
        for cells in reader:
            line = start
            start = reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                header_line = line
                hint = _delimiter_hint(text.split("\n", line)[line - 1])
                if hint is not None:
                    raise InputError(
                        f"{shown}:{line}: the columns are separated by {hint}, not commas: "
                        "save the file as comma-separated values"
                    )
                seen: set[str] = set()
                for i, name in enumerate(header, start=1):
                    if name == "":
                        raise InputError(f"{shown}:{line}: column {i} has no name")
                    if name in seen:
                        raise InputError(f"{shown}:{line}: duplicate column '{name}'")
                    seen.add(name)
                continue
            if len(cells) != len(header):
                out.append(
                    (
                        line,
                        f"{shown}:{line}: {len(cells)} cells, but the header (line "
                        f"{header_line}) has {len(header)} columns",
                    )
                )
                continue
            rows.append(_Row(shown, line, dict(zip(header, cells, strict=True)), out))
    except csv.Error as exc:
        raise InputError(f"{shown}:{reader.line_num}: malformed CSV ({exc})") from None
    if header is None:
        raise InputError(f"{shown}: empty file (no header and no data rows)")
    if not rows and not out:
        raise InputError(f"{shown}: empty file (a header but no data rows)")
    return header, rows, out


def _shape(header: Sequence[str], shown: str) -> tuple[str, ...]:
    if "study" not in header:
        raise InputError(f"{shown}: missing column 'study' (columns found: {', '.join(header)})")
    cols = set(header)
    present = {name: [c for c in fam if c in cols] for name, fam in _FAMILIES.items()}
    complete = [
        shape for shape in CSV_SHAPES if cols.issuperset(shape)
    ]  # in the order of CSV_SHAPES
    used = [name for name, found in present.items() if found]
    if len(used) > 1:
        sets = " and ".join(",".join(present[name]) for name in used)
        raise InputError(
            f"{shown}: ambiguous columns: {sets} belong to different input shapes; keep the "
            "columns of one shape (yi,sei | yi,vi | estimate,ci_lower,ci_upper[,ci_level] | "
            "events_t,n_t,events_c,n_c)"
        )
    if complete:
        return complete[0]
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


def _yi_rows(rows: list[_Row], header: Sequence[str]) -> tuple[list[float], list[float]]:
    has_sei, has_vi = "sei" in header, "vi" in header
    yi, sei = [], []
    for r in rows:
        y = r.number("yi")
        s = r.number("sei") if has_sei else math.nan
        v = r.number("vi") if has_vi else math.nan
        if has_sei and not math.isnan(s):
            try:
                check_se(s, what="standard error")
            except NumberError as exc:
                r.add("sei", str(exc))
        if has_vi and not math.isnan(v):
            try:
                check_se(math.sqrt(v) if v > 0 else v, what="the square root of the variance")
            except NumberError as exc:
                r.add("vi", f"variance {v:g}: {exc}" if v > 0 else f"variance {v:g} must be > 0")
        if has_sei and has_vi and s > 0 and v > 0 and abs(math.sqrt(v) - s) > _SE_VI_RTOL * s:
            r.add("vi", f"vi = {v:g} disagrees with sei = {s:g} (sei^2 = {s * s:g})")
        yi.append(y)
        sei.append(s if has_sei else (math.sqrt(v) if v > 0 else math.nan))
    return yi, sei


def _ci_rows(
    rows: list[_Row], header: Sequence[str], measure: str
) -> tuple[list[float], list[float]]:
    ratio = measure in ("hr", "or", "rr")
    has_level = "ci_level" in header
    yi, sei = [], []
    for r in rows:
        est, lo, hi = r.number("estimate"), r.number("ci_lower"), r.number("ci_upper")
        level = r.number("ci_level", optional=True) if has_level else math.nan
        yi.append(math.nan)
        sei.append(math.nan)
        if ratio:
            for col, v in (("estimate", est), ("ci_lower", lo), ("ci_upper", hi)):
                if v <= 0:
                    r.add(
                        col,
                        f"{v:g} is not positive: a {measure.upper()} is a ratio > 0 "
                        "(give ratios on their natural scale, not logged)",
                    )
        if lo >= hi:
            r.add("ci_lower", f"CI reversed or empty: ci_lower {lo:g} >= ci_upper {hi:g}")
        elif not lo <= est <= hi and not any(map(math.isnan, (lo, est, hi))):
            r.add("estimate", f"estimate {est:g} lies outside its CI ({lo:g}, {hi:g})")
        if 1 < level <= 100:
            r.add(
                "ci_level",
                f"{level:g} looks like a percentage: give the level as a fraction "
                f"({level / 100:g})",
            )
        elif not math.isnan(level) and not 0 < level < 1:
            r.add("ci_level", f"confidence level {level:g} must lie in (0, 1)")
        if r.bad or any(map(math.isnan, (est, lo, hi))):
            continue
        d = from_ci(
            est,
            lo,
            hi,
            level=0.95 if math.isnan(level) else level,
            log=ratio,
            measure=CSV_MEASURES[measure],
        )
        yi[-1], sei[-1] = float(d.yi), float(d.sei)
    return yi, sei


def _count_rows(
    rows: list[_Row], measure: str, studies: list[str]
) -> tuple[list[float], list[float], list[str]]:
    yi, sei, corrected = [], [], []
    for r, study in zip(rows, studies, strict=True):
        et, nt, ec, nc = (r.count(c) for c in ("events_t", "n_t", "events_c", "n_c"))
        yi.append(math.nan)
        sei.append(math.nan)
        for col, v in (("n_t", nt), ("n_c", nc)):
            if v == 0:
                r.add(col, "group size 0 (must be > 0)")
        if et > nt:
            r.add("events_t", f"events_t {et:g} exceeds n_t {nt:g}")
        if ec > nc:
            r.add("events_c", f"events_c {ec:g} exceeds n_c {nc:g}")
        if r.bad:
            continue
        d = two_arm_counts(et, nt, ec, nc, measure=CSV_MEASURES[measure])  # type: ignore[arg-type]
        yi[-1], sei[-1] = float(d.yi), float(d.sei)
        if bool(np.asarray(d.flags["continuity_correction"])):
            corrected.append(study)
    return yi, sei, corrected


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
        For a problem of the whole file (not found, a directory, not UTF-8, not
        comma-separated, missing or ambiguous columns), naming the file.
    InputProblems
        Listing every problem of the rows, one line each (``FILE:LINE: column C:
        message``).
    """
    shown = printable(os.fspath(path))
    if measure not in CSV_MEASURES:
        raise InputError(f"measure = {measure!r}: must be one of {', '.join(CSV_MEASURES)}")
    header, rows, out = _read_rows(Path(path), shown)
    shape = _shape(header, shown)
    if shape[0] == "events_t" and measure not in ("or", "rr", "rd"):
        raise InputError(
            f"{shown}: columns events_t,n_t,events_c,n_c give an or, rr or rd, not "
            f"measure '{measure}'"
        )
    studies: list[str] = []
    first: dict[str, int] = {}
    for r in rows:
        name = r.cells["study"].strip()
        if not name:
            r.add("study", "empty study label")
        elif name.lower() in _NAN_WORDS:
            r.add("study", f"study label {name!r} reads as a missing value")
        elif name in first:
            r.add("study", f"study {printable(name)!r} repeats the study of line {first[name]}")
        else:
            first[name] = r.line
        studies.append(name)

    corrected: list[str] = []
    if shape[0] == "yi":
        yi, sei = _yi_rows(rows, header)
    elif shape[0] == "estimate":
        yi, sei = _ci_rows(rows, header, measure)
    else:
        yi, sei, corrected = _count_rows(rows, measure, studies)
    derived_from = "ci_lower,ci_upper" if shape[0] == "estimate" else ",".join(shape)
    for r, y, s in zip(rows, yi, sei, strict=True):
        problem = None if r.bad else effect_problem(y, s)
        if problem is not None:
            column, message = problem
            if shape[0] == "yi":
                r.add("sei" if column == "sei" and "sei" in header else column, message)
            elif column == "sei":
                r.add(
                    derived_from,
                    f"the standard error derived from these columns, {s:g}, is outside the "
                    f"accepted range [{MIN_SE:g}, {MAX_SE:g}] (too precise or too imprecise to "
                    "compute with)",
                )
            else:
                r.add(derived_from, f"the estimate derived from these columns: {message}")
    if out:
        raise InputProblems(message for _, message in sorted(out, key=lambda item: item[0]))
    out_df = pd.DataFrame(
        {
            "study": pd.Series(studies, dtype=str),
            "yi": np.asarray(yi, dtype=float),
            "vi": np.asarray(sei, dtype=float) ** 2,
            "sei": np.asarray(sei, dtype=float),
        }
    )
    out_df.attrs.update(
        measure=CSV_MEASURES[measure], shape=",".join(shape), continuity_corrected=corrected
    )
    return out_df
