"""Absolute estimates from each regimen's own arms, and the prior that dominates where
one study informs an estimate (hccmeta.analyses.dominance, issue 12 item 6).

The numbers of the issue: "Sorafenib + TACE ORR 34% (5-80%), 1 study" where that study
(the n=34 study, mRECIST at 3 months) observed 13 of 22 = 59%: the rate was borrowed as
expit(baseline + d) from the sorafenib arms; Park's 6-month PFS, printed as "52.0% (95%
CI 37.3-66.1%)", was reported as 51% (2-87%) with only the tau prior blamed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

import hccmeta as hm
from hccmeta.analyses.dominance import SHIFT_SE, WIDTH_RATIO, prior_dominance, study_estimate
from hccmeta.analyses.registry import load_registry

from .conftest import DefaultResult

#: Closed forms against the code.
TOL_EXACT = 1e-9
#: Posterior medians within this many Monte Carlo SEs of the quadrature.
N_MCSE = 4.0
Z = stats.norm.isf(0.025)


def _cloglog(s: float) -> float:
    return math.log(-math.log(s))


def test_a_proportions_own_estimate_is_the_exact_interval() -> None:
    """13 of 22: 59.1% with the Clopper-Pearson interval (the beta quantiles that define
    it: Beta(13, 10) at 2.5% and Beta(14, 9) at 97.5%), compared on the logit scale at
    (13.5 / 9.5) with SE sqrt(1 / 13.5 + 1 / 9.5); 0 of 12: 0% (0% to 1 - 0.025^(1/12))."""
    basis = pd.DataFrame(
        {"kind": ["group"], "events_exposed": [13.0], "n_exposed": [22.0], "measure": ["logit_p"]}
    )
    est, lo, hi, y, se = study_estimate({"scale": "logit_p", "estimand": "x"}, basis)  # type: ignore[misc]
    assert est == pytest.approx(13 / 22, abs=TOL_EXACT)
    assert lo == pytest.approx(stats.beta.ppf(0.025, 13, 10), abs=TOL_EXACT)
    assert hi == pytest.approx(stats.beta.ppf(0.975, 14, 9), abs=TOL_EXACT)
    # the same bounds by their definition: P(X >= 13 | lo) = P(X <= 13 | hi) = 2.5%
    assert lo == pytest.approx(
        optimize.brentq(lambda p: stats.binom.sf(12, 22, p) - 0.025, 1e-6, 13 / 22), abs=1e-8
    )
    assert hi == pytest.approx(
        optimize.brentq(lambda p: stats.binom.cdf(13, 22, p) - 0.025, 13 / 22, 1 - 1e-6), abs=1e-8
    )
    assert y == pytest.approx(math.log(13.5 / 9.5), abs=TOL_EXACT)
    assert se == pytest.approx(math.sqrt(1 / 13.5 + 1 / 9.5), abs=TOL_EXACT)
    zero = basis.assign(events_exposed=0.0, n_exposed=12.0)
    est, lo, hi, _, _ = study_estimate({"scale": "logit_p", "estimand": "x"}, zero)  # type: ignore[misc]
    assert (est, lo) == (0.0, 0.0)
    assert hi == pytest.approx(1 - 0.025 ** (1 / 12), abs=TOL_EXACT)


def test_an_odds_ratio_with_a_zero_cell_gets_half_counts() -> None:
    """0 of 12 vs 13 of 22 responders: OR (13.5 x 12.5) / (9.5 x 0.5) = 35.5, Woolf SE
    sqrt(1/13.5 + 1/9.5 + 1/0.5 + 1/12.5)."""
    basis = pd.DataFrame(
        {
            "kind": ["group", "group"],
            "role": ["sorafenib", "sorafenib_tace"],
            "events_exposed": [0.0, 13.0],
            "n_exposed": [12.0, 22.0],
        }
    )
    row = {"scale": "log_or", "estimand": "log_or", "_exposed_role": "sorafenib_tace"}
    est, lo, hi, y, se = study_estimate(row, basis)  # type: ignore[misc]
    se_hand = math.sqrt(1 / 13.5 + 1 / 9.5 + 1 / 0.5 + 1 / 12.5)
    assert est == pytest.approx(13.5 * 12.5 / (9.5 * 0.5), rel=TOL_EXACT)
    assert y == pytest.approx(math.log(est), rel=TOL_EXACT)
    assert se == pytest.approx(se_hand, rel=TOL_EXACT)
    assert (lo, hi) == pytest.approx((est * math.exp(-Z * se_hand), est * math.exp(Z * se_hand)))


def _estimate(median: float, lower: float, upper: float, k: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "estimand": "effect",
                "scale": "log_hr",
                "median": median,
                "ci_lower": lower,
                "ci_upper": upper,
                "k": k,
            }
        ]
    )


@pytest.mark.parametrize(
    ("pooled", "expected"),
    [
        ((-0.5, -0.5 - 1.96 * 0.2, -0.5 + 1.96 * 0.2), None),  # the study itself
        ((-0.5, -1.4, 0.4), "tau"),  # 2.3 times as wide, centred
        ((-0.3, -0.5 - 1.96 * 0.2, -0.5 + 1.96 * 0.2), "mu"),  # 1 SE towards 0
        ((-0.3, -1.4, 0.6), "mu and tau"),
    ],
)
def test_the_rules_name_the_dominant_prior(
    evidence: hm.Evidence, pooled: tuple[float, float, float], expected: str | None
) -> None:
    """A study's log HR -0.5 (SE 0.2): the pooled interval more than 1.5 times as wide
    names tau, a pooled median more than 0.5 SE away names mu."""
    analysis = load_registry(evidence.data_dir).get("os_tace_plus_sorafenib_vs_sorafenib")
    effects = pd.DataFrame(
        {"effect": ["e1"], "kind": ["contrast"], "measure": ["log_hr"], "yi": [-0.5], "sei": [0.2]}
    )
    priors = {"mu": "Normal(mean=0.0, sd=1.0)", "tau": "HalfNormal(scale=0.5)"}
    out = prior_dominance(analysis, _estimate(*pooled), effects, {"effect": ["e1"]}, priors)
    row = out.iloc[0]
    assert row["study_estimate"] == pytest.approx(math.exp(-0.5), rel=TOL_EXACT)
    assert row["study_ci_upper"] == pytest.approx(math.exp(-0.5 + Z * 0.2), rel=TOL_EXACT)
    assert row["dominant_prior"] == expected
    if expected == "mu and tau":
        assert row["dominant_prior_text"] == (
            "mu ~ Normal(mean=0.0, sd=1.0); tau ~ HalfNormal(scale=0.5)"
        )
    # two studies: no study of its own, nothing named
    two = prior_dominance(analysis, _estimate(*pooled, k=2), effects, {"effect": ["e1"]}, priors)
    assert pd.isna(two.iloc[0]["study_estimate"]) and two.iloc[0]["dominant_prior"] is None
    assert (WIDTH_RATIO, SHIFT_SE) == (1.5, 0.5)


def test_parks_pfs_shows_the_study_next_to_the_pooled(default_result: DefaultResult) -> None:
    """Park et al., 6-month PFS 52.0% (95% CI 37.3-66.1%), the only study: the pooled
    51% (2% to 87%) is as wide as the tau prior allows; the row names tau and shows the
    study's own estimate (the effects layer's cloglog SE from the printed CI, back on
    the probability scale)."""
    res = default_result("pfs_6m_per_regimen")
    row = res.estimates.set_index("estimand").loc["sorafenib_tace"]
    se = (_cloglog(0.373) - _cloglog(0.661)) / (2 * Z)
    y = _cloglog(0.52)
    assert row["study_estimate"] == pytest.approx(0.52, abs=1e-9)
    assert row["study_ci_lower"] == pytest.approx(math.exp(-math.exp(y + Z * se)), abs=1e-3)
    assert row["study_ci_upper"] == pytest.approx(math.exp(-math.exp(y - Z * se)), abs=1e-3)
    assert row["dominant_prior"] == "tau"
    assert row["dominant_prior_text"] == "tau ~ HalfNormal(scale=1.0)"
    assert row["natural_ci_upper"] - row["natural_ci_lower"] > 0.6  # the pooled: 2% to 87%
    text = res.interpret()
    # cloglog 52% = -0.4248, SE 0.2214 from the printed CI: back-transformed 36.4% to 65.5%
    assert "against the study's own 52% (95% CI 36% to 65%)" in text
    assert "set by the prior of the between-study SD (tau ~ HalfNormal(1))" in text


def _own_arm_median(events: int, n: int) -> float:
    """Posterior median of expit(mu) for one arm of ``events`` of ``n`` under logit p ~
    N(mu, tau^2), mu ~ N(0, 2^2), tau ~ HalfNormal(1), by quadrature: a grid over mu and
    tau, Gauss-Hermite over logit p."""
    mu = np.linspace(-10.0, 10.0, 2001)
    tau = np.linspace(0.0, 6.0, 601)[1:]
    x, w = np.polynomial.hermite_e.hermegauss(80)
    theta = mu[:, None, None] + tau[None, :, None] * x
    like = (stats.binom.pmf(events, n, special.expit(theta)) * w / w.sum()).sum(-1)
    post = like * stats.norm.pdf(mu, 0.0, 2.0)[:, None] * stats.halfnorm.pdf(tau)[None, :]
    cdf = np.cumsum(post.sum(1))
    return float(special.expit(np.interp(0.5, cdf / cdf[-1], mu)))


@pytest.mark.sampling
def test_response_rate_of_a_regimen_comes_from_its_own_arms(default_result: DefaultResult) -> None:
    """Objective response, sorafenib + TACE: the n=34 study's 13 of 22 is its only arm.
    Its rate comes from that arm (a binomial random-effects model of the regimen's own
    arms, mu ~ N(0, 2), tau ~ HalfNormal(1)): centred near 59%, not at the 34% that
    expit(baseline + d) borrowed from the sorafenib arms (0 of 12 and Terashima's 2 of
    79); the OR still comes from the contrast model (two fits)."""
    res = default_result("objective_response")
    assert set(res.fits) == {"joint", "regimens"}
    assert res.fits["joint"].model == "binomial.contrast"
    assert res.fits["regimens"].model == "binomial.proportion"
    est = res.estimates.set_index("estimand")
    tace = est.loc["sorafenib_tace"]
    assert tace["study_estimate"] == pytest.approx(13 / 22, abs=TOL_EXACT)
    # the own-arm model against its posterior by quadrature (58.1%): a logit prior
    # N(0, 2) pulls 13/22 only slightly towards 50%
    p_own = res.fits["regimens"].posterior["p"].sel(arm="sorafenib_tace").to_numpy()
    import arviz_stats as azs

    mcse = float(azs.mcse(p_own, method="median"))
    assert tace["natural_median"] == pytest.approx(_own_arm_median(13, 22), abs=N_MCSE * mcse)
    assert tace["natural_median"] == pytest.approx(float(np.median(p_own)), rel=1e-6)
    assert tace["dominant_prior"] == "tau"
    # the OR of the contrast model: 0 of 12 against 13 of 22, so the N(0, 1) prior of d
    # sets it far below the observed 35.5
    odds = est.loc["log_or"]
    assert odds["study_estimate"] == pytest.approx(13.5 * 12.5 / (9.5 * 0.5), rel=TOL_EXACT)
    assert odds["natural_median"] < 15 and "mu" in str(odds["dominant_prior"])
    assert "d ~ Normal(mean=0.0, sd=1.0)" in str(odds["dominant_prior_text"])
    assert "against the study's own 59%" in res.interpret()


@pytest.mark.parametrize(
    ("estimand", "shift", "dominant", "texts"),
    [
        # the experimental regimen's median, as wide as 3 study intervals: the baselines'
        # SD and the log HRs' SD
        ("median_sorafenib_tace", 0.0, "tau", ["eta_i ~ B", "tau ~ T"]),
        # ... and 1 study SE away: the baselines' mean and the log HR's mean too
        ("median_sorafenib_tace", 1.0, "mu and tau", ["eta_i ~ B", "mu_hr ~ M", "tau ~ T"]),
        # the reference regimen's median: its baseline only
        ("median_sorafenib", 1.0, "mu and tau", ["eta_i ~ B"]),
    ],
)
def test_a_survival_median_names_the_baseline_prior(
    evidence: hm.Evidence, estimand: str, shift: float, dominant: str, texts: list[str]
) -> None:
    """The survival synthesis: a one-study median of 25 months (ln 25, SE 0.3) pooled
    with a 95% interval 3 times as wide (ln 25 + shift x 0.3 +- 3 x 1.96 x 0.3) is
    tau-dominated, and mu-dominated too when shifted by 1 SE; the statement names the
    priors that set that regimen's median."""
    analysis = load_registry(evidence.data_dir).get("median_os_per_regimen")
    y, se = math.log(25.0), 0.3
    effects = pd.DataFrame(
        {"effect": ["m"], "kind": ["group"], "measure": ["log_median"], "yi": [y], "sei": [se]}
    )
    centre = y + shift * se
    est = pd.DataFrame(
        [
            {
                "estimand": estimand,
                "scale": "log_median",
                "median": centre,
                "ci_lower": centre - 3 * Z * se,
                "ci_upper": centre + 3 * Z * se,
                "k": 1,
            }
        ]
    )
    priors = {"baseline": "eta_i ~ B", "mu_hr": "mu_hr ~ M", "tau": "tau ~ T"}
    row = prior_dominance(analysis, est, effects, {estimand: ["m"]}, priors).iloc[0]
    assert row["study_estimate"] == pytest.approx(25.0, rel=TOL_EXACT)
    assert row["study_ci_lower"] == pytest.approx(25.0 * math.exp(-Z * se), rel=TOL_EXACT)
    assert row["dominant_prior"] == dominant
    assert row["dominant_prior_text"] == "; ".join(texts)
