"""The study-data schema: pydantic models of one study file.

One YAML file in ``study_data/`` holds one :class:`Study`. Values are recorded exactly
as the source prints them (times in months, proportions as fractions in [0, 1]); what a
source does not report is left out (null), never guessed or back-calculated. Every
quantitative value carries provenance: a location in the source and a short verbatim
snippet that contains the number (checked by ``hccmeta validate --sources``).

Single-field rules live here (types, ranges, enumerations); checks that span fields or
records (CI contains the estimate, events <= n, references resolve, sizes add up) live
in :mod:`hccmeta.data.checks` so that every problem of a file is reported at once.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:  # pragma: no cover
    # defined in hccmeta.data.bias (which uses Provenance, below); that module completes
    # Study with it (Study.model_rebuild) when the package is imported
    from hccmeta.data.bias import RiskOfBias

__all__ = [
    "ALL",
    "Arm",
    "Characteristic",
    "CharacteristicLevel",
    "Contrast",
    "CorrelationGroup",
    "CorrelationRecord",
    "CountGroup",
    "CountRecord",
    "Enrolment",
    "Estimate",
    "HazardRatio",
    "InclusionCondition",
    "Interval",
    "Landmark",
    "PValue",
    "Provenance",
    "Record",
    "Study",
    "Subgroup",
    "SummaryGroup",
    "SummaryRecord",
    "SurvivalGroup",
    "SurvivalRecord",
    "month_index",
    "months_between",
]

#: Reserved arm id meaning "the whole study population".
ALL = "all"

Id = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_.\-]*$",
        max_length=80,
        description="Lower-case identifier: letters, digits, '_', '.', '-'.",
    ),
]
Count = Annotated[int, Field(ge=0, description="A count of patients or events (>= 0).")]
#: A term of the open vocabulary (``vocabulary.yaml`` of the data directory): regimens,
#: settings, time origins, designs, endpoints. Which terms exist is data, checked by
#: :func:`hccmeta.data.vocabulary.check_terms`, not by the schema.
Term = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_.\-]*$",
        max_length=80,
        description="A term of the vocabulary (vocabulary.yaml of the data directory).",
    ),
]
#: File name of a source text (looked up in the directories given to --sources).
SourceName = Annotated[
    str,
    Field(
        pattern=r"^[^/\\\s][^/\\]*$",
        max_length=200,
        description="File name of a source text, e.g. '003_e2d4ec54670229da.txt'.",
    ),
]
Months = Annotated[float, Field(description="A time in months, > 0.")]


class _Model(BaseModel):
    """Base of every schema model: unknown keys and type coercion are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _proportion(value: float | None, field: str) -> float | None:
    """Validate a proportion: a fraction in [0, 1], with a hint when it looks like percent."""
    if value is None:
        return value
    if 1 < value <= 100:
        raise ValueError(
            f"{field} {value:g} is above 1: proportions are fractions in [0, 1] "
            f"(write {value / 100:g}, not the percentage {value:g})"
        )
    if not 0 <= value <= 1:
        raise ValueError(f"{field} {value:g} is outside [0, 1]")
    return value


class Provenance(_Model):
    """Where a value comes from: a location in the source and a verbatim snippet."""

    location: str = Field(
        min_length=3,
        description="Where in the source: 'Abstract', 'Results, Overall survival', 'Table 3'.",
        examples=["Abstract, Results"],
    )
    snippet: str = Field(
        min_length=8,
        description=(
            "Short verbatim text of the source containing the record's numbers. Matching "
            "ignores whitespace, line breaks and line-break hyphenation."
        ),
        examples=["OS 3.7 versus 8.4 months, p = 0.004"],
    )


class Interval(_Model):
    """An interval printed with an estimate: a confidence interval or a range."""

    lower: float | None = Field(description="Lower bound as printed (null: one-sided).")
    upper: float | None = Field(description="Upper bound as printed (null: one-sided).")
    kind: Literal["ci", "range"] = Field(
        default="ci", description="'ci' for a confidence interval, 'range' for min-max."
    )
    level: float | None = Field(
        default=None,
        description=(
            "Confidence level as a fraction (0.95) for kind 'ci'; null means the source "
            "does not state it (analyses then assume 0.95, a named assumption)."
        ),
    )

    @field_validator("level")
    @classmethod
    def _level(cls, v: float | None) -> float | None:
        if v is None:
            return v
        if 1 < v <= 100:
            raise ValueError(
                f"level {v:g} is above 1: give the confidence level as a fraction "
                f"({v / 100:g}), not in percent"
            )
        if not 0 < v < 1:
            raise ValueError(f"level {v:g} must lie in (0, 1)")
        return v


