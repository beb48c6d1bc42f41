"""Leave-one-study-out (metafor's ``leave1out``): the analysis refitted without each of
its studies in turn, where it has at least two.

Each variant is exactly :func:`hccmeta.analyses.run_analysis` with
``Variation(exclude_studies=(study,))``. An estimand that only the left-out study
informs (a regimen, a prognostic factor) has a ``no_eligible_records`` row under that
variant.
"""

from __future__ import annotations

from hccmeta.analyses.run import Variation
from hccmeta.sensitivity.variants import PlanContext, Variant

__all__ = ["loo_variants"]


def loo_variants(ctx: PlanContext) -> list[Variant]:
    """One variant per study of the primary analysis (none if it has fewer than two)."""
    studies = ctx.studies
    if len(studies) < 2:
        return []
    out = []
    for study in studies:
        label = ctx.study_labels.get(study)
        desc = f"leave out {label}" if label and label != study else f"leave out study {study}"
        out.append(
            Variant(f"loo_{study}", "leave_one_out", desc, Variation(exclude_studies=(study,)))
        )
    return out
