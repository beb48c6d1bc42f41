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
from hccmeta.errors import InputError

__all__ = ["Evidence", "Located"]


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
        without a risk-of-bias assessment (check ``risk_of_bias_missing``). The p-values a
        derived effect cannot reproduce are added by
        :func:`hccmeta.effects.consistency_warnings`.
    field_lines : dict
        ``{"record id:contrasts[k].p": line}``: the line of each contrast's p-value (for
        warnings that point at a statistic).
    """

    studies: tuple[Study, ...]
    data_dir: Path
    data_hash: str
    locations: dict[str, Located] = field(default_factory=dict)
    verified_values: int | None = None
    warnings: tuple[DataWarning, ...] = ()
    field_lines: dict[str, int] = field(default_factory=dict)

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

    # ---- tidy views ---------------------------------------------------------------
    @cached_property
    def studies_table(self) -> pd.DataFrame:
        """One row per study: id, citation, design, setting, country, population size."""
        rows = [
            {
                "study": s.id,
                "citation": s.citation,
                "source_kind": s.source_kind,
                "design": s.design,
                "setting": s.setting,
                "country": s.country,
                "enrolment_start": s.enrolment.start if s.enrolment else None,
                "enrolment_end": s.enrolment.end if s.enrolment else None,
                "population_size": s.population_size,
                "n_arms": len(s.arms),
                "n_records": len(s.records),
            }
            for s in self.studies
        ]
        return pd.DataFrame(rows)

    @cached_property
    def arms_table(self) -> pd.DataFrame:
        """One row per arm: study, arm, label, regimen, n."""
        rows = [
            {"study": s.id, "arm": a.id, "label": a.label, "regimen": a.regimen, "n": a.n}
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
        """One line counting studies, records and (if verified) values."""
        line = (
            f"{len(self.studies)} studies, {self.n_records} records, "
            f"{self.n_characteristics} baseline characteristics"
        )
        if self.verified_values is not None:
            line += f", {self.verified_values} values verified against the sources"
        return line


def _relation(obj: object, loc: tuple[str | int, ...]) -> str:
    """'=' except for a p-value printed as a bound ('<', '>')."""
    node = obj
    for part in loc[:-1]:
        node = node[part] if isinstance(part, int) else getattr(node, part)  # type: ignore[index]
    rel = getattr(node, "relation", None)
    return str(rel) if rel is not None else "="
