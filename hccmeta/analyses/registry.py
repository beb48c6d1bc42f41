"""The registry of analyses: ``study_data/analyses.yaml`` as validated pydantic models.

An analysis names its question, its estimand, the model that answers it, which derived
effects it takes (a :class:`Selector`: criteria on the effects table, so that a study
file added later with a matching comparison joins the analysis without editing the
registry) and, in words, every mapping it assumes. Where the selected effects differ
in endpoint, time origin, adjustment or response criteria, the definition must say so
in ``mixes``; otherwise running it is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hccmeta.data.checks import format_field
from hccmeta.data.yamlio import read_yaml
from hccmeta.errors import InputError, Problem, StudyDataError

__all__ = [
    "DIRECTNESS_ELEMENTS",
    "Alternative",
    "Analysis",
    "LevelMap",
    "NotAnalysed",
    "Registry",
    "Selector",
    "StudyDirectness",
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


class LevelMap(_Model):
    """A declared mapping of the levels a study compares onto the level a question names.

    Contrasts are pooled only when their exposed levels agree and their reference levels
    agree (for subgroups: variable and level; for whole arms: the regimen). Where studies
    use other levels for the same idea, the analysis says so here, with its reason:

    - ``same_as``: levels taken to be this level as they are (``"level"`` of the same
      variable, or ``"variable=level"``), e.g. any vascular invasion for main or lobar
      portal vein invasion;
    - ``combine``: sub-levels merged into this level; a model's contrasts against one of
      them are recombined into a contrast against the merged level
      (:func:`hccmeta.effects.levels.log_hr_merged_reference`), e.g. Child-Pugh A from
      A(5) and A(6).
    """

    variable: str = Field(
        description="Subgroup variable (e.g. child_pugh_class), or 'regimen' for whole arms."
    )
    level: str = Field(min_length=1, description="The level as the question names it.")
    same_as: list[str] = Field(
        default_factory=list,
        description="Levels taken to be this level: 'level' (same variable) or 'variable=level'.",
    )
    combine: list[str] = Field(
        default_factory=list,
        description="Sub-levels of the same variable merged into this level (at least two).",
    )
    covariance: Literal["shared_reference", "zero"] = Field(
        default="shared_reference",
        description="For 'combine': how the unprinted covariance of a model's contrasts is "
        "taken (see hccmeta.effects.levels).",
    )
    reason: str = Field(min_length=20, description="Why the mapping holds, in words.")

    @model_validator(mode="after")
    def _what(self) -> LevelMap:
        if not self.same_as and not self.combine:
            raise ValueError("a level mapping needs 'same_as' or 'combine'")
        if self.combine and len(self.combine) < 2:
            raise ValueError("'combine' merges at least two sub-levels")
        return self

    def sources(self) -> list[tuple[str, str]]:
        """The (variable, level) pairs this mapping takes to be ``(variable, level)``."""
        out = [(self.variable, self.level)]
        for item in self.same_as:
            var, _, lev = item.partition("=") if "=" in item else ("", "", item)
            out.append((var or self.variable, lev))
        return out


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
    levels: list[LevelMap] = Field(
        default_factory=list,
        description="Declared level mappings (see LevelMap); the analysis's own 'levels' "
        "are added to every selector of the analysis.",
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
    levels: list[LevelMap] = Field(
        default_factory=list,
        description="Level mappings that apply to every selector of the analysis (its "
        "select, regimens, factors and alternatives); see LevelMap.",
    )
    prior_mu: str | None = Field(default=None, description="Prior SPEC, e.g. normal:0:1.")
    prior_tau: str | None = Field(default=None, description="Prior SPEC, e.g. halfnormal:0.5.")
    landmarks: list[float] | None = Field(
        default=None, description="Landmark times (months) reported by survival models."
    )
    primary_estimand: str | None = Field(
        default=None, description="The estimand the sensitivity plot and statement focus on."
    )
    directness: list[StudyDirectness] = Field(
        default_factory=list,
        description="How directly each contributing study answers the question; a study "
        "not listed is taken as direct and said to be undeclared.",
    )

    @model_validator(mode="before")
    @classmethod
    def _spread_levels(cls, data: object) -> object:
        """Add the analysis's ``levels`` to every selector it contains."""
        if not isinstance(data, dict) or not data.get("levels"):
            return data
        shared = data["levels"]
        if not isinstance(shared, list):
            return data

        def spread(sel: object) -> object:
            if isinstance(sel, list):
                return [spread(x) for x in sel]
            if isinstance(sel, dict):
                own = sel.get("levels") or []
                return {**sel, "levels": [*own, *shared]} if isinstance(own, list) else sel
            return sel

        out = dict(data)
        if "select" in out:
            out["select"] = spread(out["select"])
        for part in ("regimens", "factors"):
            items = out.get(part)
            if isinstance(items, dict):
                out[part] = {
                    k: {**v, "select": spread(v.get("select"))}
                    if isinstance(v, dict) and "select" in v
                    else v
                    for k, v in items.items()
                }
        alts = out.get("alternatives")
        if isinstance(alts, list):
            out["alternatives"] = [
                {**a, "select": spread(a["select"])} if isinstance(a, dict) and "select" in a
                else a
                for a in alts
            ]  # fmt: skip
        return out

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
        seen: set[tuple[str, str]] = set()
        for d in self.directness:
            for est in d.estimands or ["*"]:
                if (d.study, est) in seen:
                    raise ValueError(f"directness of study {d.study!r} is declared twice")
                seen.add((d.study, est))
        return self

    def directness_of(self, study: str, estimand: str) -> StudyDirectness | None:
        """The declared directness of ``study`` for ``estimand`` (None: undeclared)."""
        for d in self.directness:
            if d.study == study and (d.estimands is None or estimand in d.estimands):
                return d
        return None


Directness = Literal["direct", "unclear", "indirect", "very_indirect"]


class StudyDirectness(_Model):
    """How directly one study answers an analysis's question (GRADE indirectness), per
    element of the question, with the reason in words."""

    study: str = Field(description="Study id.")
    estimands: list[str] | None = Field(
        default=None,
        description="The estimands this judgement is about (default: every estimand the "
        "study informs).",
    )
    population: Directness
    intervention: Directness
    comparator: Directness
    outcome: Directness
    time_origin: Directness
    reason: str = Field(min_length=10, description="Why, in words.")

    @property
    def indirect(self) -> list[str]:
        """The elements judged indirect or very indirect."""
        return [
            name
            for name in DIRECTNESS_ELEMENTS
            if getattr(self, name) in ("indirect", "very_indirect")
        ]

    @property
    def level(self) -> int:
        """Levels to rate down for this study: 2 if any element is very indirect, 1 if
        any is indirect, else 0 (direct or unclear)."""
        values = [getattr(self, name) for name in DIRECTNESS_ELEMENTS]
        return 2 if "very_indirect" in values else 1 if "indirect" in values else 0


#: The elements of a question that directness is judged on (PICO plus the time origin).
DIRECTNESS_ELEMENTS = ("population", "intervention", "comparator", "outcome", "time_origin")


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
    display = str(path)
    if not path.is_file():
        raise InputError(f"no analysis registry: {display} not found")
    parsed = read_yaml(path, display)
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
