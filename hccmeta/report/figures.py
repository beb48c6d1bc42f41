"""Drawing the figures and writing the posteriors of the report, in a background process.

Rendering PNGs with matplotlib and writing netCDF files take several seconds that need
no MCMC: :class:`Renderer` runs them in one spawned worker process while this process
goes on with the sensitivity analyses (on a two-core machine the sampler and the
compiler leave a core free most of the time). The main process computes what each
figure shows (:func:`hccmeta.report.forest.forest_rows`,
:func:`hccmeta.report.plots.tau_curves`, the sensitivity table, the posterior DataTree);
the worker only draws and writes, so the output is the same bytes as drawing in this
process (``workers=0``, also the fallback on a single core). The worker ends when this
process dies, even by SIGKILL (:func:`hccmeta.procs.watch_parent`).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.run import AnalysisResult

__all__ = ["Renderer", "default_workers", "render_job"]


def default_workers() -> int:
    """One background worker where there is a second core, else none."""
    return 1 if (os.cpu_count() or 1) > 1 else 0


def render_job(kind: str, payload: Any) -> bytes:
    """Run one job: ``forest`` (rows, title), ``tau`` (curves), ``sensitivity`` (table,
    estimand, title, study labels) return PNG bytes (empty if there is nothing to draw);
    ``netcdf`` (tree, path) writes the file and returns its format."""
    from hccmeta.report.plots import draw_forest, draw_tau, png_bytes

    if kind == "forest":
        rows, title = payload
        return png_bytes(draw_forest(rows, title))
    if kind == "tau":
        return png_bytes(draw_tau(payload))
    if kind == "sensitivity":
        from hccmeta.report.sensitivity_plot import sensitivity_plot

        table, estimand, title, labels = payload
        fig = sensitivity_plot(table, estimand=estimand, title=title, labels=labels)
        return png_bytes(fig) if fig is not None else b""
    if kind == "netcdf":
        from hccmeta.report.netcdf import write_tree

        tree, path = payload
        return write_tree(tree, path).encode()
    raise ValueError(f"unknown render job {kind!r}")


def _init_worker(parent: int) -> None:
    """End with the parent process (see :mod:`hccmeta.procs`), then warm up."""
    from hccmeta.procs import watch_parent

    watch_parent(parent)
    _warm_up()


def _warm_up() -> None:
    """Import matplotlib and the plotting code in the worker while it would idle."""
    import matplotlib.figure  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401

    import hccmeta.report.plots  # noqa: F401


class Renderer:
    """Jobs keyed by name, run in a spawned worker process (``workers=1``) or at once in
    this process (``workers=0``). Use as a context manager: leaving it on an error
    cancels what is still queued.

    Parameters
    ----------
    workers : int
        0 (draw here) or 1 (draw in a background process).
    """

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: cf.ProcessPoolExecutor | None = None
        self._jobs: dict[str, cf.Future[bytes] | bytes] = {}
        #: what each job queued in the worker is, until its output is in hand
        self._queued: dict[str, tuple[str, Any]] = {}
        self._closing: threading.Thread | None = None

    def _start(self) -> cf.ProcessPoolExecutor | None:
        """The worker process, started on the first job (a run whose figures all come
        from the result cache starts none)."""
        if self._closing is not None:  # released: later jobs run here
            return None
        if self._pool is None and self._workers > 0:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self._pool

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(cancel=exc_type is not None)

    def submit(self, key: str, kind: str, payload: Any) -> None:
        """Queue (or, without a worker, run) a job."""
        pool = self._start()
        if pool is None:
            self._jobs[key] = render_job(kind, payload)
        else:
            self._jobs[key] = pool.submit(render_job, kind, payload)
            self._queued[key] = (kind, payload)

    def put(self, key: str, output: bytes) -> None:
        """A job's output known beforehand (from the result cache)."""
        self._jobs[key] = output

    def submit_primary(
        self, result: AnalysisResult, posteriors: Path, *, labels: Mapping[str, str] | None = None
    ) -> None:
        """The forest plot, the tau plot and the posterior file of a primary result
        (studies labelled by ``labels``, ``{study id: label}``)."""
        from hccmeta.report.forest import forest_rows
        from hccmeta.report.netcdf import posterior_tree
        from hccmeta.report.plots import tau_curves

        if result.status != "ok":
            return
        rows = forest_rows(result, labels=labels)
        self.submit(f"{result.name}_forest", "forest", (rows, result.analysis.title))
        curves = tau_curves(result)
        if curves:
            self.submit(f"{result.name}_tau", "tau", curves)
        if result.fits:
            path = str(posteriors / f"{result.name}.nc")
            self.submit(f"netcdf:{result.name}", "netcdf", (posterior_tree(result), path))

    def results(self) -> dict[str, bytes]:
        """Every job's output, by key, in the order submitted (waits for the worker).

        The jobs the worker has not started yet are run here, from the last one back,
        while the worker works through the queue from the front: this process would
        otherwise wait idle (the same function draws the same bytes in either)."""
        for key in reversed(list(self._queued)):
            job = self._jobs[key]
            if isinstance(job, cf.Future) and job.cancel():
                self._jobs[key] = render_job(*self._queued[key])
        self._queued.clear()
        out: dict[str, bytes] = {}
        for key, job in self._jobs.items():
            out[key] = job if isinstance(job, bytes) else job.result()
        return out

    def release(self) -> None:
        """Let the worker shut down in the background (every job's output is in hand:
        :meth:`results`); :meth:`close` waits for it. Later jobs run here."""
        if self._pool is not None and self._closing is None:
            self._closing = threading.Thread(target=self._pool.shutdown, daemon=True)
            self._closing.start()
        self._workers = 0

    def close(self, *, cancel: bool = False) -> None:
        """Shut the worker down (cancelling queued jobs if ``cancel``) and wait for it."""
        if self._closing is not None:
            self._closing.join()
            self._closing = None
        elif self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
        self._pool = None
        self._workers = 0  # closed: later jobs run here