class Estimate(_Model):
    """A point estimate as printed, with its interval where one is printed."""

    value: float = Field(description="The estimate as printed.")
    ci: Interval | None = Field(default=None, description="Its interval, if printed.")


class PValue(_Model):
    """A p-value as printed, with the comparison it bounds and the test behind it."""

    value: float = Field(
        description="The printed p-value, in (0, 1].",
        json_schema_extra={"exclusiveMinimum": 0, "maximum": 1},
    )
    relation: Literal["=", "<", "<=", ">", ">="] = Field(
        default="=", description="'<' for 'p < 0.001': the value is a bound, not exact."
    )
    test: Literal[
        "log_rank",
        "cox_wald",
        "chi_squared",
        "fisher",
        "t_test",
        "mann_whitney",
        "linear_regression",
        "not_stated",
    ] = Field(description="The test that produced the p-value, as the source states it.")

    @field_validator("value")
    @classmethod
    def _p(cls, v: float) -> float:
        if not 0 < v <= 1:
            hint = " (write p as a fraction, e.g. 0.05)" if 1 < v <= 100 else ""
            raise ValueError(f"p-value {v:g} is outside (0, 1]{hint}")
        return v


class HazardRatio(Estimate):
    """A hazard ratio of the exposed group relative to the reference group."""

    value: float = Field(gt=0, description="Hazard ratio as printed (> 0).")


class Landmark(_Model):
    """Survival (or progression-free) proportion at a landmark time."""

    time: Months = Field(gt=0, description="Landmark time in months.")
    survival: float = Field(description="Proportion surviving at that time, a fraction.")
    ci: Interval | None = Field(default=None, description="Its CI (fractions), if printed.")
    n_at_risk: Count | None = Field(default=None, description="Number at risk, if printed.")

    @field_validator("survival")
    @classmethod
    def _survival(cls, v: float) -> float:
        checked = _proportion(v, "survival")
        assert checked is not None
        return checked


class Subgroup(_Model):
    """A subgroup of patients defined by a baseline or treatment variable."""

    variable: Id = Field(description="The defining variable, e.g. 'child_pugh_class'.")
    level: str = Field(min_length=1, description="Its level, e.g. 'B' or '>=400'.")
    label: str | None = Field(default=None, description="The source's wording.")


class _Group(_Model):
    """A group of patients a record describes: a study arm or a subgroup of one."""

    id: Id = Field(description="Identifier of the group within the record.")
    arm: Id = Field(
        default=ALL,
        description="Arm the group belongs to (an arm id of the study, or 'all').",
    )
    subgroup: Subgroup | None = Field(
        default=None, description="Subgroup within the arm; null means the whole arm."
    )
    n: Count | None = Field(
        default=None,
        description="Patients in the group as printed; null if not printed (the arm's n "
        "applies when the group is a whole arm).",
    )


class SurvivalGroup(_Group):
    """Time-to-event statistics of one group."""

    events: Count | None = Field(default=None, description="Number of events, if printed.")
    median: Estimate | None = Field(default=None, description="Median time in months.")
    landmarks: list[Landmark] = Field(
        default_factory=list, description="Survival proportions at landmark times."
    )


class Contrast(_Model):
    """A comparison between two groups of a record (exposed vs reference)."""

    exposed: Id = Field(description="Group id of the exposed (numerator) group.")
    reference: Id = Field(description="Group id of the reference group.")
    hr: HazardRatio | None = Field(default=None, description="Hazard ratio, if printed.")
    p: PValue | None = Field(default=None, description="p-value of this comparison.")


