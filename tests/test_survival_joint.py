"""The joint likelihood of the multi-format survival model (overlap="joint",
hccmeta.models.survival.terms): the covariance of one study's Kaplan-Meier statistics
worked by hand, its positive definiteness, the model's conditional terms against the
multivariate normal they come from, and agreement with the old likelihood where the
statistics are independent.

References:

- Greenwood: without censoring ``Var ln S_KM(t) = (1 - S) / (n S)``, and
  ``Cov(ln S_KM(s), ln S_KM(t)) = Var ln S_KM(min(s, t))`` (independent increments);
- the Kaplan-Meier median of an exponential sample: ``Var ln M_KM = 1 / (d ln(2)^2)``
  (the effects layer's default SE, d = n without censoring); by the Bahadur
  representation ``ln M_KM - ln M = (S_KM(M) - 1/2) / (f(M) M)``, with ``f(M) M = ln(2) /
  2`` for the exponential, so ``Cov(ln M_KM, ln S_KM(t)) = Var ln S_KM(min(M, t)) /
  ln 2`` -- times ``1 / sqrt(1 + 1.596 / sqrt(n))``, the share of the median's variance
  that is not Kiefer's remainder;
- a log HR estimated from complete follow-up at HR = 1: ``Var = N / (n_1 n_0)`` (Peto),
  ``Cov(beta_hat, ln S_KM,ref(t)) = Var * H(t) n_1 / N`` and ``Cov(beta_hat, ln
  S_KM,exp(t)) = -Var * H(t) n_0 / N`` (the Cox score ``sum int (Z - Zbar) dM`` with
  ``Zbar = n_1 / N`` throughout).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hccmeta import priors as pr
from hccmeta.models.survival import statistic_covariance
from hccmeta.models.survival.fit import (
    DEFAULT_LOG_MEDIAN,
    DEFAULT_LOG_SHAPE,
    DEFAULT_SIGMA_BASELINE,
)
from hccmeta.models.survival.graph import log_likelihood, model_values
from hccmeta.models.survival.inputs import prepare_inputs
from hccmeta.models.survival.summary import term_labels
from hccmeta.models.survival.terms import KIEFER, NumPyOps, landmark_deviation

LN2 = math.log(2.0)
#: Closed forms vs the code (double precision, a few operations).
TOL_EXACT = 1e-12
#: Log densities computed two ways (a Cholesky of a 9 x 9 matrix against the closed form).
TOL_LOGP = 1e-8

PRIORS = {
    "mu_hr": pr.DEFAULT_MU,
    "tau": pr.DEFAULT_TAU,
    "log_median": DEFAULT_LOG_MEDIAN,
    "sigma_baseline": DEFAULT_SIGMA_BASELINE,
    "log_shape": DEFAULT_LOG_SHAPE,
}


def test_covariance_of_an_exponential_study_worked_by_hand() -> None:
    """n = 20 per arm, exponential (k = 1), median 10 months in both arms (HR = 1),
    landmarks at 6 and 12 months and the median in each arm, a log HR with the SE of
    complete follow-up (sqrt(N / (n_1 n_0)) = sqrt(0.1))."""
    n = 20.0
    se_med = 1.0 / math.sqrt(n * LN2**2)
    labels, mean, cov = statistic_covariance(
        log_median_ref=math.log(10.0),
        log_hr=0.0,
        shape=1.0,
        n={"ref": n, "exp": n},
        times={"ref": (6.0, 12.0), "exp": (6.0, 12.0)},
        median_se={"ref": se_med, "exp": se_med},
        contrast_se=math.sqrt(0.1),
    )
    assert labels == [
        "ref median", "ref S(6)", "ref S(12)", "exp median", "exp S(6)", "exp S(12)", "log HR",
    ]  # fmt: skip
    ix = {label: i for i, label in enumerate(labels)}
    s6, s12 = 2.0**-0.6, 2.0**-1.2
    var6, var12 = (1 - s6) / (n * s6), (1 - s12) / (n * s12)
    np.testing.assert_allclose(mean[[1, 2]], np.log([s6, s12]), rtol=TOL_EXACT)
    for arm in ("ref", "exp"):
        a6, a12, am = ix[f"{arm} S(6)"], ix[f"{arm} S(12)"], ix[f"{arm} median"]
        assert cov[a6, a6] == pytest.approx(var6, rel=TOL_EXACT)
        assert cov[a12, a12] == pytest.approx(var12, rel=TOL_EXACT)
        assert cov[a6, a12] == pytest.approx(var6, rel=TOL_EXACT)
        assert cov[am, am] == pytest.approx(1.0 / (n * LN2**2), rel=TOL_EXACT)
        kiefer = 1.0 / math.sqrt(1.0 + KIEFER / math.sqrt(n))
        # the median (10 months) lies between the landmarks: min(M, 6) = 6, min(M, 12) = M
        assert cov[am, a6] == pytest.approx(var6 / LN2 * kiefer, rel=TOL_EXACT)
        assert cov[am, a12] == pytest.approx((1.0 / n) / LN2 * kiefer, rel=TOL_EXACT)
    # no correlation between the arms' curves
    assert cov[ix["ref S(6)"], ix["exp S(6)"]] == 0.0
    assert cov[ix["ref median"], ix["exp median"]] == 0.0
    # the log HR: + se^2 H n_1 / N with the reference arm, - se^2 H n_0 / N with the other
    hr = ix["log HR"]
    assert cov[hr, hr] == pytest.approx(0.1, rel=TOL_EXACT)
    assert cov[hr, ix["ref S(6)"]] == pytest.approx(0.1 * 0.6 * LN2 * 0.5, rel=1e-9)
    assert cov[hr, ix["exp S(12)"]] == pytest.approx(-0.1 * 1.2 * LN2 * 0.5, rel=1e-9)
    assert cov[hr, ix["ref median"]] == pytest.approx(
        0.1 * LN2 * 0.5 * math.sqrt(n) * se_med * kiefer, rel=1e-9
    )
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_median_loading_follows_the_model_shape() -> None:
    """A Weibull arm of shape k = 2 (n = 20, median 10 months, landmark at 6 months),
    its median's SE the exponential's 1 / sqrt(n ln(2)^2): by the Bahadur
    representation under the curve, ``ln M_KM - ln M = W(M) / (h(M) M)`` with ``h(M) M
    = k ln 2``, so the covariance with ln S_KM(6) is ``V(6) / (k ln 2)`` (times the
    Kiefer factor). The median's variance stays the reported ``1 / (n ln(2)^2)``: the
    Weibull's asymptotic ``1 / (n (k ln 2)^2)`` would be a quarter of it, and the joint
    likelihood never makes a median more precise than reported (only k < 1 widens it)."""
    n, k = 20.0, 2.0
    labels, _, cov = statistic_covariance(
        log_median_ref=math.log(10.0),
        log_hr=0.0,
        shape=k,
        n={"ref": n, "exp": n},
        times={"ref": (6.0,)},
        median_se={"ref": 1.0 / math.sqrt(n * LN2**2)},
    )
    assert labels == ["ref median", "ref S(6)"]
    s6 = 2.0 ** -(0.6**k)
    var6 = (1 - s6) / (n * s6)
    kiefer = 1.0 / math.sqrt(1.0 + KIEFER / math.sqrt(n))
    assert cov[1, 1] == pytest.approx(var6, rel=TOL_EXACT)
    assert cov[0, 1] == pytest.approx(var6 / (k * LN2) * kiefer, rel=TOL_EXACT)
    assert cov[0, 0] == pytest.approx(1.0 / (n * LN2**2), rel=TOL_EXACT)
    # at k = 1/2 the variance is the Weibull's, four times the exponential's
    _, _, cov = statistic_covariance(
        log_median_ref=math.log(10.0),
        log_hr=0.0,
        shape=0.5,
        n={"ref": n, "exp": n},
        median_se={"ref": 1.0 / math.sqrt(n * LN2**2)},
    )
    assert cov[0, 0] == pytest.approx(1.0 / (n * (0.5 * LN2) ** 2), rel=TOL_EXACT)


def test_covariance_is_positive_definite_across_curves() -> None:
    """Random curves, arm sizes, landmark sets and HRs (0.2-5), log HRs with 0.3 to 1.2
    times the information of complete follow-up (the arms thinned as the model thins
    them where it is less): every matrix is symmetric positive definite."""
    rng = np.random.default_rng(12)
    for _ in range(200):
        k = float(np.exp(rng.normal(0.0, 0.4)))
        log_hr = float(rng.uniform(math.log(0.2), math.log(5.0)))
        n = {"ref": float(rng.integers(8, 120)), "exp": float(rng.integers(8, 120))}
        log_m_ref = float(rng.uniform(math.log(3.0), math.log(30.0)))
        log_m = {"ref": log_m_ref, "exp": log_m_ref - log_hr / k}
        grid = np.array([3.0, 6.0, 9.0, 12.0, 18.0, 24.0, 36.0])
        times = {}
        for arm in ("ref", "exp"):
            # landmarks where at least 1% survive (a Kaplan-Meier estimate there is > 0)
            alive = grid[LN2 * (grid / math.exp(log_m[arm])) ** k < math.log(100.0)]
            size = int(rng.integers(0, min(5, alive.size + 1)))
            times[arm] = tuple(sorted(rng.choice(alive, size=size, replace=False)))
        info0 = n["ref"] * n["exp"] / (n["ref"] + n["exp"])
        share = float(rng.uniform(0.3, 1.2))  # information of the HR / that of complete follow-up
        phi = min(1.0, share)  # the model's thinning of the arms' sizes
        _, _, cov = statistic_covariance(
            log_median_ref=log_m_ref,
            log_hr=log_hr,
            shape=k,
            n={arm: size * phi for arm, size in n.items()},
            times=times,
            median_se={arm: 1.0 / math.sqrt(n[arm] * 0.8 * LN2**2) for arm in ("ref", "exp")},
            contrast_se=1.0 / math.sqrt(info0 * share),
        )
        np.testing.assert_allclose(cov, cov.T, rtol=0, atol=1e-15)
        assert np.linalg.eigvalsh(cov).min() > 0


def _study(*, contrast: bool = True) -> dict[str, pd.DataFrame]:
    """One two-arm study: reference arm with 6/12/24-month landmarks and a median,
    experimental arm with 6/12-month landmarks and a median, an HR."""
    out = {
        "arms": pd.DataFrame({"study": ["s", "s"], "arm": ["ref", "exp"], "n": [40.0, 60.0]}),
        "medians": pd.DataFrame(
            {
                "study": ["s", "s"],
                "arm": ["ref", "exp"],
                "yi": np.log([8.5, 15.0]),
                "sei": [0.2, 0.19],
            }
        ),
        "landmarks": pd.DataFrame(
            {
                "study": "s",
                "arm": ["ref"] * 3 + ["exp"] * 2,
                "time": [6.0, 12.0, 24.0, 6.0, 12.0],
                "survival": [0.62, 0.41, 0.18, 0.80, 0.60],
                "n_eff": [40.0] * 3 + [60.0] * 2,
            }
        ),
        "contrasts": pd.DataFrame({"study": ["s"], "yi": [-0.55], "sei": [0.24], "kind": "hr"}),
    }
    if not contrast:
        out["contrasts"] = None
    return out


def _loglik(data: dict[str, pd.DataFrame], *, eta, beta, k, overlap: str = "joint"):  # type: ignore[no-untyped-def]
    inputs = prepare_inputs(
        data["arms"],
        reference="ref",
        medians=data.get("medians"),
        landmarks=data.get("landmarks"),
        contrasts=data.get("contrasts"),
        landmark_likelihood="binomial",
        landmark_terms="conditional",
        single_arm_experimental="arm_based",
        overlap=overlap,
    )
    values, segments = model_values(
        inputs, overlap=overlap, weibull=True, landmark_likelihood="binomial",
        baseline="random", bias=None, priors=PRIORS,
    )  # fmt: skip
    ll = log_likelihood(
        values,
        segments,
        labels=term_labels(inputs, "conditional"),
        eta=np.asarray(eta, float).reshape(1, 1, -1),
        beta=np.asarray(beta, float).reshape(1, 1, -1),
        k=np.asarray(k, float).reshape(1, 1),
        landmark_likelihood="binomial",
    )
    return ll, inputs


@pytest.mark.parametrize(
    ("log_m_ref", "beta", "k"),
    [
        (math.log(9.0), -0.6, 1.2),  # both medians between landmarks
        (math.log(7.0), -1.2, 0.8),  # the experimental median after its last landmark
        (math.log(4.0), 0.3, 1.6),  # the reference median before its first landmark
    ],
)
def test_joint_terms_are_the_conditionals_of_the_multivariate_normal(
    log_m_ref: float, beta: float, k: float
) -> None:
    """The model's median and contrast terms (overlap='joint') equal log N(all
    statistics) - log N(landmarks) under the covariance of statistic_covariance, at
    curves that put each median in another interval between the landmarks."""
    data = _study()
    ll, inputs = _loglik(data, eta=[log_m_ref], beta=[beta], k=[k])
    phi = inputs.phi["s"]
    labels, mean, cov = statistic_covariance(
        log_median_ref=log_m_ref,
        log_hr=beta,
        shape=k,
        n={"ref": 40.0 * phi, "exp": 60.0 * phi},
        times={"ref": (6.0, 12.0, 24.0), "exp": (6.0, 12.0)},
        median_se={"ref": 0.2, "exp": 0.19},
        contrast_se=0.24,
    )
    obs = np.array([
        math.log(8.5), *np.log([0.62, 0.41, 0.18]), math.log(15.0), *np.log([0.80, 0.60]), -0.55,
    ])  # fmt: skip
    assert labels[0] == "ref median" and labels[4] == "exp median"
    landmark = [i for i, label in enumerate(labels) if "S(" in label]
    # the landmarks enter as the deviations the terms condition on (mean = -H(t))
    obs[landmark] = mean[landmark] + landmark_deviation(NumPyOps, obs[landmark], -mean[landmark])
    full = stats.multivariate_normal.logpdf(obs, mean, cov)
    marginal = stats.multivariate_normal.logpdf(
        obs[landmark], mean[landmark], cov[np.ix_(landmark, landmark)]
    )
    model = float(ll["median"].sum() + ll["contrast"].sum())
    assert model == pytest.approx(full - marginal, abs=TOL_LOGP)


def test_landmark_deviation_is_w_near_the_curve_and_the_cloglog_deviation_below_it() -> None:
    """``W = ln S_KM + H`` where the landmark lies on or above the model's curve; below
    it ``H (ln H - ln(-ln S_KM))``: equal to first order in W, continuous with its slope
    at W = 0, and the Weibull inversion of the landmark (a median conditioned on it at
    M = t is where a Weibull of shape k through S_KM(t) has its median)."""
    h = np.array([0.3, 0.3, LN2, LN2])
    ln_s = np.array([-0.2, -0.3, math.log(0.02), -LN2 - 1e-4])
    w = landmark_deviation(NumPyOps, ln_s, h)
    assert w[0] == pytest.approx(0.1, rel=TOL_EXACT)  # above the curve: W itself
    assert w[1] == 0.0
    # far below: ln 0.02 + ln 2 = -3.2 against LN2 (ln ln 2 - ln(-ln 0.02))
    assert w[2] == pytest.approx(LN2 * (math.log(LN2) - math.log(-math.log(0.02))), rel=1e-12)
    assert w[2] > -1.5 > math.log(0.02) + LN2
    assert w[3] == pytest.approx(-1e-4, rel=1e-3)  # first order: W
    # the Weibull through (t, S_KM(t)) with shape k has ln M = ln t - (ln(-ln S) - ln ln 2) / k
    k, s_km = 1.4, 0.02
    linear_part = w[2] / (k * LN2)  # ln M_KM - ln M at M = t, from the loading 1 / (k ln 2)
    weibull = -(math.log(-math.log(s_km)) - math.log(LN2)) / k
    assert linear_part == pytest.approx(weibull, rel=1e-12)


def test_thinning_applies_when_the_contrast_is_less_informative() -> None:
    """The HR's SE 0.24 (information 17.4) against complete follow-up of 40 + 60
    patients (n_1 n_0 / N = 24): the arms' sizes are scaled by 17.4 / 24."""
    _, inputs = _loglik(_study(), eta=[2.0], beta=[-0.5], k=[1.0])
    assert inputs.phi["s"] == pytest.approx((1 / 0.24**2) / 24.0, rel=TOL_EXACT)


