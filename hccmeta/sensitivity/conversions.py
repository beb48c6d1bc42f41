"""Conversion assumptions: the options of :func:`hccmeta.derive_effects` varied one at a
time (:class:`~hccmeta.effects.table.DeriveOptions`).

Every named assumption of the effect-size layer is varied:

- exponential survival (Weibull shape 1) vs Weibull shapes 0.75 and 1.5 where medians
  are turned into hazard ratios or median variances;
- the variance of ln(median) from events: the exponential-MLE 1/d instead of the
  Kaplan-Meier 1/(d (ln 2)^2) (the default);
- a p printed as "p < x": the bound x (primary), the midpoint x/2, or nothing derived;
- where a study prints two p-values for the same comparison: each record's own
  (primary), the smaller or the larger;
- the named imputations switched off: events split across groups in proportion to
  their sizes, the group size as the number at risk of a landmark, a count rebuilt from
  a printed rate; the censoring implied by entry and follow-up dates ignored (nobody
  censored before a landmark);
- the floor on the SE of a log HR derived from a p-value switched off.

A variant is planned for an analysis only if it changes the effects the analysis takes
(their set or numbers; :func:`hccmeta.sensitivity.variants.fingerprint`); the others are
reported as skipped.
"""

from __future__ import annotations

from dataclasses import replace

from hccmeta.analyses.run import Variation
from hccmeta.effects.table import DeriveOptions
from hccmeta.sensitivity.variants import PlanContext, Variant

__all__ = ["CONVERSIONS", "conversion_candidates"]

#: (name, options, description)
CONVERSIONS: tuple[tuple[str, dict[str, object], str], ...] = (
    (
        "weibull_shape_0.75",
        {"weibull_shape": 0.75},
        "medians converted under a Weibull shape 0.75 (falling hazard) instead of the exponential",
    ),
    (
        "weibull_shape_1.5",
        {"weibull_shape": 1.5},
        "medians converted under a Weibull shape 1.5 (rising hazard) instead of the exponential",
    ),
    (
        "median_variance_exponential_mle",
        {"median_variance": "exponential_mle"},
        "variance of ln(median) from d events 1/d (exponential MLE, a parametric median) "
        "instead of the Kaplan-Meier 1/(d (ln 2)^2)",
    ),
    (
        "p_bound_midpoint",
        {"p_bound": "midpoint"},
        'a p printed as "p < x" taken as x/2 instead of x',
    ),
    ("p_bound_exclude", {"p_bound": "exclude"}, 'nothing derived from a p printed as "p < x"'),
    (
        "p_choice_smallest",
        {"p_choice": "smallest"},
        "where a study prints two p-values for one comparison, the smaller one",
    ),
    (
        "p_choice_largest",
        {"p_choice": "largest"},
        "where a study prints two p-values for one comparison, the larger one",
    ),
    (
        "no_imputed_events",
        {"impute_events": False},
        "no imputed events (a population's events not split across its groups)",
    ),
    (
        "no_imputed_n_at_risk",
        {"impute_n_at_risk": False},
        "no imputed number at risk (group size not used for a landmark without a CI)",
    ),
    (
        "n_at_risk_without_censoring",
        {"censoring_from_follow_up": False},
        "the group size as a landmark's number at risk with nobody censored before it, "
        "instead of allowing for the censoring of the study's entry and follow-up dates",
    ),
    (
        "no_count_from_rate",
        {"count_from_rate": False},
        "no counts rebuilt from printed rates",
    ),
    (
        "no_se_floor",
        {"se_floor": False},
        "no floor on the SE of a log HR derived from a p-value",
    ),
)


def conversion_candidates(ctx: PlanContext) -> list[Variant]:
    """Every conversion variant (the caller keeps those that change the analysis)."""
    base = ctx.derived.options if ctx.derived.options is not None else DeriveOptions()
    out = []
    for name, change, desc in CONVERSIONS:
        options = replace(base, **change)  # type: ignore[arg-type]
        if options == base:
            continue
        out.append(Variant(name, "conversion", desc, Variation(options=options)))
    if ctx.analysis.model == "survival_multiformat":
        out.append(
            Variant(
                "exponential_survival_model",
                "conversion",
                "exponential latent survival curves (Weibull shape fixed at 1) instead of "
                "a Weibull shape estimated from the data",
                Variation(survival_shape="exponential"),
            )
        )
        out.append(
            Variant(
                "survival_overlap_families",
                "conversion",
                "each kind of statistic a study reports (median, landmark survival, HR) "
                "weighted by 1/m, m the number of kinds, instead of their joint likelihood "
                "(wider intervals: the conservative check of validation/survival)",
                Variation(survival_overlap="families"),
            )
        )
    return out
