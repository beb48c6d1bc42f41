"""A longer run of the command-line fuzzer of tests/fuzzing.py; prints its counts.

Usage::

    .venv/bin/python validation/fuzz/fuzz_cli.py [--yaml N] [--csv N] [--subprocess N]
        [--seed S] [--json FILE]

Mutates the demo study directory (study file or registry; ``validate``, then ``run`` on
what validate accepts) and four seed CSVs (``convert`` and ``pool``), in this process
through ``hccmeta.cli.main`` (the code path of the ``hccmeta`` command) and, for
``--subprocess`` of the cases, through ``python -m hccmeta.cli``. Prints the inputs
tried, how many ended with exit 0 (accepted) or a clean exit 2 (every line located),
and every traceback, unlocated message, hang, bad ``--json`` output and changed input,
with examples. Exit status 1 if there was any.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.fuzzing import Counts, csv_case, run_case, yaml_case  # noqa: E402

KINDS = ("accepted", "clean", "traceback", "unlocated", "hang", "modified", "bad_output")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yaml", type=int, default=1000, help="study-file cases")
    parser.add_argument("--csv", type=int, default=1000, help="CSV cases")
    parser.add_argument("--subprocess", type=int, default=20, help="cases run in a subprocess")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--json", metavar="FILE", help="also write the counts as JSON")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    counts = {"yaml": Counts(), "csv": Counts()}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        total = args.yaml + args.csv
        every = max(1, total // args.subprocess) if args.subprocess else 0
        for i in range(total):
            kind = "yaml" if i < args.yaml else "csv"
            sub = bool(every) and i % every == 0
            if kind == "yaml":
                cmd, names = yaml_case(work / "data", rng)
                cwd = work / "data"
            else:
                command = "pool" if i % 2 else "convert"
                cmd, names = csv_case(work / "csv", rng, command=command)
                cwd = work / "csv"
            limit = max(args.time_limit, 120.0) if sub else args.time_limit
            outcome = run_case(cmd, cwd, names, time_limit=limit, subprocess_run=sub)
            counts[kind].add(outcome, f"{kind} #{i}{' (subprocess)' if sub else ''}: {cmd}")
            if kind == "yaml" and outcome.kind == "accepted":
                again = run_case(["run", "--data", ".", "demo_os"], cwd, names)
                counts[kind].add(again, f"{kind} #{i} run")
    seconds = time.perf_counter() - start
    result = {}
    for kind, c in counts.items():
        row = {k: c.by_kind.get(k, 0) for k in KINDS}
        result[kind] = {"tried": c.tried, **row}
        print(f"{kind}: {c.tried} inputs tried: " + ", ".join(f"{k} {v}" for k, v in row.items()))
        for k, examples in c.examples.items():
            for e in examples[:5]:
                print(f"  {k}: {e}")
    print(f"seed {args.seed}, {seconds:.0f} s, {args.subprocess} cases through a subprocess")
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, **result}, indent=2) + "\n")
    return 1 if any(c.bugs() for c in counts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
