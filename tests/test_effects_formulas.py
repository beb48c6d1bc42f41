"""Each conversion of hccmeta.effects against values worked by hand from the sources.

The arithmetic is written out next to each expected value (z quantiles from the normal
distribution: z_{0.975} = 1.959964, z for two-sided p = 0.004 is 2.878162, p = 0.002:
3.090232, p = 0.010: 2.575829, p = 0.001: 3.290527, p = 0.058: 1.895698).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hccmeta.effects import (
    from_ci,
    log_ratio_from_ci,
    log_ratio_from_p,
    logit_proportion,
    se_from_p,
    two_arm_counts,
)
from hccmeta.effects.survival import (
    KM_MEDIAN_VARIANCE_FACTOR,
    cloglog_of_survival,
    cloglog_survival_from_ci,
    cloglog_survival_from_n,
    cloglog_survival_from_n_at_risk,
    log_hr_from_logrank,
    log_hr_from_medians_events,
    log_hr_from_medians_p,
    log_median_from_ci,
    log_median_from_events,
    min_log_hr_se,
    n_at_risk_under_accrual,
    survival_of_cloglog,
)

LN2 = math.log(2.0)

#: Hand-worked values are written to 4-6 significant digits.
HAND_TOL = 5e-5
#: Exact identities (same formula two ways) hold to floating-point precision.
EXACT_TOL = 1e-12


# ---- ratios with a CI ------------------------------------------------------------------


def test_terashima_group_c_hr_with_ci() -> None:
    # Terashima et al. 2016, Table 3: group C (no subsequent therapy) vs group A,
    # multivariable HR 5.805 (95% CI 2.684-12.553).
    # yi = ln 5.805 = 1.758720; SE = (ln 12.553 - ln 2.684) / (2 x 1.959964)
    #    = (2.529960 - 0.987308) / 3.919928 = 0.393541
    d = log_ratio_from_ci(5.805, 2.684, 12.553, level=0.95)
    assert float(d.yi) == pytest.approx(1.758720, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.393541, abs=HAND_TOL)
    assert d.measure == "log_hr" and d.method == "ratio_ci"
    assert d.assumptions() == ()


def test_terashima_child_pugh_b_hr_with_ci_level_assumed() -> None:
    # Child-Pugh B: HR 2.999 (1.478-6.087); level not given -> 0.95 assumed and flagged.
    # yi = ln 2.999 = 1.098279; SE = (1.806155 - 0.390690) / 3.919928 = 0.361095
    d = log_ratio_from_ci(2.999, 1.478, 6.087)
    assert float(d.yi) == pytest.approx(1.098279, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.361095, abs=HAND_TOL)
    assert d.assumptions() == ("ci_level_assumed",)


def test_ci_at_other_levels_and_one_sided() -> None:
    # A 90% CI 0.5-2.0 around 1.0: SE = (ln 2 - ln 0.5) / (2 x 1.644854) = 0.421393
    d = log_ratio_from_ci(1.0, 0.5, 2.0, level=0.90)
    assert float(d.sei) == pytest.approx(2 * math.log(2) / (2 * 1.644854), abs=HAND_TOL)
    # One-sided 95% upper bound 2.0 for HR 1.0: SE = ln 2 / z_{0.95} = 0.693147 / 1.644854
    d1 = log_ratio_from_ci(1.0, np.nan, 2.0, level=0.95)
    assert float(d1.sei) == pytest.approx(0.421399, abs=HAND_TOL)
    assert "one_sided_bound" in d1.assumptions()
    # Half of a two-sided 95% CI is a one-sided 97.5% bound: same SE as the full CI.
    full = log_ratio_from_ci(1.5, 0.9, 2.5, level=0.95)
    half = log_ratio_from_ci(1.5, np.nan, 2.5, level=0.975)
    assert float(half.sei) == pytest.approx(
        (math.log(2.5) - math.log(1.5)) / 1.959964, abs=HAND_TOL
    )
    assert float(full.yi) == float(half.yi)


def test_ci_without_estimate_uses_log_midpoint() -> None:
    # Only a CI 2-8: yi = (ln 2 + ln 8) / 2 = ln 4
    d = log_ratio_from_ci(np.nan, 2.0, 8.0, level=0.95)
    assert float(d.yi) == pytest.approx(math.log(4), abs=EXACT_TOL)
    assert "estimate_from_ci" in d.assumptions()


def test_generic_ci_is_additive() -> None:
    # Risk difference 0.2 (0.0-0.4): SE = 0.4 / 3.919928 = 0.102043
    d = from_ci(0.2, 0.0, 0.4, level=0.95, log=False)
    assert float(d.yi) == 0.2
    assert float(d.sei) == pytest.approx(0.102043, abs=HAND_TOL)


def test_vectorised_ci() -> None:
    d = log_ratio_from_ci([5.805, 2.999], [2.684, 1.478], [12.553, 6.087], level=[0.95, np.nan])
    assert d.yi.shape == (2,)
    np.testing.assert_allclose(d.sei, [0.393541, 0.361095], atol=HAND_TOL)
    assert d.assumptions(0) == ()
    assert d.assumptions(1) == ("ci_level_assumed",)


# ---- ratios with a p-value ---------------------------------------------------------------


def test_hr_with_p() -> None:
    # Terashima AFP >= 400: HR 2.207, Cox p = 0.008; z = 2.652070
    # SE = ln 2.207 / 2.652070 = 0.791630 / 2.652070 = 0.298495
    d = log_ratio_from_p(2.207, 0.008)
    assert float(d.yi) == pytest.approx(0.791630, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.298495, abs=HAND_TOL)


def test_hr_with_p_bound() -> None:
    # Terashima group C: HR 5.805, p < 0.001 -> bound taken as exact (an upper bound on SE)
    # SE = 1.758720 / 3.290527 = 0.534480
    d = log_ratio_from_p(5.805, 0.001, relation="<")
    assert float(d.sei) == pytest.approx(0.534480, abs=HAND_TOL)
    assert "p_bound" in d.assumptions()
    # midpoint rule: p = 0.0005, z = 3.480756 -> SE = 0.505270
    m = log_ratio_from_p(5.805, 0.001, relation="<", p_bound="midpoint")
    assert float(m.sei) == pytest.approx(1.758720 / 3.480756, abs=HAND_TOL)
    assert float(m.sei) < float(d.sei)


def test_se_from_p_of_one_is_infinite() -> None:
    assert math.isinf(float(se_from_p(0.3, 1.0)))


# ---- two medians and a log-rank p (exponential) -----------------------------------------


def test_lee_portal_vein_invasion_os() -> None:
    # Lee et al. 2017, abstract: main/lobar PVI (exposed) 3.7 vs segmental/no MVI 8.4 months,
    # p = 0.004. ln HR = ln(8.4 / 3.7) = 0.819899 (shorter median exposed -> HR > 1);
    # SE = 0.819899 / 2.878162 = 0.284869
    d = log_hr_from_medians_p(3.7, 8.4, 0.004)
    assert float(d.yi) == pytest.approx(0.819899, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.284869, abs=HAND_TOL)
    assert d.yi > 0
    assert set(d.assumptions()) == {"exponential", "p_normal_approximation"}


@pytest.mark.parametrize(
    ("m_exp", "m_ref", "p", "yi", "sei"),
    [
        # dose reduction 4.0 vs 8.8, p = 0.002: ln 2.2 = 0.788457; / 3.090232 = 0.255145
        (4.0, 8.8, 0.002, 0.788457, 0.255145),
        # Child-Pugh B 5.3 vs A 8.9, p = 0.004: ln(8.9/5.3) = 0.518344; / 2.878162 = 0.180096
        (5.3, 8.9, 0.004, 0.518344, 0.180096),
        # PFS, PVI 2.1 vs 3.8, p = 0.010: ln(3.8/2.1) = 0.593064; / 2.575829 = 0.230242
        (2.1, 3.8, 0.010, 0.593064, 0.230242),
        # n = 34 study, OS from sorafenib start, sorafenib + TACE 25 vs sorafenib 9 months,
        # p = 0.001: ln(9/25) = -1.021651; SE = 1.021651 / 3.290527 = 0.310483
        (25.0, 9.0, 0.001, -1.021651, 0.310483),
        # n = 34 study, TTP 8 vs 5, p = 0.058: ln(5/8) = -0.470004; / 1.895698 = 0.247932
        (8.0, 5.0, 0.058, -0.470004, 0.247932),
    ],
)
def test_medians_p_from_sources(
    m_exp: float, m_ref: float, p: float, yi: float, sei: float
) -> None:
    d = log_hr_from_medians_p(m_exp, m_ref, p)
    assert float(d.yi) == pytest.approx(yi, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(sei, abs=HAND_TOL)


def test_medians_p_weibull_shape_scales_both() -> None:
    # Weibull shape k = 1.5: ln HR = 1.5 x 0.819899 = 1.229848, SE = 1.5 x 0.284869
    d = log_hr_from_medians_p(3.7, 8.4, 0.004, shape=1.5)
    assert float(d.yi) == pytest.approx(1.229848, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.427303, abs=HAND_TOL)
    assert "weibull_shape" in d.assumptions() and "exponential" not in d.assumptions()


# ---- two medians and events --------------------------------------------------------------


def test_medians_events() -> None:
    # 25 vs 9 months with 18 and 12 deaths: ln HR = ln(9/25) = -1.021651. Default: the
    # Kaplan-Meier variances of the two log medians, SE = sqrt(2.081369 x (1/18 + 1/12))
    # = sqrt(2.081369 x 0.138889) = 0.537661
    d = log_hr_from_medians_events(25, 9, 18, 12)
    assert float(d.yi) == pytest.approx(-1.021651, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.537661, abs=HAND_TOL)
    assert d.assumptions() == ("exponential", "km_median_variance")
    # exponential-MLE variant: SE = sqrt(1/18 + 1/12) = 0.372678
    v = log_hr_from_medians_events(25, 9, 18, 12, variance="exponential_mle")
    assert float(v.sei) == pytest.approx(0.372678, abs=HAND_TOL)
    # a Weibull shape scales ln HR, and the SE of k ln(M_ref / M_exp) does not change
    w = log_hr_from_medians_events(25, 9, 18, 12, shape=1.5)
    assert float(w.yi) == pytest.approx(1.5 * -1.021651, abs=HAND_TOL)
    assert float(w.sei) == pytest.approx(0.537661, abs=HAND_TOL)


# ---- log-rank p, total events and group sizes (Peto) ------------------------------------


def test_peto_n34_os() -> None:
    # n = 34 study, OS from sorafenib start: 30 deaths, sorafenib + TACE n = 22 (exposed,
    # longer median, so direction -1) vs sorafenib n = 12, log-rank p = 0.001.
    # V = 30 x 22 x 12 / 34^2 = 7920 / 1156 = 6.851211; sqrt(V) = 2.617482
    # O - E = -2.617482 x 3.290527 = -8.612900; ln HR = (O - E) / V = -1.257135
    # SE = 1 / 2.617482 = 0.382047
    d = log_hr_from_logrank(0.001, 30, 22, 12, direction=-1)
    assert float(d.yi) == pytest.approx(-1.257135, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.382047, abs=HAND_TOL)
    assert set(d.assumptions()) == {"peto_variance"}


def test_min_log_hr_se() -> None:
    # n = 34 study, 22 vs 12 patients: every patient an event -> SE >= sqrt(1/22 + 1/12)
    # = sqrt(0.045455 + 0.083333) = 0.358870; with the 30 deaths: 34 / sqrt(30 x 22 x 12)
    # = 34 / 88.994382 = 0.382047 (= the Peto SE above)
    assert float(min_log_hr_se(22, 12)) == pytest.approx(0.358870, abs=HAND_TOL)
    assert float(min_log_hr_se(22, 12, 30)) == pytest.approx(0.382047, abs=HAND_TOL)
    # the medians + p SE of the same comparison (0.310483) lies below it: impossible
    assert float(log_hr_from_medians_p(25, 9, 0.001).sei) < float(min_log_hr_se(22, 12, 30))


# ---- medians ----------------------------------------------------------------------------


def test_park_median_ttp_with_ci() -> None:
    # Park et al. 2012: median TTP 7.1 months (95% CI 4.8-7.5).
    # yi = ln 7.1 = 1.960095; SE = (ln 7.5 - ln 4.8) / 3.919928 = (2.014903 - 1.568616)
    #    / 3.919928 = 0.113851
    d = log_median_from_ci(7.1, 4.8, 7.5, level=0.95)
    assert float(d.yi) == pytest.approx(1.960095, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.113851, abs=HAND_TOL)
    assert d.measure == "log_median" and d.method == "median_ci"


def test_median_with_events_km_default_and_mle_variant() -> None:
    # n = 34 study, overall median OS 16.5 months with 30 deaths: yi = ln 16.5 = 2.803360.
    # Default, a Kaplan-Meier median: Var = 1 / (d (ln 2)^2) with 1 / (ln 2)^2 = 2.081369,
    # SE = sqrt(2.081369 / 30) = 0.263399
    assert pytest.approx(2.081369, abs=HAND_TOL) == KM_MEDIAN_VARIANCE_FACTOR
    d = log_median_from_events(16.5, 30)
    assert float(d.yi) == pytest.approx(2.803360, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.263399, abs=HAND_TOL)
    assert "km_median_variance" in d.assumptions()
    # the exponential-MLE variant: SE = 1 / sqrt(30) = 0.182574
    k = log_median_from_events(16.5, 30, variance="exponential_mle")
    assert float(k.sei) == pytest.approx(0.182574, abs=HAND_TOL)
    assert k.assumptions() == ("exponential", "exponential_mle_median_variance")
    # a Weibull shape 1.5 divides the SE by 1.5: 0.263399 / 1.5 = 0.175599
    w = log_median_from_events(16.5, 30, shape=1.5)
    assert float(w.sei) == pytest.approx(0.175599, abs=HAND_TOL)


def test_km_median_variance_with_censoring_by_simulation() -> None:
    # The default 1 / (d (ln 2)^2) against the simulated variance of the log Kaplan-Meier
    # median: exponential times (median 9), exponential censoring with 30% of the
    # patients censored (d / n = 0.7), n = 200. Under this censoring the delta-method
    # variance is d (2^(n/d) - 1) / (n^2 (ln 2)^2), 0.83 times 1 / (d (ln 2)^2): the rule
    # is mildly conservative. Seeded; the ratio is checked to 10% (about 4 Monte Carlo
    # SEs with 2000 samples).
    rng = np.random.default_rng(20261201)
    lam = math.log(2) / 9.0
    c = lam * 0.3 / 0.7
    n, reps = 200, 2000
    t = rng.exponential(1 / lam, size=(reps, n))
    cens = rng.exponential(1 / c, size=(reps, n))
    obs, ev = np.minimum(t, cens), t <= cens
    meds, ds = [], []
    for i in range(reps):
        order = np.argsort(obs[i])
        o, e = obs[i][order], ev[i][order]
        at_risk = n - np.arange(n)
        s = np.cumprod(np.where(e, 1.0 - 1.0 / at_risk, 1.0))
        meds.append(o[np.flatnonzero(s <= 0.5)[0]])
        ds.append(e.sum())
    d_bar = float(np.mean(ds))
    default_var = float(log_median_from_events(9.0, round(d_bar)).sei) ** 2
    ratio = np.var(np.log(meds)) / default_var
    expected = (d_bar / n) ** 2 * (2 ** (n / d_bar) - 1)  # 0.83 at d / n = 0.7
    assert ratio == pytest.approx(expected, rel=0.1)
    assert ratio < 1.0


def test_km_median_factor_by_simulation() -> None:
    # The variance ratio of ln(sample median) to ln(MLE median) of uncensored exponential
    # samples approaches 1 / (ln 2)^2 = 2.08 (seeded simulation, n = 400 per sample).
    rng = np.random.default_rng(20240611)
    x = rng.exponential(1.0, size=(4000, 400))
    v_med = np.var(np.log(np.median(x, axis=1)))
    v_mle = np.var(np.log(np.mean(x, axis=1) * math.log(2)))
    assert v_med / v_mle == pytest.approx(KM_MEDIAN_VARIANCE_FACTOR, rel=0.1)


# ---- landmark survival on the cloglog scale -----------------------------------------------


@pytest.mark.parametrize(
    ("s", "n", "yi", "sei"),
    [
        # n = 34 study, sorafenib + TACE (n = 22) at 6, 12, 24 months: 95%, 77%, 45%.
        # yi = ln(-ln S); binomial SE = sqrt((1 - S) / (n S)) / |ln S|
        # 0.95: ln(0.051293) = -2.970195; sqrt(0.05 / 20.9) / 0.051293 = 0.953567
        (0.95, 22, -2.970195, 0.953567),
        # 0.77: ln(0.261365) = -1.341838; sqrt(0.23 / 16.94) / 0.261365 = 0.445821
        (0.77, 22, -1.341838, 0.445821),
        # 0.45: ln(0.798508) = -0.225011; sqrt(0.55 / 9.9) / 0.798508 = 0.295178
        (0.45, 22, -0.225011, 0.295178),
        # sorafenib alone (n = 12) at 6 months, 58%: ln(0.544727) = -0.607470;
        # sqrt(0.42 / 6.96) / 0.544727 = 0.450963
        (0.58, 12, -0.607470, 0.450963),
        # sorafenib alone at 24 months, 16%: ln(1.832581) = 0.605726;
        # sqrt(0.84 / 1.92) / 1.832581 = 0.360932
        (0.16, 12, 0.605726, 0.360932),
    ],
)
def test_n34_landmark_survival(s: float, n: int, yi: float, sei: float) -> None:
    d = cloglog_survival_from_n(s, n)
    assert float(d.yi) == pytest.approx(yi, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(sei, abs=HAND_TOL)
    assert set(d.assumptions()) == {"imputed_n_at_risk", "peto_variance"}


def test_peto_variance_delta_method() -> None:
    # Var[S] = S^2 (1 - S) / n_risk; d ln(-ln S) / dS = 1 / (S ln S) (checked numerically)
    s, n_risk = 0.62, 15
    h = 1e-6
    deriv = (math.log(-math.log(s + h)) - math.log(-math.log(s - h))) / (2 * h)
    assert deriv == pytest.approx(1 / (s * math.log(s)), rel=1e-6)
    se_s = math.sqrt(s * s * (1 - s) / n_risk)
    d = cloglog_survival_from_n_at_risk(s, n_risk)
    assert float(d.sei) == pytest.approx(abs(deriv) * se_s, rel=1e-6)
    # ... which equals sqrt((1 - S) / n_risk) / |ln S|
    assert float(d.sei) == pytest.approx(math.sqrt((1 - s) / n_risk) / abs(math.log(s)))


def test_cloglog_se_by_simulation() -> None:
    # Without censoring S-hat is binomial / n; the SD of ln(-ln S-hat) over seeded draws
    # matches the delta-method SE of cloglog_survival_from_n (n = 400, S = 0.6).
    rng = np.random.default_rng(7)
    n, s = 400, 0.6
    shat = rng.binomial(n, s, size=20000) / n
    sd = np.std(np.log(-np.log(shat)))
    assert sd == pytest.approx(float(cloglog_survival_from_n(s, n).sei), rel=0.05)


def test_n_at_risk_under_accrual_is_greenwood_under_uniform_entry() -> None:
    """The effective number at risk against a quadrature of Greenwood's integral
    ``(exp(H) - 1) / int_0^t h exp(H) / G du`` (hazard piecewise constant through the
    landmarks, G = 1 to F and (F + A - u) / A after), and its limits: n where nobody can
    be censored before t, NaN where nobody can be followed to t."""
    from scipy import integrate

    times, surv = np.array([6.0, 12.0, 24.0]), np.array([0.95, 0.77, 0.45])
    n, accrual, follow = 22.0, 82.0, 11.0
    got = n_at_risk_under_accrual(n, times, surv, accrual=accrual, min_follow_up=follow)
    knots_t, knots_h = np.r_[0.0, times], np.r_[0.0, -np.log(surv)]
    for j in range(times.size):
        pieces = []
        lo, hi = slice(0, j + 1), slice(1, j + 2)
        for a, b, h0, h1 in zip(knots_t[lo], knots_t[hi], knots_h[lo], knots_h[hi], strict=True):
            rate = (h1 - h0) / (b - a)

            def f(u: float, a: float = a, h0: float = h0, rate: float = rate) -> float:
                g = min(1.0, (follow + accrual - u) / accrual)
                return rate * math.exp(h0 + rate * (u - a)) / g

            pieces.append(integrate.quad(f, a, b, points=[follow] if a < follow < b else None)[0])
        expected = n * math.expm1(knots_h[j + 1]) / sum(pieces)
        assert got[j] == pytest.approx(expected, rel=1e-8)
    assert got[0] == pytest.approx(n, rel=1e-12)  # 6 months: nobody censored before 11
    assert got[2] < got[1] < n
    # nobody followed to 24 months: entry over 12 months, follow-up ends 6 after the last
    late = n_at_risk_under_accrual(n, times, surv, accrual=12.0, min_follow_up=6.0)
    assert late[0] == pytest.approx(n, rel=1e-12) and late[1] < n and np.isnan(late[2])


def test_n_at_risk_under_accrual_by_simulation() -> None:
    """Exponential arms of 400 (median 12 months), entry uniform over 48 months, follow-up
    to 12 months after the last entry, nobody lost: the SD of ln S_KM(24) over 3000
    seeded trials matches the binomial SD at the effective number at risk (359.3: SD
    0.0914; within 5%, the Monte Carlo SE of an SD over 3000 draws being 1.3%), and not
    the one at n = 400 (0.0866, 5 Monte Carlo SEs below it)."""
    rng = np.random.default_rng(11)
    n, median, accrual, follow, t = 400, 12.0, 48.0, 12.0, 24.0
    reps = 3000
    event = rng.exponential(median / LN2, size=(reps, n))
    censor = follow + rng.uniform(0.0, accrual, size=(reps, n))
    time = np.minimum(event, censor)
    died = event <= censor
    order = np.argsort(time, axis=1)
    time, died = np.take_along_axis(time, order, 1), np.take_along_axis(died, order, 1)
    at_risk = n - np.arange(n)
    steps = np.log1p(-1.0 / np.maximum(at_risk, 2))  # the last patient's step is never used
    log_km = np.sum(np.where(died & (time <= t), steps, 0.0), axis=1)
    s_true = 0.5 ** (np.array([6.0, 12.0, 24.0]) / median)
    n_eff = n_at_risk_under_accrual(
        n, [6.0, 12.0, 24.0], s_true, accrual=accrual, min_follow_up=follow
    )[2]
    s = s_true[2]
    sd_binomial = math.sqrt((1 - s) / (n_eff * s))
    assert np.std(log_km) == pytest.approx(sd_binomial, rel=0.05)
    assert math.sqrt((1 - s) / (n * s)) < 0.95 * np.std(log_km)


def test_park_landmark_with_ci() -> None:
    # Park et al. 2012: 6-month PFS 52% (95% CI 37.3-66.1).
    # yi = ln(-ln 0.52) = -0.424760; SE = (ln(-ln 0.373) - ln(-ln 0.661)) / 3.919928
    #    = (-0.013920 + 0.881886) / 3.919928 = 0.221424
    d = cloglog_survival_from_ci(0.52, 0.373, 0.661, level=0.95)
    assert float(d.yi) == pytest.approx(-0.424760, abs=HAND_TOL)
    assert float(d.sei) == pytest.approx(0.221424, abs=HAND_TOL)
    # close to the delta method from a symmetric CI: SE_S = 0.288 / 3.919928 = 0.073471;
    # / (0.52 x 0.653926) = 0.216064
    assert float(d.sei) == pytest.approx(0.216064, rel=0.05)


def test_cloglog_round_trip() -> None:
    s = np.array([0.05, 0.36, 0.95])
    np.testing.assert_allclose(survival_of_cloglog(cloglog_of_survival(s)), s, atol=EXACT_TOL)


# ---- counts -------------------------------------------------------------------------------


def test_n34_response_counts() -> None:
    # n = 34 study: objective response (CR + PR) 13/22 with TACE vs 0/12 without.
    # Zero cell -> 0.5 added to every cell: a = 13.5, b = 9.5, c = 0.5, d = 12.5.
    # log OR = ln(13.5 x 12.5 / (9.5 x 0.5)) = ln(35.526316) = 3.570274;
    # var = 1/13.5 + 1/9.5 + 1/0.5 + 1/12.5 = 0.074074 + 0.105263 + 2 + 0.08 = 2.259337
    d = two_arm_counts(13, 22, 0, 12, measure="log_or")
    assert float(d.yi) == pytest.approx(3.570274, abs=HAND_TOL)
    assert float(d.vi) == pytest.approx(2.259337, abs=HAND_TOL)
    assert d.assumptions() == ("continuity_correction",)
    # log RR = ln((13.5/23) / (0.5/13)) = ln(15.260870) = 2.725290;
    # var = 1/13.5 - 1/23 + 1/0.5 - 1/13 = 1.953673
    r = two_arm_counts(13, 22, 0, 12, measure="log_rr")
    assert float(r.yi) == pytest.approx(2.725290, abs=HAND_TOL)
    assert float(r.vi) == pytest.approx(1.953673, abs=HAND_TOL)
    # RD = 13.5/23 - 0.5/13 = 0.586957 - 0.038462 = 0.548495;
    # var = 0.586957 x 0.413043 / 23 + 0.038462 x 0.961538 / 13 = 0.013386
    rd = two_arm_counts(13, 22, 0, 12, measure="rd")
    assert float(rd.yi) == pytest.approx(0.548495, abs=HAND_TOL)
    assert float(rd.vi) == pytest.approx(0.013386, abs=HAND_TOL)


def test_no_correction_without_zero_cell() -> None:
    # disease control 15/22 vs 5/12: log OR = ln(15 x 7 / (7 x 5)) = ln 3 = 1.098612
    d = two_arm_counts(15, 22, 5, 12)
    assert float(d.yi) == pytest.approx(math.log(3), abs=EXACT_TOL)
    assert float(d.vi) == pytest.approx(1 / 15 + 1 / 7 + 1 / 5 + 1 / 7, abs=EXACT_TOL)
    assert d.assumptions() == ()


def test_double_zero_flagged() -> None:
    # n = 34 study, grade 3-4 fatigue 0/22 vs 0/12: corrected log OR = ln(0.5 x 12.5 /
    # (22.5 x 0.5)) = ln(12.5 / 22.5) = -0.587787, a pure artefact of the arm sizes
    d = two_arm_counts(0, 22, 0, 12)
    assert float(d.yi) == pytest.approx(-0.587787, abs=HAND_TOL)
    assert d.assumptions() == ("continuity_correction", "double_zero")
    assert two_arm_counts(22, 22, 12, 12).assumptions() == ("continuity_correction", "double_zero")
    assert "double_zero" not in two_arm_counts(0, 22, 1, 12).assumptions()


def test_logit_proportion() -> None:
    # 13/22 responders: logit = ln(13/9) = 0.367725; var = 1/13 + 1/9 = 0.188034
    d = logit_proportion(13, 22)
    assert float(d.yi) == pytest.approx(0.367725, abs=HAND_TOL)
    assert float(d.vi) == pytest.approx(0.188034, abs=HAND_TOL)
    # 0/12: ln(0.5 / 12.5) = -3.218876; var = 2 + 0.08 = 2.08
    z = logit_proportion(0, 12)
    assert float(z.yi) == pytest.approx(-3.218876, abs=HAND_TOL)
    assert float(z.vi) == pytest.approx(2.08, abs=HAND_TOL)
    assert z.assumptions() == ("continuity_correction",)
