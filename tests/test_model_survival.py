"""Tests of the multi-format survival model (hccmeta.models.survival) and of the
simulation helpers it is validated with (tests/simulate.py).

Realistic input: the n=34 TACE-resistant study (OS from sorafenib start): medians 9
(sorafenib alone, n = 12) and 25 months (sorafenib + TACE, n = 22), "P = 0.001";
"cumulative survival rates at 6, 12, and 24 months were 95%, 77%, and 45% ... 58%, 32%,
and 16%"; "4 patients were still alive, and the other 30 were deceased". Events per arm
are not reported: the tests impute 11 and 19 (a named imputation), and n_eff = n for the
landmarks (no censoring before t, the effects layer's ``imputed_n_at_risk``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hccmeta import priors as pr
from hccmeta.errors import InputError
from hccmeta.models import mcmc
from hccmeta.models._hierarchy import helmert
from hccmeta.models.survival import fit_survival, landmark_likelihood_terms
from tests.simulate import (
    KM_MEDIAN_VARIANCE_FACTOR,
    Arm,
    cox_hr,
    kaplan_meier,
    logrank,
    normal_normal_exact,
    paper_report,
    simulate_arm,
    weibull_survival,
)

#: Tolerances, one per kind of quantity.
TOL_MEAN_SD_UNITS = 0.15  # posterior mean vs exact, in posterior SDs (MC SE ~0.02 SD)
TOL_SD_REL = 0.10  # posterior SD vs exact
TOL_BAYESMETA = 5e-3  # quadrature vs published bayesmeta values (grid of 4000 taus)
TOL_COX_VS_PETO = 0.05  # Cox log HR vs Peto (O-E)/V for a moderate effect, n = 200

SETTINGS = mcmc.SamplerSettings(draws=500, tune=500, chains=4, target_accept=0.9)
AGREEMENT = mcmc.SamplerSettings(draws=2000, tune=1000, chains=4, target_accept=0.9)

REF, EXP = "sorafenib", "sorafenib_tace"


def n34() -> dict[str, pd.DataFrame]:
    z = stats.norm.isf(0.001 / 2)
    v = 30 * 12 * 22 / 34**2  # Peto: V = D n1 n2 / N^2 with D = 30 deaths
    return {
        "arms": pd.DataFrame({"study": ["n34", "n34"], "arm": [REF, EXP]}),
        "medians": pd.DataFrame(
            {
                "study": ["n34", "n34"],
                "arm": [REF, EXP],
                "yi": np.log([9.0, 25.0]),
                "sei": 1 / np.sqrt([11.0, 19.0]),  # exponential-MLE SE from imputed events
            }
        ),
        "landmarks": pd.DataFrame(
            {
                "study": ["n34"] * 6,
                "arm": [REF] * 3 + [EXP] * 3,
                "time": [6.0, 12.0, 24.0] * 2,
                "survival": [0.58, 0.32, 0.16, 0.95, 0.77, 0.45],
                "n_eff": [12.0] * 3 + [22.0] * 3,
            }
        ),
        "contrasts": pd.DataFrame(
            {"study": ["n34"], "yi": [-z / math.sqrt(v)], "sei": [1 / math.sqrt(v)], "kind": "peto"}
        ),
    }


# --------------------------------------------------------------------------------------
# the simulation helpers against closed forms


def test_kaplan_meier_without_censoring_is_the_empirical_survival() -> None:
    rng = np.random.default_rng(4)
    t = rng.exponential(10.0, size=200)
    km = kaplan_meier(Arm(time=t, event=np.ones(200, dtype=int)))
    for x in (3.0, 10.0, 20.0):
        s, var = km.at(x)
        emp = np.mean(t > x)
        assert s == pytest.approx(emp)
        # Greenwood reduces to the binomial variance without censoring
        assert var == pytest.approx(emp * (1 - emp) / 200, rel=1e-9)
    assert km.median() == pytest.approx(np.sort(t)[99])


def test_cox_and_logrank_recover_a_known_hazard_ratio() -> None:
    rng = np.random.default_rng(8)
    ref = simulate_arm(rng, n=1500, median=10.0, shape=1.0)
    exp = simulate_arm(rng, n=1500, median=20.0, shape=1.0)  # HR 0.5
    beta, se = cox_hr(exp, ref)
    assert abs(beta - math.log(0.5)) < 3 * se
    o_e, v, p = logrank(exp, ref)
    assert p < 1e-10
    assert se == pytest.approx(1 / math.sqrt(v), rel=0.05)
    small_ref = simulate_arm(np.random.default_rng(9), n=100, median=10.0, shape=1.0)
    small_exp = simulate_arm(np.random.default_rng(10), n=100, median=12.5, shape=1.0)
    beta, _ = cox_hr(small_exp, small_ref)
    o_e, v, _ = logrank(small_exp, small_ref)
    assert beta == pytest.approx(o_e / v, abs=TOL_COX_VS_PETO)


def test_weibull_arms_have_the_stated_median() -> None:
    rng = np.random.default_rng(3)
    arm = simulate_arm(
        rng, n=20000, median=9.0, shape=1.3, accrual=1.0, follow_up=1e6, dropout_rate=0.0
    )
    assert np.median(arm.time) == pytest.approx(9.0, rel=0.03)
    assert float(weibull_survival(9.0, 9.0, 1.3)) == pytest.approx(0.5)


def test_exact_reference_reproduces_bayesmeta() -> None:
    """Röver (2020, J Stat Softw 93(6), section 3.3), Crins et al. (2014) log ORs with
    mu ~ N(0, 4^2), tau ~ HalfNormal(0.5): mu mean -1.5764366, sd 0.3295298; tau mean
    0.3810562 (SPEC section 9)."""
    yi = np.array([-2.3097, -0.4595, -2.3026, -1.7579, -1.2585, -2.4179])
    vi = np.array([0.3594, 0.3096, 0.7750, 0.2078, 0.4122, 2.3373])
    out = normal_normal_exact(yi, np.sqrt(vi), mu_mean=0.0, mu_sd=4.0, tau_scale=0.5)
    assert out["mu_mean"] == pytest.approx(-1.5764366, abs=TOL_BAYESMETA)
    assert out["mu_sd"] == pytest.approx(0.3295298, abs=TOL_BAYESMETA)
    assert out["tau_mean"] == pytest.approx(0.3810562, abs=TOL_BAYESMETA)


# --------------------------------------------------------------------------------------
# model pieces without sampling


def test_conditional_landmarks_without_censoring_are_binomials_of_survivors() -> None:
    """n = 40, no censoring (n_eff = n): the conditional terms are exactly 'of the
    n S(t_{k-1}) alive, n S(t_k) survive'."""
    terms = landmark_likelihood_terms(
        pd.DataFrame(
            {
                "study": "s",
                "arm": "a",
                "time": [12.0, 6.0, 24.0],  # any order
                "survival": [0.5, 0.75, 0.25],
                "n_eff": 40.0,
            }
        )
    )
    assert list(terms["time"]) == [6.0, 12.0, 24.0]
    assert list(terms["t_prev"]) == [0.0, 6.0, 12.0]
    np.testing.assert_allclose(terms["n_eff_term"], [40.0, 30.0, 20.0])
    np.testing.assert_allclose(terms["events_term"], [10.0, 10.0, 10.0])
    marginal = landmark_likelihood_terms(
        terms.loc[:, ["study", "arm", "time", "survival", "n_eff"]], terms="marginal"
    )
    np.testing.assert_allclose(marginal["n_eff_term"], 40.0)


