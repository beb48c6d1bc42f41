"""Fixed (common) effect vs random effects.

The normal-normal analyses are refitted with tau = 0 exactly (``effects_model="fixed"``,
exact engine). The MCMC models have no tau = 0 option; their common-effect variant
pins the heterogeneity near zero within the same compiled model: tau ~ HalfNormal(0.001)
(binomial and survival models: the study effects then differ by less than 0.003 on the
log scale), or, for the joint prognostic model, the heterogeneity scale fixed at 0.001
(tau_scale ~ LogNormal(log 0.001, 0.001), so every factor's tau_f is below about 0.003).
"""

from __future__ import annotations

import math

from hccmeta import priors as pr
from hccmeta.analyses.run import Variation
from hccmeta.sensitivity.variants import PlanContext, Variant

__all__ = ["NEAR_ZERO_TAU", "NEAR_ZERO_TAU_SCALE", "fixed_variants"]

#: The heterogeneity prior of the MCMC models' common-effect variant.
NEAR_ZERO_TAU = pr.HalfNormal(0.001)
#: The joint prognostic model's heterogeneity-scale hyperprior for the common effect.
NEAR_ZERO_TAU_SCALE = pr.LogNormal(math.log(0.001), 0.001)


def fixed_variants(ctx: PlanContext) -> list[Variant]:
    """The common-effect variant of the analysis, if its model has a heterogeneity."""
    if ctx.exact:
        return [
            Variant(
                "fixed_effect",
                "effects_model",
                "common (fixed) effect: tau = 0 instead of random effects",
                Variation(effects_model="fixed"),
            )
        ]
    model = ctx.fit_model
    if model == "prognostic":
        return [
            Variant(
                "fixed_effect",
                "effects_model",
                "common effect per factor: heterogeneity scale fixed at 0.001 "
                f"(tau_scale ~ {NEAR_ZERO_TAU_SCALE!r}) instead of random effects",
                Variation(prior_tau_scale=NEAR_ZERO_TAU_SCALE),
            )
        ]
    if model in ("binomial.contrast", "binomial.proportion", "survival"):
        return [
            Variant(
                "fixed_effect",
                "effects_model",
                f"common effect: tau pinned near 0 (tau ~ {NEAR_ZERO_TAU!r}; the model has "
                "no exact tau = 0 option) instead of random effects",
                Variation(prior_tau=NEAR_ZERO_TAU),
            )
        ]
    return []
