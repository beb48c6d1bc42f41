"""``write_report``: run everything and write the report directory, all or nothing.

The report is written into a new temporary directory beside the target and swapped in
by renaming: with Linux's ``renameat2(RENAME_EXCHANGE)`` the two directories trade
places atomically; elsewhere the old report is renamed aside, the new one renamed into
place, and only then the old one removed. A run that fails at any point removes its
temporary directory and leaves the previous report untouched. Invalid study data fail
in :func:`hccmeta.load_studies`, before anything is written.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hccmeta.errors import InputError
from hccmeta.report.figures import Renderer, default_workers

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.registry import Registry
    from hccmeta.analyses.run import AnalysisResult
    from hccmeta.data import Evidence
    from hccmeta.report.collect import Progress, ReportData

__all__ = ["DEFAULT_SEED", "ReportSummary", "default_out_dir", "write_report"]

#: Seed of ``hccmeta report`` when none is given (that of ``hccmeta run``).
DEFAULT_SEED = 20261122
_MARKER = "provenance.json"


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    out_dir : Path
        The report directory.
    n_analyses, n_with_records, n_variants : int
        Analyses, analyses with eligible records, sensitivity variants.
    n_figures : int
        PNG figures written.
    seconds : float
        Wall time of the whole run.
    timings : dict
        Seconds per phase: derive, analyses, sensitivity, figures (waiting for the
        figures and posterior files after the sensitivity analyses), write.
    failed_diagnostics : list of str
        Analyses whose MCMC diagnostics failed after retries (flagged in the report).
    """

    out_dir: Path
    n_analyses: int
    n_with_records: int
    n_variants: int
    n_figures: int
    seconds: float
    timings: dict[str, float]
    failed_diagnostics: list[str]

    def line(self) -> str:
        """The one-line summary the command line prints."""
        text = (
            f"report: {self.n_analyses} analyses ({self.n_with_records} with eligible records), "
            f"{self.n_variants} sensitivity variants, {self.n_figures} figures in "
            f"{self.seconds:.1f} s -> {self.out_dir / 'index.html'}"
        )
        if self.failed_diagnostics:
            text += f"; MCMC diagnostics FAILED: {', '.join(self.failed_diagnostics)}"
        return text


def default_out_dir() -> Path:
    """``reports/`` at the repository root (beside ``study_data/``), else in the working
    directory."""
    from hccmeta.data import default_data_dir

    data = default_data_dir().resolve()
    root = data.parent
    if (root / "pyproject.toml").is_file():
        return root / "reports"
    return Path.cwd() / "reports"


# ---------------------------------------------------------------------------- the swap
def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2 RENAME_EXCHANGE); False where it
    is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def _swap(new: Path, target: Path) -> None:
    """Put ``new`` in place of ``target``; remove the old report only after the swap."""
    if not target.exists():
        os.rename(new, target)
        return
    if _rename_exchange(new, target):
        shutil.rmtree(new)  # now the old report
        return
    old = Path(tempfile.mkdtemp(prefix=f"{target.name}.old-", dir=target.parent))
    old.rmdir()
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old)


def _check_target(target: Path) -> None:
    """Refuse to replace anything but a previous report or an empty directory."""
    if not target.exists():
        return
    if not target.is_dir():
        raise InputError(f"--out {target}: exists and is not a directory")
    marker = target / _MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text("utf-8")).get("generated_by") == "hccmeta report":
                return
        except (OSError, ValueError):
            pass
    if any(target.iterdir()):
        raise InputError(
            f"--out {target}: exists and is not an hccmeta report (no {_MARKER} written by "
            "hccmeta report); refusing to replace it"
        )


# --------------------------------------------------------------------------- the files
def _wait(renderer: Renderer, data: ReportData, progress: Progress | None) -> dict[str, bytes]:
    """Queue the sensitivity plots, then wait for every figure and posterior file."""
    sensitivity_plot = _sensitivity_plot()
    for s in data.sections:
        table = s.sensitivity
        ok = s.result.status == "ok"
        if ok and sensitivity_plot is not None and table is not None and not table.empty:
            renderer.submit(
                f"{s.name}_sensitivity", "sensitivity", (table, s.result.primary_estimand)
            )
    if progress is not None:
        progress.update("figures", "drawing figures, writing posteriors", 0, 1)
    out = renderer.results()
    if progress is not None:
        progress.update("figures", "done", 1, 1)
    return out


def _sensitivity_plot() -> Any:
    """``hccmeta.report.sensitivity_plot.sensitivity_plot``, or None before it exists."""
    import importlib

    try:
        module = importlib.import_module("hccmeta.report.sensitivity_plot")
    except ImportError:
        return None
    return getattr(module, "sensitivity_plot", None)


