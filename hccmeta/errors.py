"""Errors raised by hccmeta.

Every error a user can provoke with bad input is an :class:`HccmetaError`; the command
line turns it into exit status 2 and a message without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class HccmetaError(Exception):
    """Base class of the errors that bad input provokes (exit status 2 on the CLI)."""


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
        return ": ".join(parts) + f": {self.message}"


class StudyDataError(HccmetaError):
    """The study data failed validation; :attr:`problems` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the study data"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))
