"""``hccmeta.sensitivity``: every sensitivity variant of an analysis, as one tidy table.

:func:`sensitivity` runs one analysis, :func:`sensitivity_all` every registered
analysis (what ``hccmeta report`` calls). Both

1. fit (or take) the primary analysis;
2. plan its variants (:mod:`~hccmeta.sensitivity.priors`, :mod:`~.fixed`, :mod:`~.loo`,
   :mod:`~.conversions`, :mod:`~.subsets`, :mod:`~.alternatives`), dropping conversion
   and subset variants that do not change the effects the analysis takes, and fitting
   once the variants that feed the model the same data and settings;
3. serve the prior variants of MCMC models by importance reweighting of the primary
   draws where the Pareto k allows (:mod:`~.reweight`), and refit the rest;
4. run the fits: exact-engine analyses in this process (milliseconds each), MCMC fits
   through the executor (:mod:`~.executor`: in this process by default, a local pool
   with ``workers=``, a Dask cluster with ``client=``);
5. add the power-scaling rows of the primary fits (:mod:`~.power`);

and return the rows in the order of :data:`~.table.GROUPS`. Derived effects are derived
once per set of conversion options and shared by all analyses; compiled models are
shared by every fit in a process (one compilation per model structure).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from hccmeta.analyses.registry import Registry, load_registry
from hccmeta.analyses.run import AnalysisResult, Variation
from hccmeta.analyses.take import selection_memo
from hccmeta.data import Evidence
from hccmeta.defaults import DEFAULT_SEED  # the one default seed
from hccmeta.errors import InputError
from hccmeta.sensitivity.alternatives import alternative_variants
from hccmeta.sensitivity.bias import bias_variants
from hccmeta.sensitivity.conversions import conversion_candidates
from hccmeta.sensitivity.draws import FitView, fit_views
from hccmeta.sensitivity.executor import (
    Context,
    Executor,
    FitOutcome,
    FitTask,
    InProcessExecutor,
    make_executor,
)
from hccmeta.sensitivity.fixed import fixed_variants
from hccmeta.sensitivity.loo import loo_variants
from hccmeta.sensitivity.power import power_scaling_failed, power_scaling_rows
from hccmeta.sensitivity.priors import PROPOSAL_VARIANT, prior_variants
from hccmeta.sensitivity.reweight import reweight_prior
from hccmeta.sensitivity.subsets import subset_candidates
from hccmeta.sensitivity.table import (
    GROUPS,
    failed_rows,
    no_eligible_rows,
    ok_rows,
    to_table,
)
from hccmeta.sensitivity.variants import (
    EXACT_MODELS,
    PlanContext,
    Variant,
    data_key,
    effects_signature,
    fingerprint,
    model_settings,
    selection_key,
    unique_names,
)

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.models.mcmc import SamplerSettings

__all__ = ["DEFAULT_SEED", "plan_variants", "sensitivity", "sensitivity_all"]


def variant_settings() -> SamplerSettings:
    """Sampler settings of the MCMC refits of variants: 4 chains x 500 draws after 500
    tuning draws (the diagnostics -- R-hat <= 1.01, bulk and tail ESS >= 400, no
    divergences -- are checked as for any fit, with the same retries). Variants
    are compared at the level of their 95% intervals, for which 2000 draws suffice; it
    halves the cost of a refit. The target acceptance is 0.95, at least that of every
    model's own default (0.9-0.95): settings passed to a model replace its defaults, and
    the variants' priors (HalfCauchy, Uniform on tau) make funnels likelier, not less."""
    from hccmeta.models.mcmc import SamplerSettings

    return SamplerSettings(draws=500, tune=500, target_accept=0.95)


#: Groups whose variants are dropped when they do not change the data.
_DATA_GROUPS = ("conversion", "subset")


@dataclass
class _Planned:
    variant: Variant
    action: str  # "fit", "reuse_primary", "rows" (ready), "pending" (awaits the proposal)
    task: int | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass
class _Analysis:
    name: str
    primary: AnalysisResult | None = None
    primary_outcome: FitOutcome | None = None
    planned: list[_Planned] = field(default_factory=list)
    power_rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    proposal_task: int | None = None


