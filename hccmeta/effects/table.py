"""The tidy tables of derived effects: columns, options, and the result of derive_effects."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from hccmeta.effects.survival import KM_MEDIAN_VARIANCE_FACTOR, MedianVariance
from hccmeta.errors import InputError

__all__ = [
    "EFFECT_COLUMNS",
    "METHODS",
    "UNDERIVABLE_COLUMNS",
    "DeriveOptions",
    "DerivedEffects",
]

#: Columns of ``DerivedEffects.effects``, in order, with their meaning.
EFFECT_COLUMNS: dict[str, str] = {
    "effect": "effect id: record/comparison/measure/method[/detail], unique",
    "study": "study id",
    "record": "the outcome record the effect belongs to",
    "records": "ids of every record it used, ';'-separated (another record's p-value)",
    "kind": "'contrast' (exposed vs reference) or 'group' (one group's quantity)",
    "measure": "analysis scale: log_hr, log_or, log_rr, rd, logit_p, log_median, cloglog_survival",
    "yi": "estimate on the analysis scale",
    "sei": "its standard error",
    "vi": "its sampling variance, sei^2",
    "method": "how it was derived (see METHODS)",
    "assumptions": "';'-separated assumption tags (see hccmeta.effects.ASSUMPTIONS)",
    "primary": "True for the preferred derivation of each estimand of a study; "
    "alternatives (other methods, other records of the same comparison) are False",
    "type": "record type: 'survival' or 'counts'",
    "endpoint": "os, pfs, ttp; or tumour_response, objective_response, disease_control, "
    "adverse_event, complication, treatment_course",
    "event": "what is counted (count records)",
    "grade": "adverse-event grade class",
    "criteria": "response criteria",
    "time_origin": "start of the clock (survival records)",
    "time": "landmark time (months) of a survival proportion; assessment time of counts",
    "analysis": "univariate, adjusted or descriptive",
    "adjusted_for": "covariates of an adjusted model, ';'-separated",
    "exposed": "group id of the exposed group (of the group itself, for kind 'group')",
    "reference": "group id of the reference group (contrasts only)",
    "exposed_arm": "arm id of the exposed group ('all' for the whole study)",
    "reference_arm": "arm id of the reference group",
    "exposed_regimen": "regimen of the exposed group's arm (null for a mixed 'all' group)",
    "reference_regimen": "regimen of the reference group's arm",
    "subgroup_variable": "variable defining the subgroups compared (or described)",
    "exposed_level": "its level in the exposed group",
    "reference_level": "its level in the reference group",
    "exposed_label": "readable label of the exposed group",
    "reference_label": "readable label of the reference group",
    "n_exposed": "patients in the exposed group, where known",
    "n_reference": "patients in the reference group, where known",
    "events_exposed": "events (or patients with the outcome) in the exposed group, as used",
    "events_reference": "events in the reference group, as used",
    "contrast_source": "'reported' (a contrast of the record) or 'implied' (two arms of "
    "a count record compared by hccmeta); null for groups",
    "p": "the p-value used, if any",
    "p_relation": "its relation as printed ('=', '<', ...)",
    "p_test": "the test behind it",
    "design": "study design (a vocabulary term)",
    "randomised": "True if the design is randomised (the vocabulary's flag)",
    "prospective": "True if the design is prospective (the vocabulary's flag)",
    "setting": "clinical setting (a vocabulary term)",
    "source_kind": "full_text, abstract or news_summary",
    "rob_assessment": "id of the study's RoB 2 / ROBINS-I assessment of this comparison "
    "(of the record, for a group), if any",
    "risk_of_bias": "its overall judgement (null: not assessed)",
    "bias_direction": "its predicted direction of bias (favours_group, towards_null, "
    "away_from_null, unpredictable)",
    "bias_favours": "the group id the bias favours (direction favours_group)",
    "risk_of_bias_quips": "overall QUIPS judgement of the record (prognostic factors, "
    "outcomes per regimen), if assessed",
}

#: Columns of ``DerivedEffects.underivable``.
UNDERIVABLE_COLUMNS: dict[str, str] = {
    "study": "study id",
    "record": "record (or baseline characteristic) id",
    "what": "the part not derived: 'record', 'group G: median', 'contrast E vs R', ...",
    "reason": "why no effect with a standard error could be derived from it",
}

#: Methods and their rank among derivations of the same estimand (lower is preferred;
#: Tierney et al. 2007 order for hazard ratios: reported HR, then O - E and V from the
#: log-rank test, then medians). A method relying on imputed quantities ranks below
#: every method that does not.
METHODS: dict[str, tuple[int, str]] = {
    "ratio_ci": (0, "reported ratio with its CI"),
    "ratio_p": (1, "reported ratio with its two-sided p-value"),
    "logrank_peto": (2, "log-rank p, total events and group sizes (Peto O - E, V)"),
    "medians_events": (3, "two medians (exponential) and events per group (KM variances)"),
    "medians_logrank_p": (4, "two medians (exponential) and the two-sided test p"),
    "median_ci": (0, "median with its CI"),
    "median_events": (1, "median and events (Kaplan-Meier variance 1 / (d (ln 2)^2))"),
    "landmark_ci": (0, "survival proportion with its CI, cloglog scale"),
    "landmark_peto": (1, "survival proportion and number at risk (Peto), cloglog scale"),
    "landmark_follow_up": (
        2,
        "survival proportion and the number at risk implied by the group size, the entry "
        "period and the end of follow-up (binomial), cloglog scale",
    ),
    "landmark_binomial": (3, "survival proportion and group size (binomial), cloglog scale"),
    "counts_2x2": (0, "events / n in two arms"),
    "counts_1arm": (0, "events / n in one arm"),
}

#: Rank penalty of derivations that rely on a reconstructed or imputed quantity.
IMPUTATION_PENALTY = 10
IMPUTATION_TAGS = frozenset({"imputed_events", "count_from_rate"})

PBoundOption = Literal["bound", "midpoint", "exclude"]
PChoice = Literal["record", "smallest", "largest"]


@dataclass(frozen=True)
class DeriveOptions:
    """The options of :func:`hccmeta.derive_effects` (what a sensitivity analysis varies).

    Attributes
    ----------
    median_variance : {"km", "exponential_mle"}
        Variance of ln(median) from a median and its events (and of a log HR from two
        medians and their events): ``"km"`` (default), the
        asymptotic variance of a Kaplan-Meier median, ``km_median_factor / d``
        (flagged ``km_median_variance``); ``"exponential_mle"``, ``1 / d``, the variance
        of a parametric median, too small for a Kaplan-Meier one (a sensitivity variant;
        flagged ``exponential_mle_median_variance``).
    km_median_factor : float
        The Kaplan-Meier variance factor; default ``1 / (ln 2)^2 = 2.08``.
    p_bound : {"bound", "midpoint", "exclude"}
        A p printed as "p < x" (or "> x"): use x ("bound"; for "<" this gives the
        largest SE the report allows, i.e. the conservative choice), the middle of the
        implied interval ("midpoint": x/2), or derive nothing from it ("exclude").
    p_choice : {"record", "smallest", "largest"}
        Where a study prints two p-values for the same comparison (same endpoint, time
        origin, analysis and groups, in different records): use each record's own
        ("record"; but where the record's own p names no test and another record's p
        is a log-rank test of the comparison, the log-rank one), or the smallest /
        largest of them ("largest" is conservative).
    weibull_shape : float
        Common Weibull shape k assumed where medians are turned into hazard ratios or
        median variances; 1 is the exponential.
    impute_events : bool
        Where a record gives the events of a whole population but not of the groups
        that partition it, split them in proportion to the group sizes (flagged
        ``imputed_events``).
    impute_n_at_risk : bool
        Where a survival proportion has neither CI nor number at risk, use the group
        size with the binomial variance (flagged ``imputed_n_at_risk``).
    censoring_from_follow_up : bool
        With ``impute_n_at_risk``, where the study gives its entry period and the end of
        its follow-up (``enrolment: {start, end, follow_up_end}``), the number at risk
        allows for the censoring they imply: uniform entry, everyone alive followed to
        the end (:func:`hccmeta.effects.survival.n_at_risk_under_accrual`; flagged
        ``censoring_from_accrual``). Otherwise nobody is taken to be censored before
        the landmark.
    count_from_rate : bool
        Where a count group prints only a rate and n, take the whole count that the
        rate rounds to (if exactly one does; flagged ``count_from_rate``).
    continuity_correction : float
        Added to the cells of a 2x2 table (or one arm) with a zero cell.
    se_floor : bool
        Raise an SE of a log HR derived from a p-value to the smallest SE the group sizes
        allow (:func:`hccmeta.effects.survival.min_log_hr_se`), where they are known.
        Two close medians with a large p otherwise give an SE far below what the study
        can support (flagged ``se_floor``).
    subgroup_share_min : float
        Where two subgroups of an arm of known size N are compared but their sizes are
        not printed, each is taken to hold at least this share of N (default 0.1: the
        smallest subgroup whose median a paper would print, e.g. 5 of 54 patients); the
        SE floor uses the least favourable split in that range, ``q N`` vs
        ``(1 - q) N``, i.e. the largest floor the printed numbers allow (flagged
        ``se_floor_split_assumed``).
    """

    median_variance: MedianVariance = "km"
    km_median_factor: float = KM_MEDIAN_VARIANCE_FACTOR
    p_bound: PBoundOption = "bound"
    p_choice: PChoice = "record"
    weibull_shape: float = 1.0
    impute_events: bool = True
    impute_n_at_risk: bool = True
    censoring_from_follow_up: bool = True
    count_from_rate: bool = True
    continuity_correction: float = 0.5
    se_floor: bool = True
    subgroup_share_min: float = 0.1

    def __post_init__(self) -> None:
        if self.median_variance not in ("km", "exponential_mle"):
            raise InputError(
                f"median_variance = {self.median_variance!r}: must be km or exponential_mle"
            )
        if not (math.isfinite(self.subgroup_share_min) and 0 < self.subgroup_share_min <= 0.5):
            raise InputError(
                f"subgroup_share_min = {self.subgroup_share_min!r}: must lie in (0, 0.5]"
            )
        if self.p_bound not in ("bound", "midpoint", "exclude"):
            raise InputError(f"p_bound = {self.p_bound!r}: must be bound, midpoint or exclude")
        if self.p_choice not in ("record", "smallest", "largest"):
            raise InputError(f"p_choice = {self.p_choice!r}: must be record, smallest or largest")
        if not (math.isfinite(self.km_median_factor) and self.km_median_factor >= 1):
            raise InputError(f"km_median_factor = {self.km_median_factor!r}: must be >= 1")
        if not (math.isfinite(self.weibull_shape) and self.weibull_shape > 0):
            raise InputError(f"weibull_shape = {self.weibull_shape!r}: must be > 0")
        if not (math.isfinite(self.continuity_correction) and self.continuity_correction >= 0):
            raise InputError(
                f"continuity_correction = {self.continuity_correction!r}: must be >= 0"
            )

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict (for result attributes)."""
        return asdict(self)


