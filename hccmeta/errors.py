"""Errors raised by hccmeta.

Every error a user can provoke with bad input is an :class:`HccmetaError`; the command
line turns it into exit status 2 and a message without a traceback.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

#: Characters that break a one-line message or hide text: C0/C1 controls (but the
#: tab), the Unicode line and paragraph separators, the bidirectional controls, and
#: lone surrogates (the bytes of a file name that is not UTF-8).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unsafe_char(ch: str) -> bool:
    """Whether ``ch`` may not appear verbatim in a one-line message or in study text."""
    cat = unicodedata.category(ch)
    return (cat == "Cc" and ch != "\t") or cat == "Cs" or ch in "\u2028\u2029" or ch in _BIDI


def printable(text: str) -> str:
    """``text`` with every character that :func:`unsafe_char` names written as an escape
    (``\\n``, ``\\x00``, ``\\u202e``), so that a message stays on one line and shows
    what is there (a file name with a newline, a control character in a value)."""
    if not any(unsafe_char(ch) for ch in text):
        return text
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif unsafe_char(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


class HccmetaError(Exception):
    """Base class of the errors that bad input provokes (exit status 2 on the CLI)."""


class HccmetaWarning(UserWarning):
    """Something the user should know about a result that is not an error (e.g. priors
    chosen by a rule). The command line prints each one as one line on stderr."""


class InputError(HccmetaError, ValueError):
    """An argument or an input file has an invalid value.

    The message names the argument (or file, row and column) and the offending value.
    """


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in the study data: where it is and what is wrong.

    Attributes
    ----------
    file : str
        Path of the study file (as given, relative where possible).
    line : int or None
        1-based line number in that file, where it could be located.
    record : str or None
        Id of the record (or ``study``/arm id) the problem is in.
    field : str or None
        Dotted path of the field inside that record, e.g. ``groups[0].median.value``.
    message : str
        What is wrong, with the offending value.
    kind : str
        What ``record`` names: ``"record"``, ``"arm"``, ``"characteristic"``,
        ``"assessment"`` (a risk-of-bias assessment) or ``"study"``.
    """

    file: str
    line: int | None
    record: str | None
    field: str | None
    message: str
    kind: str = "record"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        parts = [where]
        if self.record:
            parts.append(f"{self.kind} {self.record}")
        if self.field:
            parts.append(f"field {self.field}")
        return printable(": ".join(parts) + f": {self.message}")


class StudyDataError(HccmetaError):
    """The study data failed validation; :attr:`problems` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the study data"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


class InputProblems(InputError):
    """Several located problems of one input file (a CSV), all found in one pass.

    :attr:`lines` holds one line per problem, ``FILE:LINE: column C: message``; the
    command line prints them as they are (exit status 2).
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines: list[str] = [printable(line) for line in lines]
        super().__init__("\n".join(self.lines))
