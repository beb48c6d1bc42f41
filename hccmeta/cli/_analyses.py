"""``hccmeta analyses [--data DIR] [--json]``: the registered analyses."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``analyses`` sub-command."""
    p = sub.add_parser(
        "analyses",
        help="list the registered analyses",
        description="List the analyses of study_data/analyses.yaml: name, model, estimand.",
    )
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the registry."""
    from hccmeta.analyses.registry import load_registry
    from hccmeta.data import default_data_dir

    registry = load_registry(args.data or default_data_dir())
    if args.json:
        out = [
            {
                "name": a.name,
                "title": a.title,
                "question": a.question,
                "estimand": a.estimand,
                "measure": a.measure,
                "model": a.model,
                "mapping": a.mapping,
                "mixes": a.mixes,
                "alternatives": [alt.name for alt in a.alternatives],
            }
            for a in registry.analyses
        ]
        print(json.dumps(out, indent=2))
        return 0
    width = max(len(a.name) for a in registry.analyses)
    for a in registry.analyses:
        print(f"{a.name:<{width}}  {a.model:<20}  {a.title}")
    return 0
