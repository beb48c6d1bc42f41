"""``write_report``: run everything and write the report directory, all or nothing.

The report is written into a new temporary directory beside the target and swapped in
by renaming: with Linux's ``renameat2(RENAME_EXCHANGE)`` the two directories trade
places atomically; elsewhere the old report is renamed aside, the new one renamed into
place, and only then the old one removed. A run that fails at any point removes its
temporary directory and leaves the previous report untouched. Invalid study data fail
in :func:`hccmeta.load_studies`, before anything is written.

A run holds an advisory lock (``flock``) on its temporary directory; the next run
removes the ``OUT.tmp-*`` and ``OUT.old-*`` directories whose lock is free (those of
runs that were killed), never those of a run still going. A symbolic link given as the
report directory is followed: the report is written beside the link's target and
swapped in there, the link left as it is. The report directory gets the permissions the
user's umask gives (not the 0700 of a temporary directory). Every filesystem error
(``--out`` below a file, a directory without write permission, a previous report that
cannot be removed) is an :class:`~hccmeta.errors.InputError` naming the path.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hccmeta.errors import InputError, printable
from hccmeta.report.figures import Renderer, default_workers

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.registry import Registry
    from hccmeta.analyses.run import AnalysisResult
    from hccmeta.data import Evidence
    from hccmeta.report.cache import ResultCache
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
    cache : dict or None
        Entries of the result cache reused (``hits``) and computed (``misses``,
        ``writes``, ``bad``, ``write_errors``), and MCMC fits read back from it
        (``fits_reused``) or sampled (``fits_sampled``); None when the cache was off.
    """

    out_dir: Path
    n_analyses: int
    n_with_records: int
    n_variants: int
    n_figures: int
    seconds: float
    timings: dict[str, float]
    failed_diagnostics: list[str]
    cache: dict[str, int] | None = None

    def line(self) -> str:
        """The one-line summary the command line prints."""
        text = (
            f"report: {self.n_analyses} analyses ({self.n_with_records} with eligible records), "
            f"{self.n_variants} sensitivity variants, {self.n_figures} figures in "
            f"{self.seconds:.1f} s -> {self.out_dir / 'index.html'}"
        )
        if self.cache is not None:
            c = self.cache
            text += f"; cache: {c['hits']} reused, {c['misses']} computed"
            if c.get("fits_reused", 0) + c.get("fits_sampled", 0):
                text += f" (MCMC fits: {c['fits_reused']} reused, {c['fits_sampled']} sampled)"
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


