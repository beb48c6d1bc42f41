"""Benchmark of hccmeta.sensitivity (SPEC section 8): prints its figures.

- a 50-variant grid on one analysis in a warm process (target <= 15 s): the planned
  variants of the analysis plus a finer prior grid up to 50; variants per second; the
  primary analysis is fitted (and its model compiled) first, and the grid is run twice:
  ``seconds`` includes compiling the structures the grid meets beyond the primary's,
  ``seconds_second_run`` has every structure compiled;
- compilations per run, which should equal the number of distinct model structures the
  run meets that were not compiled before (the structures are listed);
- with ``--all``: every analysis and every variant (``sensitivity_all``) in a new
  process, the way ``hccmeta report`` runs it (primaries first), with its parts timed;
- with ``--pool N``: the same grid with a local pool of N processes, to compare with
  the in-process default.

Run: ``.venv/bin/python benchmarks/bench_sensitivity.py [--analysis NAME] [--all]
[--pool N]``. The figures depend on the load of the machine; ``uptime`` is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return math.nan


def grid(name: str, evidence, registry, n: int):  # type: ignore[no-untyped-def]
    """The planned variants of ``name`` plus extra prior variants, ``n`` in all."""
    from hccmeta import priors as pr
    from hccmeta.analyses import Variation, run_analysis
    from hccmeta.sensitivity import Variant, plan_variants
    from hccmeta.sensitivity.executor import Context
    from hccmeta.sensitivity.variants import PlanContext, fingerprint

    primary = run_analysis(name, evidence, registry=registry)
    ctx = Context(evidence, registry)
    plan = PlanContext(primary.analysis, primary, ctx.derived(None), ctx.derived)
    base = fingerprint(primary.analysis, ctx.derived(None), Variation())
    planned = [
        v
        for v in plan_variants(plan)
        if v.group not in ("conversion", "subset")
        or fingerprint(primary.analysis, ctx.derived(v.variation.options), v.variation) != base
    ]
    extra: list[Variant] = []
    i = 0
    while len(planned) + len(extra) + 3 < n:  # + primary and the 2 power-scaling rows
        i += 1
        if primary.analysis.model == "prognostic_joint":
            prior = pr.LogNormal(math.log(0.1 + 0.047 * i), 0.5)
            var = Variation(prior_tau_scale=prior)
        else:
            prior = pr.HalfNormal(0.1 + 0.047 * i)
            var = Variation(prior_tau=prior)
        extra.append(Variant(f"extra_{i}", "prior_tau", f"tau prior {prior!r}", var, True))
    return primary, extra


def bench_grid(name: str, n: int, workers: int | None) -> dict[str, object]:
    import hccmeta as hm
    from hccmeta.analyses import load_registry
    from hccmeta.models import mcmc
    from hccmeta.sensitivity import sensitivity

    evidence = hm.load_studies()
    registry = load_registry(evidence.data_dir)
    primary, extra = grid(name, evidence, registry, n)  # warm: the primary is compiled
    before = set(mcmc._CACHE)
    compiles = mcmc.compile_count()
    t = time.perf_counter()
    table = sensitivity(
        primary, evidence, registry=registry, extra_variants=extra, progress=False,
        workers=workers,
    )  # fmt: skip
    seconds = time.perf_counter() - t
    new = [k for k in mcmc._CACHE if k not in before]
    compiled = mcmc.compile_count() - compiles
    # the same grid again: every structure it needs is compiled now
    t = time.perf_counter()
    sensitivity(
        primary, evidence, registry=registry, extra_variants=extra, progress=False,
        workers=workers,
    )  # fmt: skip
    again = time.perf_counter() - t
    stats = table.attrs["stats"]
    variants = table["variant"].nunique()
    return {
        "analysis": name,
        "model": primary.analysis.model,
        "variants": variants,
        "skipped": len(table.attrs["skipped"]),
        "seconds": round(seconds, 2),
        "variants_per_second": round(variants / seconds, 1),
        "fits": stats["fits"],
        "reweighted": stats["reweighted"],
        "deduplicated": stats["deduplicated"],
        "compiles": compiled,
        "seconds_second_run": round(again, 2),
        "structures_compiled": [repr(k[0]) for k in new],
        "failed": int((table["status"] == "failed").sum()),
        "executor": "in-process" if not workers else f"pool of {workers}",
    }


_ALL = """
import json, sys, time
t0 = time.perf_counter()
import hccmeta as hm
from hccmeta.analyses import load_registry, run_analysis
from hccmeta.models import mcmc
from hccmeta.sensitivity import sensitivity_all
t1 = time.perf_counter()
ev = hm.load_studies()
reg = load_registry(ev.data_dir)
prim = {a.name: run_analysis(a.name, ev, registry=reg) for a in reg.analyses}
t2 = time.perf_counter(); c = mcmc.compile_count()
tab = sensitivity_all(ev, primaries=prim, registry=reg, progress=False)
t3 = time.perf_counter()
st = tab.attrs["stats"]
by = {}
for analysis, variation, seconds, compiles, status in st["tasks"]:
    b = by.setdefault(analysis, [0.0, 0, 0])
    b[0] += seconds; b[1] += compiles; b[2] += 1
print(json.dumps({
    "import": round(t1 - t0, 1), "primaries": round(t2 - t1, 1),
    "primary_compiles": c, "sensitivity": round(t3 - t2, 1),
    "sensitivity_compiles": mcmc.compile_count() - c, "total": round(t3 - t0, 1),
    "rows": len(tab), "variants": int(tab.groupby("analysis")["variant"].nunique().sum()),
    "fits": st["fits"], "reweighted": st["reweighted"], "deduplicated": st["deduplicated"],
    "failed_rows": int((tab["status"] == "failed").sum()),
    "by_analysis": {k: {"fit_seconds": round(v[0], 1), "compiles": v[1], "fits": v[2]}
                    for k, v in by.items()},
}))
"""


def bench_all() -> dict[str, object]:
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _ALL], cwd=REPO, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_new_process"] = round(time.perf_counter() - t, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analysis", action="append", help="analysis of the grid (repeatable)")
    parser.add_argument("--variants", type=int, default=50, help="grid size (default 50)")
    parser.add_argument("--all", action="store_true", help="also time sensitivity_all")
    parser.add_argument("--pool", type=int, default=None, help="also run the grid on N processes")
    args = parser.parse_args()
    print(f"load average at start: {_load():.2f} on {os.cpu_count()} CPUs")
    names = args.analysis or ["os_tace_plus_sorafenib_vs_sorafenib", "prognostic_factors"]
    for name in names:
        res = bench_grid(name, args.variants, None)
        print(json.dumps(res))
        if args.pool:
            print(json.dumps(bench_grid(name, args.variants, args.pool)))
    if args.all:
        print(json.dumps({"sensitivity_all_new_process": bench_all()}))
    print(f"load average at end: {_load():.2f}")


if __name__ == "__main__":
    main()
