"""Draws do not depend on the state of PyTensor's on-disk numba cache (issue 13, item 8).

PyTensor caches numba-compiled functions in ``<base_compiledir>/numba``. With its
default fast-math flags, the first compile on a machine (cold cache) and later ones
(functions linked from the cache) gave MCMC draws that differ in the last bits and then
at Monte Carlo level, so a fresh clone's report differed from the committed one.
hccmeta compiles with IEEE arithmetic (:func:`hccmeta.models.mcmc.compiled`). The test
samples the same model with the same seed in two fresh processes sharing a new, empty
cache directory: the first compiles cold, the second from the cache; the draws must be
bit-identical.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sampling, pytest.mark.slow]

SCRIPT = """
import hashlib, numpy as np, hccmeta as hm
from hccmeta.models import mcmc
s = mcmc.SamplerSettings(draws=200, tune=200, chains=2)
res = hm.pool([-0.4, -0.1, -0.7], [0.2, 0.3, 0.25], method="mcmc", seed=3, settings=s)
d = res.posterior_draws()
print(hashlib.sha256(np.ascontiguousarray(np.asarray(d["mu"], dtype=float)).tobytes()
      + np.ascontiguousarray(np.asarray(d["tau"], dtype=float)).tobytes()).hexdigest())
"""


def _run(base: Path) -> str:
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={base}"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True,
        timeout=600,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def test_cold_and_warm_numba_cache_give_the_same_draws(tmp_path: Path) -> None:
    base = tmp_path / "pytensor"
    cold = _run(base)
    assert (base / "numba").is_dir() and any((base / "numba").iterdir()), "nothing was cached"
    warm = _run(base)
    assert len(cold) == len(hashlib.sha256().hexdigest())
    assert cold == warm
