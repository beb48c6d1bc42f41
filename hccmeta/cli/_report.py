"""``hccmeta report [--data DIR] [--out DIR] [--seed N]``: the main job.

Every registered analysis and its sensitivity analyses, written to ``reports/`` (or
``--out``): ``index.md``, a self-contained ``index.html``, figures, CSV tables, the
posteriors as netCDF and ``provenance.json``. A failing run leaves the previous report
untouched; invalid study data end with exit status 2 and one line per problem, with
nothing written. Results whose inputs did not change since an earlier run are taken
from the result cache (:mod:`hccmeta.report.cache`; ``--no-cache`` or
``HCCMETA_CACHE=off`` to fit everything anew). When nothing changed -- code, data,
sources, seed and options as in the run that wrote the report directory, and every file
in it as that run wrote it -- the command says so and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hccmeta.cli._validate import add_sources_option, print_warnings
from hccmeta.report.writer import DEFAULT_SEED


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` sub-command."""
    p = sub.add_parser(
        "report",
        help="run every analysis and its sensitivity analyses; write reports/",
        description="Run every registered analysis and its sensitivity analyses and write "
        "the report (index.md, self-contained index.html, figures, CSV tables, posteriors "
        "as netCDF, provenance.json). The previous report is replaced only when the new "
        "one is complete.",
    )
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.add_argument(
        "--out", metavar="DIR", help="report directory (default: reports/ at the repository root)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help=f"random seed (default {DEFAULT_SEED})",
    )
    add_sources_option(p)
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="fit everything anew: neither reuse nor store results in the result cache "
        "(.hccmeta-cache/ at the repository root, or $HCCMETA_CACHE; HCCMETA_CACHE=off "
        "also disables it; it is kept under $HCCMETA_CACHE_MAX_MB megabytes, default 1000, "
        "by removing the least recently used entries)",
    )
    p.add_argument(
        "--no-sensitivity",
        action="store_true",
        help="skip the sensitivity analyses (a quick look; the committed report has them)",
    )
    p.set_defaults(handler=run)


class _RichProgress:
    """A rich progress bar on stderr (a terminal only)."""

    interactive = True

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[phase]}[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def update(self, phase: str, what: str, done: int, total: int) -> None:
        task = self._tasks.get(phase)
        if task is None:
            task = self._bar.add_task(what, total=total, phase=phase)
            self._tasks[phase] = task
        self._bar.update(task, description=what, completed=done, total=total)

    def pause(self) -> None:
        self._bar.stop()

    def resume(self) -> None:
        self._bar.start()


def run(args: argparse.Namespace) -> int:
    """Write the report and print the summary line."""
    import dataclasses
    import time
    from contextlib import nullcontext
    from pathlib import Path

    from hccmeta.data.loader import default_data_dir, source_dirs
    from hccmeta.report import writer
    from hccmeta.report.cache import ResultCache, load_evidence, report_key, tree_files

    start = time.perf_counter()
    cache = ResultCache.from_env(enabled=not args.no_cache)
    sources = source_dirs(args.sources)
    evidence = load_evidence(cache, args.data, sources)
    print_warnings(evidence)
    out = Path(args.out) if args.out else writer.default_out_dir()
    key = None
    if cache.enabled:
        data_dir = Path(args.data) if args.data is not None else default_data_dir()
        key = report_key(
            data_dir, sources, out_dir=out, seed=args.seed, sensitivity=not args.no_sensitivity
        )
        done = cache.get("report", key, count=False)
        if done is not None and done["files"] == tree_files(out):
            last = dataclasses.replace(
                done["summary"], seconds=time.perf_counter() - start, cache=None
            )
            print(f"{last.line()}; nothing changed since the run that wrote it: up to date")
            return 0
    progress = _RichProgress() if sys.stderr.isatty() else None
    with progress if progress is not None else nullcontext():
        summary = writer.write_report(
            evidence,
            out,
            seed=args.seed,
            sensitivity=not args.no_sensitivity,
            progress=progress,
            cache=cache,
        )
    cache.put("report", key, {"files": tree_files(out), "summary": summary}, count=False)
    cache.prune()
    print(summary.line())
    return 0