def test_landmark_before_the_first_death_gives_no_warning() -> None:
    """S(3) = 1 (nobody has died yet), then 0.8 and 0.5 of n = 40: of 40 alive none dies,
    of 40 alive 8 die, of 32 alive 12 die -- and no 0/0 warning on the way."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        terms = landmark_likelihood_terms(
            pd.DataFrame(
                {
                    "study": "s",
                    "arm": "a",
                    "time": [3.0, 6.0, 12.0],
                    "survival": [1.0, 0.8, 0.5],
                    "n_eff": 40.0,
                }
            )
        )
    np.testing.assert_allclose(terms["n_eff_term"], [40.0, 40.0, 32.0])
    np.testing.assert_allclose(terms["events_term"], [0.0, 8.0, 12.0])


def test_exchangeable_effects_have_the_integrated_covariance() -> None:
    """x = xbar 1 + s H z with xbar ~ N(m0, s^2 / K + b), z ~ N(0, I): Cov[x] =
    (s^2 / K + b) J + s^2 H H' must equal s^2 I + b J (the mean m ~ N(m0, b) of
    x_i ~ N(m, s^2) integrated out): H H' = I - J / K, H' 1 = 0, H' H = I."""
    for size in (2, 3, 5):
        h = helmert(size)
        ones = np.ones((size, size))
        np.testing.assert_allclose(h @ h.T, np.eye(size) - ones / size, atol=1e-12)
        np.testing.assert_allclose(h.T @ h, np.eye(size - 1), atol=1e-12)
        np.testing.assert_allclose(h.sum(axis=0), 0.0, atol=1e-12)
        s2, b = 0.3, 1.7
        cov = (s2 / size + b) * ones + s2 * h @ h.T
        np.testing.assert_allclose(cov, s2 * np.eye(size) + b * ones, atol=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: {**d, "landmarks": d["landmarks"].assign(survival=[0.3, 0.5, 0.2] * 2)},
            "increases with time",
        ),
        (lambda d: {**d, "medians": d["medians"].assign(arm=["x", EXP])}, "has no arm 'x'"),
        (lambda d: {**d, "medians": d["medians"].assign(sei=0.0)}, "column sei"),
        (lambda d: {**d, "landmarks": d["landmarks"].assign(n_eff=np.nan)}, "give n_eff or sei"),
        (
            lambda d: {
                **d,
                "arms": d["arms"].iloc[[0]],
                "contrasts": None,
                "landmarks": None,
                "medians": d["medians"].iloc[[0]],
            },
            "no arm of a regimen other",
        ),
    ],
)
def test_bad_input_is_refused(change, message) -> None:  # type: ignore[no-untyped-def]
    data = change(n34())
    with pytest.raises(InputError, match=message):
        fit_survival(
            data["arms"],
            reference=REF,
            medians=data["medians"],
            landmarks=data["landmarks"],
            contrasts=data["contrasts"],
        )


