"""Risk of bias as data: the ``risk_of_bias`` block of a study file.

A study file may carry the encoders' risk-of-bias assessment of its results, with the
tool that fits the design of each comparison (Cochrane Handbook chapters 8 and 25; QUIPS
for prognostic-factor results):

- **RoB 2** (Sterne et al. 2019) for randomised comparisons: five domains judged
  ``low`` / ``some_concerns`` / ``high``;
- **ROBINS-I** (Sterne et al. 2016) for non-randomised comparisons of interventions:
  seven domains judged ``low`` / ``moderate`` / ``serious`` / ``critical`` /
  ``no_information``;
- **QUIPS** (Hayden et al. 2013) for prognostic-factor results and for absolute
  outcomes per regimen (overall prognosis): six domains judged ``low`` / ``moderate`` /
  ``high``.

Each assessment names the records it applies to (record ids; ``*`` wildcards allowed),
judges every domain of its tool with a one-line reason (and provenance snippets where
the source supports the judgement), and gives an overall judgement and the predicted
direction of bias. The overall judgement cannot be milder than the worst domain.
A study without a ``risk_of_bias`` block still validates (one warning); its results are
treated as not assessed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from hccmeta.data.schema import Provenance, Study

if TYPE_CHECKING:
    from hccmeta.data.vocabulary import Vocabulary

__all__ = [
    "COMPARISON_TOOLS",
    "DIRECTIONS",
    "DOMAINS",
    "JUDGEMENTS",
    "TOOLS",
    "Assessment",
    "DomainJudgement",
    "RiskOfBias",
    "annotate_risk_of_bias",
    "assessment_for",
    "design_class",
    "matches",
    "severity",
]

Tool = Literal["rob2", "robins_i", "quips"]
Loc = tuple[str | int, ...]

#: The domains of each tool, in the tool's order, with their names in words.
DOMAINS: dict[str, dict[str, str]] = {
    "rob2": {
        "randomisation": "bias arising from the randomisation process",
        "deviations": "bias due to deviations from the intended interventions",
        "missing_data": "bias due to missing outcome data",
        "measurement": "bias in measurement of the outcome",
        "reporting": "bias in selection of the reported result",
    },
    "robins_i": {
        "confounding": "bias due to confounding",
        "selection": "bias in selection of participants into the study (incl. immortal time)",
        "classification": "bias in classification of interventions",
        "deviations": "bias due to deviations from intended interventions",
        "missing_data": "bias due to missing data",
        "measurement": "bias in measurement of outcomes",
        "reporting": "bias in selection of the reported result",
    },
    "quips": {
        "participation": "study participation",
        "attrition": "study attrition",
        "factor_measurement": "prognostic factor measurement",
        "outcome_measurement": "outcome measurement",
        "confounding": "study confounding",
        "analysis": "statistical analysis and reporting",
    },
}

#: The judgement scale of each tool, from the mildest to the most severe.
JUDGEMENTS: dict[str, tuple[str, ...]] = {
    "rob2": ("low", "some_concerns", "high"),
    "robins_i": ("low", "moderate", "serious", "critical", "no_information"),
    "quips": ("low", "moderate", "high"),
}

#: The tools' names in words.
TOOLS: dict[str, str] = {"rob2": "RoB 2", "robins_i": "ROBINS-I", "quips": "QUIPS"}

#: Predicted direction of bias (ROBINS-I / RoB 2 optional item): ``favours_group`` (the
#: group named in ``favours`` looks better than it is), towards or away from the null, or
#: unpredictable (the values of :attr:`Assessment.direction`).
DIRECTIONS = ("favours_group", "towards_null", "away_from_null", "unpredictable")

# ROBINS-I: 'no information' ranks between serious and critical for the overall rule
# (the overall judgement is at least as severe as every domain except that a domain
# without information does not make the result critical).
_RANK = {
    "rob2": {"low": 0, "some_concerns": 1, "high": 2},
    "robins_i": {"low": 0, "moderate": 1, "serious": 2, "no_information": 2, "critical": 3},
    "quips": {"low": 0, "moderate": 1, "high": 2},
}


def severity(tool: str, judgement: str) -> int:
    """Rank of a judgement on its tool's scale (0 = low risk of bias)."""
    return _RANK[tool][judgement]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DomainJudgement(_Model):
    """One domain of a risk-of-bias tool: the judgement and why."""

    domain: str = Field(description="Domain id of the tool (see study_data/README.md).")
    judgement: str = Field(description="Judgement on the tool's scale.")
    reason: str = Field(min_length=10, max_length=400, description="One line saying why, in words.")
    provenance: list[Provenance] = Field(
        default_factory=list,
        description="Snippets of the source that support the judgement, where it does.",
    )


