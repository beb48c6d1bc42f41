"""Study subsets (:data:`hccmeta.analyses.run.SUBSETS`) and the univariate-preferred
variant.

- prospective studies only;
- adjusted (multivariable) hazard ratios only -- for analyses on the log-HR scale;
- the most common endpoint and time origin only (what the analysis pools across when
  it declares ``mixes``);
- studies available as full text only (not abstracts or news summaries);
- univariate rather than adjusted estimates where a study reports both.

Like the conversions, a subset is planned only if it changes the effects the analysis
takes; one that leaves no study gives ``no_eligible_records`` rows.
"""

from __future__ import annotations

from hccmeta.analyses.run import SUBSETS, Variation
from hccmeta.sensitivity.variants import PlanContext, Variant

__all__ = ["subset_candidates"]


def subset_candidates(ctx: PlanContext) -> list[Variant]:
    """Every subset variant that can apply (the caller keeps those that change the data)."""
    out = []
    for subset, words in SUBSETS.items():
        if subset == "adjusted_only" and ctx.analysis.measure != "log_hr":
            continue
        out.append(Variant(subset, "subset", words, Variation(subset=subset)))
    out.append(
        Variant(
            "univariate_preferred",
            "subset",
            "univariate instead of adjusted estimates where a study reports both",
            Variation(prefer_univariate=True),
        )
    )
    return out
