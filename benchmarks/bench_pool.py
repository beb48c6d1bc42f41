"""Speed of hccmeta.pool (SPEC section 8): prints figures, asserts nothing.

- exact engine: one fit + summary in a warm process (target <= 20 ms), and with the exact
  posterior draws of the DataTree;
- MCMC: the first fit in a new process split into import / compile / sample (target
  <= 10 s, all included), and refits with new data and hyperparameters after the first
  compile (target <= 0.5 s, 4 chains x 1000 draws);
- bias adjustment: the exact fit with an additive bias on three of the six Crins studies
  (``pool(..., bias=...)``), the combined model's exact engine (``pool_combined(...,
  method="exact")``, 2-D quadrature) and its MCMC engine (first fit in a new process and
  refits with new data, designs and bias priors).

The first-fit figures depend on PyTensor's on-disk numba cache (``~/.pytensor``): "warm"
is every run after the first on a machine, "cold" (``--cold``) uses an empty cache
directory, as the very first run on a new machine does. ``--stock`` measures nutpie's own
cfunc wrappers instead of hccmeta's faster-compiling ones (see hccmeta.models.mcmc).

Usage: ``python benchmarks/bench_pool.py [--repeat N] [--cold] [--stock]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CRINS_YI = [-2.3097, -0.4595, -2.3026, -1.7579, -1.2585, -2.4179]
CRINS_VI = [0.3594, 0.3096, 0.7750, 0.2078, 0.4122, 2.3373]

CHILD = r"""
import json, time
c0, t0 = time.process_time(), time.perf_counter()
import hccmeta as hm
c1, t1 = time.process_time(), time.perf_counter()
import pymc, nutpie  # noqa: F401
c2, t2 = time.process_time(), time.perf_counter()
from hccmeta.models import mcmc
from hccmeta.models.normal_mcmc import _builder, structure_key
y = %(y)r
v = %(v)r
mu, tau = hm.priors.Normal(0, 4), hm.priors.HalfNormal(0.5)
shapes = mcmc._shape_key({"y": y, "sei": v, **mu.data("mu"), **tau.data("tau")})
mcmc.compiled((structure_key(mu, tau), shapes), _builder(len(y), mu, tau))
c3, t3 = time.process_time(), time.perf_counter()
res = hm.pool(y, vi=v, prior_mu=mu, prior_tau=tau, method="mcmc", seed=1)
t4, first_result_at = time.perf_counter(), time.time()
assert mcmc.compile_count() == 1
refits = []
for i in range(5):
    yi = [x + 0.05 * i for x in y]
    s = time.perf_counter()
    mu_i, tau_i = hm.priors.Normal(0, 1 + i), hm.priors.HalfNormal(0.25 + 0.1 * i)
    r = hm.pool(yi, vi=v, prior_mu=mu_i, prior_tau=tau_i, method="mcmc", seed=i)
    refits.append(time.perf_counter() - s)
    assert r.ok
print(json.dumps({
    "import_hccmeta": t1 - t0, "import_pymc_nutpie": t2 - t1, "compile": t3 - t2,
    "sample_first": t4 - t3, "refits": refits, "compile_count": mcmc.compile_count(),
    "ok": res.ok, "patched": mcmc._PATCHED,
    "first_result_at": first_result_at,
    "cpu_import_hccmeta": c1 - c0, "cpu_import_pymc_nutpie": c2 - c1, "cpu_compile": c3 - c2,
}))
"""


def bench_exact(repeat: int) -> None:
    import numpy as np

    import hccmeta as hm

    hm.pool(CRINS_YI, vi=CRINS_VI).summary()  # warm up: scipy imports
    fit, tree = [], []
    for i in range(repeat):
        y = [x + 1e-3 * i for x in CRINS_YI]
        t = time.perf_counter()
        res = hm.pool(y, vi=CRINS_VI, prior_mu=hm.priors.Normal(0, 4))
        res.summary()
        res.p_mu_below_0  # noqa: B018
        fit.append(time.perf_counter() - t)
        t = time.perf_counter()
        res.datatree  # noqa: B018
        tree.append(time.perf_counter() - t)
    rng = np.random.default_rng(1)
    big = []
    for _ in range(max(repeat // 4, 5)):
        y = rng.normal(-0.3, 0.4, 40)
        s = rng.uniform(0.1, 0.5, 40)
        t = time.perf_counter()
        hm.pool(y, s).summary()
        big.append(time.perf_counter() - t)
    ms = 1000.0
    print("exact engine, warm process (Crins et al., k = 6):")
    print(
        f"  fit + summary + P(mu<0): median {statistics.median(fit) * ms:.1f} ms, "
        f"90th percentile {sorted(fit)[int(0.9 * len(fit))] * ms:.1f} ms "
        f"(target <= 20 ms; {repeat} fits)"
    )
    print(f"  exact draws + DataTree (4 x 1000): median {statistics.median(tree) * ms:.1f} ms")
    print(f"  k = 40 studies, fit + summary: median {statistics.median(big) * ms:.1f} ms")


BIAS = [None, None, None, "normal:0:0.4243", "normal:-0.3:0.3", "normal:0:0.2828"]
RANDOMISED = [True, True, True, False, False, False]

CHILD_COMBINED = r"""
import json, time
t0 = time.perf_counter()
import hccmeta as hm
from hccmeta.models import mcmc
y = %(y)r
v = %(v)r
s = [x ** 0.5 for x in v]
t1 = time.perf_counter()
res = hm.pool_combined(y, s, randomised=%(randomised)r, measure="or", seed=1)
t2 = time.perf_counter()
refits = []
for i in range(5):
    yi = [x + 0.05 * i for x in y]
    design = %(randomised)r[i:] + %(randomised)r[:i]
    t = time.perf_counter()
    r = hm.pool_combined(
        yi, s, randomised=design, measure="or", seed=i,
        prior_bias_mean=hm.priors.Normal(0, 0.3 + 0.1 * i),
        prior_bias_sd=hm.priors.HalfNormal(0.2 + 0.05 * i),
    )
    refits.append(time.perf_counter() - t)