def test_contrast_of_a_single_arm_study_and_uniform_mu_prior_are_refused() -> None:
    data = n34()
    arms = pd.concat([data["arms"], pd.DataFrame({"study": ["t"], "arm": [REF]})])
    contrasts = pd.concat(
        [data["contrasts"], pd.DataFrame({"study": ["t"], "yi": [0.1], "sei": [0.2]})]
    )
    with pytest.raises(InputError, match="does not have arms of both regimens"):
        fit_survival(arms, reference=REF, contrasts=contrasts)
    with pytest.raises(InputError, match=r"prior_mu_hr must be a priors\.Normal"):
        fit_survival(
            data["arms"], reference=REF, contrasts=data["contrasts"], prior_mu_hr=pr.Uniform(-2, 2)
        )


class _Built(Exception):
    """Raised by the stand-in for mcmc.sample once the model is built and evaluated."""


@pytest.mark.parametrize(
    ("baseline", "likelihood", "form"),
    [("random", "cloglog", "marginal"), ("fixed", "binomial", "conditional")],
)
def test_other_variants_build_with_a_finite_log_density(
    monkeypatch: pytest.MonkeyPatch, baseline: str, likelihood: str, form: str
) -> None:
    """The structural variants the sampling tests do not compile (fixed baselines, the
    cloglog landmark likelihood) build a PyMC model whose log density and gradient are
    finite at the initial point, with the data and prior values they will be sampled with
    (evaluated in pytensor's FAST_COMPILE mode: no nutpie or C compile)."""

    def stand_in(key, build, data, **kwargs):  # type: ignore[no-untyped-def]
        model = build()
        import pymc as pm

        with model:
            pm.set_data({k: v for k, v in data.items()})
        point = model.initial_point()
        logp = model.compile_logp(mode="FAST_COMPILE")(point)
        grad = model.compile_dlogp(mode="FAST_COMPILE")(point)
        assert np.isfinite(logp) and np.all(np.isfinite(grad))
        raise _Built(key)

    monkeypatch.setattr(mcmc, "sample", stand_in)
    # marginal landmarks: with the 1/m weights (the joint likelihood takes conditional ones)
    overlap = "families" if form == "marginal" else "joint"
    with pytest.raises(_Built):
        _fit(
            n34(),
            baseline=baseline,
            landmark_likelihood=likelihood,
            landmark_terms=form,
            overlap=overlap,
        )


