"""One interface for running the fits of sensitivity variants: in this process, in a
local process pool, or on a Dask cluster.

:class:`Executor.map` takes a :class:`Context` (the evidence and the registry: what
every fit needs, sent to each worker once) and a list of :class:`FitTask`, and yields
``(index, FitOutcome)`` as fits finish. :func:`run_fit` is the one function every
executor runs; it turns the errors a variant can legitimately raise -- bad input
(:class:`~hccmeta.errors.HccmetaError`), an MCMC fit nutpie could not sample
(:class:`~hccmeta.models.mcmc.SamplingError`), numerical failures (``ArithmeticError``,
``numpy.linalg.LinAlgError``) -- into a ``failed`` outcome with the exception's type and
message. Anything else is a bug and propagates in this process; in a pool or on a
cluster, where one crashed worker must not lose the whole grid, the executor records
the exception's type and message in a ``failed`` outcome instead (the only broad
``except``, at that boundary).

Which executor, measured on the project's 2-core machine
(``benchmarks/bench_sensitivity.py --analysis objective_response --pool 2``, load
average about 3): nutpie already samples the four chains of one fit on both cores, and
every new process pays the PyMC import (about 5 s) and a numba compilation for every
model structure it meets (7-40 s each under load); a refit of a compiled model in a warm
process takes 0.3-1.5 s. The 50-variant grid of ``objective_response`` took 51 s in this
process and 128 s on a local pool of two processes (each worker compiled its structures
again). Sequential refits in this process therefore beat a local pool on two cores for
every grid this project runs, and :class:`InProcessExecutor` is the default. The pool
(``workers=N``) pays off on machines with many cores and grids with many MCMC refits of
few structures; a Dask client (``client=``) runs the same tasks on a cluster, each worker
keeping its own compiled models and derived effects across the tasks it receives.
Exact-engine fits (milliseconds) stay in this process unless a Dask client is given, in
which case every fit runs on the cluster.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hccmeta.analyses.registry import Registry
from hccmeta.analyses.run import ESTIMATE_COLUMNS, AnalysisResult, Variation, run_analysis
from hccmeta.data import Evidence
from hccmeta.effects.table import DerivedEffects, DeriveOptions
from hccmeta.errors import HccmetaError

__all__ = [
    "Context",
    "DaskExecutor",
    "Executor",
    "FitOutcome",
    "FitTask",
    "InProcessExecutor",
    "LocalPoolExecutor",
    "make_executor",
    "run_fit",
]


@dataclass(frozen=True)
class FitTask:
    """One fit: an analysis under a variation.

    Attributes
    ----------
    analysis : str
        Registered analysis name.
    variation : Variation
        What the variant changes.
    seed : int
        Seed of the fit (the same for every variant: common random numbers).
    keep_result : bool
        Return the whole :class:`AnalysisResult` (fits and draws), not only its
        estimates (the primary analyses: reweighting and power-scaling need the draws).
    """

    analysis: str
    variation: Variation
    seed: int
    keep_result: bool = False


@dataclass
class FitOutcome:
    """What a fit returns to the caller.

    Attributes
    ----------
    status : {"ok", "no_eligible_records", "failed"}
    estimates : DataFrame
        The estimate rows (columns of ``AnalysisResult.estimates``).
    message : str
        The analysis result's one-line message.
    error : str
        ``"<ExceptionType>: <message>"`` of a failed fit, or the MCMC diagnostics that
        failed after the retries.
    result : AnalysisResult or None
        The whole result (``keep_result`` tasks).
    seconds : float
        Wall time of the fit in the worker.
    compiles : int
        Models compiled in the worker for this fit.
    """

    status: str
    estimates: pd.DataFrame
    message: str = ""
    error: str = ""
    result: AnalysisResult | None = None
    seconds: float = 0.0
    compiles: int = 0


#: Derived effects by (data hash, options), shared by every context of a process
#: (a warm process re-running a grid derives nothing again).
_DERIVED: OrderedDict[tuple[str, DeriveOptions], DerivedEffects] = OrderedDict()
_DERIVED_MAX = 64
_DERIVED_LOCK = threading.Lock()


@dataclass
class Context:
    """What every fit needs: the evidence and the registry. Derived effects are cached
    per data hash and :class:`DeriveOptions` in each process (never shipped)."""

    evidence: Evidence
    registry: Registry

    def derived(self, options: DeriveOptions | None) -> DerivedEffects:
        """The effects derived with ``options`` (default options if None), cached."""
        from hccmeta.effects import derive_effects

        key = (self.evidence.data_hash, options if options is not None else DeriveOptions())
        with _DERIVED_LOCK:
            hit = _DERIVED.get(key)
            if hit is not None:
                _DERIVED.move_to_end(key)
                return hit
        hit = derive_effects(self.evidence, **key[1].as_dict())
        with _DERIVED_LOCK:
            _DERIVED[key] = hit
            while len(_DERIVED) > _DERIVED_MAX:
                _DERIVED.popitem(last=False)
        return hit


#: Errors a variant can legitimately raise; anything else is a bug.
def _variant_errors() -> tuple[type[BaseException], ...]:
    from hccmeta.models.mcmc import SamplingError

    return (HccmetaError, SamplingError, ArithmeticError, np.linalg.LinAlgError)


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_fit(context: Context, task: FitTask) -> FitOutcome:
    """Fit one task (in whatever process runs it)."""
    from hccmeta.models import mcmc

    start, compiles = time.perf_counter(), mcmc.compile_count()
    try:
        res = run_analysis(
            task.analysis,
            context.evidence,
            derived=context.derived(task.variation.options),
            variation=task.variation,
            registry=context.registry,
            seed=task.seed,
            rate=task.keep_result,  # a variant's row takes the estimates alone
        )
    except _variant_errors() as exc:
        return FitOutcome(
            "failed",
            pd.DataFrame(columns=list(ESTIMATE_COLUMNS)),
            error=_error_text(exc),
            seconds=time.perf_counter() - start,
            compiles=mcmc.compile_count() - compiles,
        )
    error = ""
    status: str = res.status
    if status == "ok" and not res.ok:
        status = "failed"
        msgs = "; ".join(str(m) for m in res.diagnostics["messages"] if m)
        error = f"MCMC diagnostics failed after retries: {msgs}"
    return FitOutcome(
        status,
        res.estimates,
        message=res.message,
        error=error,
        result=res if task.keep_result else None,
        seconds=time.perf_counter() - start,
        compiles=mcmc.compile_count() - compiles,
    )


def _boundary_failure(exc: BaseException) -> FitOutcome:
    return FitOutcome(
        "failed",
        pd.DataFrame(columns=list(ESTIMATE_COLUMNS)),
        error="executor: " + _error_text(exc),
    )


class Executor(ABC):
    """Runs fit tasks; yields ``(index, outcome)`` in completion order."""

    #: Short name, for messages and the benchmark.
    name: str = "executor"
    #: Whether exact-engine fits (milliseconds each) go through this executor too; if
    #: not, they run in the calling process.
    runs_exact_fits: bool = False

    @abstractmethod
    def map(self, context: Context, tasks: Sequence[FitTask]) -> Iterator[tuple[int, FitOutcome]]:
        """Run ``tasks``; yield each task's index and outcome as it finishes."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for most executors
        """Release workers (no-op by default)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Sequential fits in this process (compiled models and derived effects shared)."""

    name = "in-process"

    def map(self, context: Context, tasks: Sequence[FitTask]) -> Iterator[tuple[int, FitOutcome]]:
        for i, task in enumerate(tasks):
            yield i, run_fit(context, task)


