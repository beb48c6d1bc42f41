"""The default analyses: the registry (``study_data/analyses.yaml``), selection of
derived effects, running an analysis, and the evidence account."""

from hccmeta.analyses.registry import Analysis, Registry, load_registry
from hccmeta.analyses.run import AnalysisResult, Variation, run_analysis

__all__ = ["Analysis", "AnalysisResult", "Registry", "Variation", "load_registry", "run_analysis"]