class Assessment(_Model):
    """The risk of bias of one comparison (or of a set of records judged alike)."""

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.\-]*$",
        max_length=80,
        description="Stable id of the assessment, unique in the study.",
    )
    tool: Tool = Field(description="'rob2', 'robins_i' or 'quips'.")
    comparison: str = Field(min_length=5, description="What is compared, in words.")
    records: list[str] = Field(
        min_length=1,
        description="Ids of the records judged (shell-style wildcards such as "
        "'study.ae.*' allowed); each pattern must match a record of the study.",
    )
    groups: list[str] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="Two group ids: the assessment applies only to the comparison of "
        "these groups (either order) within its records; null: to every comparison of "
        "the records.",
    )
    domains: list[DomainJudgement] = Field(description="Every domain of the tool, once.")
    overall: str = Field(description="Overall judgement; at least as severe as every domain.")
    direction: Literal["favours_group", "towards_null", "away_from_null", "unpredictable"] = Field(
        default="unpredictable",
        description="Predicted direction of bias: 'favours_group' (the group named in "
        "'favours' looks better than it is), 'towards_null', 'away_from_null' or "
        "'unpredictable'.",
    )
    favours: str | None = Field(
        default=None,
        description="With direction 'favours_group': the id of the group the bias favours.",
    )
    reason: str = Field(
        min_length=10, max_length=400, description="One line giving the overall reason."
    )

    def covers(self, record_id: str, groups: Sequence[str] | None = None) -> bool:
        """Whether the assessment applies to ``record_id`` (and to the comparison of
        ``groups``, when both it and the assessment name two groups)."""
        if not any(matches(p, record_id) for p in self.records):
            return False
        if self.groups is None or groups is None:
            return True
        return set(self.groups) == set(groups)

    @property
    def severity(self) -> int:
        """Rank of the overall judgement on the tool's scale."""
        return severity(self.tool, self.overall)

    def judgement(self, domain: str) -> DomainJudgement | None:
        """The judgement of ``domain``, if the tool has it."""
        return next((d for d in self.domains if d.domain == domain), None)


class RiskOfBias(_Model):
    """The risk-of-bias block of a study file."""

    assessed_by: str = Field(
        min_length=5,
        description="Who made the judgements, e.g. 'the encoders of this file (not the "
        "study authors)'.",
    )
    assessments: list[Assessment] = Field(min_length=1)
    note: str | None = Field(default=None, description="Free-text remark of the assessors.")


# Study refers to RiskOfBias by name (schema.py cannot import this module, which uses its
# Provenance): complete it now that RiskOfBias exists.
Study.model_rebuild(_types_namespace={"RiskOfBias": RiskOfBias})


def matches(pattern: str, record_id: str) -> bool:
    """Whether an assessment's record pattern names ``record_id`` (shell wildcards)."""
    return fnmatch.fnmatchcase(record_id, pattern)


def assessment_for(
    rob: RiskOfBias | None,
    record_id: str,
    *,
    groups: Sequence[str] | None = None,
    tools: Sequence[str] | None = None,
) -> Assessment | None:
    """The assessment that applies to ``record_id`` (and to the comparison of ``groups``),
    optionally restricted to some ``tools``. The most specific one wins: one naming the
    two groups before one that does not, an exact record id before a wildcard, then the
    first in file order."""
    if rob is None:
        return None
    best: tuple[int, int, Assessment] | None = None
    for order, a in enumerate(rob.assessments):
        if (tools is not None and a.tool not in tools) or not a.covers(record_id, groups):
            continue
        specific = (a.groups is not None) * 2 + (record_id in a.records)
        if best is None or specific > best[0]:
            best = (specific, -order, a)
    return best[2] if best is not None else None


#: Study designs whose comparisons are randomised.
RANDOMISED_DESIGNS = frozenset({"randomised"})


def design_class(
    design: str, vocabulary: Vocabulary | None = None
) -> Literal["randomised", "non_randomised"]:
    """Whether a study design gives randomised or non-randomised comparisons (the GRADE
    starting point: high for randomised evidence, low for non-randomised): the
    ``randomised`` flag of the design in ``vocabulary`` (``study_data/vocabulary.yaml``),
    so that a new randomised design is a data edit; without a vocabulary (or for a term
    it does not define) only the design ``randomised`` is."""
    if vocabulary is not None and design in vocabulary.design:
        return "randomised" if vocabulary.is_randomised(design) else "non_randomised"
    return "randomised" if design in RANDOMISED_DESIGNS else "non_randomised"


