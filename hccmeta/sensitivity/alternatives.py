"""Alternative contrast mappings declared in the registry (``alternatives`` of an
analysis in ``study_data/analyses.yaml``), e.g. Terashima's group A vs C instead of A vs
B, or the n=34 study's OS counted from diagnosis.

Each is run with ``Variation(alternative=name)``; a model whose runner does not support
alternative mappings makes the variant fail with that reason (never a silent copy of the
primary).
"""

from __future__ import annotations

from hccmeta.analyses.run import Variation
from hccmeta.sensitivity.variants import PlanContext, Variant

__all__ = ["alternative_variants"]


def alternative_variants(ctx: PlanContext) -> list[Variant]:
    """One variant per declared alternative mapping."""
    return [
        Variant(
            f"alt_{alt.name}",
            "alternative",
            " ".join(alt.description.split()),
            Variation(alternative=alt.name),
        )
        for alt in ctx.analysis.alternatives
    ]
