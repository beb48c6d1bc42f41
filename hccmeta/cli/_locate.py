"""``hccmeta locate SOURCE TEXT [--sources DIR ...] [--data DIR]``: where a snippet
occurs in a source text (line, nearest heading), or the closest passage."""

from __future__ import annotations

import argparse
from pathlib import Path

from hccmeta.cli._validate import add_sources_option

EXIT_NOT_FOUND = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``locate`` sub-command."""
    p = sub.add_parser(
        "locate",
        help="find a snippet in a source text (line, heading) or the closest passage",
        description="Print where TEXT occurs in SOURCE (its line and the nearest heading) "
        "with the matching of `hccmeta validate` (whitespace, line breaks, hyphens and "
        "dashes ignored); if it does not occur, print the closest passage, its line, its "
        "similarity and the first difference. SOURCE is a file, a file name in the sources "
        "directories (--sources or $HCCMETA_SOURCES), or a study id (its sources). Exit 0 "
        "if found, 1 if not, 2 for invalid arguments.",
    )
    p.add_argument("source", metavar="SOURCE", help="source file, its name, or a study id")
    p.add_argument("text", metavar="TEXT", help="the snippet to find")
    add_sources_option(p)
    p.add_argument("--data", metavar="DIR", help="study data directory (for a study id)")
    p.set_defaults(handler=run)


def _resolve(source: str, given: list[str] | None, data: str | None) -> list[Path]:
    from hccmeta.data.loader import find_source, load_studies, source_dirs
    from hccmeta.errors import InputError

    path = Path(source)
    if path.is_file():
        return [path]
    dirs = source_dirs(given) or []
    found = find_source(source, dirs)
    if found is not None:
        return [found]
    if "/" not in source and not source.endswith(".txt"):
        ev = load_studies(data)
        try:
            study = ev.study(source)
        except InputError:
            study = None
        if study is not None:
            paths = [find_source(name, dirs) for name in study.sources]
            if not study.sources:
                raise InputError(f"study {source!r} names no source text (field sources)")
            missing = [n for n, p in zip(study.sources, paths, strict=True) if p is None]
            if missing:
                where = ", ".join(str(d) for d in dirs) or "no --sources given"
                raise InputError(f"source text {', '.join(missing)} not found ({where})")
            return [p for p in paths if p is not None]
    where = ", ".join(str(d) for d in dirs) or "no --sources given, HCCMETA_SOURCES not set"
    raise InputError(f"SOURCE {source!r}: not a file, a source text ({where}) or a study id")


def run(args: argparse.Namespace) -> int:
    """Locate the snippet and print where."""
    from hccmeta.data.locate import locate
    from hccmeta.data.provenance import SourceText

    results = [locate(SourceText.read(p), args.text) for p in _resolve(args.source, args.sources,
                                                                        args.data)]  # fmt: skip
    hits = [r for r in results if r.found]
    if hits:
        for r in hits:
            print(f"{r.source}:{r.line}: found ({r.where()})")
            for i, line in enumerate(r.lines, start=r.line):
                print(f"  {i:>5} | {line}")
        return 0
    best = max(results, key=lambda r: r.similarity)
    if best.line == 0:
        print(f"{best.source}: not found, and no passage resembles it")
        return EXIT_NOT_FOUND
    print(
        f"{best.source}: not found; closest passage at line {best.line} "
        f"(similarity {best.similarity:.2f}; {best.where()}):"
    )
    for i, line in enumerate(best.lines, start=best.line):
        print(f"  {i:>5} | {line}")
    if best.difference:
        print(f"  first difference: {best.difference}")
    return EXIT_NOT_FOUND