_WORKER_CONTEXT: Context | None = None


def _init_worker(context: Context, parent: int | None = None) -> None:
    global _WORKER_CONTEXT
    if parent is not None:
        from hccmeta.procs import watch_parent

        watch_parent(parent)  # a killed parent cannot shut the pool down
    _WORKER_CONTEXT = context


def _pool_fit(task: FitTask) -> FitOutcome:
    assert _WORKER_CONTEXT is not None, "worker not initialised"
    return run_fit(_WORKER_CONTEXT, task)


class LocalPoolExecutor(Executor):
    """A local pool of ``workers`` processes (spawned: nutpie and numba use threads,
    which ``fork`` does not copy safely). Each worker imports PyMC and compiles the
    structures it meets once."""

    name = "process-pool"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self._pool: cf.ProcessPoolExecutor | None = None
        self._context_id: int | None = None

    def _get_pool(self, context: Context) -> cf.ProcessPoolExecutor:
        if self._pool is None or self._context_id != id(context):
            self.close()
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(context, os.getpid()),
            )
            self._context_id = id(context)
        return self._pool

    def map(self, context: Context, tasks: Sequence[FitTask]) -> Iterator[tuple[int, FitOutcome]]:
        pool = self._get_pool(context)
        futures = {pool.submit(_pool_fit, task): i for i, task in enumerate(tasks)}
        for fut in cf.as_completed(futures):
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - executor boundary: recorded in the row
                out = _boundary_failure(exc)
            yield futures[fut], out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _dask_fit(context: Context, task: FitTask) -> FitOutcome:
    return run_fit(context, task)


class DaskExecutor(Executor):
    """Fits on a Dask cluster through a ``distributed.Client``; the context is scattered
    to every worker once (each keeps its compiled models and derived effects)."""

    name = "dask"
    runs_exact_fits = True

    def __init__(self, client: Any) -> None:
        self.client = client
        self._scattered: tuple[int, Any] | None = None

    def map(self, context: Context, tasks: Sequence[FitTask]) -> Iterator[tuple[int, FitOutcome]]:
        from distributed import as_completed

        if self._scattered is None or self._scattered[0] != id(context):
            future = self.client.scatter(context, broadcast=True, hash=False)
            self._scattered = (id(context), future)
        ctx = self._scattered[1]
        futures = {
            self.client.submit(_dask_fit, ctx, task, pure=False): i for i, task in enumerate(tasks)
        }
        for fut in as_completed(list(futures)):
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - executor boundary: recorded in the row
                out = _boundary_failure(exc)
            yield futures[fut], out


def make_executor(client: Any = None, workers: int | None = None) -> Executor:
    """The executor for ``client`` (Dask) or ``workers`` (local pool); in-process by
    default."""
    if client is not None:
        return DaskExecutor(client)
    if workers is not None and workers > 1:
        return LocalPoolExecutor(workers)
    return InProcessExecutor()
