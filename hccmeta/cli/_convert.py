"""``hccmeta convert --csv FILE --measure M``: derived ``study,yi,vi,sei`` as CSV."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``convert`` sub-command."""
    from hccmeta.effects.csvinput import CSV_MEASURES

    p = sub.add_parser(
        "convert",
        help="convert a CSV of effect sizes to study,yi,vi,sei on the analysis scale",
        description="Read a CSV with a column 'study' and one of: yi,sei | yi,vi | "
        "estimate,ci_lower,ci_upper[,ci_level] (ratio measures on their natural scale; "
        "ci_level a fraction, default 0.95) | events_t,n_t,events_c,n_c (or, rr, rd), "
        "and print study,yi,vi,sei as CSV on stdout (log scale for hr, or, rr). Invalid "
        "input: exit 2 with a message naming the row and column.",
    )
    p.add_argument("--csv", metavar="FILE", required=True, help="the input CSV file")
    p.add_argument(
        "--measure",
        metavar="M",
        required=True,
        choices=tuple(CSV_MEASURES),
        help="what the file holds: " + ", ".join(CSV_MEASURES),
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read, convert and print the CSV."""
    from hccmeta.effects.csvinput import read_effect_csv

    table = read_effect_csv(args.csv, args.measure)
    table.to_csv(sys.stdout, index=False, float_format="%.12g", lineterminator="\n")
    return 0