class _Record(_Model):
    """Fields shared by every outcome record."""

    id: Id = Field(description="Stable id, unique across all study files.")
    label: str | None = Field(default=None, description="Short human description.")
    analysis: Literal["univariate", "adjusted", "descriptive"] = Field(
        description="'adjusted' for multivariable (e.g. Cox) estimates."
    )
    adjusted_for: list[str] | None = Field(
        default=None, description="Covariates of an adjusted model, as the source names them."
    )
    groups_partition: bool = Field(
        default=False,
        description="True where the source says the groups split their arm (or the whole "
        "study) completely; their sizes must then add up.",
    )
    provenance: list[Provenance] = Field(
        min_length=1,
        description="Where the numbers come from; every number of the record must occur "
        "in one of these snippets.",
    )
    note: str | None = Field(default=None, description="Free-text remark of the encoder.")


#: Survival endpoints: terms of the vocabulary with ``record_type: survival`` (os, pfs,
#: ttp, ...).
Endpoint = Term
#: Time origins: terms of the vocabulary (sorafenib_start, diagnosis, randomisation, ...).
TimeOrigin = Term


class SurvivalRecord(_Record):
    """Time-to-event results: medians, landmark survival, hazard ratios, p-values."""

    type: Literal["survival"]
    endpoint: Endpoint = Field(
        description="A survival endpoint of the vocabulary: 'os' (death from any cause), "
        "'pfs' (progression or death), 'ttp' (progression), ..."
    )
    time_origin: TimeOrigin = Field(
        description="Start of the clock, a term of the vocabulary; 'sorafenib_failure' is the "
        "origin of Terashima's 'survival after sorafenib'. 'not_reported' if the source does "
        "not say."
    )
    groups: list[SurvivalGroup] = Field(min_length=1)
    contrasts: list[Contrast] = Field(default_factory=list)
    p_overall: PValue | None = Field(
        default=None, description="p-value across all groups (e.g. a 3-group log-rank test)."
    )


