"""The effect-size layer (hccmeta's ``escalc``): reported statistics -> (yi, sei).

Pure, vectorised NumPy functions turn each shape in which papers report a quantity
into an estimate ``yi`` on an analysis scale and its standard error ``sei``, returned as
a :class:`Derived` with a method tag and the assumptions it relied on;
:func:`derive_effects` applies them to the loaded study data; :func:`read_effect_csv`
reads the CSV shapes of ``hccmeta pool`` and ``hccmeta convert``.

Direction conventions: every contrast is *exposed* relative to *reference*; on the log
scale ``yi > 0`` means the exposed group has the larger hazard (odds, risk). Under the
exponential assumption ``ln HR = ln(M_ref / M_exp)``: a shorter median in the exposed
group gives HR > 1. Landmark survival is analysed as ``ln(-ln S(t))`` (the log
cumulative hazard: larger is worse).
"""

from hccmeta.effects.base import ASSUMPTIONS, DEFAULT_CI_LEVEL, Derived, PBoundRule
from hccmeta.effects.consistency import consistency_warnings, p_value_warnings
from hccmeta.effects.counts import logit_proportion, two_arm_counts
from hccmeta.effects.csvinput import CSV_MEASURES, read_effect_csv
from hccmeta.effects.derive import derive_effects
from hccmeta.effects.levels import log_hr_merged_reference
from hccmeta.effects.ratios import from_ci, log_ratio_from_ci, log_ratio_from_p, se_from_p
from hccmeta.effects.survival import (
    KM_MEDIAN_VARIANCE_FACTOR,
    cloglog_of_survival,
    cloglog_survival_from_ci,
    cloglog_survival_from_n,
    cloglog_survival_from_n_at_risk,
    log_hr_from_logrank,
    log_hr_from_medians_events,
    log_hr_from_medians_p,
    log_median_from_ci,
    log_median_from_events,
    survival_of_cloglog,
)
from hccmeta.effects.table import (
    EFFECT_COLUMNS,
    METHODS,
    UNDERIVABLE_COLUMNS,
    DerivedEffects,
    DeriveOptions,
)

__all__ = [
    "ASSUMPTIONS",
    "CSV_MEASURES",
    "DEFAULT_CI_LEVEL",
    "EFFECT_COLUMNS",
    "KM_MEDIAN_VARIANCE_FACTOR",
    "METHODS",
    "UNDERIVABLE_COLUMNS",
    "DeriveOptions",
    "Derived",
    "DerivedEffects",
    "PBoundRule",
    "cloglog_of_survival",
    "cloglog_survival_from_ci",
    "cloglog_survival_from_n",
    "cloglog_survival_from_n_at_risk",
    "consistency_warnings",
    "derive_effects",
    "from_ci",
    "log_hr_from_logrank",
    "log_hr_from_medians_events",
    "log_hr_from_medians_p",
    "log_hr_merged_reference",
    "log_median_from_ci",
    "log_median_from_events",
    "log_ratio_from_ci",
    "log_ratio_from_p",
    "logit_proportion",
    "p_value_warnings",
    "read_effect_csv",
    "se_from_p",
    "survival_of_cloglog",
    "two_arm_counts",
]