def test_single_experimental_arm_can_be_kept_out_of_the_contrast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Park-like single arm of the experimental regimen (median 7.1, 95% CI 4.8-7.5):
    'arm_based' (default) gives it a log HR of its own; 'exclude' gives it its own
    baseline and no log HR (a structure with one excluded study)."""
    data = n34()
    data["arms"] = pd.concat(
        [data["arms"], pd.DataFrame({"study": ["park2012"], "arm": [EXP]})], ignore_index=True
    )
    se = (math.log(7.5) - math.log(4.8)) / (2 * stats.norm.isf(0.025))
    data["medians"] = pd.concat(
        [
            data["medians"],
            pd.DataFrame({"study": ["park2012"], "arm": [EXP], "yi": [math.log(7.1)], "sei": [se]}),
        ],
        ignore_index=True,
    )
    keys = []

    def stand_in(key, build, data, **kwargs):  # type: ignore[no-untyped-def]
        import pymc as pm

        model = build()
        with model:
            pm.set_data(dict(data))
        point = model.initial_point()
        assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(point))
        keys.append((key, sorted(point)))
        raise _Built(key)

    monkeypatch.setattr(mcmc, "sample", stand_in)
    for how in ("arm_based", "exclude"):
        with pytest.raises(_Built):
            _fit(data, single_arm_experimental=how)
    (key_arm, vars_arm), (key_ex, vars_ex) = keys
    assert key_arm[1].n_excluded == 0 and key_ex[1].n_excluded == 1  # excluded studies
    assert "eta_own" in vars_ex and "eta_own" not in vars_arm
    assert not any(v.startswith("log_hr_dev") for v in vars_ex)  # one study: no deviations
    assert any(v.startswith("log_hr_dev") for v in vars_arm)  # two studies


# --------------------------------------------------------------------------------------
# sampling


def _fit(data: dict[str, pd.DataFrame], **kwargs):  # type: ignore[no-untyped-def]
    return fit_survival(
        data["arms"],
        reference=kwargs.pop("reference", REF),
        medians=data.get("medians"),
        landmarks=data.get("landmarks"),
        contrasts=data.get("contrasts"),
        settings=kwargs.pop("settings", SETTINGS),
        **kwargs,
    )


@pytest.mark.sampling
def test_n34_study_informs_through_every_statistic() -> None:
    """One study, medians + p (Peto) + 6/12/24-month survival per arm: samples cleanly,
    Weibull and exponential (k = 1) alike, without recompiling for the switch."""
    data = n34()
    res = _fit(data, seed=1)
    assert res.diagnostics.ok, res.diagnostics.messages
    assert res.diagnostics.n_divergent == 0
    table = res.summary()
    study_hr = table.loc["log_hr_study[n34]"]
    assert study_hr["ci_upper"] < 0  # sorafenib + TACE: lower hazard
    assert 7 < table.loc["median_study[n34, sorafenib]", "median"] < 12
    assert 18 < table.loc["median_study[n34, sorafenib_tace]", "median"] < 32
    surv = table[table["estimand"] == "survival"]
    assert len(surv) == 6 and set(surv["time"]) == {6.0, 12.0, 24.0}
    assert {"hr", "hr_new", "median", "median_new", "survival_new", "k"} <= set(table["estimand"])
    terms = res.inputs["terms"]
    assert set(terms["term"]) == {"median", "landmark", "contrast"}
    assert '"overlap": "joint"' in res.tree.attrs["options"]
    # the log densities at the draws for power-scaling (values: tests/test_survival_psense.py)
    ll, lp = res.tree["log_likelihood"].to_dataset(), res.tree["log_prior"].to_dataset()
    draws = dict(res.posterior["tau"].sizes)
    for family, n in (("median", 2), ("landmark", 6), ("contrast", 1)):
        assert ll[family].dims == ("chain", "draw", f"{family}_term")
        assert dict(ll[family].sizes) == {**draws, f"{family}_term": n}
    assert list(ll["landmark"]["landmark_term"].to_numpy()[:2]) == [
        f"n34, {REF}, 0-6 months",
        f"n34, {REF}, 6-12 months",
    ]
    assert set(lp.data_vars) == {"mu_hr", "tau", "log_k", "m_eta", "sigma_eta"}
    assert all(dict(lp[v].sizes) == draws for v in lp.data_vars)
    before = mcmc.compile_count()
    expo = _fit(data, seed=2, weibull=False)
    assert mcmc.compile_count() == before  # the shape switch is data
    assert expo.diagnostics.ok and expo.diagnostics.n_divergent == 0
    k = expo.draws("k")
    assert np.all(k == 1.0)
    assert expo.priors["shape"] == "k = 1 (exponential)"
    assert "log_k" not in expo.tree["log_prior"]  # k is fixed: no prior of ln k to scale
    # marginal landmarks with the 1/m weights are a data change too
    marginal = _fit(data, seed=3, landmark_terms="marginal", overlap="families")
    assert mcmc.compile_count() == before
    assert marginal.diagnostics.ok and marginal.diagnostics.n_divergent == 0


#: True curves of the simulation: Weibull shape 1.3, reference median 9 months, HR 0.5.
TRUE_K, TRUE_M_REF, TRUE_HR = 1.3, 9.0, 0.5
TRUE_M_EXP = TRUE_M_REF * TRUE_HR ** (-1 / TRUE_K)
#: Fixed seeds of the replicates (each gives both medians and all six landmarks).
REPLICATES = (1000, 1001, 1002, 1003, 1004)


@pytest.mark.sampling
def test_simulated_studies_recover_the_true_curves() -> None:
    """Draw two Weibull arms (n 40 and 60, uniform accrual over 24 months, analysis 24
    months after the last enrolment, 1%/month loss to follow-up), compute what a paper
    reports (KM medians with events, KM survival at 6/12/24 months with Greenwood
    variances, Cox HR with SE, log-rank p with the medians), fit, and count the true log
    HR, medians, shape and survival at 6/12/24 months (10 quantities) outside the 95%
    intervals. Intervals with exact 95% coverage miss 2.5 of the 50 on average and all
    50 contain the truth with probability 0.08 only (0.95^50, independent checks; the
    checks of one arm are positively correlated, which widens the spread of the count):
    the test allows 6 misses (P(more) = 0.012 for 50 independent checks) and no
    quantity missed in more than 2 of the 5 replicates (P = 0.001 for one quantity). The
    coverage proper is measured by
    validation/survival/survival_coverage.py."""
    compiles = mcmc.compile_count()
    misses: list[str] = []
    for seed in REPLICATES:
        rng = np.random.default_rng(seed)
        ref = simulate_arm(rng, n=40, median=TRUE_M_REF, shape=TRUE_K)
        exp = simulate_arm(rng, n=60, median=TRUE_M_EXP, shape=TRUE_K)
        report = paper_report("sim", exp, ref, reference=REF, experimental=EXP)
        assert len(report["landmarks"]) == 6 and len(report["medians"]) == 2
        res = _fit(report, seed=seed)
        assert res.diagnostics.ok, res.diagnostics.messages
        assert res.diagnostics.n_divergent == 0
        truth = {"log_hr": math.log(TRUE_HR), "k": TRUE_K}
        draws = {"log_hr": res.draws("log_hr_study")[:, 0], "k": res.draws("k")}
        medians = res.draws("median_study")[:, 0, :]
        k = res.draws("k")
        for j, (label, m_true) in enumerate(((REF, TRUE_M_REF), (EXP, TRUE_M_EXP))):
            truth[f"median_{label}"] = m_true
            draws[f"median_{label}"] = medians[:, j]
            for t in (6.0, 12.0, 24.0):
                truth[f"S{t:g}_{label}"] = float(weibull_survival(t, m_true, TRUE_K))
                draws[f"S{t:g}_{label}"] = np.exp(-math.log(2) * (t / medians[:, j]) ** k)
        for name, value in truth.items():
            lo, hi = np.quantile(draws[name], [0.025, 0.975])
            if not lo <= value <= hi:
                misses.append(f"replicate {seed}: {name} {value:.3f} not in [{lo:.3f}, {hi:.3f}]")
        # the p-value row is superseded by the Cox HR of the same comparison
        contrast_terms = res.inputs["terms"].query("term == 'contrast'")
        assert list(contrast_terms["used"]) == [True, False]
    assert len(misses) <= 6, misses
    by_quantity = [m.split(": ")[1].split(" ")[0] for m in misses]
    assert max(map(by_quantity.count, set(by_quantity)), default=0) <= 2, misses
    # all replicates share one compiled model (at most one compile, if not cached yet)
    assert mcmc.compile_count() - compiles <= 1


def n34_and_terashima() -> dict[str, pd.DataFrame]:
    """The n=34 study plus Terashima 2016's group A (intrahepatic-targeted therapy after
    sorafenib, n = 44, median 11.9 months) vs group B (systemic only, n = 19, 5.8 months),
    adjusted HR of B vs A 2.628 (1.309-5.278): the SPEC's first contrast. Events per group
    are not reported; the tests impute 0.8 n (35 and 15)."""
    data = n34()
    data["arms"] = pd.concat(
        [data["arms"], pd.DataFrame({"study": ["terashima2016"] * 2, "arm": [REF, EXP]})],
        ignore_index=True,
    )
    data["medians"] = pd.concat(
        [
            data["medians"],
            pd.DataFrame(
                {
                    "study": ["terashima2016"] * 2,
                    "arm": [REF, EXP],
                    "yi": np.log([5.8, 11.9]),
                    "sei": np.sqrt(KM_MEDIAN_VARIANCE_FACTOR / np.array([15.0, 35.0])),
                }
            ),
        ],
        ignore_index=True,
    )
    se = (math.log(5.278) - math.log(1.309)) / (2 * stats.norm.isf(0.025))
    data["contrasts"] = pd.concat(
        [
            data["contrasts"],
            pd.DataFrame(
                {"study": ["terashima2016"], "yi": [-math.log(2.628)], "sei": [se], "kind": "hr"}
            ),
        ],
        ignore_index=True,
    )
    return data


@pytest.mark.sampling
def test_two_studies_pool_cleanly() -> None:
    """Two studies of the contrast, one with medians, p and landmarks, one with medians
    and an adjusted HR: samples cleanly; the pooled HR lies between the studies'."""
    res = _fit(n34_and_terashima(), seed=4)
    assert res.diagnostics.ok, res.diagnostics.messages
    assert res.diagnostics.n_divergent == 0
    table = res.summary()
    lo = min(
        table.loc["log_hr_study[n34]", "median"], table.loc["log_hr_study[terashima2016]", "median"]
    )
    hi = max(
        table.loc["log_hr_study[n34]", "median"], table.loc["log_hr_study[terashima2016]", "median"]
    )
    assert lo - 0.1 < table.loc["mu_hr", "median"] < hi + 0.1
    assert table.loc["median_study[terashima2016, sorafenib]", "median"] == pytest.approx(
        5.8, rel=0.25
    )
    # the joint likelihood weighs no term down (the 1/m weights are overlap='families')
    assert '"terashima2016": 1.0' in res.tree.attrs["options"]


