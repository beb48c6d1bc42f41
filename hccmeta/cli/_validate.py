"""``hccmeta validate [--data DIR] [--sources DIR]``."""

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
        "one summary line, or 2 with one line per problem.",
    )
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.add_argument("--sources", metavar="DIR", help="directory of the source texts")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate and print one summary line."""
    from hccmeta.data import load_studies

    ev = load_studies(args.data, sources=args.sources)
    for w in ev.warnings:
        print(w.as_warning(), file=sys.stderr)
    print(f"valid: {ev.summary_line()}")
    return 0