def plan_variants(ctx: PlanContext, groups: Iterable[str] | None = None) -> list[Variant]:
    """Every variant that can apply to the analysis, before the data checks (conversion
    and subset variants that change nothing are dropped later)."""
    wanted = set(groups) if groups is not None else set(GROUPS)
    out: list[Variant] = []
    if {"prior_tau", "prior_mu"} & wanted:
        out += [v for v in prior_variants(ctx) if v.group in wanted]
    if "effects_model" in wanted:
        out += fixed_variants(ctx)
    if "leave_one_out" in wanted:
        out += loo_variants(ctx)
    if "conversion" in wanted:
        out += conversion_candidates(ctx)
    if "subset" in wanted:
        out += subset_candidates(ctx)
    if "alternative" in wanted:
        out += alternative_variants(ctx)
    if "bias" in wanted:
        out += bias_variants(ctx)
    unique_names(out)
    return out


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]sensitivity[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=0)
        return self

    def add(self, n: int) -> None:
        if self._bar is not None:
            total = self._bar.tasks[0].total or 0
            self._bar.update(self._task, total=total + n)

    def advance(self, description: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=description)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _describe(variation: Variation) -> str:
    """The non-default fields of a variation, briefly (for the timing record)."""
    default = Variation()
    parts = [
        f"{name}={getattr(variation, name)!r}"
        for name in variation.__dataclass_fields__
        if getattr(variation, name) != getattr(default, name) and name != "settings"
    ]
    return ", ".join(parts) or "primary"


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class _Session:
    def __init__(
        self,
        evidence: Evidence,
        registry: Registry,
        executor: Executor,
        *,
        seed: int,
        groups: Iterable[str] | None,
        reweight: bool,
        progress: bool,
        settings: SamplerSettings | None = None,
        extra: Mapping[str, Sequence[Variant]] | None = None,
    ) -> None:
        unknown = set(groups or ()) - set(GROUPS)
        if unknown:
            raise InputError(
                f"unknown variant group(s) {sorted(unknown)}; known: {', '.join(GROUPS)}"
            )
        self.context = Context(evidence, registry)
        self.executor = executor
        self.local = InProcessExecutor()
        self.seed = seed
        self.groups = set(groups) if groups is not None else set(GROUPS)
        self.reweight = reweight
        self.progress = progress
        self.settings = settings
        self.extra = dict(extra or {})
        self.tasks: list[FitTask] = []
        self.keys: dict[Any, int] = {}
        self.fingerprints: dict[Any, Any] = {}
        self.stats: dict[str, Any] = {
            "fits": 0,
            "fits_via_executor": 0,
            "reweighted": 0,
            "deduplicated": 0,
            "compiles": 0,
            "fit_seconds": 0.0,
            "tasks": [],
        }

    # -- fits --------------------------------------------------------------------------
    def _exact(self, name: str) -> bool:
        return self.context.registry.get(name).model in EXACT_MODELS

    def _run_tasks(self, tasks: Sequence[FitTask], bar: _Progress) -> list[FitOutcome]:
        """Exact-engine tasks in this process, MCMC tasks through the executor."""
        out: list[FitOutcome | None] = [None] * len(tasks)
        ship_all = self.executor.runs_exact_fits
        local = [i for i, t in enumerate(tasks) if self._exact(t.analysis) and not ship_all]
        remote = [i for i, t in enumerate(tasks) if i not in set(local)]
        # neighbours share compiled models (and the survival runner's one-fit cache)
        remote.sort(key=lambda i: self._structure(tasks[i]))
        bar.add(len(tasks))
        for idx_list, executor in ((local, self.local), (remote, self.executor)):
            if not idx_list:
                continue
            sub = [tasks[i] for i in idx_list]
            for j, outcome in executor.map(self.context, sub):
                i = idx_list[j]
                out[i] = outcome
                self.stats["fits"] += 1
                self.stats["fits_via_executor"] += 0 if executor is self.local else 1
                self.stats["compiles"] += outcome.compiles
                self.stats["fit_seconds"] += outcome.seconds
                self.stats["tasks"].append(
                    (tasks[i].analysis, _describe(tasks[i].variation), outcome.seconds,
                     outcome.compiles, outcome.status)
                )  # fmt: skip
                bar.advance(tasks[i].analysis)
        assert all(o is not None for o in out)
        return [o for o in out if o is not None]

    def _primary_variation(self, name: str) -> Variation:
        if self.settings is None or self._exact(name):
            return Variation()
        return Variation(settings=self.settings)

    def _structure(self, task: FitTask) -> tuple[str, ...]:
        """A sort key that puts fits of the same model structure next to each other."""
        var = task.variation
        return (
            self.context.registry.get(task.analysis).model,
            *model_settings(var),
            repr(data_key(var)),
            task.analysis,
        )

    # -- planning ----------------------------------------------------------------------
    def _add_task(self, task: FitTask, key: Any) -> int:
        """Index of the task fitting ``key`` (analysis, data fingerprint, settings): a new
        task, or the one already planned with that key."""
        if key is not None and key in self.keys:
            self.stats["deduplicated"] += 1
            index = self.keys[key]
            if task.keep_result and not self.tasks[index].keep_result:
                self.tasks[index] = replace(self.tasks[index], keep_result=True)
            return index
        self.tasks.append(task)
        if key is not None:
            self.keys[key] = len(self.tasks) - 1
        return len(self.tasks) - 1

    def _reweighted(
        self,
        item: _Analysis,
        v: Variant,
        source: AnalysisResult,
        views: list[FitView],
        estimands: list[str],
        words: str,
    ) -> _Planned | str:
        """The variant served by PSIS from ``source``, or why not."""
        try:
            rw = reweight_prior(source, views, v.variation)
        except (InputError, ArithmeticError) as exc:  # a prior that does not fit; no weight
            rows = failed_rows(
                item.name, v.name, v.group, v.description, estimands,
                f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
            return _Planned(v, "rows", rows=rows)
        if rw.estimates is None:
            return rw.reason
        desc = f"{v.description} (importance-reweighted {words}, Pareto k {rw.khat:.2f})"
        rows = ok_rows(item.name, v.name, v.group, desc, rw.estimates, estimands=estimands)
        self.stats["reweighted"] += 1
        return _Planned(v, "rows", rows=rows)

    def _plan(self, item: _Analysis) -> None:
        primary = item.primary
        assert primary is not None
        analysis = primary.analysis
        derived = self.context.derived(None)
        labels = self.context.evidence.study_labels
        ctx = PlanContext(analysis, primary, derived, self.context.derived, labels)
        variants = plan_variants(ctx, self.groups) + list(self.extra.get(item.name, ()))
        unique_names(variants)
        if not ctx.exact:
            # MCMC refits: the variant settings; studies left out by masking where the
            # model supports it (same compiled structure as the primary)
            settings = self.settings if self.settings is not None else variant_settings()
            variants = [
                replace(
                    v,
                    variation=replace(
                        v.variation,
                        settings=settings,
                        keep_structure=bool(v.variation.exclude_studies or v.variation.subset),
                    ),
                )
                for v in variants
            ]
        base_key = data_key(Variation())
        survival = analysis.model == "survival_multiformat"
        prints = {
            base_key: fingerprint(
                analysis, derived, Variation(), primary=None if survival else primary
            )
        }
        base_signature = effects_signature(analysis, derived)
        views = fit_views(primary) if not ctx.exact and self.reweight else []
        proposal = next((v for v in variants if v.name == PROPOSAL_VARIANT), None)
        for v in variants:
            var = v.variation
            dkey = data_key(var)
            if dkey not in prints:
                dv = self.context.derived(var.options)
                if (
                    var.options is not None
                    and replace(var, options=None, settings=None, keep_structure=False)
                    == Variation()
                    and effects_signature(analysis, dv) == base_signature
                ):
                    prints[dkey] = prints[base_key]  # no effect of its measures changes
                elif survival:  # selected anew; shared by analyses selecting alike
                    skey = selection_key(analysis, var)
                    if skey not in self.fingerprints:
                        self.fingerprints[skey] = fingerprint(analysis, dv, var)
                    prints[dkey] = self.fingerprints[skey]
                else:
                    prints[dkey] = fingerprint(analysis, dv, var, primary=primary)
            fp = prints[dkey]
            changes_model = model_settings(var) != model_settings(Variation(settings=var.settings))
            if (
                v.group in _DATA_GROUPS
                and not changes_model
                and fp is not None
                and fp == prints[base_key]
            ):
                item.skipped.append(
                    {
                        "analysis": item.name,
                        "variant": v.name,
                        "variant_group": v.group,
                        "reason": "does not change the effects this analysis takes",
                    }
                )
                continue
            if not ctx.exact and v.is_primary_prior:
                item.planned.append(_Planned(v, "reuse_primary"))
                continue
            note = ""
            if v is proposal and not ctx.exact:
                # the heavy-tailed prior is always refitted: reweighting a lighter-tailed
                # posterior towards a Cauchy tail is unreliable even when the Pareto k,
                # estimated from the draws at hand, happens to come out below 0.7
                note = "refitted: the heavy-tailed proposal of the other prior variants"
            elif not ctx.exact and v.prior_change and self.reweight:
                got = self._reweighted(item, v, primary, views, ctx.estimands, "primary posterior")
                if isinstance(got, _Planned):
                    item.planned.append(got)
                    continue
                note = f"refitted: importance reweighting not reliable ({got})"
                if (
                    proposal is not None
                    and v is not proposal
                    and var.prior_tau is not None
                    and replace(var, prior_tau=None) == replace(proposal.variation, prior_tau=None)
                ):
                    # try the heavy-tailed proposal's posterior first (after round 1)
                    item.planned.append(_Planned(v, "pending", note=note))
                    continue
            key = (item.name, fp, model_settings(var)) if fp is not None else None
            keep = v is proposal and not ctx.exact
            index = self._add_task(FitTask(item.name, var, self.seed, keep), key)
            item.planned.append(_Planned(v, "fit", index, note=note))
            if keep:
                item.proposal_task = index

    def _resolve_pending(self, item: _Analysis, outcomes: Mapping[int, FitOutcome]) -> None:
        """Pending prior variants: PSIS from the heavy-tailed proposal fit, else refit."""
        source = None
        if item.proposal_task is not None:
            out = outcomes.get(item.proposal_task)
            if out is not None and out.status == "ok" and out.result is not None:
                source = out.result
        views = fit_views(source) if source is not None else []
        estimands = [str(e) for e in item.primary.estimates["estimand"]] if item.primary else []
        for n, p in enumerate(item.planned):
            if p.action != "pending":
                continue
            v = p.variant
            if source is not None:
                got = self._reweighted(
                    item, v, source, views, estimands,
                    f"posterior of the {PROPOSAL_VARIANT} fit",
                )  # fmt: skip
                if isinstance(got, _Planned):
                    item.planned[n] = got
                    continue
                p.note = f"{p.note}; from the {PROPOSAL_VARIANT} fit too ({got})"
            index = self._add_task(FitTask(item.name, v.variation, self.seed), None)
            item.planned[n] = _Planned(v, "fit", index, note=p.note)

    # -- the whole run -----------------------------------------------------------------
    def _run_round(self, bar: _Progress, outcomes: dict[int, FitOutcome]) -> None:
        todo = [i for i in range(len(self.tasks)) if i not in outcomes]
        for i, out in zip(todo, self._run_tasks([self.tasks[i] for i in todo], bar), strict=True):
            outcomes[i] = out

    def run(
        self, names: Sequence[str], primaries: Mapping[str, AnalysisResult] | None = None
    ) -> pd.DataFrame:
        start = time.perf_counter()
        primaries = dict(primaries or {})
        items = [_Analysis(name) for name in names]
        with _Progress(self.progress) as bar:
            # 1. the primary analyses
            todo = [it for it in items if it.name not in primaries]
            tasks = [
                FitTask(it.name, self._primary_variation(it.name), self.seed, True) for it in todo
            ]
            for it, outcome in zip(todo, self._run_tasks(tasks, bar), strict=True):
                it.primary_outcome = outcome
                it.primary = outcome.result
            for it in items:
                if it.name in primaries:
                    it.primary = primaries[it.name]
            ok = [it for it in items if it.primary is not None and it.primary.status == "ok"]
            # 2. plans and reweighting from the primary posteriors
            for it in ok:
                self._plan(it)
            # 3. the variant fits; then the prior variants that needed the proposal fit
            outcomes: dict[int, FitOutcome] = {}
            self._run_round(bar, outcomes)
            for it in ok:
                self._resolve_pending(it, outcomes)
            self._run_round(bar, outcomes)
            # 4. power-scaling of the primary fits
            if "power_scaling" in self.groups:
                bar.add(len(ok))
                for it in ok:
                    assert it.primary is not None
                    if it.primary.ok:
                        it.power_rows = power_scaling_rows(it.primary, fit_views(it.primary))
                    else:
                        it.power_rows = power_scaling_failed(
                            it.primary, "the primary fit failed its MCMC diagnostics"
                        )
                    bar.advance(f"{it.name} power-scaling")
        rows: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        for it in items:
            rows += self._rows(it, outcomes)
            skipped += it.skipped
        table = to_table(rows)
        table.attrs["skipped"] = skipped
        table.attrs["primary_estimand"] = {
            it.name: it.primary.primary_estimand
            for it in items
            if it.primary is not None and it.primary.primary_estimand is not None
        }
        table.attrs["stats"] = {**self.stats, "seconds": time.perf_counter() - start}
        return table

    def _rows(self, it: _Analysis, outcomes: Mapping[int, FitOutcome]) -> list[dict[str, Any]]:
        name = it.name
        primary = it.primary
        if primary is None:
            assert it.primary_outcome is not None
            analysis = self.context.registry.get(name)
            est = [analysis.primary_estimand] if analysis.primary_estimand else []
            return failed_rows(
                name, "primary", "primary", "the registered analysis", est,
                it.primary_outcome.error,
            )  # fmt: skip
        desc = "the registered analysis" + (
            " ("
            + "; ".join(v if "~" in v else f"{k} ~ {v}" for k, v in primary.priors.items())
            + ")"
            if primary.priors
            else ""
        )
        if primary.status != "ok":
            analysis = primary.analysis
            est = [analysis.primary_estimand] if analysis.primary_estimand else []
            return no_eligible_rows(name, "primary", "primary", desc, est)
        estimands = [str(e) for e in primary.estimates["estimand"]]
        scales = {str(r["estimand"]): str(r["scale"]) for _, r in primary.estimates.iterrows()}
        error = ""
        status = "ok"
        if not primary.ok:
            status = "failed"
            msgs = "; ".join(str(m) for m in primary.diagnostics["messages"] if m)
            error = f"MCMC diagnostics failed after retries: {msgs}"
        rows = ok_rows(
            name, "primary", "primary", desc, primary.estimates, status=status, error=error
        )
        order = {g: i for i, g in enumerate(GROUPS)}
        planned = sorted(it.planned, key=lambda p: order.get(p.variant.group, len(order)))
        for p in planned:
            v = p.variant
            if p.action == "rows":
                rows += p.rows
                continue
            if p.action == "reuse_primary":
                rows += ok_rows(
                    name, v.name, v.group, f"{v.description} (the primary fit)",
                    primary.estimates, status=status, error=error,
                )  # fmt: skip
                continue
            assert p.task is not None
            out = outcomes[p.task]
            desc_v = f"{v.description} ({p.note})" if p.note else v.description
            if out.status == "failed" and out.estimates.empty:
                rows += failed_rows(
                    name, v.name, v.group, desc_v, estimands, out.error, scales=scales
                )
            elif out.status == "no_eligible_records" or out.estimates.empty:
                rows += no_eligible_rows(name, v.name, v.group, desc_v, estimands, scales=scales)
            else:
                rows += ok_rows(
                    name, v.name, v.group, desc_v, out.estimates, estimands=estimands,
                    status=out.status, error=out.error,
                )  # fmt: skip
        rows += it.power_rows
        return rows


def _load(evidence: Evidence | None, registry: Registry | None) -> tuple[Evidence, Registry]:
    if evidence is None:
        from hccmeta.data import load_studies

        evidence = load_studies()
    return evidence, registry if registry is not None else load_registry(evidence.data_dir)


def sensitivity(
    analysis_or_result: str | AnalysisResult,
    evidence: Evidence | None = None,
    *,
    client: Any = None,
    seed: int | None = None,
    progress: bool | None = None,
    groups: Iterable[str] | None = None,
    registry: Registry | None = None,
    workers: int | None = None,
    reweight: bool = True,
    settings: SamplerSettings | None = None,
    extra_variants: Sequence[Variant] = (),
    executor: Executor | None = None,
) -> pd.DataFrame:
    """The sensitivity analyses of one analysis, as one tidy table.

    Parameters
    ----------
    analysis_or_result : str or AnalysisResult
        A registered analysis name, or its primary result
        (:func:`hccmeta.analyses.run_analysis`; not refitted).
    evidence : Evidence, optional
        The study data; default :func:`hccmeta.load_studies` (for a result, it must
        have the result's data hash).
    client : distributed.Client, keyword-only, optional
        Run the MCMC fits on this Dask cluster.
    seed : int, keyword-only, optional
        Seed of every fit (default: the result's seed, else 20261122).
    progress : bool, keyword-only, optional
        Show a progress bar on stderr (default: when stderr is a terminal).
    groups : iterable of str, keyword-only, optional
        Variant groups to run (default all of :data:`~hccmeta.sensitivity.table.GROUPS`).
    registry : Registry, keyword-only, optional
        The registry (default: ``analyses.yaml`` of the evidence's data directory).
    workers : int, keyword-only, optional
        Run the MCMC fits in a local pool of this many processes (default: in this
        process, which is faster on a 2-core machine; see
        :mod:`hccmeta.sensitivity.executor`).
    reweight : bool, keyword-only
        Serve prior variants of MCMC models by PSIS reweighting where reliable
        (default); False refits every one.
    settings : SamplerSettings, keyword-only, optional
        MCMC sampler settings of the variant refits and of primaries fitted here
        (default: :func:`variant_settings` for variant refits, the model's own for the
        primary analysis).
    extra_variants : sequence of Variant, keyword-only
        Variants to run besides the planned ones (e.g. a finer prior grid); names must
        not repeat planned ones.
    executor : Executor, keyword-only, optional
        An executor to use instead of the one ``client`` / ``workers`` select.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~hccmeta.sensitivity.table.SENSITIVITY_COLUMNS`, the primary
        analysis first. ``attrs["skipped"]`` lists the variants that did not apply
        (with the reason), ``attrs["stats"]`` counts fits, reweighted variants and
        compilations.
    """
    if isinstance(analysis_or_result, AnalysisResult):
        result = analysis_or_result
        evidence, registry = _load(evidence, registry)
        if result.data_hash and evidence.data_hash != result.data_hash:
            raise InputError(
                f"the result of {result.name!r} comes from other study data (hash "
                f"{result.data_hash[:12]}) than the evidence given ({evidence.data_hash[:12]}); "
                "pass the evidence it was fitted on"
            )
        if replace(result.variation, settings=None) != Variation():
            raise InputError(
                f"sensitivity() takes the primary result of {result.name!r}, not a variant"
            )
        name = result.name
        primaries: dict[str, AnalysisResult] = {name: result}
        seed = result.seed if seed is None else seed
    elif isinstance(analysis_or_result, str):
        evidence, registry = _load(evidence, registry)
        name = registry.get(analysis_or_result).name
        primaries = {}
    else:
        raise InputError(
            "sensitivity() takes an analysis name or an AnalysisResult, got "
            f"{type(analysis_or_result).__name__}"
        )
    return _execute(
        [name], evidence, registry, primaries, client=client, seed=seed, progress=progress,
        groups=groups, workers=workers, reweight=reweight, executor=executor,
        settings=settings, extra={name: list(extra_variants)},
    )  # fmt: skip


def sensitivity_all(
    evidence: Evidence | None = None,
    *,
    analyses: Sequence[str] | None = None,
    primaries: Mapping[str, AnalysisResult] | None = None,
    client: Any = None,
    seed: int = DEFAULT_SEED,
    progress: bool | None = None,
    groups: Iterable[str] | None = None,
    registry: Registry | None = None,
    workers: int | None = None,
    reweight: bool = True,
    settings: SamplerSettings | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """The sensitivity analyses of every registered analysis (or of ``analyses``), in
    one table, sharing derived effects and compiled models across analyses.

    ``primaries`` are primary results already fitted (e.g. by the report), by analysis
    name; the others are fitted here. Other parameters as :func:`sensitivity`.
    """
    evidence, registry = _load(evidence, registry)
    names = list(analyses) if analyses is not None else registry.names
    for n in names:
        registry.get(n)
    given = {n: r for n, r in (primaries or {}).items() if n in names}
    return _execute(
        names, evidence, registry, given, client=client, seed=seed, progress=progress,
        groups=groups, workers=workers, reweight=reweight, executor=executor,
        settings=settings,
    )  # fmt: skip


def _execute(
    names: Sequence[str],
    evidence: Evidence,
    registry: Registry,
    primaries: Mapping[str, AnalysisResult],
    *,
    client: Any,
    seed: int | None,
    progress: bool | None,
    groups: Iterable[str] | None,
    workers: int | None,
    reweight: bool,
    executor: Executor | None,
    settings: SamplerSettings | None = None,
    extra: Mapping[str, Sequence[Variant]] | None = None,
) -> pd.DataFrame:
    own = executor is None
    ex = executor if executor is not None else make_executor(client, workers)
    session = _Session(
        evidence,
        registry,
        ex,
        seed=DEFAULT_SEED if seed is None else int(seed),
        groups=groups,
        reweight=reweight,
        progress=_progress_enabled(progress),
        settings=settings,
        extra=extra,
    )
    # the variants select the same effects over and over: each selection is made once
    with ex if own else nullcontext(), selection_memo():
        return session.run(names, primaries)