@pytest.mark.sampling
def test_contrasts_only_agree_with_normal_normal() -> None:
    """With only HRs (no arm-level statistics) the model is the normal-normal
    random-effects model on ln HR: mu_hr must match its exact posterior under the same
    priors (mu ~ N(0, 1), tau ~ HalfNormal(0.5)). Two studies, so that the padded model
    of the previous test is reused (no compile)."""
    compiles = mcmc.compile_count()
    yi = np.array([-0.9, -0.4])
    sei = np.array([0.35, 0.25])
    studies = ["a", "b"]
    data = {
        "arms": pd.DataFrame({"study": np.repeat(studies, 2), "arm": [REF, EXP] * 2}),
        "contrasts": pd.DataFrame({"study": studies, "yi": yi, "sei": sei, "kind": "hr"}),
    }
    res = _fit(data, seed=9, settings=AGREEMENT)
    assert res.diagnostics.ok, res.diagnostics.messages
    exact = normal_normal_exact(yi, sei, mu_mean=0.0, mu_sd=1.0, tau_scale=0.5)
    mu = res.summary().loc["mu_hr"]
    assert abs(mu["mean"] - exact["mu_mean"]) < TOL_MEAN_SD_UNITS * exact["mu_sd"]
    assert abs(mu["sd"] / exact["mu_sd"] - 1) < TOL_SD_REL
    assert res.summary().loc["tau", "mean"] == pytest.approx(exact["tau_mean"], abs=0.03)
    # term arrays are padded to buckets of 8: the same compiled model as two studies with
    # medians, landmarks and contrasts
    assert mcmc.compile_count() - compiles <= 1