def _scale_findings(a: Assessment, base: Loc) -> Iterator[tuple[Loc, str]]:
    """Domains and judgements of one assessment against its tool: every domain once, each
    judgement on the tool's scale, the overall judgement at least as severe as every
    domain, and 'favours' given exactly with direction 'favours_group'."""
    domains = DOMAINS[a.tool]
    scale = JUDGEMENTS[a.tool]
    tool = TOOLS[a.tool]
    seen: set[str] = set()
    ok = True
    for j, d in enumerate(a.domains):
        loc = (*base, "domains", j)
        if d.domain not in domains:
            ok = False
            yield (
                (*loc, "domain"),
                f"{d.domain!r} is not a domain of {tool} (known: {', '.join(domains)})",
            )
        elif d.domain in seen:
            ok = False
            yield (*loc, "domain"), f"domain {d.domain!r} is judged twice"
        seen.add(d.domain)
        if d.judgement not in scale:
            ok = False
            yield (
                (*loc, "judgement"),
                f"{d.judgement!r} is not on the {tool} scale ({', '.join(scale)})",
            )
    missing = [d for d in domains if d not in seen]
    if missing:
        ok = False
        yield (*base, "domains"), f"domains of {tool} not judged: {', '.join(missing)}"
    if a.overall not in scale:
        yield (*base, "overall"), f"{a.overall!r} is not on the {tool} scale ({', '.join(scale)})"
    elif ok:
        worst = max(a.domains, key=lambda d: severity(a.tool, d.judgement))
        if severity(a.tool, a.overall) < severity(a.tool, worst.judgement):
            yield (
                (*base, "overall"),
                f"{a.overall!r} is milder than domain {worst.domain!r} ({worst.judgement}): "
                "the overall judgement is at least as severe as every domain",
            )
    if (a.direction == "favours_group") != (a.favours is not None):
        yield (
            (*base, "favours"),
            "give 'favours' (a group id) exactly when direction is 'favours_group'",
        )


def iter_findings(
    rob: RiskOfBias, record_groups: Mapping[str, Sequence[str]], randomised: bool
) -> Iterator[tuple[Loc, str]]:
    """Cross-field problems of a risk-of-bias block: (location, message).

    ``record_groups`` maps each record id of the study to its group ids. Every record
    pattern must match a record; the two ``groups`` and the group it ``favours`` must be
    groups of the matched records; assessment ids are unique; RoB 2 is for randomised
    comparisons only (a non-randomised design gets ROBINS-I or QUIPS).
    """
    seen: set[str] = set()
    for i, a in enumerate(rob.assessments):
        base: Loc = ("risk_of_bias", "assessments", i)
        if a.id in seen:
            yield (*base, "id"), f"duplicate assessment id {a.id!r}"
        seen.add(a.id)
        if a.tool == "rob2" and not randomised:
            yield (
                (*base, "tool"),
                "RoB 2 is for randomised comparisons; this study is not randomised "
                "(use robins_i for comparisons of interventions, quips for prognostic "
                "factors)",
            )
        else:
            yield from _scale_findings(a, base)
        covered: set[str] = set()
        for j, pattern in enumerate(a.records):
            hits = [r for r in record_groups if matches(pattern, r)]
            if not hits:
                yield (*base, "records", j), f"{pattern!r} matches no record of this study"
            for r in hits:
                covered.update(record_groups[r])
        if covered:
            for j, g in enumerate(a.groups or []):
                if g not in covered:
                    yield (*base, "groups", j), f"{g!r} is not a group of the records judged"
            if a.favours is not None and a.favours not in covered:
                yield (*base, "favours"), f"{a.favours!r} is not a group of the records judged"


#: Tools that judge comparisons of interventions.
COMPARISON_TOOLS = ("rob2", "robins_i")


def annotate_risk_of_bias(
    frame: pd.DataFrame, studies: Sequence[Study], vocabulary: Vocabulary | None = None
) -> pd.DataFrame:
    """Columns saying how each row's result was judged: ``randomised`` (the study's
    design), ``rob_assessment``, ``risk_of_bias``, ``bias_direction`` and
    ``bias_favours`` (its RoB 2 / ROBINS-I assessment: for a contrast, the one for its
    two groups; for a group, the one for its record) and ``risk_of_bias_quips``.

    ``frame`` needs the columns ``study``, ``record``, ``kind``, ``exposed`` and
    ``reference``; rows of a study without an assessment get nulls.
    """
    by_id = {s.id: s for s in studies}
    out = frame.copy()
    cols: dict[str, list[Any]] = {
        "randomised": [],
        "rob_assessment": [],
        "risk_of_bias": [],
        "bias_direction": [],
        "bias_favours": [],
        "risk_of_bias_quips": [],
    }
    seen: dict[tuple[str, str, tuple[str, str] | None], dict[str, Any]] = {}
    for study_id, record, kind, exposed, reference in zip(
        out["study"], out["record"], out["kind"], out["exposed"], out["reference"], strict=True
    ):
        groups = (str(exposed), str(reference)) if kind == "contrast" else None
        key = (str(study_id), str(record), groups)
        row = seen.get(key)
        if row is None:  # the rows of one record (several derivations) share it
            study = by_id[str(study_id)]
            rob = study.risk_of_bias
            a = assessment_for(rob, str(record), groups=groups, tools=COMPARISON_TOOLS)
            q = assessment_for(rob, str(record), tools=("quips",))
            row = seen[key] = {
                "randomised": design_class(study.design, vocabulary) == "randomised",
                "rob_assessment": a.id if a else None,
                "risk_of_bias": a.overall if a else None,
                "bias_direction": a.direction if a else None,
                "bias_favours": a.favours if a else None,
                "risk_of_bias_quips": q.overall if q else None,
            }
        for name, value in row.items():
            cols[name].append(value)
    for name, values in cols.items():
        out[name] = pd.Series(
            values, index=out.index, dtype=bool if name == "randomised" else object
        )
    return out
