"""``hccmeta validate [--data DIR] [--sources DIR]``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` sub-command."""
    p = sub.add_parser(
        "validate",
        help="validate the study data (and its provenance against source texts)",
        description="Validate every entry of the data directory (each must be a study "
        "file, <study id>.yaml) and the analysis registry analyses.yaml; with --sources, "
        "also check that every snippet occurs in the source texts and every number in "
        "its snippet. Exit 0 with one summary line, or 2 with one line per problem.",
    )
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.add_argument("--sources", metavar="DIR", help="directory of the source texts")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate the study files and the registry; print one summary line."""
    from pathlib import Path

    from hccmeta.analyses.registry import load_registry
    from hccmeta.data import load_studies
    from hccmeta.data.loader import default_data_dir
    from hccmeta.errors import Problem, StudyDataError

    problems: list[Problem] = []
    try:
        ev = load_studies(args.data, sources=args.sources)
    except StudyDataError as exc:
        problems += exc.problems
    data_dir = Path(args.data) if args.data is not None else default_data_dir()
    try:
        load_registry(data_dir)
    except StudyDataError as exc:
        problems += exc.problems
    if problems:
        raise StudyDataError(problems)
    print(f"valid: {ev.summary_line()}")
    return 0
