"""The open vocabulary of the study files: ``vocabulary.yaml`` of the data directory.

Regimens, clinical settings, time origins, designs, endpoints and subgroup variables
(with their levels) are data, not code: each term has a label (what the report prints,
e.g. 'Sorafenib + TACE') and a definition. A study file may only use terms the
vocabulary defines, and the analysis registry's selectors may only name such terms;
adding a new regimen, setting or time origin is an edit of ``vocabulary.yaml``.

Designs carry ``randomised`` (the certainty of evidence starts high for randomised and
low for non-randomised comparisons) and ``prospective`` (the ``prospective_only``
subset); regimens may carry ``exposure_rank`` (in a comparison hccmeta makes itself
between two arms of a count record, the arm of higher rank is the exposed one);
endpoints carry the record type they belong to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hccmeta.data.schema import CountRecord, Study, SurvivalRecord
from hccmeta.data.yamlio import read_yaml
from hccmeta.errors import InputError, Problem, StudyDataError

__all__ = [
    "FIELDS",
    "VOCABULARY_FILE",
    "DesignTerm",
    "EndpointTerm",
    "RegimenTerm",
    "SubgroupVariable",
    "Term",
    "TermCheck",
    "Vocabulary",
    "check_terms",
    "is_prospective",
    "is_randomised",
    "label",
    "load_vocabulary",
    "vocabulary_path",
]

#: Name of the vocabulary file in a data directory.
VOCABULARY_FILE = "vocabulary.yaml"

#: The vocabulary sections and the study-file field each one defines.
FIELDS: dict[str, str] = {
    "regimen": "arms[].regimen",
    "setting": "setting",
    "time_origin": "records[].time_origin (survival records)",
    "design": "design",
    "endpoint": "records[].endpoint",
    "subgroup_variable": "records[].groups[].subgroup.variable (and .level)",
}

_KEY = r"^[a-z0-9][a-z0-9_.\-]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Term(_Model):
    """A term: its label (printed in the report) and its definition."""

    label: str = Field(min_length=1, description="Short label, e.g. 'Sorafenib + TACE'.")
    definition: str = Field(min_length=3, description="What the term means, in words.")


class RegimenTerm(Term):
    """A regimen; ``exposure_rank`` orders regimens from least to most treatment."""

    exposure_rank: int | None = Field(
        default=None,
        description="Higher = more treatment. Where hccmeta compares two arms of a count "
        "record itself, the arm of higher rank is the exposed one; a regimen without a rank "
        "is never compared that way (only through contrasts the record states).",
    )


class DesignTerm(Term):
    """A study design, with what the certainty of evidence and the subsets need."""

    randomised: bool = Field(description="True for randomised comparisons.")
    prospective: bool = Field(description="True for prospective studies.")


class EndpointTerm(Term):
    """An endpoint and the record type it belongs to."""

    record_type: Literal["survival", "counts"] = Field(
        description="'survival' (time to event) or 'counts' (response, adverse events, ...)."
    )


class Level(_Model):
    """A level of a subgroup variable."""

    label: str = Field(min_length=1)
    definition: str | None = None


class SubgroupVariable(Term):
    """A variable that defines subgroups, with its levels."""

    levels: dict[str, Level] = Field(min_length=1)


class Vocabulary(_Model):
    """The vocabulary of a data directory (``vocabulary.yaml``)."""

    regimen: dict[str, RegimenTerm] = Field(min_length=1)
    setting: dict[str, Term] = Field(min_length=1)
    time_origin: dict[str, Term] = Field(min_length=1)
    design: dict[str, DesignTerm] = Field(min_length=1)
    endpoint: dict[str, EndpointTerm] = Field(min_length=1)
    subgroup_variable: dict[str, SubgroupVariable] = Field(default_factory=dict)

    @field_validator("regimen", "setting", "time_origin", "design", "endpoint", "subgroup_variable")
    @classmethod
    def _keys(cls, v: dict[str, object]) -> dict[str, object]:
        for key in v:
            if not re.match(_KEY, key) or len(key) > 80:
                raise ValueError(
                    f"term {key!r}: terms are lower case, letters, digits, '_', '.', '-'"
                )
        return v

    # ---- look-ups ---------------------------------------------------------------
    def terms(self, section: str) -> dict[str, Term]:
        """The terms of a section (``regimen``, ``setting``, ...)."""
        if section not in FIELDS:
            raise InputError(f"unknown vocabulary section {section!r} (known: {', '.join(FIELDS)})")
        return dict(getattr(self, section))

    def label(self, section: str, term: str | None) -> str:
        """The label of ``term`` (the term itself if it is unknown or None -> '')."""
        if term is None:
            return ""
        found = self.terms(section).get(term)
        return found.label if found is not None else term

    def level_label(self, variable: str, level: str) -> str:
        """The label of a subgroup level (the level itself if unknown)."""
        var = self.subgroup_variable.get(variable)
        lev = var.levels.get(level) if var is not None else None
        return lev.label if lev is not None else level

    def is_randomised(self, design: str) -> bool:
        """Whether ``design`` is a randomised design (InputError if unknown)."""
        return self._design(design).randomised

    def is_prospective(self, design: str) -> bool:
        """Whether ``design`` is a prospective design (InputError if unknown)."""
        return self._design(design).prospective

    def _design(self, design: str) -> DesignTerm:
        found = self.design.get(design)
        if found is None:
            raise InputError(f"unknown design {design!r} (known: {', '.join(self.design)})")
        return found

    def exposure_ranks(self) -> dict[str, int]:
        """``{regimen: exposure_rank}`` for the regimens that have one."""
        return {k: t.exposure_rank for k, t in self.regimen.items() if t.exposure_rank is not None}

    def endpoints(self, record_type: str) -> list[str]:
        """The endpoints of a record type (``survival`` or ``counts``)."""
        return [k for k, t in self.endpoint.items() if t.record_type == record_type]

    def levels(self, variables: list[str] | None = None) -> set[str]:
        """The levels of the given subgroup variables (of all, if None)."""
        names = list(self.subgroup_variable) if variables is None else variables
        out: set[str] = set()
        for name in names:
            var = self.subgroup_variable.get(name)
            if var is not None:
                out |= set(var.levels)
        return out


def is_randomised(design: str, vocabulary: Vocabulary) -> bool:
    """Whether ``design`` is randomised according to ``vocabulary`` (its ``randomised``
    flag); the certainty of evidence starts high for randomised and low for
    non-randomised evidence. InputError for an unknown design."""
    return vocabulary.is_randomised(design)


def is_prospective(design: str, vocabulary: Vocabulary) -> bool:
    """Whether ``design`` is prospective according to ``vocabulary``."""
    return vocabulary.is_prospective(design)


def label(section: str, term: str | None, vocabulary: Vocabulary) -> str:
    """The label of ``term`` of ``section`` (e.g. ``label('regimen', 'sorafenib_tace')``
    -> 'Sorafenib + TACE')."""
    return vocabulary.label(section, term)


def _located_problems(
    exc: ValidationError, data: object, lines: object, display: str
) -> list[Problem]:
    from hccmeta.data.checks import format_field

    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not in the vocabulary schema; check its spelling)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        term = str(loc[1]) if len(loc) >= 2 else None
        line = lines.line(loc)  # type: ignore[attr-defined]
        field = format_field(loc[2:]) if len(loc) > 2 else str(loc[0]) if loc else None
        out.append(Problem(display, line, term, field or None, msg, "term"))
    return out


#: The vocabulary of the repository's ``study_data/``: what a data directory without
#: its own ``vocabulary.yaml`` uses.
REPOSITORY_VOCABULARY = Path(__file__).resolve().parents[2] / "study_data" / VOCABULARY_FILE


def vocabulary_path(data_dir: str | Path) -> Path:
    """The vocabulary file a data directory uses: its own ``vocabulary.yaml``, else the
    repository's (``study_data/vocabulary.yaml``).

    Raises
    ------
    InputError
        If neither exists.
    """
    own = Path(data_dir) / VOCABULARY_FILE
    if own.is_file():
        return own
    if REPOSITORY_VOCABULARY.is_file():
        return REPOSITORY_VOCABULARY
    raise InputError(
        f"no vocabulary: {own} not found (a data directory needs one: copy "
        "study_data/vocabulary.yaml of the hccmeta repository)"
    )


def load_vocabulary(data_dir: str | Path) -> Vocabulary:
    """Read and validate the vocabulary a data directory uses (:func:`vocabulary_path`:
    its ``vocabulary.yaml``, else the repository's).

    Raises
    ------
    InputError
        If the file is missing.
    StudyDataError
        One problem per invalid entry, naming file, line, term and field.
    """
    path = vocabulary_path(data_dir)
    display = str(path)
    parsed = read_yaml(path, display)
    if isinstance(parsed, Problem):
        raise StudyDataError([parsed])
    data, lines = parsed
    try:
        return Vocabulary.model_validate(data)
    except ValidationError as exc:
        raise StudyDataError(_located_problems(exc, data, lines, display)) from None


# ---------------------------------------------------------------------- study checks
@dataclass(frozen=True, slots=True)
class TermCheck:
    """An unknown term in a study file: where it is and what is wrong."""

    loc: tuple[str | int, ...]
    message: str


def _known(terms: list[str], limit: int = 12) -> str:
    shown = ", ".join(terms[:limit])
    return shown + (f", ... ({len(terms)} terms)" if len(terms) > limit else "")


def unknown_term(section: str, term: str, known: list[str], *, what: str | None = None) -> str:
    """The message for a term not in the vocabulary."""
    return (
        f"unknown {what or section.replace('_', ' ')} '{term}' (known: {_known(known)}); "
        f"a new term is added to {VOCABULARY_FILE} with a label and a definition"
    )


def check_terms(study: Study, vocabulary: Vocabulary) -> list[TermCheck]:
    """Every term of ``study`` that ``vocabulary`` does not define (or that is used
    where it does not belong, e.g. a counts endpoint in a survival record)."""
    return list(_iter_term_problems(study, vocabulary))


def _iter_term_problems(study: Study, vocab: Vocabulary) -> Iterator[TermCheck]:
    def check(section: str, term: str, loc: tuple[str | int, ...]) -> Iterator[TermCheck]:
        known = vocab.terms(section)
        if term not in known:
            yield TermCheck(loc, unknown_term(section, term, list(known)))

    yield from check("design", study.design, ("design",))
    yield from check("setting", study.setting, ("setting",))
    for i, arm in enumerate(study.arms):
        yield from check("regimen", arm.regimen, ("arms", i, "regimen"))
    for i, rec in enumerate(study.records):
        base: tuple[str | int, ...] = ("records", i)
        if isinstance(rec, SurvivalRecord | CountRecord):
            rtype = "survival" if isinstance(rec, SurvivalRecord) else "counts"
            term = vocab.endpoint.get(rec.endpoint)
            if term is None:
                yield TermCheck(
                    (*base, "endpoint"),
                    unknown_term("endpoint", rec.endpoint, vocab.endpoints(rtype)),
                )
            elif term.record_type != rtype:
                yield TermCheck(
                    (*base, "endpoint"),
                    f"endpoint '{rec.endpoint}' belongs to {term.record_type} records, not "
                    f"to a {rtype} record (its endpoints: {_known(vocab.endpoints(rtype))})",
                )
        if isinstance(rec, SurvivalRecord):
            yield from check("time_origin", rec.time_origin, (*base, "time_origin"))
        for j, g in enumerate(rec.groups):
            sub = g.subgroup
            if sub is None:
                continue
            gloc = (*base, "groups", j, "subgroup")
            var = vocab.subgroup_variable.get(sub.variable)
            if var is None:
                yield TermCheck(
                    (*gloc, "variable"),
                    unknown_term("subgroup_variable", sub.variable, list(vocab.subgroup_variable)),
                )
            elif sub.level not in var.levels:
                yield TermCheck(
                    (*gloc, "level"),
                    f"unknown level '{sub.level}' of subgroup variable '{sub.variable}' "
                    f"(known: {_known(list(var.levels))}); a new level is added under "
                    f"subgroup_variable.{sub.variable}.levels in {VOCABULARY_FILE}",
                )
