"""Bias-adjustment variants: the comparison re-fitted with every study's result adjusted
for bias, under the default bias distributions of its risk of bias and alternatives
(:data:`hccmeta.priors.BIAS_VARIANTS`; :mod:`hccmeta.analyses.bias`), and -- where
randomised and non-randomised studies are pooled together -- the combined model that
learns the bias from the randomised ones.

Planned only for analyses whose model can adjust for bias (random-effects pooling, the
binomial contrast of the proportions analyses and the log HR of the multi-format survival
synthesis: :data:`hccmeta.analyses.run.BIAS_MODELS`) and whose primary result has a
bias-adjusted comparison (non-randomised evidence contributes). MCMC models get the
default and the widest distribution only (each is a refit).
"""

from __future__ import annotations

from hccmeta.analyses.run import BIAS_MODELS, Variation
from hccmeta.sensitivity.variants import PlanContext, Variant

__all__ = ["BIAS_WORDS", "bias_variants"]

#: The bias-adjustment variants, in words.
BIAS_WORDS: dict[str, str] = {
    "default": "each study adjusted for bias: the default distribution of its risk of bias",
    "mean_0": "each study adjusted for bias with mean 0 (direction not predicted)",
    "doubled_sd": "each study adjusted for bias, the default distribution's SD doubled",
    "halved": "each study adjusted for bias, the default's mean and SD halved",
    "doubled": "each study adjusted for bias, the default's mean and SD doubled",
    "combined": "the combined model: the bias of the non-randomised studies learnt from "
    "the randomised ones",
}


def bias_variants(ctx: PlanContext) -> list[Variant]:
    """The bias-adjustment variants that apply to the analysis."""
    if ctx.analysis.model not in BIAS_MODELS or ctx.primary.status != "ok":
        return []
    est = ctx.primary.estimates
    if "bias_adjusted_median" not in est or not est["bias_adjusted_median"].notna().any():
        return []
    names = ["default", "mean_0", "doubled_sd", "halved", "doubled"]
    if not ctx.exact:
        names = ["default", "doubled_sd"]
    designs = set(est["design"].dropna().astype(str))
    if ctx.analysis.model == "random_effects" and "mixed" in designs:
        names.append("combined")
    return [Variant(f"bias_{n}", "bias", BIAS_WORDS[n], Variation(bias=n)) for n in names]