def _write_tables(data: ReportData, tmp: Path) -> None:
    from hccmeta.report.outputs import account_table, effects_table, pooled_table, write_csv

    write_csv(pooled_table(data), tmp / "pooled_estimates.csv")
    write_csv(effects_table(data), tmp / "effects.csv")
    write_csv(account_table(data), tmp / "evidence_account.csv")
    write_csv(_sensitivity_csv(data.sensitivity), tmp / "sensitivity.csv")


def _sensitivity_csv(table: Any) -> Any:
    import pandas as pd

    if table is not None:
        return table
    try:
        from hccmeta.sensitivity.table import SENSITIVITY_COLUMNS
    except ImportError:
        return pd.DataFrame()
    return pd.DataFrame(columns=list(SENSITIVITY_COLUMNS))


def write_files(data: ReportData, tmp: Path, outputs: dict[str, bytes]) -> None:
    """Write the tables, figures, documents and provenance of the report into ``tmp``
    (the posteriors are already there); ``outputs`` are the renderer's results."""
    from hccmeta.report.context import build_context
    from hccmeta.report.methods import methods
    from hccmeta.report.outputs import provenance, write_json
    from hccmeta.report.render import render_html, render_markdown

    pngs = {k: v for k, v in outputs.items() if not k.startswith("netcdf:") and v}
    formats = {v.decode() for k, v in outputs.items() if k.startswith("netcdf:")}
    fmt = formats.pop() if len(formats) == 1 else ("none" if not formats else "mixed")
    files: dict[str, str] = {}
    for key, png in pngs.items():
        (tmp / "figures" / f"{key}.png").write_bytes(png)
        files[key] = f"figures/{key}.png"
    _write_tables(data, tmp)
    context = build_context(data, files, methods(data), netcdf_format=fmt)
    (tmp / "index.md").write_text(render_markdown(context), encoding="utf-8")
    html = render_html(context, {files[k]: png for k, png in pngs.items()})
    (tmp / "index.html").write_text(html, encoding="utf-8")
    write_json(provenance(data, netcdf_format=fmt), tmp / _MARKER)


def write_report(
    evidence: Evidence,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    seed: int = DEFAULT_SEED,
    registry: Registry | None = None,
    sensitivity: bool = True,
    progress: Progress | None = None,
    workers: int | None = None,
) -> ReportSummary:
    """Run every analysis and its sensitivity analyses, and write the report.

    Parameters
    ----------
    evidence : Evidence
        The validated study data (:func:`hccmeta.load_studies`).
    out_dir : path-like, optional
        The report directory (default :func:`default_out_dir`: ``reports/``). An existing
        directory is replaced only if it holds a previous report (or is empty).
    seed : int, keyword-only
        Seed of every fit.
    registry : Registry, keyword-only, optional
        Default: ``analyses.yaml`` of the evidence's data directory.
    sensitivity : bool, keyword-only
        Run the sensitivity analyses (default).
    progress : Progress, keyword-only, optional
        Told of each step (the command line draws a progress bar).
    workers : int, keyword-only, optional
        1: draw the figures and write the posteriors in a background process while the
        sensitivity analyses run; 0: here, afterwards. Default: 1 on a machine with a
        second core. The files are the same bytes either way.

    Returns
    -------
    ReportSummary

    Raises
    ------
    InputError
        If ``out_dir`` exists and is not a previous report.
    """
    from hccmeta.report.collect import collect

    start = time.perf_counter()
    target = Path(out_dir) if out_dir is not None else default_out_dir()
    target = target.absolute()
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        (tmp / "figures").mkdir()
        (tmp / "posteriors").mkdir()
        with Renderer(default_workers() if workers is None else workers) as renderer:

            def draw(results: list[AnalysisResult]) -> None:
                for result in results:
                    renderer.submit_primary(result, tmp / "posteriors")

            data = collect(
                evidence,
                seed=seed,
                registry=registry,
                sensitivity=sensitivity,
                progress=progress,
                on_primaries=draw,
            )
            t0 = time.perf_counter()
            outputs = _wait(renderer, data, progress)
            timings = {**data.timings, "figures": time.perf_counter() - t0}
        t0 = time.perf_counter()
        if progress is not None:
            progress.update("writing", "tables, index.md, index.html", 0, 1)
        write_files(data, tmp, outputs)
        timings["write"] = time.perf_counter() - t0
        if progress is not None:
            progress.update("writing", "done", 1, 1)
        _check_target(target)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n_fig = len(list((target / "figures").glob("*.png")))
    return ReportSummary(
        out_dir=target,
        n_analyses=len(data.sections),
        n_with_records=sum(1 for s in data.sections if s.result.status == "ok"),
        n_variants=data.n_variants,
        n_figures=n_fig,
        seconds=time.perf_counter() - start,
        timings=timings,
        failed_diagnostics=[s.name for s in data.sections if not s.result.ok],
    )
