"""The validated evidence: studies, their records, tidy views and the data hash."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from hccmeta.data.checks import DataWarning
from hccmeta.data.provenance import iter_values
from hccmeta.data.schema import (
    Arm,
    Characteristic,
    CountRecord,
    Record,
    Study,
    SurvivalRecord,
)
from hccmeta.data.vocabulary import Vocabulary
from hccmeta.errors import InputError

__all__ = ["Evidence", "Located", "ProvenanceCheck"]


@dataclass(frozen=True)
class ProvenanceCheck:
    """Whether (and against what) the snippets of the study data were verified.

    Attributes
    ----------
    checked : bool
        False when no source directory was given: nothing was verified.
    source_dirs : tuple of Path
        The directories searched for the source texts, in order.
    source_files : tuple of Path
        The source texts found and matched against (those the studies name).
    verified_values : int
        Numbers found in their record's snippets, for the studies whose source texts
        were available.
    unverified : dict
        ``{study id: reason}`` for the studies whose snippets could not be matched
        against their source text (no ``sources`` field, or the file not found): their
        provenance is unverified.
    """

    checked: bool = False
    source_dirs: tuple[Path, ...] = ()
    source_files: tuple[Path, ...] = ()
    verified_values: int = 0
    unverified: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """One line: 'provenance verified against N source files' or 'provenance NOT
        checked: no --sources given'."""
        if not self.checked:
            return "provenance NOT checked: no --sources given (nor HCCMETA_SOURCES)"
        n = len(self.source_files)
        text = (
            f"provenance verified against {n} source file{'s' if n != 1 else ''} "
            f"({self.verified_values} values)"
        )
        if self.unverified:
            k = len(self.unverified)
            text += (
                f"; {k} stud{'ies' if k != 1 else 'y'} unverified (source text not "
                f"available: {', '.join(sorted(self.unverified))})"
            )
        return text


@dataclass(frozen=True, slots=True)
class Located:
    """Where an id is defined: file, line and study."""

    file: str
    line: int
    study: str


def _statistic_name(loc: tuple[str | int, ...], group: object) -> str:
    """Readable statistic name from a field path inside a group or contrast."""
    parts: list[str] = []
    i = 0
    while i < len(loc):
        part = loc[i]
        if part == "landmarks" and i + 1 < len(loc):
            idx = loc[i + 1]
            lm = getattr(group, "landmarks")[idx]  # noqa: B009
            parts.append(f"survival_{lm.time:g}m")
            rest = [str(p) for p in loc[i + 2 :] if p not in ("survival", "ci")]
            if "ci" in loc[i + 2 :]:
                rest = ["ci", *rest]
            parts.extend(rest)
            break
        if part in ("value",):
            i += 1
            continue
        parts.append(str(part))
        i += 1
    return "_".join(parts)


