"""Benchmark: ``hccmeta report`` with the result cache (issue 13, item 9).

Three runs of the command in a new process each, on a copy of the repository's
``study_data/`` and with the cache in a fresh temporary directory (``HCCMETA_CACHE``),
into a temporary report directory:

1. cold: the cache is empty (everything is fitted; target <= 40 s);
2. nothing changed: the same command again, into the same report directory: the
   command finds the report it wrote up to date and writes nothing (target <= 5 s);
   then into a new directory: every result comes from the cache, and so do the
   validated study files and the registry, and the report is rendered again;
3. one study edited: one number of one study file changed (by default Lee 2017's
   median PFS of the patients with main or lobar portal vein invasion, 3.7 -> 3.9
   months); only the analyses that study is relevant to (here one of fourteen, the
   joint prognostic model: its primary result, sensitivity table, figures and plot are
   the 4 entries computed) and their sensitivity variants are run again, of their MCMC
   fits only those whose data changed are sampled (the others are read back from the
   cache's fit entries: :func:`hccmeta.models.mcmc.fit_store`), and of the derived
   effects only the edited study's (:func:`hccmeta.effects.derive.derive_store`)
   (target <= 20 s).

It prints each run's wall time, the cache's reuse counts from the summary line
(results, and MCMC fits read back or sampled), and
whether the report rendered from the cache is the same bytes as that of run 1. The copy
is run without ``--sources``: an edited number would no longer match its source snippet.

Usage: ``.venv/bin/python benchmarks/bench_report_cache.py [--study FILE --old TEXT --new TEXT]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {
    "cold": 40.0,
    "nothing changed": 5.0,
    "new directory": 5.0,
    "one study edited": 20.0,
}


def _report(data: Path, out: Path, cache: Path) -> tuple[float, str]:
    env = {**os.environ, "HCCMETA_CACHE": str(cache)}
    env.pop("HCCMETA_SOURCES", None)
    cmd = [sys.executable, "-m", "hccmeta.cli", "report", "--data", str(data), "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"hccmeta report failed (exit {proc.returncode})")
    line = next((x for x in proc.stdout.splitlines() if x.startswith("report:")), "")
    return wall, line


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="lee2017.yaml", help="study file to edit")
    parser.add_argument("--old", default="median: {value: 3.7}", help="text to replace")
    parser.add_argument("--new", default="median: {value: 3.9}", help="replacement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hccmeta-bench-cache-") as tmp:
        root = Path(tmp)
        data, cache = root / "study_data", root / "cache"
        shutil.copytree(REPO / "study_data", data)
        runs: list[tuple[str, float, str]] = []
        wall, line = _report(data, root / "cold", cache)
        runs.append(("cold", wall, line))
        wall, line = _report(data, root / "cold", cache)
        runs.append(("nothing changed", wall, line))
        wall, line = _report(data, root / "warm", cache)
        runs.append(("new directory", wall, line))
        same = _files(root / "cold") == _files(root / "warm")
        study = data / args.study
        text = study.read_text("utf-8")
        if text.count(args.old) != 1:
            raise SystemExit(f"{args.study}: {args.old!r} does not occur exactly once")
        study.write_text(text.replace(args.old, args.new), "utf-8")
        wall, line = _report(data, root / "edited", cache)
        runs.append(("one study edited", wall, line))
        entries = list(cache.rglob("*.pkl"))
        size = sum(p.stat().st_size for p in entries) / 1e6
    print(f"hccmeta report with the result cache ({os.cpu_count()} cores; load average "
          f"{os.getloadavg()[0]:.1f} at the end)")  # fmt: skip
    for name, wall, line in runs:
        target = TARGETS[name]
        verdict = "ok" if wall <= target else "OVER"
        reuse = line.split("; cache: ")[-1].split(";")[0] if "; cache: " in line else "?"
        if "up to date" in line:
            reuse = "the report is up to date (nothing written)"
        inner = re.search(r"figures in ([0-9.]+) s", line)
        report = f"{float(inner.group(1)):.1f} s" if inner else "?"
        print(f"  {name:17s} {wall:6.1f} s  (target <= {target:.0f} s, {verdict})  cache: {reuse}")
        if "up to date" in line:  # no write_report: the line's time is the command's own
            print(f"  {'':17s} in the command {report} (the rest: start and imports)")
            continue
        print(f"  {'':17s} of which write_report {report} (the rest: start, imports, loading "
              "and validating the study files)")  # fmt: skip
    print(f"  report rendered from the cache identical to 'cold': {same}")
    print(f"  cache after the three runs: {len(entries)} entries, {size:.1f} MB")
    print(f"  edited: {args.study}: {args.old!r} -> {args.new!r}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
