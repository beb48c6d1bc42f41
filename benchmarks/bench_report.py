"""Benchmark: ``hccmeta report`` in a new process (SPEC section 8: <= 40 s cold, every analysis
and every sensitivity variant included).

Runs the command once in a fresh interpreter, into a temporary directory, and prints its
wall time and how it splits: interpreter start and exit, imports, compiling the MCMC
models (nutpie/numba), sampling, the rest of the analyses and sensitivity variants
(exact fits, derivations, reweighting), the wait for the figures and posterior files
(drawn in a background process while the sensitivity analyses run), and writing the
tables and documents. The split is measured
inside the child by wrapping :func:`hccmeta.models.mcmc.compiled` and the sampler call;
fits run in worker processes (``workers=``) are not seen by the wrappers. The result
cache is off (``HCCMETA_CACHE=off``): every fit is made; ``bench_report_cache.py``
measures the cache.

Usage: ``.venv/bin/python benchmarks/bench_report.py [--no-sensitivity] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 40.0

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import hccmeta.cli
import hccmeta.report.writer as writer
import hccmeta.models.mcmc as mcmc
import_seconds = time.perf_counter() - t0
spent = {"compile": 0.0, "sample": 0.0, "n_compiled": 0, "n_sampled": 0}
_compiled, _run = mcmc.compiled, mcmc._run

def compiled(key, build):
    hit = key in mcmc._CACHE
    t = time.perf_counter()
    try:
        return _compiled(key, build)
    finally:
        if not hit:
            spent["compile"] += time.perf_counter() - t
            spent["n_compiled"] += 1

def run(model, settings, seed):
    t = time.perf_counter()
    try:
        return _run(model, settings, seed)
    finally:
        spent["sample"] += time.perf_counter() - t
        spent["n_sampled"] += 1

mcmc.compiled, mcmc._run = compiled, run
summaries = []
_write_report = writer.write_report

def write_report(*args, **kwargs):
    summary = _write_report(*args, **kwargs)
    summaries.append(summary)
    return summary

writer.write_report = write_report
status = hccmeta.cli.main(sys.argv[1:])
s = summaries[-1] if summaries else None
print("BENCH " + json.dumps({
    "status": status, "import": import_seconds, **spent,
    "timings": s.timings if s else {}, "line": s.line() if s else "",
    "child_total": time.perf_counter() - t0,
}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-sensitivity", action="store_true", help="primary analyses only")
    parser.add_argument("--keep", metavar="DIR", help="write the report here (default: a tmp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "reports"
        cmd = [sys.executable, "-c", CHILD, "report", "--out", str(out)]
        if args.no_sensitivity:
            cmd.append("--no-sensitivity")
        start = time.perf_counter()
        env = {**os.environ, "HCCMETA_CACHE": "off"}  # fitting measured: no result cache
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        print(f"hccmeta report failed (exit {proc.returncode})", file=sys.stderr)
        return 1
    b = json.loads(lines[-1][len("BENCH ") :])
    t = b["timings"]
    analyses = t.get("analyses", 0.0) + t.get("sensitivity", 0.0) + t.get("derive", 0.0)
    other = max(analyses - b["compile"] - b["sample"], 0.0)
    startup = max(wall - b["child_total"], 0.0)
    print(f"hccmeta report, new process: {wall:.1f} s (target <= {TARGET_SECONDS:.0f} s)")
    print(f"  interpreter start and exit   {startup:6.1f} s")
    print(f"  imports                      {b['import']:6.1f} s")
    print(f"  MCMC compile                 {b['compile']:6.1f} s  ({b['n_compiled']} models)")
    print(f"  MCMC sampling                {b['sample']:6.1f} s  ({b['n_sampled']} runs)")
    print(f"  other fitting and variants   {other:6.1f} s  (exact fits, derivations, reweighting)")
    primary, sens = t.get("analyses", 0.0), t.get("sensitivity", 0.0)
    print(f"    of which: primary analyses {primary:6.1f} s, sensitivity {sens:.1f} s")
    print(f"  figures and posterior files  {t.get('figures', 0.0):6.1f} s  (waited for, after the "
          "sensitivity analyses: drawn in a background process meanwhile)")  # fmt: skip
    print(f"  tables, index.md, index.html {t.get('write', 0.0):6.1f} s")
    print(f"  {b['line']}")
    verdict = "within" if wall <= TARGET_SECONDS else "OVER"
    print(f"{verdict} the {TARGET_SECONDS:.0f} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
