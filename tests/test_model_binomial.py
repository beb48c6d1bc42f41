"""Tests of the binomial models (hccmeta.models.binomial).

Realistic inputs: objective response (mRECIST CR + PR at 3 months) in the n=34
TACE-resistant study -- sorafenib alone 0 of 12 ("CR or PR was never achieved"),
sorafenib + TACE 13 of 22 (CR 3, PR 10; Table 1) -- and Terashima et al. 2016, sorafenib
monotherapy, "response rate ... 2.5 %" of 79 patients (2 of 79).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import comb, expit

from hccmeta.errors import InputError
from hccmeta.models import mcmc
from hccmeta.models.binomial import (
    _prob_mean,
    binomial_coefficient,
    fit_contrast,
    fit_proportion,
)
from tests.simulate import normal_normal_exact

#: Tolerances, one per kind of quantity (4 x 2000 draws: Monte Carlo SE about 0.02 SD;
#: the normal approximation of a log OR with 300-400 events per cell is accurate to
#: well under 0.05 SD).
TOL_MEAN_SD_UNITS = 0.15
TOL_SD_REL = 0.10
TOL_QUADRATURE = 1e-3

SETTINGS = mcmc.SamplerSettings(draws=500, tune=500, chains=4, target_accept=0.9)
#: Agreement with an exact posterior: more draws (sampling is cheap once compiled; a
#: posterior SD of a prior-dominated mean has heavy tails, and 4 x 500 draws leave a
#: relative Monte Carlo error near 10%).
AGREEMENT = mcmc.SamplerSettings(draws=2000, tune=1000, chains=4, target_accept=0.9)


def response() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": ["n34", "n34", "terashima2016"],
            "arm": ["sorafenib", "sorafenib_tace", "sorafenib"],
            "events": [0, 13, 2],
            "n": [12, 22, 79],
        }
    )


# --------------------------------------------------------------------------------------
# no sampling


def test_binomial_coefficient_matches_integers_and_extends_to_reals() -> None:
    assert binomial_coefficient(np.array([3.0]), np.array([10.0]))[0] == pytest.approx(
        math.log(comb(10, 3))
    )
    # effective counts: finite and between the neighbouring integer values
    between = binomial_coefficient(np.array([3.5]), np.array([10.0]))[0]
    assert np.isfinite(between)


def test_prob_mean_is_the_mean_of_the_inverse_logit() -> None:
    rng = np.random.default_rng(1)
    for mu, sd in ((-2.0, 1.0), (0.5, 0.3), (1.0, 2.0)):
        mc = expit(mu + sd * rng.standard_normal(400_000)).mean()
        assert _prob_mean(np.array(mu), np.array(sd)) == pytest.approx(mc, abs=TOL_QUADRATURE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.assign(events=[13, 13, 2]), "exceed n"),
        (lambda d: d.assign(n=[12, 0, 79]), "column n"),
        (lambda d: d.assign(events=[-1, 13, 2]), "column events"),
        (lambda d: pd.concat([d, d.iloc[[0]]]), "repeat the same"),
        (lambda d: d.assign(arm=["a", "b", "c"]), "reference"),
        (lambda d: d.drop(columns="n"), "missing column"),
    ],
)
def test_bad_counts_are_refused(change, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message):
        fit_contrast(change(response()), reference="sorafenib")


def test_contrast_needs_two_regimens() -> None:
    with pytest.raises(InputError, match="exactly two regimens, got 1"):
        fit_contrast(
            response().assign(arm=["sorafenib", "x", "sorafenib"]).iloc[[0, 2]],
            reference="sorafenib",
        )
    three = response().assign(arm=["sorafenib", "a", "b"])
    with pytest.raises(InputError, match="exactly two regimens"):
        fit_contrast(three, reference="sorafenib")


# --------------------------------------------------------------------------------------
# sampling


@pytest.mark.sampling
def test_single_large_table_agrees_with_normal_normal() -> None:
    """k = 1: one 2x2 table with 300-400 events per cell. The binomial model with fixed
    baselines then has the log OR's normal likelihood in all but name, so the pooled log
    OR d must match the exact normal-normal posterior of mu for yi = ln OR, vi = sum of
    1/cells, under the same priors (mu ~ N(0, 1), tau ~ HalfNormal(0.5))."""
    table = pd.DataFrame(
        {"study": ["big", "big"], "arm": ["ref", "exp"], "events": [300, 400], "n": [1000, 1000]}
    )
    res = fit_contrast(table, reference="ref", baseline="fixed", seed=3, settings=AGREEMENT)
    assert res.diagnostics.ok, res.diagnostics.messages
    assert res.diagnostics.n_divergent == 0
    yi = math.log((400 / 600) / (300 / 700))
    sei = math.sqrt(1 / 400 + 1 / 600 + 1 / 300 + 1 / 700)
    exact = normal_normal_exact(np.array([yi]), np.array([sei]), mu_sd=1.0, tau_scale=0.5)
    d = res.summary().loc["d"]
    assert abs(d["mean"] - exact["mu_mean"]) < TOL_MEAN_SD_UNITS * exact["mu_sd"]
    assert abs(d["sd"] / exact["mu_sd"] - 1) < TOL_SD_REL
    # the study's own log OR is the table's, nearly unshrunk (SE 0.095 vs prior SD ~1)
    delta = res.summary().loc["delta[big]"]
    assert delta["mean"] == pytest.approx(yi, abs=0.02)
    assert delta["sd"] == pytest.approx(sei, rel=TOL_SD_REL)
    assert "p" not in set(res.summary()["estimand"])  # no pooled baseline when fixed


@pytest.mark.sampling
def test_response_with_zero_cell_and_single_arm_study() -> None:
    """0 of 12 responders needs no continuity correction; Terashima's single sorafenib
    arm informs the baseline only."""
    res = fit_contrast(response(), reference="sorafenib", seed=7, settings=SETTINGS)
    assert res.diagnostics.ok, res.diagnostics.messages
    assert res.diagnostics.n_divergent == 0
    table = res.summary()
    assert list(table.loc["p_study[n34, sorafenib]":"p_study[n34, sorafenib]", "arm"]) == [
        "sorafenib"
    ]
    # the contrast: 13/22 vs 0/12 is strong evidence of a higher response with TACE
    assert float(res.prob_below(0.0, "d").iloc[0]) < 0.05
    assert table.loc["or", "median"] == pytest.approx(math.exp(table.loc["d", "median"]), rel=0.02)
    # per-regimen pooled proportions, reference first
    p = table[table["estimand"] == "p"]
    assert list(p["arm"]) == ["sorafenib", "sorafenib_tace"]
    assert p.loc["p[sorafenib]", "median"] < 0.15 < p.loc["p[sorafenib_tace]", "median"]
    assert p["ci_lower"].min() > 0 and p["ci_upper"].max() < 1
    rows = res.inputs["arms"]
    assert rows.set_index(["study", "arm"]).loc[("terashima2016", "sorafenib"), "kind"] == (
        "single_reference"
    )
    # the delta of a study without an experimental arm is left out, not invented
    assert "delta[terashima2016]" not in table.index
    assert res.tree.attrs["reference"] == "sorafenib"
    assert float(res.tree["observed_data"]["events"].sel(study="n34", arm="sorafenib")) == 0

    # a single arm of the experimental regimen (a hypothetical 25 of 50) stays out of the
    # contrast by default: same structure, no recompile, its own fitted proportion
    before = mcmc.compile_count()
    single = pd.concat(
        [
            response().iloc[:2],
            pd.DataFrame(
                {"study": ["single"], "arm": ["sorafenib_tace"], "events": [25], "n": [50]}
            ),
        ],
        ignore_index=True,
    )
    alone = fit_contrast(single, reference="sorafenib", seed=8, settings=SETTINGS)
    assert mcmc.compile_count() == before
    assert alone.diagnostics.ok, alone.diagnostics.messages
    kinds = alone.inputs["arms"].set_index("study")["kind"]
    assert kinds["single"] == "single_experimental_excluded"
    t2 = alone.summary()
    assert t2.loc["p_study[single, sorafenib_tace]", "median"] == pytest.approx(0.5, abs=0.1)
    assert "delta[single]" not in t2.index


@pytest.mark.sampling
def test_pooled_proportions_with_effective_counts() -> None:
    """fit_proportion: per-regimen pooled proportions, zero cells, and non-integer
    effective counts (12-month survival 62% with n_eff 30.4: 11.55 'deaths')."""
    data = pd.concat(
        [
            response(),
            pd.DataFrame(
                {
                    "study": ["n34", "other"],
                    "arm": ["os12_deaths", "os12_deaths"],
                    "events": [0.38 * 30.4, 0.45 * 41.2],
                    "n": [30.4, 41.2],
                }
            ),
        ],
        ignore_index=True,
    )
    res = fit_proportion(data, seed=2, settings=dataclasses.replace(SETTINGS, target_accept=0.95))
    assert res.diagnostics.ok, res.diagnostics.messages
    assert res.diagnostics.n_divergent == 0
    table = res.summary()
    assert set(table.loc[table["estimand"] == "p", "arm"]) == {
        "sorafenib",
        "sorafenib_tace",
        "os12_deaths",
    }
    # one study: the pooled proportion is near the observed 13/22 (prior mean logit 0)
    assert table.loc["p[sorafenib_tace]", "median"] == pytest.approx(13 / 22, abs=0.1)
    # deaths by 12 months near 38-45%
    assert 0.3 < table.loc["p[os12_deaths]", "median"] < 0.55
    # 0/12 and 2/79: a low pooled response; below 1/2 the inverse-logit is convex, so
    # the mean over the random-effects distribution exceeds the typical study's value
    assert table.loc["p[sorafenib]", "median"] < 0.1
    assert table.loc["p_mean[sorafenib]", "mean"] > table.loc["p[sorafenib]", "mean"]
