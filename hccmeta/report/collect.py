"""Run everything the report shows: every registered analysis, its sensitivity table, its
statement in words, and the evidence account.

:func:`collect` returns a :class:`ReportData` (numbers only); :mod:`hccmeta.report.writer`
renders and writes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.registry import Registry
    from hccmeta.analyses.run import AnalysisResult
    from hccmeta.data import Evidence
    from hccmeta.effects.table import DerivedEffects
    from hccmeta.report.cache import ResultCache

__all__ = ["AnalysisSection", "Progress", "ReportData", "collect", "sensitivity_available"]


class Progress(Protocol):
    """What :func:`collect` and the writer report their progress to (the command line
    shows it as a rich progress bar)."""

    #: Whether the sensitivity layer may show its own progress bar (between
    #: :meth:`pause` and :meth:`resume`).
    interactive: bool

    def update(self, phase: str, what: str, done: int, total: int) -> None:
        """``done`` of ``total`` steps of ``phase`` are complete; ``what`` is next."""

    def pause(self) -> None:
        """Stop drawing (the sensitivity layer draws its own bar)."""

    def resume(self) -> None:
        """Draw again."""


@dataclass
class AnalysisSection:
    """One analysis of the report.

    Attributes
    ----------
    result : AnalysisResult
        The primary result.
    sensitivity : DataFrame or None
        Its sensitivity table (None when the sensitivity layer is not available).
    statement : str
        The statement in words (:func:`hccmeta.report.interpret.interpret`).
    """

    result: AnalysisResult
    sensitivity: pd.DataFrame | None
    statement: str

    @property
    def name(self) -> str:
        """The analysis name (also the stem of its files)."""
        return self.result.name


@dataclass
class ReportData:
    """Everything the report shows.

    Attributes
    ----------
    evidence, derived, registry
        The study data, the effects derived from it, and the analysis registry.
    sections : list of AnalysisSection
        One per registered analysis, in registry order.
    account : DataFrame
        The evidence account (:func:`hccmeta.analyses.account.evidence_account`).
    seed : int
        The seed of every fit.
    timings : dict
        Seconds spent deriving, running the analyses and the sensitivity variants.
    keys : dict
        ``{analysis: (primary key, sensitivity key)}`` of the result cache
        (:mod:`hccmeta.report.cache`; None where nothing is cached).
    cache : ResultCache or None
        The result cache the run used.
    """

    evidence: Evidence
    derived: DerivedEffects
    registry: Registry
    sections: list[AnalysisSection]
    account: pd.DataFrame
    seed: int
    timings: dict[str, float] = field(default_factory=dict)
    keys: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    cache: ResultCache | None = None

    @property
    def sensitivity(self) -> pd.DataFrame | None:
        """The sensitivity tables of every analysis, concatenated (None if unavailable)."""
        tables = [s.sensitivity for s in self.sections if s.sensitivity is not None]
        if not tables:
            return None
        return pd.concat(tables, ignore_index=True)

    @property
    def n_variants(self) -> int:
        """Sensitivity variants run (the primary rows excluded)."""
        table = self.sensitivity
        if table is None or table.empty:
            return 0
        return int(
            table.loc[table["variant"] != "primary", ["analysis", "variant"]]
            .drop_duplicates()
            .shape[0]
        )


def sensitivity_available() -> bool:
    """Whether the sensitivity layer (``hccmeta.sensitivity.sensitivity_all``) exists."""
    try:
        from hccmeta import sensitivity as sens
    except ImportError:
        return False
    return hasattr(sens, "sensitivity_all")


def _sensitivity_tables(
    results: list[AnalysisResult],
    evidence: Evidence,
    registry: Registry,
    seed: int,
    progress: Progress | None,
) -> dict[str, pd.DataFrame]:
    """The sensitivity table of each of ``results``, each with the attributes of its
    own analysis only (``primary_estimand``, ``skipped``): the same table whichever
    other analyses the run fits beside it."""
    from hccmeta.sensitivity import sensitivity_all

    interactive = progress is not None and progress.interactive
    if progress is not None:
        progress.pause()
    try:
        table: pd.DataFrame = sensitivity_all(
            evidence,
            analyses=[r.name for r in results],
            primaries={r.name: r for r in results},
            registry=registry,
            seed=seed,
            progress=interactive,
        )
    finally:
        if progress is not None:
            progress.resume()
    skipped = table.attrs.get("skipped", [])
    estimands = table.attrs.get("primary_estimand", {})
    out = {}
    for name, t in table.groupby("analysis", sort=False):
        part = t.reset_index(drop=True)
        part.attrs = {
            "primary_estimand": {k: v for k, v in estimands.items() if k == name},
            "skipped": [s for s in skipped if s.get("analysis") == name],
        }
        out[str(name)] = part
    return out


def _cache_keys(
    names: list[str],
    evidence: Evidence,
    derived: DerivedEffects,
    registry: Registry,
    seed: int,
    cache: ResultCache,
) -> dict[str, tuple[str | None, str | None]]:
    """The cache keys of each analysis: its primary result and its sensitivity table."""
    from hccmeta.report.cache import analysis_key, sub_key
    from hccmeta.sensitivity.table import GROUPS

    if not cache.enabled:
        return {name: (None, None) for name in names}
    keys: dict[str, tuple[str | None, str | None]] = {}
    memo: dict[str, tuple[str, str]] = {}
    for name in names:
        key = analysis_key(registry.get(name), evidence, derived, seed=seed, memo=memo)
        keys[name] = (key, sub_key(key, "sensitivity", *GROUPS) if key else None)
    return keys


def _relevance_holds(
    result: AnalysisResult, evidence: Evidence, registry: Registry, derived: DerivedEffects
) -> bool:
    """Whether the relevant studies of the default derivation cover those of every
    derivation the conversion variants use (else the table is not stored)."""
    from hccmeta.effects.table import DeriveOptions
    from hccmeta.report.cache import relevance_covers
    from hccmeta.sensitivity.conversions import CONVERSIONS
    from hccmeta.sensitivity.executor import Context

    context = Context(evidence, registry)
    others = (
        context.derived(DeriveOptions(**options))  # type: ignore[arg-type]
        for _name, options, _text in CONVERSIONS
    )
    return relevance_covers(result.analysis, derived, others)


def collect(
    evidence: Evidence,
    *,
    seed: int,
    registry: Registry | None = None,
    sensitivity: bool = True,
    progress: Progress | None = None,
    on_primaries: Callable[[list[AnalysisResult], dict[str, tuple[str | None, str | None]]], None]
    | None = None,
    cache: ResultCache | None = None,
) -> ReportData:
    """Run every registered analysis (and its sensitivity analyses) on ``evidence``.

    Parameters
    ----------
    evidence : Evidence
        The validated study data.
    seed : int, keyword-only
        Seed of every fit.
    registry : Registry, optional
        Default: ``analyses.yaml`` of the evidence's data directory.
    sensitivity : bool
        Run the sensitivity analyses (when the sensitivity layer is available).
    progress : Progress, optional
        Told of each step.
    on_primaries : callable, optional
        Called with the primary results and their cache keys before the sensitivity
        analyses start (the writer starts drawing their figures then).
    cache : ResultCache, optional
        Reuse the primary results and sensitivity tables stored under the same inputs,
        and store those computed (:mod:`hccmeta.report.cache`); below them, each MCMC
        fit (:func:`hccmeta.models.mcmc.fit_store`). Default: no cache.

    Returns
    -------
    ReportData
    """
    from hccmeta.analyses.take import selection_memo
    from hccmeta.effects.derive import derive_store
    from hccmeta.models.mcmc import fit_store
    from hccmeta.report.cache import ResultCache

    cache = cache if cache is not None else ResultCache(None)
    store = cache if cache.enabled else None
    # each MCMC fit and each study's derivation stored under its inputs; each selection
    # of effects made once
    with fit_store(store), derive_store(store), selection_memo():
        return _collect(evidence, seed, registry, sensitivity, progress, on_primaries, cache)


def _collect(
    evidence: Evidence,
    seed: int,
    registry: Registry | None,
    sensitivity: bool,
    progress: Progress | None,
    on_primaries: Callable[[list[AnalysisResult], dict[str, tuple[str | None, str | None]]], None]
    | None,
    cache: ResultCache,
) -> ReportData:
    from hccmeta.analyses.account import evidence_account
    from hccmeta.analyses.run import run_analysis
    from hccmeta.effects import derive_effects
    from hccmeta.report.cache import load_registry_cached
    from hccmeta.report.interpret import interpret

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if registry is None:
        registry = load_registry_cached(cache, evidence.data_dir)
    derived = derive_effects(evidence)
    timings["derive"] = time.perf_counter() - t0
    names = registry.names
    keys = _cache_keys(names, evidence, derived, registry, seed, cache)
    timings["keys"] = time.perf_counter() - t0 - timings["derive"]
    results: list[AnalysisResult] = []
    t0 = time.perf_counter()
    for i, name in enumerate(names):
        if progress is not None:
            progress.update("analyses", name, i, len(names))
        result = cache.get("primary", keys[name][0])
        if result is not None:
            result.data_hash = evidence.data_hash  # the only field from other studies
        else:
            result = run_analysis(name, evidence, derived=derived, registry=registry, seed=seed)
            if result.status == "ok":
                _ = result.conflicts  # computed once, stored with the result
                cache.put("primary", keys[name][0], result)
        results.append(result)
    if progress is not None:
        progress.update("analyses", "done", len(names), len(names))
    timings["analyses"] = time.perf_counter() - t0
    if on_primaries is not None:
        on_primaries(results, keys)
    tables: dict[str, pd.DataFrame] = {}
    t0 = time.perf_counter()
    if sensitivity and sensitivity_available():
        for res in results:
            hit = cache.get("sensitivity", keys[res.name][1])
            if hit is not None:
                tables[res.name] = hit
        todo = [r for r in results if r.name not in tables]
        if todo:
            computed = _sensitivity_tables(todo, evidence, registry, seed, progress)
            for res in todo:
                table = computed.get(res.name)
                key = keys[res.name][1]
                if table is None or key is None or res.status != "ok":
                    continue
                if _relevance_holds(res, evidence, registry, derived):
                    cache.put("sensitivity", key, table)
            tables.update(computed)
    timings["sensitivity"] = time.perf_counter() - t0
    sections = []
    for res in results:
        table = tables.get(res.name) if tables else None
        statement = interpret(
            res,
            table if table is not None and not table.empty else None,
            labels=evidence.study_labels,
        )
        sections.append(AnalysisSection(result=res, sensitivity=table, statement=statement))
    account = evidence_account(evidence, derived, results, registry)
    return ReportData(
        evidence=evidence,
        derived=derived,
        registry=registry,
        sections=sections,
        account=account,
        seed=seed,
        timings=timings,
        keys=keys,
        cache=cache,
    )


def eligible_records(evidence: Evidence, result: AnalysisResult) -> pd.DataFrame:
    """The records behind an analysis with their provenance: one row per provenance
    entry (study, record, label, location, snippet, file, line)."""
    from hccmeta.analyses.run import selected

    rows: list[dict[str, Any]] = []
    for rid in selected(result):
        study, rec = evidence.record(rid)
        loc = evidence.locations.get(rid)
        for p in rec.provenance:
            rows.append(
                {
                    "study": study.id,
                    "record": rid,
                    "label": rec.label,
                    "location": p.location,
                    "snippet": p.snippet,
                    "file": source_file(evidence, loc.file) if loc else "",
                    "line": loc.line if loc else None,
                }
            )
    return pd.DataFrame(
        rows, columns=["study", "record", "label", "location", "snippet", "file", "line"]
    )


def source_file(evidence: Evidence, file: str | None) -> str:
    """A study file as ``<data dir name>/<file name>``: the same whatever the working
    directory (the loader names files relative to it)."""
    if not file:
        return ""
    from pathlib import Path

    return f"{evidence.data_dir.name}/{Path(file).name}"