@dataclass(frozen=True)
class Evidence:
    """Validated study data, as returned by :func:`hccmeta.load_studies`.

    Attributes
    ----------
    studies : tuple of Study
        The studies, in file-name order.
    data_dir : Path
        The directory they were read from.
    data_hash : str
        SHA-256 of the study files and the analysis registry (names and bytes).
    locations : dict
        ``{record or characteristic id: Located}``: the file and line of each id.
    verified_values : int or None
        Numbers verified against the source texts (None if sources were not given).
    warnings : tuple of DataWarning
        Consistency warnings between statistics of the same arm (the data stay as
        printed; :func:`hccmeta.data.checks.consistency_findings`), and one per study
        without a risk-of-bias assessment (check ``risk_of_bias_missing``) or whose source
        text was not available (check ``provenance_unverified``). The p-values a
        derived effect cannot reproduce are added by
        :func:`hccmeta.effects.consistency_warnings`.
    field_lines : dict
        ``{"record id:contrasts[k].p": line}``: the line of each contrast's p-value (for
        warnings that point at a statistic).
    vocabulary : Vocabulary or None
        The vocabulary of the data directory (labels and definitions of the terms);
        None only for evidence built by hand.
    provenance : ProvenanceCheck
        Whether the snippets were verified against the source texts, and which studies
        could not be (their source text not available).
    """

    studies: tuple[Study, ...]
    data_dir: Path
    data_hash: str
    locations: dict[str, Located] = field(default_factory=dict)
    verified_values: int | None = None
    warnings: tuple[DataWarning, ...] = ()
    field_lines: dict[str, int] = field(default_factory=dict)
    vocabulary: Vocabulary | None = None
    provenance: ProvenanceCheck = field(default_factory=ProvenanceCheck)

    # ---- look-ups ---------------------------------------------------------------
    def study(self, study_id: str) -> Study:
        """The study with id ``study_id``."""
        for s in self.studies:
            if s.id == study_id:
                return s
        raise InputError(f"unknown study id {study_id!r}")

    def records(self) -> Iterator[tuple[Study, Record]]:
        """Every outcome record with its study."""
        for s in self.studies:
            for r in s.records:
                yield s, r

    def record(self, record_id: str) -> tuple[Study, Record]:
        """The record with id ``record_id`` and its study."""
        for s, r in self.records():
            if r.id == record_id:
                return s, r
        raise InputError(f"unknown record id {record_id!r}")

    def arm(self, study_id: str, arm_id: str) -> Arm:
        """Arm ``arm_id`` of study ``study_id``."""
        for a in self.study(study_id).arms:
            if a.id == arm_id:
                return a
        raise InputError(f"study {study_id!r} has no arm {arm_id!r}")

    def characteristics(self) -> Iterator[tuple[Study, Characteristic]]:
        """Every baseline characteristic with its study."""
        for s in self.studies:
            for c in s.characteristics:
                yield s, c

    @property
    def n_records(self) -> int:
        """Number of outcome records."""
        return sum(len(s.records) for s in self.studies)

    @property
    def n_characteristics(self) -> int:
        """Number of baseline-characteristic rows."""
        return sum(len(s.characteristics) for s in self.studies)

    def label(self, section: str, term: str | None) -> str:
        """The vocabulary label of ``term`` (e.g. ``label("regimen", "sorafenib_tace")``
        -> 'Sorafenib + TACE'); the term itself without a vocabulary."""
        if self.vocabulary is None:
            return term or ""
        return self.vocabulary.label(section, term)

    def is_randomised(self, study_id: str) -> bool | None:
        """Whether the design of study ``study_id`` is randomised (vocabulary flag);
        None without a vocabulary."""
        if self.vocabulary is None:
            return None
        return self.vocabulary.is_randomised(self.study(study_id).design)

    @cached_property
    def study_labels(self) -> dict[str, str]:
        """``{study id: label}``: what the report prints for each study ('Lee 2017';
        :func:`hccmeta.data.labels.study_labels`)."""
        from hccmeta.data.labels import study_labels

        return study_labels(self.studies)

    @property
    def unverified_studies(self) -> dict[str, str]:
        """``{study id: reason}`` for the studies whose provenance could not be verified
        (only when sources were given; see :attr:`provenance`)."""
        return dict(self.provenance.unverified)

    # ---- tidy views ---------------------------------------------------------------
    @cached_property
    def studies_table(self) -> pd.DataFrame:
        """One row per study: id, label (:attr:`study_labels`), citation, design (and its
        label, and whether it is ``randomised``), setting (and its label), country,
        population size, the source files it names, and ``provenance``: ``verified``,
        ``unverified`` (its source text was not available) or ``not checked`` (no sources
        given)."""
        rows = []
        for s in self.studies:
            if not self.provenance.checked:
                prov = "not checked"
            else:
                prov = "unverified" if s.id in self.provenance.unverified else "verified"
            rows.append(
                {
                    "study": s.id,
                    "label": self.study_labels[s.id],
                    "citation": s.citation,
                    "source_kind": s.source_kind,
                    "design": s.design,
                    "design_label": self.label("design", s.design),
                    "randomised": self.is_randomised(s.id),
                    "setting": s.setting,
                    "setting_label": self.label("setting", s.setting),
                    "country": s.country,
                    "enrolment_start": s.enrolment.start if s.enrolment else None,
                    "enrolment_end": s.enrolment.end if s.enrolment else None,
                    "population_size": s.population_size,
                    "n_arms": len(s.arms),
                    "n_records": len(s.records),
                    "sources": ";".join(s.sources),
                    "provenance": prov,
                }
            )
        return pd.DataFrame(rows)

    @cached_property
    def arms_table(self) -> pd.DataFrame:
        """One row per arm: study, arm, label, regimen (and its vocabulary label), n."""
        rows = [
            {
                "study": s.id,
                "arm": a.id,
                "label": a.label,
                "regimen": a.regimen,
                "regimen_label": self.label("regimen", a.regimen),
                "n": a.n,
            }
            for s in self.studies
            for a in s.arms
        ]
        return pd.DataFrame(rows)

    @cached_property
    def inclusion_conditions(self) -> pd.DataFrame:
        """One row per condition of entry that a study's statistics are conditional on:
        study, condition, time_origin, min_time, applies_to, location, snippet."""
        rows = [
            {
                "study": s.id,
                "condition": c.condition,
                "time_origin": c.time_origin,
                "min_time": c.min_time,
                "applies_to": c.applies_to,
                "location": "; ".join(p.location for p in c.provenance),
                "snippet": c.provenance[0].snippet,
            }
            for s in self.studies
            for c in s.inclusion_conditions
        ]
        columns = [
            "study", "condition", "time_origin", "min_time", "applies_to", "location", "snippet"
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def warnings_table(self) -> pd.DataFrame:
        """The consistency warnings of the data as a table: study, record, check,
        message, file, line."""
        rows = [
            {
                "study": w.study,
                "record": w.record,
                "check": w.check,
                "message": w.message,
                "file": w.file,
                "line": w.line,
            }
            for w in self.warnings
        ]
        return pd.DataFrame(rows, columns=["study", "record", "check", "message", "file", "line"])

    @cached_property
    def records_table(self) -> pd.DataFrame:
        """One row per outcome record, with where it is defined and its first snippet."""
        rows = []
        for s, r in self.records():
            loc = self.locations.get(r.id)
            rows.append(
                {
                    "study": s.id,
                    "record": r.id,
                    "type": r.type,
                    "endpoint": getattr(r, "endpoint", None),
                    "event": getattr(r, "event", None),
                    "time_origin": getattr(r, "time_origin", None),
                    "analysis": r.analysis,
                    "groups": ", ".join(g.id for g in r.groups),
                    "label": r.label,
                    "location": "; ".join(p.location for p in r.provenance),
                    "snippet": r.provenance[0].snippet,
                    "file": loc.file if loc else None,
                    "line": loc.line if loc else None,
                }
            )
        return pd.DataFrame(rows)

    @cached_property
    def statistics(self) -> pd.DataFrame:
        """Tidy view: one row per record and statistic.

        Columns: study, record, type, endpoint, time_origin, analysis, group, arm,
        subgroup_variable, subgroup_level, contrast, statistic, value, relation, location.
        Group statistics have ``contrast`` empty; contrast statistics (HR, p) have
        ``group`` empty and ``contrast`` = "exposed vs reference".
        """
        rows: list[dict[str, object]] = []
        for s, r in self.records():
            common = {
                "study": s.id,
                "record": r.id,
                "type": r.type,
                "endpoint": getattr(r, "endpoint", None),
                "time_origin": getattr(r, "time_origin", None),
                "analysis": r.analysis,
                "location": r.provenance[0].location,
            }
            for g in r.groups:
                sub = g.subgroup
                for v in iter_values(g):
                    if v.loc[-1] == "level" and "ci" in v.loc:
                        continue
                    rows.append(
                        {
                            **common,
                            "group": g.id,
                            "arm": g.arm,
                            "subgroup_variable": sub.variable if sub else None,
                            "subgroup_level": sub.level if sub else None,
                            "contrast": None,
                            "statistic": _statistic_name(v.loc, g),
                            "value": v.value,
                            "relation": _relation(g, v.loc),
                        }
                    )
            contrasts = r.contrasts if isinstance(r, SurvivalRecord | CountRecord) else []
            for c in contrasts:
                for v in iter_values(c):
                    if v.loc[-1] == "level":
                        continue
                    rows.append(
                        {
                            **common,
                            "group": None,
                            "arm": None,
                            "subgroup_variable": None,
                            "subgroup_level": None,
                            "contrast": f"{c.exposed} vs {c.reference}",
                            "statistic": _statistic_name(v.loc, c),
                            "value": v.value,
                            "relation": _relation(c, v.loc),
                        }
                    )
            if isinstance(r, SurvivalRecord) and r.p_overall is not None:
                rows.append(
                    {
                        **common,
                        "group": None,
                        "arm": None,
                        "subgroup_variable": None,
                        "subgroup_level": None,
                        "contrast": "overall",
                        "statistic": "p",
                        "value": r.p_overall.value,
                        "relation": r.p_overall.relation,
                    }
                )
        return pd.DataFrame(rows)

    @cached_property
    def risk_of_bias(self) -> pd.DataFrame:
        """The risk-of-bias assessments, one row per study, assessment and domain (the
        overall judgement is the row with domain ``overall``): study, assessment, tool,
        comparison, records, groups, domain, judgement, reason, direction, favours."""
        rows = []
        for s in self.studies:
            if s.risk_of_bias is None:
                continue
            for a in s.risk_of_bias.assessments:
                common = {
                    "study": s.id,
                    "assessment": a.id,
                    "tool": a.tool,
                    "comparison": a.comparison,
                    "records": ";".join(a.records),
                    "groups": ";".join(a.groups or []),
                    "direction": a.direction,
                    "favours": a.favours,
                }
                for d in a.domains:
                    rows.append(
                        {**common, "domain": d.domain, "judgement": d.judgement, "reason": d.reason}
                    )
                rows.append(
                    {**common, "domain": "overall", "judgement": a.overall, "reason": a.reason}
                )
        columns = [
            "study",
            "assessment",
            "tool",
            "comparison",
            "records",
            "groups",
            "domain",
            "judgement",
            "reason",
            "direction",
            "favours",
        ]
        return pd.DataFrame(rows, columns=columns)

    def summary_line(self) -> str:
        """One line counting studies, records and baseline characteristics, and saying
        whether provenance was checked (:meth:`ProvenanceCheck.line`)."""
        return (
            f"{len(self.studies)} studies, {self.n_records} records, "
            f"{self.n_characteristics} baseline characteristics; {self.provenance.line()}"
        )


def _relation(obj: object, loc: tuple[str | int, ...]) -> str:
    """'=' except for a p-value printed as a bound ('<', '>')."""
    node = obj
    for part in loc[:-1]:
        node = node[part] if isinstance(part, int) else getattr(node, part)  # type: ignore[index]
    rel = getattr(node, "relation", None)
    return str(rel) if rel is not None else "="