class CountGroup(_Group):
    """Counts (or a printed rate) of a binary or categorical outcome in one group."""

    count: Count | None = Field(default=None, description="Patients with the outcome.")
    proportion: float | None = Field(
        default=None,
        description="The printed rate as a fraction; with count and n it must agree with "
        "count / n up to rounding; alone it is all the source gives.",
    )
    categories: dict[str, Count] | None = Field(
        default=None, description="Counts per category, e.g. {CR: 3, PR: 10, SD: 2, PD: 7}."
    )
    category_proportions: dict[str, float] | None = Field(
        default=None, description="The printed percentages per category, as fractions."
    )

    @field_validator("proportion")
    @classmethod
    def _prop(cls, v: float | None) -> float | None:
        return _proportion(v, "proportion")

    @field_validator("category_proportions")
    @classmethod
    def _cprops(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None:
            for key, val in v.items():
                _proportion(val, f"proportion of {key}")
        return v


#: Count endpoints: terms of the vocabulary with ``record_type: counts``.
CountEndpoint = Term


class CountRecord(_Record):
    """A binary or categorical outcome: response, disease control, adverse events."""

    type: Literal["counts"]
    endpoint: CountEndpoint = Field(
        description="A counts endpoint of the vocabulary: 'tumour_response' (categories "
        "CR/PR/SD/PD), 'objective_response', 'disease_control', 'adverse_event', "
        "'complication', 'treatment_course', ..."
    )
    event: str | None = Field(
        default=None,
        description="What is counted, e.g. 'hand_foot_skin_reaction' for an adverse event.",
    )
    grade: Literal["any", "3-4", "3"] | None = Field(
        default=None, description="Adverse-event grade class counted."
    )
    criteria: str | None = Field(
        default=None, description="Assessment criteria, e.g. 'mRECIST', 'RECIST 1.1'."
    )
    assessed_at: Months | None = Field(
        default=None, description="Time of assessment in months, if stated."
    )
    groups: list[CountGroup] = Field(min_length=1)
    contrasts: list[Contrast] = Field(default_factory=list)


class SummaryGroup(_Group):
    """Descriptive statistics of a quantity in one group."""

    median: Estimate | None = Field(default=None, description="Median (with its range).")
    range: Interval | None = Field(
        default=None,
        description="A range printed without a median (kind 'range'), e.g. '2-10 cycles'.",
    )
    mean: float | None = Field(default=None, description="Mean.")
    sd: float | None = Field(default=None, ge=0, description="Standard deviation.")


class SummaryRecord(_Record):
    """A descriptive quantity: follow-up, treatment duration, dose intensity, age."""

    type: Literal["summary"]
    quantity: Id = Field(description="What is summarised, e.g. 'follow_up'.")
    unit: Literal["months", "years", "percent", "sessions", "cycles"] = Field(
        description="Unit of the values ('percent' values are printed percentages)."
    )
    groups: list[SummaryGroup] = Field(min_length=1)
    time_origin: TimeOrigin | None = Field(
        default=None,
        description="For a follow-up: the start of its clock, as the source states it; the "
        "consistency checks compare it with the OS statistics of the same time origin.",
    )


class CorrelationGroup(_Group):
    """A correlation coefficient in one group."""

    r: float = Field(ge=-1, le=1, description="Correlation coefficient.")
    p: PValue | None = Field(default=None)


class CorrelationRecord(_Record):
    """A correlation between two quantities (e.g. OS and survival after sorafenib)."""

    type: Literal["correlation"]
    x: str = Field(description="First quantity.")
    y: str = Field(description="Second quantity.")
    groups: list[CorrelationGroup] = Field(min_length=1)


Record = Annotated[
    SurvivalRecord | CountRecord | SummaryRecord | CorrelationRecord,
    Field(discriminator="type"),
]


class Arm(_Model):
    """A treatment arm (or treatment group) of a study."""

    id: Id = Field(description="Arm id, unique within the study; 'all' is reserved.")
    label: str = Field(min_length=1, description="The source's name for the arm.")
    regimen: Term = Field(description="Regimen, a term of the vocabulary (vocabulary.yaml).")
    n: Count | None = Field(description="Patients in the arm; null if not reported.")
    provenance: list[Provenance] = Field(min_length=1)


class CharacteristicLevel(_Model):
    """One level of a baseline characteristic, counted per arm."""

    level: str = Field(min_length=1, description="The level, e.g. 'B', 'male', '>=400'.")
    counts: dict[str, Count] | None = Field(
        default=None, description="Patients at this level per arm id ('all' for the total)."
    )
    proportions: dict[str, float] | None = Field(
        default=None, description="Printed percentages per arm id, as fractions."
    )

    @field_validator("proportions")
    @classmethod
    def _props(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None:
            for key, val in v.items():
                _proportion(val, f"proportion in {key}")
        return v


class Characteristic(_Model):
    """A baseline characteristic (a row of a study's Table 1)."""

    id: Id = Field(description="Stable id, unique across all study files.")
    variable: Id = Field(description="The variable, e.g. 'child_pugh_class'.")
    label: str | None = Field(default=None, description="The source's wording.")
    levels: list[CharacteristicLevel] = Field(
        default_factory=list, description="Counts per level (categorical variables)."
    )
    mean: dict[str, float] | None = Field(default=None, description="Mean per arm id.")
    sd: dict[str, float] | None = Field(default=None, description="SD per arm id.")
    median: dict[str, float] | None = Field(default=None, description="Median per arm id.")
    p: PValue | None = Field(default=None, description="Test of balance across arms.")
    levels_complete: bool = Field(
        default=False,
        description="True where the levels listed cover every patient: their counts must "
        "then add up to the arm sizes.",
    )
    provenance: list[Provenance] = Field(min_length=1)
    note: str | None = Field(default=None, description="Free-text remark of the encoder.")


class Enrolment(_Model):
    """Enrolment (or treatment) period, as 'YYYY' or 'YYYY-MM', and where the source
    prints it, the end of follow-up: the date up to which every patient alive was
    followed (the data cut-off). A 'YYYY-MM' start means the first day of the month,
    an end the last day; a year alone means January 1 or December 31."""

    start: str | None = Field(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$")
    end: str | None = Field(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$")
    follow_up_end: str | None = Field(
        default=None,
        pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$",
        description="End of follow-up (data cut-off), 'YYYY' or 'YYYY-MM'. With start and "
        "end it gives the censoring the numbers at risk of landmarks are derived with.",
    )

    @model_validator(mode="after")
    def _in_order(self) -> Enrolment:
        dates = [(k, getattr(self, k)) for k in ("start", "end", "follow_up_end")]
        given = [(k, v) for k, v in dates if v is not None]
        for (k1, v1), (k2, v2) in itertools.pairwise(given):
            if month_index(v1, end=k1 != "start") > month_index(v2, end=k2 != "start"):
                raise ValueError(f"{k1} {v1!r} is after {k2} {v2!r}")
        return self


def month_index(date: str, *, end: bool) -> int:
    """A 'YYYY' or 'YYYY-MM' date as months since year 0: its first month (``end`` False:
    a start) or its last month (``end`` True)."""
    year = int(date[:4])
    month = int(date[5:7]) if len(date) > 4 else (12 if end else 1)
    return 12 * year + month - 1


def months_between(start: str, end: str) -> float:
    """Months from the first day of ``start`` to the last day of ``end`` (both 'YYYY'
    or 'YYYY-MM'): whole months, the end month counted in full."""
    return float(month_index(end, end=True) - month_index(start, end=False) + 1)


class InclusionCondition(_Model):
    """A condition of entry into the study that its statistics are conditional on (e.g.
    "received sorafenib for at least three months": survival from the start of sorafenib
    then counts only patients who lived and stayed on treatment that long)."""

    condition: str = Field(min_length=5, description="The condition, in words.")
    time_origin: TimeOrigin | None = Field(
        default=None, description="The clock whose statistics the condition bears on."
    )
    min_time: Months | None = Field(
        default=None,
        gt=0,
        description="Months from that origin every included patient had to complete.",
    )
    applies_to: str | None = Field(
        default=None, description="What it conditions, in words (default: every statistic)."
    )
    provenance: list[Provenance] = Field(min_length=1)


class Study(_Model):
    """One study: the contents of one YAML file in ``study_data/``."""

    id: Id = Field(description="Study id used throughout, e.g. 'terashima2016'.")
    citation: str = Field(min_length=10, description="Full citation (or description).")
    label: str | None = Field(
        default=None,
        min_length=2,
        max_length=40,
        description="Short label the report prints for the study (forest plots, tables, "
        "statements), e.g. 'Lee 2017'. Default: the first author's surname and the year of "
        "the citation (hccmeta.data.labels.study_label); give one where the citation names "
        "no author or year.",
    )
    source_kind: Literal["full_text", "abstract", "news_summary"] = Field(
        description="What the source document is."
    )
    sources: list[SourceName] = Field(
        default_factory=list,
        description="File name(s) of the source text(s) the snippets are copied from; "
        "`hccmeta validate --sources DIR` matches each snippet against these only. A study "
        "without one (or whose file is not found) validates with a warning: its provenance "
        "is unverified.",
    )
    design: Term = Field(description="Study design, a term of the vocabulary (vocabulary.yaml).")
    phase: Literal["I", "II", "III"] | None = Field(default=None)
    setting: Term = Field(
        description="Clinical setting, a term of the vocabulary (vocabulary.yaml)."
    )
    country: str | None = Field(default=None, description="Country, if the source says.")
    enrolment: Enrolment | None = Field(default=None)
    population_size: Count | None = Field(description="Patients in the study population.")
    response_criteria: str | None = Field(default=None)
    arms_partition_population: bool = Field(
        default=False,
        description="True where the arms split the study population: their n must add up.",
    )
    provenance: list[Provenance] = Field(
        min_length=1, description="Snippets for the study-level numbers and facts."
    )
    arms: list[Arm] = Field(min_length=1)
    characteristics: list[Characteristic] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)
    inclusion_conditions: list[InclusionCondition] = Field(
        default_factory=list,
        description="Conditions of entry that the study's statistics are conditional on "
        "(stated in the report next to its estimates).",
    )
    risk_of_bias: RiskOfBias | None = Field(
        default=None,
        description="The encoders' risk-of-bias assessment of the study's results (RoB 2, "
        "ROBINS-I or QUIPS per comparison; see study_data/README.md). Without it the "
        "study validates with a warning and its results count as not assessed.",
    )
