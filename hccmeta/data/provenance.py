"""Provenance: every snippet occurs in its source, every number occurs in its snippet.

Matching is whitespace- and hyphenation-insensitive: the PDF-extracted sources break
words across lines ("chemoemboliza-\\ntion", "acce- pted") and put stray spaces inside
words, so both texts are compared with all whitespace and hyphens (and dashes) removed.
Numbers are compared as numbers: ``9`` matches "9 months", a proportion ``0.58``
matches "58%" or "0.58", a confidence level ``0.95`` matches "95% CI".
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from hccmeta.data.schema import (
    CharacteristicLevel,
    CountGroup,
    Interval,
    Landmark,
    Study,
)
from hccmeta.data.yamlio import utf8_problem
from hccmeta.errors import StudyDataError, printable

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2212\u00ad"
_STRIP = re.compile(r"[\s" + re.escape(_DASHES) + r"]+")
_NUMBER = re.compile(r"(?<![\d.])(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)(?![\d])")
_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
}  # fmt: skip
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)


def ignored(char: str) -> bool:
    """Whether snippet matching ignores ``char`` (whitespace, hyphens and dashes)."""
    return _STRIP.fullmatch(char) is not None


def squash(text: str) -> str:
    """Canonical form for snippet matching: NFKC, no whitespace, no hyphens or dashes."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text))


def numbers_in(text: str) -> list[float]:
    """The numbers printed in ``text`` (digits and the number words one to fifty).

    Line-break hyphenation inside numbers does not occur in the sources; a range such
    as "4.8-7.5" yields 4.8 and 7.5.
    """
    text = unicodedata.normalize("NFKC", text)
    found = [float(m.group(1).replace(",", "")) for m in _NUMBER.finditer(text)]
    found += [float(_WORDS[m.group(1).lower()]) for m in _WORD.finditer(text)]
    return found


@dataclass(frozen=True, slots=True)
class Value:
    """A number of the study data with its field path and how it may be printed."""

    loc: tuple[str | int, ...]
    value: float
    percent_ok: bool  # a fraction that the source may print as a percentage


def _is_fraction_field(parent: BaseModel | None, name: str) -> bool:
    if isinstance(parent, Landmark) and name == "survival":
        return True
    if isinstance(parent, CountGroup) and name in ("proportion", "category_proportions"):
        return True
    if isinstance(parent, CharacteristicLevel) and name == "proportions":
        return True
    return isinstance(parent, Interval) and name == "level"