@dataclass(frozen=True)
class DerivedEffects:
    """What :func:`hccmeta.derive_effects` returns.

    Attributes
    ----------
    effects : pandas.DataFrame
        One row per derived effect (columns :data:`EFFECT_COLUMNS`).
    underivable : pandas.DataFrame
        One row per record, group statistic or contrast from which no effect could be
        derived, with the reason (columns :data:`UNDERIVABLE_COLUMNS`).
    options : DeriveOptions
        The options used.
    data_hash : str
        The hash of the study data the effects were derived from.
    """

    effects: pd.DataFrame
    underivable: pd.DataFrame
    options: DeriveOptions = field(default_factory=DeriveOptions)
    data_hash: str = ""

    def primary(self) -> pd.DataFrame:
        """The preferred derivation of each estimand (``effects[effects.primary]``)."""
        return self.effects[self.effects["primary"]].reset_index(drop=True)

    def select(self, **where: Any) -> pd.DataFrame:
        """Rows whose columns equal the given values, e.g. ``select(measure="log_hr")``."""
        df = self.effects
        for col, val in where.items():
            if col not in df.columns:
                raise InputError(f"unknown effects column {col!r}")
            df = df[df[col] == val]
        return df.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.effects)


def method_rank(method: str, assumptions: str) -> int:
    """The preference rank of a derivation (lower is better)."""
    base = METHODS.get(method, (99, ""))[0]
    tags = set(assumptions.split(";")) if assumptions else set()
    return base + (IMPUTATION_PENALTY if tags & IMPUTATION_TAGS else 0)


