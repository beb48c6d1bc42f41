"""``hccmeta sensitivity ANALYSIS [--data DIR] [--json|--csv] [--scheduler ADDRESS]``:
the sensitivity table of one analysis (SPEC section 6)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from hccmeta.defaults import DEFAULT_SEED
from hccmeta.errors import InputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sensitivity`` sub-command."""
    from hccmeta.sensitivity.table import GROUPS

    p = sub.add_parser(
        "sensitivity",
        help="run the sensitivity analyses of one analysis",
        description="Run every sensitivity variant of a registered analysis (prior grid, "
        "leave-one-out, fixed vs random effects, conversion assumptions, study subsets, "
        "alternative mappings, power-scaling) and print the table: one row per variant "
        "and estimand, with 95% intervals (proportions in percent).",
    )
    p.add_argument("analysis", metavar="ANALYSIS", help="name of a registered analysis")
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--csv", action="store_true", help="print the table as CSV")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the MCMC fits on the Dask cluster of this scheduler (e.g. tcp://host:8786)",
    )
    p.add_argument("--seed", type=int, default=None, help=f"random seed (default {DEFAULT_SEED})")
    choices = [g for g in GROUPS if g != "primary"]
    p.add_argument(
        "--groups",
        metavar="G[,G...]",
        type=_groups(choices),
        action="extend",
        default=None,
        help="only these variant groups, comma-separated (the option may be repeated): "
        + ", ".join(choices)
        + " (default: all)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(handler=run)


def _groups(choices: list[str]) -> Any:
    """An argparse type: a comma-separated list of variant groups (never the positional
    ANALYSIS, which ``nargs='+'`` would swallow)."""

    def parse(text: str) -> list[str]:
        groups = [g.strip() for g in text.split(",") if g.strip()]
        bad = [g for g in groups if g not in choices]
        if bad or not groups:
            raise argparse.ArgumentTypeError(
                f"unknown variant group {', '.join(bad) or repr(text)} (choose from "
                f"{', '.join(choices)})"
            )
        return groups

    return parse


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or (not isinstance(value, str) and _isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _isna(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise InputError("--scheduler needs the 'distributed' package") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"--scheduler {address}: cannot connect ({exc})") from None


def _text(table: Any) -> str:
    from hccmeta.report.tables import natural_estimate

    lines = []
    for estimand, rows in table.groupby("estimand", sort=False, dropna=False):
        lines.append(f"\n{estimand}")
        width = max(len(str(v)) for v in rows["variant"])
        for _, r in rows.iterrows():
            if r["status"] == "ok":
                row = r.to_dict()
                if _isna(row.get("natural_median")):
                    row["natural_scale"] = None
                est = f"{natural_estimate(row)}  k={r['k']}"
                if not _isna(r["psense"]):
                    est += f"  psense={r['psense']:.3f} {r['psense_diagnosis']}"
            elif r["status"] == "failed":
                est = f"FAILED: {r['error']}"
            else:
                est = "no eligible records"
            lines.append(f"  {r['variant']:<{width}}  {r['variant_group']:<14} {est}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run the sensitivity analyses and print them."""
    from hccmeta.analyses.registry import load_registry
    from hccmeta.data import load_studies
    from hccmeta.sensitivity import sensitivity

    evidence = load_studies(args.data)
    registry = load_registry(evidence.data_dir)
    registry.get(args.analysis)  # unknown analysis: exit 2 before any work
    client = _connect(args.scheduler) if args.scheduler else None
    try:
        table = sensitivity(
            args.analysis,
            evidence,
            registry=registry,
            client=client,
            seed=args.seed,
            progress=args.progress,
            groups=None if args.groups is None else ["primary", *args.groups],
        )
    finally:
        if client is not None:
            client.close()
    if args.csv:
        table.to_csv(sys.stdout, index=False)
        return 0
    if args.json:
        out = {
            "analysis": args.analysis,
            "columns": list(table.columns),
            "rows": [
                {k: _clean(v) for k, v in row.items()} for row in table.to_dict(orient="records")
            ],
            "skipped": table.attrs.get("skipped", []),
        }
        print(json.dumps(out, indent=2))
        return 0
    title = registry.get(args.analysis).title
    print(f"{title}: sensitivity analyses")
    print(_text(table))
    skipped = table.attrs.get("skipped", [])
    if skipped:
        print(
            f"\n{len(skipped)} variants do not change the effects this analysis takes and "
            "are not shown: " + ", ".join(s["variant"] for s in skipped)
        )
    return 0
