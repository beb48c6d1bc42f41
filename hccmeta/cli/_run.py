"""``hccmeta run ANALYSIS [--data DIR] [--json] [--seed N]``: one analysis."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser(
        "run",
        help="run one analysis and print its pooled estimates",
        description="Run one registered analysis (see `hccmeta analyses`) and print its "
        "pooled estimates with 95%% intervals, or a clean 'no eligible records'.",
    )
    p.add_argument("analysis", metavar="ANALYSIS", help="name of a registered analysis")
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=int, default=20261122, help="random seed (default 20261122)")
    p.set_defaults(handler=run)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run(args: argparse.Namespace) -> int:
    """Run the analysis and print it."""
    from hccmeta.analyses import run_analysis
    from hccmeta.data import load_studies
    from hccmeta.report.interpret import interpret
    from hccmeta.report.tables import format_estimates

    evidence = load_studies(args.data)
    result = run_analysis(args.analysis, evidence, seed=args.seed)
    if args.json:
        out = {
            "analysis": result.name,
            "status": result.status,
            "message": result.message,
            "k": result.k,
            "estimates": result.estimate_records(),
            "effects": [
                {k: _clean(row[k]) for k in ("study", "effect", "role", "yi", "sei", "method")}
                for row in result.effects.to_dict(orient="records")
            ],
            "conflicts": [
                {k: _clean(row[k]) for k in ("study", "record", "statistic", "p", "method")}
                for row in result.conflicts.to_dict(orient="records")
            ],
            "diagnostics_ok": result.ok,
            "statement": interpret(result),
            "data_hash": result.data_hash,
            "seed": result.seed,
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"{result.analysis.title}")
    if result.status != "ok":
        print(result.message)
        return 0
    print(format_estimates(result.estimates))
    if not result.ok:
        print("WARNING: MCMC diagnostics failed; see the diagnostics table")
    print()
    print(interpret(result))
    return 0
