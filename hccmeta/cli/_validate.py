"""``hccmeta validate [--data DIR] [--sources DIR ...]``."""

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
    """Print the evidence's warnings on stderr, one line each."""
    for w in getattr(evidence, "warnings", ()):
        print(str(w), file=sys.stderr)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` sub-command."""
    p = sub.add_parser(
        "validate",
        help="validate the study data (and its provenance against source texts)",
        description="Validate every study file against the schema, the cross-field rules "
        "and the vocabulary (vocabulary.yaml). With source texts (--sources or "
        "$HCCMETA_SOURCES), also check that every snippet occurs in the source text its "
        "study names (field sources) and every number in its snippet; a study whose source "
        "text is not available gets one warning line on stderr (its provenance is "
        "unverified). Exit 0 with one summary line saying whether provenance was checked, "
        "or 2 with one line per problem.",
    )
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    add_sources_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate and print one summary line."""
    from hccmeta.data import load_studies
    from hccmeta.data.loader import source_dirs

    ev = load_studies(args.data, sources=source_dirs(args.sources))
    print_warnings(ev)
    print(f"valid: {ev.summary_line()}")
    return 0
