"""Fuzzing the command line with mutated study files, registries and CSVs (seeded).

Every outcome must be exit 0, or exit 2 with one located line per problem; never a
traceback, never over the time limit, never a change to the input files (see
tests/fuzzing.py). Bounded here to a few seconds; ``validation/fuzz/fuzz_cli.py`` runs the
same fuzzer longer and prints its counts.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fuzzing import Counts, csv_case, run_case, yaml_case

SEED = 20261201
#: Seconds one in-process run may take (validate takes milliseconds; the deepest
#: nesting the reader refuses costs the YAML parser about two seconds on a busy machine).
TIME_LIMIT = 30.0


def _report(counts: Counts) -> str:
    return f"{counts.tried} tried, {counts.by_kind}; " + "; ".join(
        f"{k}: {v[:3]}" for k, v in counts.examples.items()
    )


def test_mutated_study_files_and_registries(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    counts = Counts()
    runs = 0
    for i in range(25):
        args, names = yaml_case(tmp_path / "data", rng)
        outcome = run_case(args, tmp_path / "data", names, time_limit=TIME_LIMIT)
        counts.add(outcome, f"yaml #{i}")
        if outcome.kind == "accepted" and runs < 3:  # an analysis runs on it, or fails cleanly
            runs += 1
            again = run_case(["run", "--data", ".", "demo_os"], tmp_path / "data", names)
            counts.add(again, f"yaml #{i} run")
    assert counts.bugs() == 0, _report(counts)
    assert counts.by_kind.get("clean", 0) >= 12, _report(counts)  # the mutations do bite


def test_mutated_csvs(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    counts = Counts()
    for i in range(60):
        command = "pool" if i % 2 else "convert"
        args, names = csv_case(tmp_path / "csv", rng, command=command)
        counts.add(run_case(args, tmp_path / "csv", names, time_limit=TIME_LIMIT), f"csv #{i}")
    assert counts.bugs() == 0, _report(counts)
    assert counts.by_kind.get("clean", 0) >= 20, _report(counts)


@pytest.mark.parametrize("kind", ["yaml", "csv"])
def test_through_a_subprocess(tmp_path: Path, kind: str) -> None:
    """The same checks on the ``hccmeta`` entry point in a process of its own."""
    rng = random.Random(SEED + 2)
    args, names = yaml_case(tmp_path, rng) if kind == "yaml" else csv_case(tmp_path, rng)
    outcome = run_case(args, tmp_path, names, time_limit=120.0, subprocess_run=True)
    assert outcome.kind in ("accepted", "clean"), (outcome.kind, outcome.detail, outcome.stderr)
