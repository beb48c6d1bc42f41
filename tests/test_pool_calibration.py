"""Calibration of the normal-normal model (SPEC section 9).

A quick simulation-based calibration of the exact engine runs here; the full study
(exact and MCMC SBC, coverage of the 95% interval for mu with 2 to 10 studies) is
validation/calibration/normal_model.py, whose committed results are checked for
completeness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import hccmeta as hm

CALIBRATION = Path(__file__).resolve().parents[1] / "validation" / "calibration"
#: Smallest acceptable p-value of the uniformity test (fixed seed: deterministic).
P_MIN = 0.001


def test_exact_engine_sbc_quick() -> None:
    """Parameters from the default priors, data from the model: the posterior CDF at the
    true value is Uniform(0, 1) (Talts et al. 2018)."""
    rng = np.random.default_rng(7)
    pit = {"mu": [], "tau": [], "theta_new": []}
    for r in range(300):
        k = (1, 2, 5, 10)[r % 4]
        mu = float(hm.priors.DEFAULT_MU.rvs(rng, 1)[0])
        tau = float(hm.priors.DEFAULT_TAU.rvs(rng, 1)[0])
        new = mu + tau * rng.standard_normal()
        s = rng.uniform(0.1, 0.6, k)
        y = mu + tau * rng.standard_normal(k) + s * rng.standard_normal(k)
        res = hm.pool(y, s, measure="hr")
        pit["mu"].append(res.prob_below(mu, "mu"))
        pit["tau"].append(res.prob_below(tau, "tau"))
        pit["theta_new"].append(res.prob_below(new, "theta_new"))
    for name, values in pit.items():
        assert stats.kstest(values, "uniform").pvalue > P_MIN, name


def test_committed_calibration_results() -> None:
    sbc = json.loads((CALIBRATION / "normal_sbc.json").read_text())
    for engine in ("exact", "mcmc"):
        for name, r in sbc[engine]["results"].items():
            assert r["chi2_p"] > P_MIN, (engine, name)
    cov = pd.read_csv(CALIBRATION / "normal_coverage.csv")
    assert sorted(cov["k"].unique()) == list(range(2, 11))
    bayes = cov[cov["method"] == "bayes_exact_default_priors"]
    assert len(bayes) == 27