def iter_values(
    obj: object,
    loc: tuple[str | int, ...] = (),
    *,
    parent: BaseModel | None = None,
    fraction: bool = False,
) -> Iterator[Value]:
    """Every numeric value of a schema object (bools excluded), depth first.

    Values that are references or defaults rather than printed numbers are skipped:
    the confidence level when the source does not state it (null) is never visited.
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, int | float):
        yield Value(loc, float(obj), fraction)
        return
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            value = getattr(obj, name)
            frac = _is_fraction_field(obj, name) or (
                fraction and isinstance(obj, Interval) and name in ("lower", "upper")
            )
            yield from iter_values(value, (*loc, name), parent=obj, fraction=frac)
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from iter_values(value, (*loc, key), parent=parent, fraction=fraction)
        return
    if isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            yield from iter_values(value, (*loc, i), parent=parent, fraction=fraction)


def _landmark_ci_fraction(values: list[Value]) -> list[Value]:
    """Mark the CI bounds of landmark survival (fractions too) as percent-printable."""
    out = []
    for v in values:
        if "landmarks" in v.loc and "ci" in v.loc and v.loc[-1] in ("lower", "upper"):
            v = Value(v.loc, v.value, True)
        out.append(v)
    return out


def number_in(value: Value, printed: list[float]) -> bool:
    """Whether ``value`` occurs among the numbers printed in a snippet."""
    targets = [value.value]
    if value.percent_ok:
        targets.append(value.value * 100)
    return any(math.isclose(t, p, rel_tol=1e-9, abs_tol=1e-9) for t in targets for p in printed)


@dataclass(frozen=True, slots=True)
class Unverified:
    """A provenance failure: where, and why."""

    loc: tuple[str | int, ...]
    message: str


@dataclass(frozen=True, slots=True)
class SourceText:
    """A source document, with its canonical (squashed) text for matching."""

    path: Path
    text: str
    squashed: str

    @classmethod
    def read(cls, path: Path) -> SourceText:
        """Read a source text; a file that is not UTF-8 is a :class:`StudyDataError`
        naming its line and column."""
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StudyDataError([utf8_problem(data, exc, printable(str(path)))]) from None
        return cls(path, text, squash(text))


def _units(study: Study) -> Iterator[tuple[tuple[str | int, ...], str, BaseModel, list[Value]]]:
    """The provenance units of a study: (location, id, object, numbers to verify)."""
    study_vals = [
        Value(("population_size",), float(study.population_size), False)
        if study.population_size is not None
        else None
    ]
    if study.enrolment is not None:
        for name in ("start", "end", "follow_up_end"):
            val = getattr(study.enrolment, name)
            if val is not None:
                study_vals.append(Value(("enrolment", name), float(val[:4]), False))
    yield (), study.id, study, [v for v in study_vals if v is not None]
    for i, arm in enumerate(study.arms):
        vals = [Value(("arms", i, "n"), float(arm.n), False)] if arm.n is not None else []
        yield ("arms", i), arm.id, arm, vals
    for i, ch in enumerate(study.characteristics):
        base: tuple[str | int, ...] = ("characteristics", i)
        vals = [
            Value((*base, *v.loc), v.value, v.percent_ok)
            for v in iter_values(ch)
            if v.loc[0] != "provenance"
        ]
        yield base, ch.id, ch, vals
    if study.risk_of_bias is not None:
        for i, a in enumerate(study.risk_of_bias.assessments):
            for j, dom in enumerate(a.domains):
                if dom.provenance:
                    yield ("risk_of_bias", "assessments", i, "domains", j), a.id, dom, []
    for i, rec in enumerate(study.records):
        base = ("records", i)
        vals = [
            Value((*base, *v.loc), v.value, v.percent_ok)
            for v in _landmark_ci_fraction(list(iter_values(rec)))
            if v.loc[0] != "provenance"
        ]
        yield base, rec.id, rec, vals
    for i, cond in enumerate(study.inclusion_conditions):
        base = ("inclusion_conditions", i)
        vals = [
            Value((*base, *v.loc), v.value, v.percent_ok)
            for v in iter_values(cond)
            if v.loc[0] != "provenance"
        ]
        yield base, f"{study.id}.inclusion_conditions[{i}]", cond, vals


def _shorten(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def verify_study(
    study: Study, sources: list[SourceText], *, check_snippets: bool = True
) -> tuple[int, list[Unverified]]:
    """Check every snippet of ``study`` against ``sources`` (the study's own source
    texts) and every number against its snippets.

    With ``check_snippets=False`` (the study's source text is not available) only the
    numbers are checked against the snippets.

    Returns the number of verified values and the failures.
    """
    names = ", ".join(src.path.name for src in sources) or "its source text"
    verified = 0
    failures: list[Unverified] = []
    for base, _uid, obj, values in _units(study):
        provenance = getattr(obj, "provenance")  # noqa: B009
        printed: list[float] = []
        for k, prov in enumerate(provenance):
            needle = squash(prov.snippet)
            if check_snippets and not any(needle in src.squashed for src in sources):
                failures.append(
                    Unverified(
                        (*base, "provenance", k, "snippet"),
                        f"snippet not found in {names}: {_shorten(prov.snippet)!r} "
                        "(`hccmeta locate` shows the closest text)",
                    )
                )
            printed.extend(numbers_in(prov.snippet))
        for v in values:
            if number_in(v, printed):
                verified += 1
            else:
                shown = f"{v.value:g}" + (f" (or {v.value * 100:g}%)" if v.percent_ok else "")
                failures.append(
                    Unverified(v.loc, f"value {shown} does not occur in the record's snippets")
                )
    return verified, failures