# ---------------------------------------------------------- temporary directories
def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _lock(directory: Path) -> int | None:
    """Hold an exclusive advisory lock on ``directory``; the fd (None where flock is
    not available). Released when the fd is closed or the process dies."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError:  # no locks on this filesystem
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        with suppress(OSError):
            os.close(fd)


#: A temporary directory without a lock (an older version's, or one being made) is
#: stale only when this old (seconds).
_UNLOCKED_STALE_AFTER = 3600.0


def _remove_stale(target: Path) -> list[Path]:
    """Remove the temporary directories of killed runs beside ``target``: those whose
    lock can be taken (their run is gone). Returns what was removed."""
    removed = []
    ours = re.compile(re.escape(target.name) + r"\.(tmp|old)-[a-z0-9_]{8}")
    for path in target.parent.glob(glob.escape(target.name) + ".*-*"):
        if not ours.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
            continue
        try:
            fd = _lock(path)
        except OSError:
            continue  # locked (a run is writing it) or unreadable
        try:
            if fd is None and time.time() - path.stat().st_mtime < _UNLOCKED_STALE_AFTER:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            _unlock(fd)
    return removed


def _resolve_target(out: Path) -> Path:
    """The directory the report goes to: ``out`` made absolute, a symbolic link
    followed to its target (which need not exist yet)."""
    target = out.absolute()
    if target.is_symlink():
        try:
            return target.resolve(strict=False)
        except (OSError, RuntimeError) as exc:
            raise InputError(
                f"--out {printable(str(target))}: a symbolic link that cannot be followed ({exc})"
            ) from None
    return target


def _check_replaceable(target: Path) -> None:
    """Refuse a previous report that could be swapped out but not removed."""
    if not target.is_dir():
        return
    for root, dirs, _files in os.walk(target):
        for d in (root, *(os.path.join(root, x) for x in dirs)):
            if not os.access(d, os.W_OK | os.X_OK):
                raise InputError(
                    f"--out {printable(str(target))}: the previous report cannot be replaced: "
                    f"{printable(d)} is not writable"
                )


def _fs_error(target: Path, exc: OSError) -> InputError:
    where = exc.filename if exc.filename is not None else target
    what = exc.strerror or type(exc).__name__
    return InputError(
        f"--out {printable(str(target))}: cannot write the report: {what}: {printable(str(where))}"
    )


# --------------------------------------------------------------------------- the files
def _wait(
    renderer: Renderer,
    data: ReportData,
    progress: Progress | None,
    cache: ResultCache | None = None,
    pending: dict[str, str] | None = None,
    posteriors: Path | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> dict[str, bytes]:
    """Queue the sensitivity plots, run ``meanwhile`` (work that needs no figure) while
    the worker draws, then wait for every figure and posterior file; store in ``cache``
    what was drawn for the ``pending`` render keys (analysis -> key)."""
    from hccmeta.report.cache import sub_key

    sensitivity_plot = _sensitivity_plot()
    pending = dict(pending or {})
    plots: dict[str, str] = {}
    for s in data.sections:
        table = s.sensitivity
        ok = s.result.status == "ok"
        if ok and sensitivity_plot is not None and table is not None and not table.empty:
            skey = data.keys.get(s.name, (None, None))[1]
            pkey = sub_key(skey, "plot") if skey is not None else None
            got = cache.get("plot", pkey) if cache is not None else None
            if isinstance(got, bytes):
                renderer.put(f"{s.name}_sensitivity", got)
                continue
            est = s.result.estimates
            label = est.loc[est["estimand"] == s.result.primary_estimand, "label"]
            title = (
                f"{s.result.analysis.title}: {label.iloc[0] if len(label) else 'estimate'}, "
                "under each sensitivity analysis (median, 95% interval)"
            )
            renderer.submit(
                f"{s.name}_sensitivity",
                "sensitivity",
                (table, s.result.primary_estimand, title, data.evidence.study_labels),
            )
            if pkey is not None:
                plots[s.name] = pkey
    if meanwhile is not None:
        meanwhile()
    if progress is not None:
        progress.update("figures", "drawing figures, writing posteriors", 0, 1)
    out = renderer.results()
    if progress is not None:
        progress.update("figures", "done", 1, 1)
    if cache is not None:
        for name, pkey in plots.items():
            cache.put("plot", pkey, out[f"{name}_sensitivity"])
        for name, rkey in pending.items():
            _store_render(cache, rkey, name, out, posteriors)
    return out


def _render_keys(name: str) -> tuple[str, str, str]:
    return f"{name}_forest", f"{name}_tau", f"netcdf:{name}"


def _store_render(
    cache: ResultCache, key: str, name: str, out: dict[str, bytes], posteriors: Path | None
) -> None:
    """Store the forest and tau figures and the posterior file of a primary result."""
    entry: dict[str, Any] = {"outputs": {k: out[k] for k in _render_keys(name) if k in out}}
    if f"netcdf:{name}" in out:
        if posteriors is None:
            return
        try:
            entry["netcdf"] = (posteriors / f"{name}.nc").read_bytes()
        except OSError:
            return
    cache.put("render", key, entry)


def _restore_render(renderer: Renderer, name: str, entry: Any, posteriors: Path) -> bool:
    """Put a stored render entry in place (figures to the renderer, the posterior file
    into ``posteriors``); False if the entry is not one."""
    if not isinstance(entry, dict) or not isinstance(entry.get("outputs"), dict):
        return False
    outputs = entry["outputs"]
    if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in outputs.items()):
        return False
    if f"netcdf:{name}" in outputs:
        blob = entry.get("netcdf")
        if not isinstance(blob, bytes):
            return False
        (posteriors / f"{name}.nc").write_bytes(blob)
    for key in _render_keys(name):
        if key in outputs:
            renderer.put(key, outputs[key])
    return True


def _sensitivity_plot() -> Any:
    """``hccmeta.report.sensitivity_plot.sensitivity_plot``, or None before it exists."""
    import importlib

    try:
        module = importlib.import_module("hccmeta.report.sensitivity_plot")
    except ImportError:
        return None
    return getattr(module, "sensitivity_plot", None)


def write_tables(data: ReportData, tmp: Path) -> None:
    """Write the report's CSV tables into ``tmp`` (they need no figure)."""
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


