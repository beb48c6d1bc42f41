"""hccmeta: Bayesian meta-analysis of sorafenib with or without TACE in hepatocellular carcinoma.

The pipeline, one sub-package each: ``data`` (schema, loading, provenance) ->
``effects`` (the escalc layer) -> ``models`` (pooling engines) -> ``analyses`` (the
registry of default analyses) -> ``sensitivity`` -> ``report``; plus ``cli``.

``import hccmeta`` stays light: PyMC, nutpie and matplotlib are imported only by the
functions that need them.
"""

from __future__ import annotations

from hccmeta import analyses, priors, sensitivity
from hccmeta.analyses import run_analysis
from hccmeta.data import Evidence, load_studies
from hccmeta.effects import derive_effects
from hccmeta.errors import HccmetaError, InputError, Problem, StudyDataError
from hccmeta.models.bias import pool_combined
from hccmeta.models.normal import pool
from hccmeta.sensitivity import sensitivity_all

__version__ = "0.1.0"

# AnalysisResult.forest_plot() and .interpret() present a result with the report layer's
# functions; the analyses layer does not import that layer, so they are registered here,
# by name (imported when first called: ``import hccmeta`` stays light).
analyses.run.register_presenter("forest_plot", "hccmeta.report.plots:forest_plot")
analyses.run.register_presenter("interpret", "hccmeta.report.interpret:interpret")

__all__ = [
    "Evidence",
    "HccmetaError",
    "InputError",
    "Problem",
    "StudyDataError",
    "__version__",
    "analyses",
    "derive_effects",
    "load_studies",
    "pool",
    "pool_combined",
    "priors",
    "run_analysis",
    "sensitivity",
    "sensitivity_all",
]