def mark_primary(effects: pd.DataFrame) -> pd.Series:
    """True for the best-ranked derivation of each estimand of a study.

    The estimand is what the effect estimates: study, kind, measure, endpoint, event,
    grade, criteria, time origin, time, analysis (survival only: counts are counts
    whatever the record calls them) and the two groups (arm, subgroup variable, level).
    """
    if effects.empty:
        return pd.Series([], dtype=bool)
    key_cols = [
        "study",
        "kind",
        "measure",
        "endpoint",
        "event",
        "grade",
        "criteria",
        "time_origin",
        "time",
        "analysis_key",
        "exposed_arm",
        "subgroup_variable",
        "exposed_level",
        "reference_arm",
        "reference_level",
    ]
    analysis_key = effects["analysis"].where(effects["type"] == "survival", "any")
    columns = [(analysis_key if c == "analysis_key" else effects[c]).tolist() for c in key_cols]
    best: dict[str, tuple[int, int]] = {}  # estimand -> (rank, row) of its best row
    for row, (values, method, assumptions) in enumerate(
        zip(zip(*columns, strict=True), effects["method"], effects["assumptions"], strict=True)
    ):
        key = "|".join(map(str, values))
        ranked = (method_rank(method, assumptions), row)
        if key not in best or ranked < best[key]:
            best[key] = ranked
    primary = np.zeros(len(effects), dtype=bool)
    primary[[row for _, row in best.values()]] = True
    return pd.Series(primary, index=effects.index)