@pytest.mark.parametrize("shape", [1.3, 0.8])
@pytest.mark.parametrize("overlap", ["joint", "none"])
def test_independent_statistics_give_the_old_likelihood(overlap: str, shape: float) -> None:
    """Where no two statistics share patients -- one statistic per arm and no
    contrast, or a contrast alone -- the joint likelihood is the product of the terms:
    normal on ln median (mean ln M, SD sei; sei / min(k, 1) in the joint likelihood,
    which reads the SE as an exponential curve's and never narrows it), binomial
    landmarks, normal on ln HR."""
    medians_only = {
        "arms": pd.DataFrame({"study": ["a", "a", "b", "b"], "arm": ["ref", "exp"] * 2}),
        "medians": pd.DataFrame(
            {
                "study": ["a", "a", "b"],
                "arm": ["ref", "exp", "ref"],
                "yi": np.log([8.0, 12.0, 6.0]),
                "sei": [0.3, 0.25, 0.2],
            }
        ),
        "landmarks": pd.DataFrame(
            {"study": ["b"], "arm": ["exp"], "time": [12.0], "survival": [0.5], "n_eff": [30.0]}
        ),
    }
    eta, beta, k = np.array([[2.1, 1.9]]), np.array([[-0.4, -0.2]]), np.array([shape])
    ll, _ = _loglik(medians_only, eta=eta, beta=beta, k=k, overlap=overlap)
    log_m = {("a", "ref"): 2.1, ("a", "exp"): 2.1 + 0.4 / shape, ("b", "ref"): 1.9}
    # the joint likelihood reads a median's SE as an exponential curve's and widens it
    # where the model's shape is below 1 (SE / k); the independent one takes it as reported
    scale = min(shape, 1.0) if overlap == "joint" else 1.0
    expected = [
        stats.norm.logpdf(y, log_m[(s, a)], se / scale)
        for s, a, y, se in zip(
            *(medians_only["medians"][c] for c in ("study", "arm", "yi", "sei")), strict=True
        )
    ]
    np.testing.assert_allclose(ll["median"].to_numpy().ravel(), expected, rtol=1e-12)
    s_model = math.exp(-LN2 * (12.0 / math.exp(1.9 + 0.2 / shape)) ** shape)
    binom = stats.binom.logpmf(15, 30, 1 - s_model)
    assert float(ll["landmark"].sum()) == pytest.approx(binom, abs=1e-9)
    contrast_only = {
        "arms": pd.DataFrame({"study": ["a", "a"], "arm": ["ref", "exp"]}),
        "contrasts": pd.DataFrame({"study": ["a"], "yi": [-0.3], "sei": [0.2]}),
    }
    ll, _ = _loglik(contrast_only, eta=[2.0], beta=[-0.5], k=[1.0], overlap=overlap)
    assert float(ll["contrast"].sum()) == pytest.approx(
        stats.norm.logpdf(-0.3, -0.5, 0.2), abs=1e-12
    )
