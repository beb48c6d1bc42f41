"""The registry of analyses: ``study_data/analyses.yaml`` as validated pydantic models.

An analysis names its question, its estimand, the model that answers it, which derived
effects it takes (a :class:`Selector`: criteria on the effects table, so that a study
file added later with a matching comparison joins the analysis without editing the
registry) and, in words, every mapping it assumes. Where the selected effects differ
in endpoint, time origin, adjustment or response criteria, the definition must say so
in ``mixes``; otherwise running it is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hccmeta import priors
from hccmeta.data.checks import format_field
from hccmeta.data.yamlio import BadNumber, link_problem, read_yaml
from hccmeta.errors import InputError, Problem, StudyDataError, printable

__all__ = [
    "Alternative",
    "Analysis",
    "NotAnalysed",
    "Registry",
    "Selector",
    "load_registry",
]

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*$", max_length=80)]
Strs = list[str] | None

#: Properties of effects that an analysis may pool across only when it says so.
MIXABLE = ("endpoint", "time_origin", "analysis", "criteria", "subgroup_variable")

ModelKind = Literal[
    "random_effects",
    "per_regimen",
    "prognostic_joint",
    "proportions",
    "survival_multiformat",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selector(_Model):
    """Which derived effects an analysis takes. Every given field is a filter; a list
    means "any of". Contrasts found the other way round (exposed matches the reference
    criteria and vice versa) are reversed (log scale: sign flipped)."""

    kind: Literal["contrast", "group"] = Field(
        description="'contrast' (exposed vs reference) or 'group' (one group's quantity)."
    )
    measure: str = Field(description="Analysis scale: log_hr, log_or, logit_p, log_median, ...")
    endpoint: Strs = None
    event: Strs = None
    grade: Strs = None
    criteria: Strs = None
    time_origin: Strs = None
    time: list[float] | None = None
    analysis: Strs = None
    exposed_regimen: Strs = None
    reference_regimen: Strs = None
    exposed_arm: Strs = Field(
        default=None, description="Arm ids; 'all' selects a whole-study group."
    )
    subgroup_variable: Strs = None
    whole_arms: bool | None = Field(
        default=None, description="True: only groups that are whole arms (no subgroup)."
    )
    exposed_level: Strs = None
    reference_level: Strs = None
    studies: Strs = None
    records: Strs = None
    exclude_records: Strs = None
    prefer_analysis: list[Literal["adjusted", "univariate", "descriptive"]] = Field(
        default=["adjusted", "univariate", "descriptive"],
        description="When a study offers the same comparison adjusted and univariate, the "
        "first in this list is taken.",
    )


Selection = Selector | list[Selector]


class Regimen(_Model):
    """A regimen of a per-regimen analysis and the effects that stand for it (a list of
    selectors takes the union: one explicit mapping beside the general criteria)."""

    label: str
    select: Selection


class Factor(_Model):
    """A prognostic factor of the joint model and the effects that measure it."""

    label: str
    select: Selector


class Alternative(_Model):
    """An alternative contrast mapping, run as a sensitivity variant."""

    name: Name
    description: str
    select: Selection | None = None
    regimens: dict[str, Regimen] | None = None


class Analysis(_Model):
    """One default analysis: a question, its estimand, its model and its evidence."""

    name: Name
    title: str = Field(min_length=5)
    question: str = Field(min_length=10)
    estimand: str = Field(min_length=5, description="What is estimated, in words.")
    measure: str = Field(description="Analysis scale of the estimand.")
    model: ModelKind
    benefit: Literal["below", "above"] = Field(
        description="Which side of zero (analysis scale) p_benefit is the probability of: "
        "'below' for a hazard ratio < 1 of the exposed group; 'above' for a response odds "
        "ratio > 1, or for a prognostic factor read as 'the factor is adverse' (HR > 1)."
    )
    select: Selection | None = None
    regimens: dict[str, Regimen] | None = None
    contrast: tuple[str, str] | None = Field(
        default=None,
        description="For per-regimen proportions: the two regimens compared (exposed, reference).",
    )
    factors: dict[str, Factor] | None = None
    mapping: list[str] = Field(
        default_factory=list,
        description="Every assumption that maps a study's groups onto the question, in words.",
    )
    mixes: list[Literal["endpoint", "time_origin", "analysis", "criteria", "subgroup_variable"]] = (
        Field(
            default_factory=list,
            description="Properties the analysis deliberately pools across.",
        )
    )
    alternatives: list[Alternative] = Field(default_factory=list)
    prior_mu: str | None = Field(default=None, description="Prior SPEC, e.g. normal:0:1.")
    prior_tau: str | None = Field(default=None, description="Prior SPEC, e.g. halfnormal:0.5.")
    landmarks: list[float] | None = Field(
        default=None, description="Landmark times (months) reported by survival models."
    )
    primary_estimand: str | None = Field(
        default=None, description="The estimand the sensitivity plot and statement focus on."
    )

    @field_validator("prior_mu", "prior_tau")
    @classmethod
    def _prior(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            check = (
                priors.check_mu_prior if info.field_name == "prior_mu" else priors.check_tau_prior
            )
            try:
                check(v, argument=str(info.field_name))
            except InputError as exc:
                raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _shape(self) -> Analysis:
        need = {
            "random_effects": ("select",),
            "per_regimen": ("regimens",),
            "prognostic_joint": ("factors",),
            "proportions": ("regimens",),
            "survival_multiformat": ("regimens",),
        }[self.model]
        for attr in need:
            if getattr(self, attr) is None:
                raise ValueError(f"model {self.model!r} needs '{attr}'")
        if self.contrast is not None and self.regimens is not None:
            for r in self.contrast:
                if r not in self.regimens:
                    raise ValueError(f"contrast names regimen {r!r}, not one of the regimens")
        return self


class NotAnalysed(_Model):
    """A kind of derived effect that no default analysis takes, and why (for the
    evidence account)."""

    match: dict[str, list[str]] = Field(
        description="Columns of the effects table and the values that select the records."
    )
    reason: str = Field(min_length=10)


class Registry(_Model):
    """The registered analyses, in the order of the file, and the reasons for what no
    analysis takes."""

    analyses: list[Analysis]
    not_analysed: list[NotAnalysed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Registry:
        seen: set[str] = set()
        for a in self.analyses:
            if a.name in seen:
                raise ValueError(f"duplicate analysis name {a.name!r}")
            seen.add(a.name)
        return self

    def get(self, name: str) -> Analysis:
        """The analysis called ``name``."""
        for a in self.analyses:
            if a.name == name:
                return a
        known = ", ".join(a.name for a in self.analyses)
        raise InputError(f"unknown analysis {name!r} (registered: {known})")

    @property
    def names(self) -> list[str]:
        """Names of the registered analyses."""
        return [a.name for a in self.analyses]


REGISTRY_FILE = "analyses.yaml"


def load_registry(data_dir: str | Path) -> Registry:
    """Read and validate ``analyses.yaml`` of a data directory.

    Raises
    ------
    StudyDataError
        One problem per invalid field, naming file, line, analysis and field.
    """
    path = Path(data_dir) / REGISTRY_FILE
    display = printable(str(path))
    if not os.path.lexists(path):
        raise StudyDataError(
            [
                Problem(
                    display,
                    None,
                    None,
                    None,
                    "the analysis registry is missing (a data "
                    "directory holds analyses.yaml beside the study files)",
                )
            ]
        )
    refused = link_problem(path, Path(data_dir).resolve(), display)
    parsed = refused if refused is not None else read_yaml(path, display, what="the registry")
    if isinstance(parsed, Problem):
        raise StudyDataError([parsed])
    data, lines = parsed
    try:
        return Registry.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            name = None
            if len(loc) >= 2 and loc[0] == "analyses" and isinstance(loc[1], int):
                items = data.get("analyses") if isinstance(data, dict) else None
                if isinstance(items, list) and loc[1] < len(items):
                    item = items[loc[1]]
                    name = item.get("name") if isinstance(item, dict) else None
            inner = loc[2:] if name is not None else loc
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (not in the registry schema; check its spelling)"
            elif isinstance(err.get("input"), BadNumber):
                msg = err["input"].reason
            problems.append(
                Problem(
                    display,
                    lines.line(loc),
                    str(name) if name else None,
                    format_field(inner) or None,
                    msg,
                    "analysis",
                )
            )
        raise StudyDataError(problems) from None