def write_files(
    data: ReportData, tmp: Path, outputs: dict[str, bytes], *, tables: bool = True
) -> None:
    """Write the tables, figures, documents and provenance of the report into ``tmp``
    (the posteriors are already there); ``outputs`` are the renderer's results. With
    ``tables=False`` the CSV tables are taken to be written already
    (:func:`write_tables`)."""
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
    if tables:
        write_tables(data, tmp)
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
    cache: ResultCache | None = None,
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
    cache : ResultCache, keyword-only, optional
        Reuse primary results, sensitivity tables, figures and posterior files stored
        under the same inputs and store those computed (:mod:`hccmeta.report.cache`;
        the command line uses ``.hccmeta-cache/``). Default: no cache. The report is
        the same bytes either way.

    Returns
    -------
    ReportSummary

    Raises
    ------
    InputError
        If ``out_dir`` exists and is not a previous report (or a previous report that
        cannot be removed), or on any filesystem error, naming the path.
    """
    start = time.perf_counter()
    target = _resolve_target(Path(out_dir) if out_dir is not None else default_out_dir())
    try:
        return _write_report(
            evidence,
            target,
            start,
            seed=seed,
            registry=registry,
            sensitivity=sensitivity,
            progress=progress,
            workers=workers,
            cache=cache,
        )
    except OSError as exc:
        raise _fs_error(target, exc) from None


def _write_report(
    evidence: Evidence,
    target: Path,
    start: float,
    *,
    seed: int,
    registry: Registry | None,
    sensitivity: bool,
    progress: Progress | None,
    workers: int | None,
    cache: ResultCache | None,
) -> ReportSummary:
    from hccmeta.report.cache import sub_key
    from hccmeta.report.collect import collect

    _check_target(target)
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    lock: int | None = None
    try:
        lock = _lock(tmp)
        tmp.chmod(0o777 & ~_umask())
        (tmp / "figures").mkdir()
        (tmp / "posteriors").mkdir()
        pending: dict[str, str] = {}  # analysis -> render key, drawn in this run
        with Renderer(default_workers() if workers is None else workers) as renderer:

            def draw(
                results: list[AnalysisResult], keys: dict[str, tuple[str | None, str | None]]
            ) -> None:
                for result in results:
                    key = keys.get(result.name, (None, None))[0]
                    rkey = sub_key(key, "render") if key is not None else None
                    if result.status == "ok" and cache is not None and rkey is not None:
                        got = cache.get("render", rkey)
                        if got is not None and _restore_render(
                            renderer, result.name, got, tmp / "posteriors"
                        ):
                            continue
                        pending[result.name] = rkey
                    renderer.submit_primary(
                        result, tmp / "posteriors", labels=evidence.study_labels
                    )

            data = collect(
                evidence,
                seed=seed,
                registry=registry,
                sensitivity=sensitivity,
                progress=progress,
                on_primaries=draw,
                cache=cache,
            )
            t0 = time.perf_counter()
            # the tables need no figure: written while the worker draws
            outputs = _wait(renderer, data, progress, cache, pending, tmp / "posteriors",
                            meanwhile=lambda: write_tables(data, tmp))  # fmt: skip
            timings = {**data.timings, "figures": time.perf_counter() - t0}
            renderer.release()  # the worker exits while the documents are written
            t0 = time.perf_counter()
            if progress is not None:
                progress.update("writing", "tables, index.md, index.html", 0, 1)
            write_files(data, tmp, outputs, tables=False)
            timings["write"] = time.perf_counter() - t0
            if progress is not None:
                progress.update("writing", "done", 1, 1)
        _check_target(target)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _unlock(lock)
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
        cache=(
            {**cache.stats, **{f"fits_{k}": v for k, v in cache.fits.items()}}
            if cache is not None and cache.enabled
            else None
        ),
    )
