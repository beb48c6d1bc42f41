"""The bias-adjusted models: ``pool(..., bias=...)``, ``bias_prior``, ``pool_combined`` and
the binomial contrast's ``bias``.

References, one per test: closed forms worked by hand (k = 1, fixed effect; the large-n
binomial contrast), independent one-dimensional integrals with scipy.integrate.quad (k =
1, random effects), the validated one-dimensional exact engine (the combined model's 2-D
quadrature against it), and the exact engines for the MCMC fits (agreement within 4
Monte Carlo standard errors, as in tests/test_pool_mcmc.py). The estimates are
illustrative log hazard ratios, not study data.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats

import hccmeta as hm
from hccmeta import priors
from hccmeta.errors import InputError
from hccmeta.models import mcmc
from hccmeta.models.binomial import fit_contrast

# -- tolerances, one per kind of quantity ------------------------------------------------

#: Closed forms (normal posteriors): floating point.
TOL_CLOSED_FORM = 1e-10
#: The exact engine against scipy's adaptive quadrature (both ~1e-9; quad's own error
#: estimate is below 1e-10 here).
TOL_QUAD = 1e-7
#: The 2-D engine of the combined model against the 1-D engine, or against its prior:
#: its quadrature error is about 1e-9 (hccmeta/models/bias_exact.py).
TOL_2D = 1e-7
#: MCMC against exact: Monte Carlo standard errors.
N_MCSE = 4.0

Y = np.array([-0.35, -0.10, -0.55, -0.80, -0.20, -0.60])
S = np.array([0.15, 0.20, 0.25, 0.30, 0.35, 0.30])
LABELS = ["rct1", "rct2", "rct3", "cohort1", "cohort2", "cohort3"]
RANDOMISED = [True, True, True, False, False, False]


def _mcse(draws: np.ndarray, stat: str) -> float:
    import arviz_stats as azs

    if stat == "mean":
        return float(azs.mcse(draws, method="mean"))
    prob = {"median": 0.5, "ci_lower": 0.025, "ci_upper": 0.975}[stat]
    return float(azs.mcse(draws, method="quantile", prob=prob))


def _assert_agree(mcmc_fit, exact_fit, variables) -> None:
    assert mcmc_fit.ok, mcmc_fit.diagnostics
    table, ref = mcmc_fit.summary(), exact_fit.summary()
    for var in variables:
        draws = mcmc_fit._flat_draws(var).reshape(-1, mcmc_fit.posterior_draws()["mu"].shape[1])
        for stat in ("mean", "median", "ci_lower", "ci_upper"):
            err = abs(table.loc[var, stat] - ref.loc[var, stat])
            tol = N_MCSE * _mcse(draws, stat)
            assert err <= tol, (
                f"{var} {stat}: mcmc {table.loc[var, stat]:.5f}, exact "
                f"{ref.loc[var, stat]:.5f}, |diff| {err:.5f} > {N_MCSE} MCSE = {tol:.5f}"
            )


# ======================================================================================
# bias_prior: the documented defaults


@pytest.mark.parametrize(
    ("judgement", "magnitude"),
    [
        ("some_concerns", 0.10),
        ("high", 0.15),
        ("moderate", 0.20),
        ("serious", 0.30),
        ("critical", 0.50),
        ("no_information", 0.30),
        ("not_assessed", 0.30),
    ],
)
def test_bias_prior_defaults_and_direction(judgement: str, magnitude: float) -> None:
    """The table of validation/bias/README.md: Normal(sign * m, m) with a predicted
    direction, Normal(0, m * sqrt(2)) without."""
    up, down, unknown = (priors.bias_prior(judgement, sign) for sign in (1, -1, 0))
    assert (up.mean, up.sd) == (magnitude, magnitude)
    assert (down.mean, down.sd) == (-magnitude, magnitude)
    assert unknown.mean == 0.0
    assert unknown.sd == pytest.approx(magnitude * math.sqrt(2.0), rel=1e-15)


def test_bias_prior_unpredictable_direction_matches_the_mixture_moments() -> None:
    """sign = 0: the normal with the mean and variance of the equal mixture of N(+m, s^2)
    and N(-m, s^2) (variance s^2 + m^2), checked by integrating the mixture."""
    m, s = 0.2, 0.2
    mix = lambda x: 0.5 * stats.norm.pdf(x, m, s) + 0.5 * stats.norm.pdf(x, -m, s)  # noqa: E731
    mean = integrate.quad(lambda x: x * mix(x), -5, 5)[0]
    var = integrate.quad(lambda x: x * x * mix(x), -5, 5)[0] - mean**2
    got = priors.bias_prior("moderate", 0)
    assert got.mean == pytest.approx(mean, abs=1e-12)
    assert got.sd == pytest.approx(math.sqrt(var), rel=1e-10)


def test_bias_prior_low_is_no_bias_and_spellings() -> None:
    assert priors.bias_prior("low", 1) is None
    assert priors.bias_prior("low", 0) is None
    assert priors.bias_prior("Some concerns", 1) == priors.bias_prior("some_concerns", 1)
    assert priors.bias_prior("No-information", -1) == priors.bias_prior("no_information", -1)


def test_bias_prior_variants() -> None:
    assert priors.bias_prior("serious", -1, variant="none") is None
    assert priors.bias_prior("serious", -1, variant="mean_0") == priors.bias_prior("serious", 0)
    assert priors.bias_prior("serious", -1, variant="doubled_sd") == priors.Normal(-0.3, 0.6)
    assert priors.bias_prior("serious", -1, variant="halved") == priors.Normal(-0.15, 0.15)
    assert priors.bias_prior("serious", 1, variant="doubled") == priors.Normal(0.6, 0.6)
    assert set(priors.BIAS_VARIANTS) == {
        "none",
        "default",
        "mean_0",
        "doubled_sd",
        "halved",
        "doubled",
    }


def test_bias_prior_anchors_as_documented() -> None:
    """The arithmetic behind the table: Savovic et al. 2012 RORs 0.89, 0.93 (some
    concerns) and 0.87 (high); Hemkens et al. 2016 ROR 1.31 (moderate); Deeks et al. 2003
    Table 18, ratios of average ORs of historically controlled vs randomised studies in
    the 8 ECST regions (serious)."""
    assert abs(math.log(0.89)) == pytest.approx(0.12, abs=0.005)
    assert abs(math.log(0.93)) == pytest.approx(0.07, abs=0.005)
    assert abs(math.log(0.87)) == pytest.approx(0.14, abs=0.005)
    assert math.log(1.31) == pytest.approx(0.27, abs=0.005)
    ratios = np.log([2.12, 1.01, 0.90, 0.81, 0.76, 0.73, 0.69, 0.52])
    assert ratios.mean() == pytest.approx(-0.15, abs=0.005)
    assert ratios.std(ddof=1) == pytest.approx(0.41, abs=0.005)
    assert math.sqrt(ratios.mean() ** 2 + ratios.var(ddof=1)) == pytest.approx(0.44, abs=0.005)
    assert priors.BIAS_DEFAULTS["serious"].rms == pytest.approx(0.42, abs=0.005)
    assert priors.BIAS_DEFAULTS["moderate"].rms == pytest.approx(0.28, abs=0.005)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("unclear", 1), {}, "unknown risk-of-bias judgement"),
        (("serious", 2), {}, r"sign must be -1, 0 or \+1"),
        (("serious", True), {}, r"sign must be -1, 0 or \+1"),
        (("serious", 1), {"variant": "tripled"}, "unknown bias variant"),
        ((None, 1), {}, "judgement must be a string"),
    ],
)
def test_bias_prior_errors(args, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        priors.bias_prior(*args, **kwargs)


# ======================================================================================
# pool(..., bias=...): the exact engine


def test_no_bias_terms_equal_the_unadjusted_model_exactly() -> None:
    """Every entry None (mu_b = 0, sigma_b = 0) goes through the adjusted code path and
    gives the unadjusted numbers to the last bit; so does sd 1e-12 (its square vanishes
    next to s^2) apart from the extra bias rows."""
    plain = hm.pool(Y, S, study=LABELS)
    none = hm.pool(Y, S, study=LABELS, bias=[None] * 6)
    np.testing.assert_array_equal(none.summary().to_numpy(), plain.summary().to_numpy())
    assert none.prob_below(-0.2) == plain.prob_below(-0.2)
    tiny = hm.pool(Y, S, study=LABELS, bias=[priors.Normal(0.0, 1e-12)] * 6)
    np.testing.assert_allclose(
        tiny.summary().loc[plain.variables].to_numpy(),
        plain.summary().to_numpy(),
        rtol=0,
        atol=TOL_CLOSED_FORM,
    )


def test_k1_fixed_effect_closed_form() -> None:
    """y ~ N(mu + b, s^2), b ~ N(m, v^2), mu ~ N(m0, s0^2): mu | y is normal with precision
    1/s0^2 + 1/(s^2 + v^2) and mean (m0/s0^2 + (y - m)/(s^2 + v^2)) / precision; b | y has
    precision 1/v^2 + 1/(s^2 + s0^2) and mean (m/v^2 + (y - m0)/(s^2 + s0^2)) /
    precision."""
    y, s, m, v, m0, s0 = -0.9, 0.3, -0.3, 0.3, 0.0, 1.0
    res = hm.pool(
        [y], [s], model="fixed", prior_mu=priors.Normal(m0, s0), bias=[priors.Normal(m, v)]
    )
    prec = 1 / s0**2 + 1 / (s**2 + v**2)
    mean = (m0 / s0**2 + (y - m) / (s**2 + v**2)) / prec
    sd = prec**-0.5
    table = res.summary()
    z = stats.norm.ppf([0.5, 0.025, 0.975])
    expected = [mean, mean + sd * z[0], sd, mean + sd * z[1], mean + sd * z[2]]
    np.testing.assert_allclose(table.loc["mu"].to_numpy(), expected, atol=TOL_CLOSED_FORM)
    assert res.prob_below(0.0) == pytest.approx(stats.norm.cdf(-mean / sd), abs=TOL_CLOSED_FORM)
    b_prec = 1 / v**2 + 1 / (s**2 + s0**2)
    b_mean = (m / v**2 + (y - m0) / (s**2 + s0**2)) / b_prec
    assert table.loc["bias[1]", "mean"] == pytest.approx(b_mean, abs=TOL_CLOSED_FORM)
    assert table.loc["bias[1]", "sd"] == pytest.approx(b_prec**-0.5, abs=TOL_CLOSED_FORM)
    # without the bias term mu moves to the unadjusted posterior: shifted by m, tighter
    plain = hm.pool([y], [s], model="fixed", prior_mu=priors.Normal(m0, s0)).summary()
    assert plain.loc["mu", "sd"] < sd
    assert plain.loc["mu", "mean"] < mean


def test_k1_random_effects_against_quad() -> None:
    """k = 1, mu ~ N(0, 1), tau ~ HalfNormal(0.5), b ~ N(m, v^2). Given tau, y - m ~
    N(mu, S) with S = s^2 + v^2 + tau^2, so mu | tau, y ~ N((y - m)/(1 + S), S/(1 + S))
    and p(tau | y) is proportional to HalfNormal(tau) N(y - m; 0, 1 + S); b | tau, y ~
    N(m + v^2 (y - m)/(1 + tau^2 + s^2 + v^2), ...). Integrated over tau with
    scipy.integrate.quad."""
    y, s, m, v = -0.9, 0.3, -0.3, 0.3
    tau_prior = priors.HalfNormal(0.5)
    res = hm.pool([y], [s], bias=[priors.Normal(m, v)], prior_tau=tau_prior)

    def weight(t: float) -> float:
        total = 1 + s**2 + v**2 + t**2
        return float(
            stats.halfnorm.pdf(t, scale=0.5) * stats.norm.pdf(y - m, 0.0, math.sqrt(total))
        )

    z = integrate.quad(weight, 0, np.inf, epsabs=1e-14)[0]

    def expect(f) -> float:
        return integrate.quad(lambda t: weight(t) * f(t), 0, np.inf, epsabs=1e-14)[0] / z

    def mu_moments(t: float) -> tuple[float, float]:
        big_s = s**2 + v**2 + t**2
        return (y - m) / (1 + big_s), big_s / (1 + big_s)

    mean_mu = expect(lambda t: mu_moments(t)[0])
    cdf_mu = expect(lambda t: special.ndtr((-0.3 - mu_moments(t)[0]) / math.sqrt(mu_moments(t)[1])))
    mean_b = expect(lambda t: m + v**2 * (y - m) / (1 + t**2 + s**2 + v**2))
    mean_tau = expect(lambda t: t)
    table = res.summary()
    assert table.loc["mu", "mean"] == pytest.approx(mean_mu, abs=TOL_QUAD)
    assert res.prob_below(-0.3) == pytest.approx(cdf_mu, abs=TOL_QUAD)
    assert table.loc["bias[1]", "mean"] == pytest.approx(mean_b, abs=TOL_QUAD)
    assert table.loc["tau", "mean"] == pytest.approx(mean_tau, abs=TOL_QUAD)


def test_bias_result_records_the_distributions() -> None:
    bias = [None, None, None, priors.bias_prior("serious", -1), None, priors.Normal(0, 0.2)]
    res = hm.pool(Y, S, study=LABELS, measure="hr", bias=bias)
    assert res.bias == tuple(bias)
    assert res.variables[-2:] == ["bias[cohort1]", "bias[cohort3]"]
    expected = {
        "rct1": "none",
        "rct2": "none",
        "rct3": "none",
        "cohort1": "Normal(mean=-0.3, sd=0.3)",
        "cohort2": "none",
        "cohort3": "Normal(mean=0.0, sd=0.2)",
    }
    tree = res.datatree
    assert json.loads(tree.attrs["bias"]) == expected
    assert res.to_dict()["bias"] == expected
    assert "bias-adjusted (2 of 6 studies" in repr(res)
    post = tree["posterior"]
    # draws of the bias are exactly 0 for the studies without a bias term
    assert float(abs(post["bias"].sel(study="rct1")).max()) == 0.0
    assert float(post["bias"].sel(study="cohort1").mean()) == pytest.approx(
        res.summary().loc["bias[cohort1]", "mean"], abs=0.02
    )
    # the pointwise log-likelihood integrates the bias out given theta
    draws = res.posterior_draws()
    ll = stats.norm.logpdf(Y[3], draws["theta"][..., 3] - 0.3, math.sqrt(S[3] ** 2 + 0.09))
    np.testing.assert_allclose(tree["log_likelihood"]["y"].sel(study="cohort1"), ll)
    # the ratio-scale summary keeps the bias rows (ratios of hazard ratios)
    assert "bias[cohort1]" in res.summary(scale="ratio").index


@pytest.mark.parametrize(
    ("bias", "message"),
    [
        ([None] * 5, "bias has 5 entries for 6 studies"),
        ([priors.HalfNormal(0.3)] + [None] * 5, r"bias\[0\].*must be a Normal"),
        (priors.Normal(0, 1), "must be a sequence"),
        (["normal:0:0"] + [None] * 5, r"bias\[0\]"),
    ],
)
def test_bias_argument_errors(bias, message) -> None:
    with pytest.raises(InputError, match=message):
        hm.pool(Y, S, bias=bias)


def test_bias_accepts_spec_strings() -> None:
    a = hm.pool(Y, S, bias=["normal:-0.3:0.3"] + [None] * 5)
    b = hm.pool(Y, S, bias=[priors.Normal(-0.3, 0.3)] + [None] * 5)
    np.testing.assert_array_equal(a.summary().to_numpy(), b.summary().to_numpy())


# ======================================================================================
# pool_combined: the exact engine


def test_combined_without_non_randomised_studies_is_the_plain_model() -> None:
    """No non-randomised study: mu, tau, theta equal hccmeta.pool's 1-D engine, and the
    posteriors of mu_b and sigma_b are their priors."""
    res = hm.pool_combined(Y[:3], S[:3], randomised=[True] * 3, method="exact")
    plain = hm.pool(Y[:3], S[:3]).summary()
    table = res.summary()
    np.testing.assert_allclose(
        table.loc[plain.index].to_numpy(), plain.to_numpy(), rtol=0, atol=TOL_2D
    )
    mb, sb = priors.DEFAULT_BIAS_MEAN, priors.DEFAULT_BIAS_SD
    z = stats.norm.ppf([0.5, 0.025, 0.975])
    np.testing.assert_allclose(
        table.loc["mu_b"].to_numpy(),
        [mb.mean, mb.mean + mb.sd * z[0], mb.sd, mb.mean + mb.sd * z[1], mb.mean + mb.sd * z[2]],
        atol=TOL_2D,
    )
    hn = stats.halfnorm(scale=sb.scale)
    np.testing.assert_allclose(
        table.loc["sigma_b"].to_numpy(),
        [hn.mean(), hn.median(), hn.std(), hn.ppf(0.025), hn.ppf(0.975)],
        atol=TOL_2D,
    )


def test_combined_with_known_bias_equals_the_additive_model() -> None:
    """With the mean and SD of the bias pinned by their priors (mu_b ~ N(-0.3, 1e-6^2),
    sigma_b ~ Uniform(0.2, 0.2 + 1e-6)), the combined model is the additive-bias model
    with b_i ~ N(-0.3, 0.2^2) for the non-randomised studies, computed by the 1-D
    engine on shifted data."""
    combined = hm.pool_combined(
        Y,
        S,
        randomised=RANDOMISED,
        study=LABELS,
        prior_bias_mean=priors.Normal(-0.3, 1e-6),
        prior_bias_sd=priors.Uniform(0.2, 0.2 + 1e-6),
        method="exact",
    ).summary()
    bias = [None if r else priors.Normal(-0.3, 0.2) for r in RANDOMISED]
    additive = hm.pool(Y, S, study=LABELS, bias=bias).summary()
    # pinned, not fixed: the remaining prior spread (1e-6) moves numbers by about 1e-6
    np.testing.assert_allclose(
        combined.loc[additive.index].to_numpy(), additive.to_numpy(), rtol=0, atol=2e-5
    )


def test_combined_learns_the_bias_from_the_randomised_studies() -> None:
    """Three precise randomised studies near -0.2 and three cohorts near -0.8: the mean
    bias is learnt to be negative, mu stays with the randomised studies, and the naive
    pooled estimate is pulled towards the cohorts."""
    y = np.array([-0.2, -0.25, -0.15, -0.8, -0.75, -0.85])
    s = np.array([0.08, 0.08, 0.08, 0.1, 0.1, 0.1])
    res = hm.pool_combined(y, s, randomised=RANDOMISED, method="exact")
    table = res.summary()
    assert table.loc["mu_b", "ci_upper"] < -0.2
    assert table.loc["mu_b", "mean"] == pytest.approx(-0.6, abs=0.1)
    assert table.loc["mu", "mean"] == pytest.approx(-0.2, abs=0.05)
    naive = hm.pool(y, s).summary()
    assert naive.loc["mu", "mean"] < -0.4


def test_combined_exact_draws_follow_the_exact_posterior() -> None:
    """The DataTree's draws of the exact engine (independent: the Monte Carlo SE of a
    mean is sd / sqrt(n)) against its exact means and CDFs."""
    res = hm.pool_combined(Y, S, randomised=RANDOMISED, study=LABELS, method="exact")
    table = res.summary()
    n = 4000
    for var in ("mu", "tau", "mu_b", "sigma_b", "theta[cohort1]", "bias[cohort1]"):
        x = res._flat_draws(var)
        assert x.size == n
        tol = N_MCSE * table.loc[var, "sd"] / math.sqrt(n)
        assert float(x.mean()) == pytest.approx(table.loc[var, "mean"], abs=tol), var
        # the fraction of draws below the exact median: binomial SE 0.5 / sqrt(n)
        below = float(np.mean(x < table.loc[var, "median"]))
        assert below == pytest.approx(0.5, abs=N_MCSE * 0.5 / math.sqrt(n)), var


def test_combined_inputs_are_checked() -> None:
    with pytest.raises(InputError, match="randomised has 5 entries for 6 studies"):
        hm.pool_combined(Y, S, randomised=RANDOMISED[:5])
    with pytest.raises(InputError, match=r"randomised\[0\] = 'yes' is not True or False"):
        hm.pool_combined(Y, S, randomised=["yes", *RANDOMISED[1:]])
    with pytest.raises(InputError, match="the exact engine of pool_combined needs a Normal"):
        hm.pool_combined(
            Y, S, randomised=RANDOMISED, prior_bias_mean=priors.Uniform(-1, 1), method="exact"
        )
    with pytest.raises(InputError, match="prior_bias_sd"):
        hm.pool_combined(Y, S, randomised=RANDOMISED, prior_bias_sd=priors.Normal(0, 1))


def test_combined_result_records_its_design() -> None:
    res = hm.pool_combined(Y, S, randomised=RANDOMISED, study=LABELS, measure="hr", method="exact")
    assert res.non_randomised == ("cohort1", "cohort2", "cohort3")
    assert res.variables[-5:] == [
        "mu_b",
        "sigma_b",
        "bias[cohort1]",
        "bias[cohort2]",
        "bias[cohort3]",
    ]
    attrs = res.datatree.attrs
    assert attrs["prior_mu_b"] == "Normal(mean=0.0, sd=0.5)"
    assert attrs["prior_sigma_b"] == "HalfNormal(scale=0.3)"
    assert '"cohort1": false' in attrs["randomised"]
    flipped = hm.pool_combined(Y, S, randomised=[True] * 6, study=LABELS, method="exact")
    assert flipped.data_hash != res.data_hash
    assert res.frequentist().k == 3
    assert "sigma_b" not in res.summary(scale="ratio").index


# ======================================================================================
# MCMC


@pytest.mark.sampling
def test_bias_mcmc_agrees_with_exact() -> None:
    bias = [None, None, None, priors.bias_prior("serious", -1), None, priors.Normal(0.1, 0.2)]
    exact = hm.pool(Y, S, study=LABELS, bias=bias)
    fit = hm.pool(Y, S, study=LABELS, bias=bias, method="mcmc", seed=3)
    _assert_agree(fit, exact, ["mu", "tau", "theta[cohort1]", "bias[cohort1]", "bias[cohort3]"])
    assert float(np.abs(fit.posterior_draws()["bias"][..., 0]).max()) == 0.0


@pytest.mark.sampling
def test_bias_mcmc_with_sd_zero_is_the_unadjusted_model() -> None:
    """v_i = 0 everywhere: the bias structure samples the unadjusted posterior."""
    fit = hm.pool(Y, S, bias=[None] * 6, method="mcmc", seed=4)
    _assert_agree(fit, hm.pool(Y, S), ["mu", "tau"])


@pytest.mark.sampling
def test_combined_mcmc_agrees_with_exact() -> None:
    exact = hm.pool_combined(Y, S, randomised=RANDOMISED, study=LABELS, method="exact")
    fit = hm.pool_combined(Y, S, randomised=RANDOMISED, study=LABELS, seed=5)
    _assert_agree(fit, exact, ["mu", "tau", "mu_b", "sigma_b", "theta[cohort2]", "bias[cohort2]"])


@pytest.mark.sampling
def test_combined_mcmc_without_non_randomised_is_the_plain_model() -> None:
    fit = hm.pool_combined(Y, S, randomised=[True] * 6, seed=6)
    _assert_agree(fit, hm.pool(Y, S), ["mu", "tau", "theta_new"])
    assert float(np.abs(fit.posterior_draws()["bias"]).max()) == 0.0


@pytest.mark.sampling
def test_combined_refits_without_recompiling() -> None:
    """Designs, data and hyperparameters are pm.Data: one compiled model per k and prior
    families."""
    hm.pool_combined(Y, S, randomised=RANDOMISED, seed=1)
    before = mcmc.compile_count()
    hm.pool_combined(
        Y + 0.1,
        S,
        randomised=[True, False, True, False, True, False],
        prior_bias_mean=priors.Normal(0.2, 0.3),
        prior_bias_sd=priors.HalfNormal(0.1),
        seed=2,
    )
    assert mcmc.compile_count() == before


# -- the binomial contrast --------------------------------------------------------------

BIG_N = 100_000
BIG_EVENTS = {"A": (30_000, 25_000), "B": (20_000, 24_000)}


def _big_trials() -> pd.DataFrame:
    rows = []
    for study, (treated, control) in BIG_EVENTS.items():
        rows.append({"study": study, "arm": "T", "events": treated, "n": BIG_N})
        rows.append({"study": study, "arm": "C", "events": control, "n": BIG_N})
    return pd.DataFrame(rows)


BINOMIAL_SETTINGS = mcmc.SamplerSettings(draws=2000, tune=1000, chains=4, target_accept=0.9)


@pytest.mark.sampling
def test_binomial_bias_shift_worked_by_hand() -> None:
    """Two trials of 100,000 patients per arm: each log OR is known to about 0.01, so with
    tau pinned near 0 (HalfNormal(0.001)) d | y is close to normal with precision
    sum_i 1/(V_i + v_i^2) + 1 (the Normal(0, 1) prior) and mean sum_i (y_i - m_i)/(V_i +
    v_i^2) / precision, where y_i, V_i are the log OR and its delta-method variance."""
    bias = {"A": priors.Normal(0.2, 0.05), "B": priors.Normal(-0.1, 0.1)}
    res = fit_contrast(
        _big_trials(),
        reference="C",
        baseline="fixed",
        prior_tau=priors.HalfNormal(0.001),
        bias=bias,
        seed=1,
        settings=BINOMIAL_SETTINGS,
    )
    assert res.ok, res.diagnostics
    y, var = [], []
    for treated, control in BIG_EVENTS.values():
        y.append(math.log(treated / (BIG_N - treated)) - math.log(control / (BIG_N - control)))
        var.append(1 / treated + 1 / (BIG_N - treated) + 1 / control + 1 / (BIG_N - control))
    m, v = np.array([0.2, -0.1]), np.array([0.05, 0.1])
    w = 1 / (np.array(var) + v**2)
    prec = w.sum() + 1.0
    mean = float((w * (np.array(y) - m)).sum() / prec)
    d = res.posterior["d"].to_numpy()
    assert float(d.mean()) == pytest.approx(mean, abs=N_MCSE * _mcse(d, "mean"))
    assert float(d.std()) == pytest.approx(prec**-0.5, rel=0.1)
    assert res.tree.attrs["bias"] == (
        '{"A": "Normal(mean=0.2, sd=0.05)", "B": "Normal(mean=-0.1, sd=0.1)"}'
    )
    assert "bias" in res.posterior


@pytest.mark.sampling
def test_binomial_bias_none_is_the_unadjusted_model() -> None:
    df = _big_trials()
    kwargs = {
        "reference": "C",
        "baseline": "fixed",
        "prior_tau": priors.HalfNormal(0.001),
        "settings": BINOMIAL_SETTINGS,
    }
    plain = fit_contrast(df, seed=2, **kwargs)
    zero = fit_contrast(df, seed=3, bias=[None, None], **kwargs)
    a, b = plain.posterior["d"].to_numpy(), zero.posterior["d"].to_numpy()
    tol = N_MCSE * math.hypot(_mcse(a, "mean"), _mcse(b, "mean"))
    assert float(a.mean()) == pytest.approx(float(b.mean()), abs=tol)


def test_binomial_bias_argument_errors() -> None:
    df = pd.DataFrame(
        {
            "study": ["a", "a", "b"],
            "arm": ["C", "T", "C"],
            "events": [3, 5, 4],
            "n": [20, 20, 20],
        }
    )
    with pytest.raises(InputError, match="has no contrast"):
        fit_contrast(df, reference="C", bias={"b": priors.Normal(0, 0.1)})
    with pytest.raises(InputError, match="unknown study 'c'"):
        fit_contrast(df, reference="C", bias={"c": priors.Normal(0, 0.1)})
    with pytest.raises(InputError, match="bias has 1 entries for 2 studies"):
        fit_contrast(df, reference="C", bias=[None])


def test_import_stays_light() -> None:
    """The new modules keep ``import hccmeta`` free of PyMC, pytensor, nutpie and xarray
    (CONTRIBUTING: heavy imports live inside the functions that need them)."""
    import subprocess
    import sys

    code = (
        "import sys, hccmeta; "
        "print(sorted(m for m in ('pymc', 'pytensor', 'nutpie', 'xarray') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
