"""``hccmeta validate [--data DIR] [--sources DIR ...] [--strict]``."""

from __future__ import annotations

import argparse
import sys

SOURCES_HELP = (
    "directory of the source texts; may be repeated (searched in order). Default: the "
    "directories listed in $HCCMETA_SOURCES (separated by ':' on Linux and macOS, ';' on "
    "Windows); without either, provenance is not checked"
)


def add_sources_option(p: argparse.ArgumentParser) -> None:
    """The ``--sources DIR`` option (repeatable; ``$HCCMETA_SOURCES`` by default)."""
    p.add_argument("--sources", metavar="DIR", action="append", default=None, help=SOURCES_HELP)


def print_warnings(evidence: object) -> None:
    """Print the warnings about the studies themselves on stderr, one line each: a
    provenance that could not be verified, a missing risk-of-bias assessment (the
    consistency warnings between statistics are listed by ``validate`` and the report)."""
    for w in getattr(evidence, "warnings", ()):
        if getattr(w, "check", None) in ("provenance_unverified", "risk_of_bias_missing"):
            print(str(w), file=sys.stderr)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` sub-command."""
    p = sub.add_parser(
        "validate",
        help="validate the study data (and its provenance against source texts)",
        description="Validate every entry of the data directory (each must be a study "
        "file, <study id>.yaml, the vocabulary vocabulary.yaml or the analysis registry "
        "analyses.yaml, which are validated too; hidden entries and *.md are left alone) "
        "against the schema, the cross-field rules and the vocabulary. With source texts "
        "(--sources or $HCCMETA_SOURCES), also check that every snippet occurs in the "
        "source text its study names (field sources) and every number in its snippet; a "
        "study whose source text is not available gets one warning line (its provenance "
        "is unverified). Exit 0 with one summary line saying whether provenance was "
        "checked, or 2 with one line per problem. Statistics of the same arm that "
        "contradict each other (a median against a landmark, a follow-up against the "
        "survival curve, a rate that is no whole fraction of n, a printed p that the "
        "derived effect cannot reproduce) are listed as 'FILE:LINE: warning: record ID: "
        "...' lines on stderr (exit 0); --strict makes them errors (exit 2).",
    )
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    add_sources_option(p)
    p.add_argument(
        "--strict", action="store_true", help="treat consistency warnings as errors (exit 2)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate the study files and the registry, print the warnings and one summary
    line."""
    from pathlib import Path

    from hccmeta.analyses.registry import load_registry
    from hccmeta.data import load_studies
    from hccmeta.data.loader import default_data_dir, source_dirs
    from hccmeta.effects.consistency import consistency_warnings
    from hccmeta.errors import Problem, StudyDataError

    problems: list[Problem] = []
    try:
        ev = load_studies(args.data, sources=source_dirs(args.sources))
    except StudyDataError as exc:
        problems += exc.problems
    data_dir = Path(args.data) if args.data is not None else default_data_dir()
    try:
        load_registry(data_dir)
    except StudyDataError as exc:
        problems += exc.problems
    if problems:  # (a vocabulary problem is found by both loaders: listed once)
        raise StudyDataError(list(dict.fromkeys(problems)))
    warnings = consistency_warnings(ev)
    level = "error" if args.strict else "warning"
    for w in warnings:
        print(w.format(level=level), file=sys.stderr)
    if args.strict and warnings:
        n = len(warnings)
        print(
            f"hccmeta validate: {n} warning{'s' if n != 1 else ''} (--strict)",
            file=sys.stderr,
        )
        return 2
    if warnings:
        n = len(warnings)
        print(f"hccmeta validate: {n} warning{'s' if n != 1 else ''}", file=sys.stderr)
    print(f"valid: {ev.summary_line()}")
    return 0