print(json.dumps({
    "import": t1 - t0, "first_fit": t2 - t1, "refits": refits,
    "compile_count": mcmc.compile_count(), "ok": res.ok,
    "retries": res.diagnostics.retries,
}))
"""


def bench_bias_exact(repeat: int) -> None:
    import hccmeta as hm

    hm.pool(CRINS_YI, vi=CRINS_VI, bias=BIAS).summary()  # warm up
    fit, combined = [], []
    for i in range(repeat):
        y = [x + 1e-3 * i for x in CRINS_YI]
        t = time.perf_counter()
        res = hm.pool(y, vi=CRINS_VI, prior_mu=hm.priors.Normal(0, 4), bias=BIAS)
        res.summary()
        res.p_mu_below_0  # noqa: B018
        fit.append(time.perf_counter() - t)
    s = [v**0.5 for v in CRINS_VI]
    for i in range(max(repeat // 10, 5)):
        y = [x + 1e-3 * i for x in CRINS_YI]
        t = time.perf_counter()
        res = hm.pool_combined(y, s, randomised=RANDOMISED, method="exact")
        res.summary()
        res.p_mu_below_0  # noqa: B018
        combined.append(time.perf_counter() - t)
    ms = 1000.0
    print("bias adjustment, exact engines, warm process (Crins et al., k = 6):")
    print(
        f"  pool(bias=...), 3 of 6 studies biased, fit + summary + P(mu<0): median "
        f"{statistics.median(fit) * ms:.1f} ms ({repeat} fits)"
    )
    print(
        f"  pool_combined(method='exact'), 3 + 3 studies, 2-D quadrature, fit + summary + "
        f"P(mu<0): median {statistics.median(combined) * ms:.0f} ms ({len(combined)} fits)"
    )


def bench_combined_mcmc() -> None:
    code = CHILD_COMBINED % {"y": CRINS_YI, "v": CRINS_VI, "randomised": RANDOMISED}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr)
        raise SystemExit("the combined-model benchmark child failed")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print("pool_combined, MCMC, new process (warm PyTensor cache):")
    print(
        f"  import hccmeta {r['import']:.2f} s; first fit (import of pymc/nutpie, compile, "
        f"sample; {r['retries']} retries) {r['first_fit']:.2f} s; whole process {wall:.2f} s"
    )
    print(
        f"  refit, new data, designs and bias priors (4 chains x 1000 draws, "
        f"{r['compile_count']} compile in the process): median "
        f"{statistics.median(r['refits']):.3f} s, max {max(r['refits']):.3f} s"
    )


def bench_mcmc(cold: bool, stock: bool) -> None:
    env = dict(os.environ)
    label = []
    tmp = None
    if cold:
        tmp = tempfile.mkdtemp(prefix="hccmeta-bench-pytensor-")
        env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp}"
        label.append("cold PyTensor cache")
    else:
        label.append("warm PyTensor cache")
    if stock:
        env["HCCMETA_STOCK_NUTPIE"] = "1"
        label.append("nutpie's stock wrappers")
    code = CHILD % {"y": CRINS_YI, "v": CRINS_VI}
    t, spawned_at = time.perf_counter(), time.time()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr)
        raise SystemExit("the MCMC benchmark child failed")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    first = r["import_hccmeta"] + r["import_pymc_nutpie"] + r["compile"] + r["sample_first"]
    print(f"MCMC, first fit in a new process ({', '.join(label)}):")
    print(
        f"  import hccmeta {r['import_hccmeta']:.2f} s + import pymc/nutpie "
        f"{r['import_pymc_nutpie']:.2f} s + compile {r['compile']:.2f} s + sample "
        f"{r['sample_first']:.2f} s = {first:.2f} s; from spawning the process to the "
        f"first result {r['first_result_at'] - spawned_at:.2f} s (target <= 10 s); whole "
        f"process with the refits {wall:.2f} s"
    )
    cpu = r["cpu_import_hccmeta"] + r["cpu_import_pymc_nutpie"] + r["cpu_compile"]
    print(
        f"  CPU time of the single-threaded stages (less sensitive to other load): import "
        f"hccmeta {r['cpu_import_hccmeta']:.2f} s + import pymc/nutpie "
        f"{r['cpu_import_pymc_nutpie']:.2f} s + compile {r['cpu_compile']:.2f} s = {cpu:.2f} s"
    )
    print(
        f"  refit, new data and hyperparameters (4 chains x 1000 draws, no recompilation, "
        f"{r['compile_count']} compile in the process): median "
        f"{statistics.median(r['refits']):.3f} s, max {max(r['refits']):.3f} s "
        "(target <= 0.5 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="exact fits to time")
    parser.add_argument("--cold", action="store_true", help="also time a cold PyTensor cache")
    parser.add_argument("--stock", action="store_true", help="also time nutpie's wrappers")
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} (figures are wall-clock times)"
    )
    bench_exact(args.repeat)
    bench_bias_exact(args.repeat)
    bench_mcmc(cold=False, stock=False)
    bench_combined_mcmc()
    if args.stock:
        bench_mcmc(cold=False, stock=True)
    if args.cold:
        bench_mcmc(cold=True, stock=False)


if __name__ == "__main__":
    main()
