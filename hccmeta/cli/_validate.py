"""``hccmeta validate [--data DIR] [--sources DIR] [--strict]``."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` sub-command."""
    p = sub.add_parser(
        "validate",
        help="validate the study data (and its provenance against source texts)",
        description="Validate every study file; with --sources, also check that every "
        "snippet occurs in the source texts and every number in its snippet. Exit 0 with "
        "one summary line, or 2 with one line per problem. Statistics of the same arm "
        "that contradict each other (a median against a landmark, a follow-up against "
        "the survival curve, a rate that is no whole fraction of n, a printed p that the "
        "derived effect cannot reproduce) are listed as 'FILE:LINE: warning: record ID: "
        "...' lines on stderr (exit 0); --strict makes them errors (exit 2).",
    )
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.add_argument("--sources", metavar="DIR", help="directory of the source texts")
    p.add_argument(
        "--strict", action="store_true", help="treat consistency warnings as errors (exit 2)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate, print the consistency warnings and one summary line."""
    from hccmeta.data import load_studies
    from hccmeta.effects.consistency import consistency_warnings

    ev = load_studies(args.data, sources=args.sources)
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
