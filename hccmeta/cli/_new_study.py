"""``hccmeta new-study ID [--data DIR] [--source NAME ...] [--stdout]``: a commented
skeleton of a study file (see :mod:`hccmeta.data.skeleton`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``new-study`` sub-command."""
    p = sub.add_parser(
        "new-study",
        help="write a commented skeleton of a new study file",
        description="Write DIR/ID.yaml: a commented skeleton of a study file whose "
        "comments list the terms of the vocabulary. Every value to fill in is TODO; "
        "`hccmeta validate` lists the TODOs left (one line each) until the file is "
        "complete. An existing file is never overwritten.",
    )
    p.add_argument("study_id", metavar="ID", help="the study id, e.g. smith2024")
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.add_argument(
        "--source",
        metavar="NAME",
        action="append",
        default=None,
        help="file name of the study's source text (may be repeated)",
    )
    p.add_argument("--stdout", action="store_true", help="print the skeleton instead")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Write (or print) the skeleton."""
    from hccmeta.data import default_data_dir
    from hccmeta.data.skeleton import study_skeleton
    from hccmeta.data.vocabulary import load_vocabulary
    from hccmeta.errors import InputError

    data_dir = Path(args.data) if args.data else default_data_dir()
    if not data_dir.is_dir():
        raise InputError(f"data directory not found: {data_dir}")
    text = study_skeleton(args.study_id, load_vocabulary(data_dir), sources=args.source or ())
    if args.stdout:
        sys.stdout.write(text)
        return 0
    path = data_dir / f"{args.study_id}.yaml"
    if path.exists():
        raise InputError(f"{path} exists already (new-study never overwrites a file)")
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}: replace every TODO, then run `hccmeta validate --sources DIR`")
    return 0
