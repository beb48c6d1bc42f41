"""Prior objects: repr, validation, scipy methods, presets (with the Turner 2015 Jacobian),
the command-line SPEC parser, and which priors fit mu and tau."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from hccmeta import priors
from hccmeta.errors import InputError

#: Numerical agreement of two evaluations of the same density / CDF (floating point).
TOL_DENSITY = 1e-10
#: PyMC and scipy evaluate equivalent but different expressions (HalfCauchy differs by
#: ~2e-8 relative).
TOL_PYMC = 1e-6
#: Integrals by scipy.integrate.quad.
TOL_QUAD = 1e-7

ALL = [
    priors.Normal(0.3, 1.5),
    priors.Uniform(0.0, 2.0),
    priors.HalfNormal(0.5),
    priors.HalfCauchy(0.5),
    priors.HalfStudentT(3.0, 0.5),
    priors.LogNormal(-1.0, 0.8),
    priors.InverseGamma(2.42, 0.30),
]


def test_repr_is_the_constructor_call() -> None:
    assert repr(priors.HalfNormal(0.5)) == "HalfNormal(scale=0.5)"
    assert repr(priors.Normal(0, 1)) == "Normal(mean=0.0, sd=1.0)"
    assert str(priors.HalfStudentT(3, 0.5)) == "HalfStudentT(nu=3.0, scale=0.5)"
    assert repr(priors.InverseGamma(2.42, 0.30)) == "InverseGamma(alpha=2.42, beta=0.3)"
    assert repr(priors.Uniform(-1, 1)) == "Uniform(low=-1.0, high=1.0)"
    assert repr(priors.LogNormal(-1.975, 0.67)) == "LogNormal(mu=-1.975, sigma=0.67)"
    assert repr(priors.HalfCauchy(0.5)) == "HalfCauchy(scale=0.5)"


def test_frozen_hashable_equal() -> None:
    a, b = priors.HalfNormal(0.5), priors.HalfNormal(0.5)
    assert a == b and hash(a) == hash(b)
    assert a != priors.HalfNormal(0.25)
    with pytest.raises(AttributeError):
        a.scale = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: priors.HalfNormal(-1), "HalfNormal: scale must be > 0, got -1"),
        (lambda: priors.HalfNormal(0), "HalfNormal: scale must be > 0, got 0"),
        (lambda: priors.Normal(0, float("nan")), "Normal: sd must be a finite number"),
        (lambda: priors.HalfCauchy("x"), "HalfCauchy: scale must be a number, got 'x'"),
        (lambda: priors.Uniform(1, 1), "Uniform: low must be < high"),
        (lambda: priors.InverseGamma(0, 1), "InverseGamma: alpha must be > 0"),
        (lambda: priors.HalfStudentT(-3, 1), "HalfStudentT: nu must be > 0"),
        (lambda: priors.LogNormal(0, float("inf")), "LogNormal: sigma must be a finite number"),
    ],
)
def test_invalid_hyperparameters(make, message) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        make()


@pytest.mark.parametrize("prior", ALL, ids=repr)
def test_density_integrates_to_one_and_matches_cdf(prior) -> None:
    lo = prior.lower
    hi = prior.upper if math.isfinite(prior.upper) else np.inf
    total, _ = integrate.quad(lambda x: math.exp(prior.logpdf(x)), lo, hi, limit=200)
    assert total == pytest.approx(1.0, abs=TOL_QUAD)
    x = float(prior.ppf(0.3))
    part, _ = integrate.quad(lambda t: math.exp(prior.logpdf(t)), lo, x, limit=200)
    assert part == pytest.approx(0.3, abs=TOL_QUAD)
    assert float(prior.cdf(x)) == pytest.approx(0.3, abs=TOL_DENSITY)


def test_halfstudentt_is_folded_t() -> None:
    # |T| * scale with T ~ t(nu): density 2 * t.pdf(x / s) / s on x > 0
    p = priors.HalfStudentT(4.0, 0.7)
    x = np.array([0.01, 0.3, 2.0])
    ref = np.log(2 * stats.t.pdf(x / 0.7, 4.0) / 0.7)
    np.testing.assert_allclose(p.logpdf(x), ref, rtol=TOL_DENSITY)
    assert np.all(np.isneginf(p.logpdf(np.array([-0.1]))))


def test_turner2015_is_lognormal_on_tau_with_the_jacobian() -> None:
    """Turner et al. (2015), all-cause mortality, pharmacological vs control:
    log(tau^2) ~ N(-3.95, 1.34^2). The density of tau is that of u = log(tau^2) = 2 log(tau)
    times |du/dtau| = 2 / tau."""
    p = priors.turner2015_all_cause_mortality
    assert p == priors.LogNormal(-1.975, 0.67)
    tau = np.array([0.01, 0.05, 0.14, 0.5, 1.5])
    ref = stats.norm.logpdf(2 * np.log(tau), -3.95, 1.34) + np.log(2 / tau)
    np.testing.assert_allclose(p.logpdf(tau), ref, rtol=TOL_DENSITY)
    # median tau = exp(-3.95 / 2); P(tau^2 < exp(-3.95)) = 1/2
    assert float(p.ppf(0.5)) == pytest.approx(math.exp(-3.95 / 2), rel=TOL_DENSITY)
    # Monte Carlo check of the transformation: tau^2 draws have log-mean -3.95, log-sd 1.34
    draws = p.rvs(np.random.default_rng(1), 200_000)
    log_tau2 = np.log(draws**2)
    assert log_tau2.mean() == pytest.approx(-3.95, abs=0.02)
    assert log_tau2.std() == pytest.approx(1.34, abs=0.01)


def test_bartos2023_and_defaults() -> None:
    assert priors.bartos2023_log_hr == priors.InverseGamma(2.42, 0.30)
    assert priors.Normal(0.0, 1.0) == priors.DEFAULT_MU
    assert priors.HalfNormal(0.5) == priors.DEFAULT_TAU
    # SPEC section 4: mu ~ N(0, 1) puts 95% of HRs in 0.14-7.1
    lo, hi = np.exp(priors.DEFAULT_MU.ppf([0.025, 0.975]))
    assert (round(float(lo), 2), round(float(hi), 1)) == (0.14, 7.1)


def test_presets_by_name() -> None:
    assert priors.get("halfnormal_0.25") == priors.HalfNormal(0.25)
    assert priors.get("halfcauchy_0.5") == priors.HalfCauchy(0.5)
    assert priors.get("turner2015_all_cause_mortality") is priors.turner2015_all_cause_mortality
    with pytest.raises(InputError, match="unknown prior 'halfnormal_2'; known presets: "):
        priors.get("halfnormal_2")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("normal:0:1", priors.Normal(0, 1)),
        ("normal:-0.5:2.5", priors.Normal(-0.5, 2.5)),
        ("halfnormal:0.5", priors.HalfNormal(0.5)),
        ("halfcauchy:0.25", priors.HalfCauchy(0.25)),
        ("halft:3:0.5", priors.HalfStudentT(3, 0.5)),
        ("lognormal:-1.975:0.67", priors.LogNormal(-1.975, 0.67)),
        ("invgamma:2.42:0.30", priors.InverseGamma(2.42, 0.30)),
        ("uniform:0:2", priors.Uniform(0, 2)),
        (" HalfNormal:1e-1 ", priors.HalfNormal(0.1)),
        ("bartos2023_log_hr", priors.bartos2023_log_hr),
    ],
)
def test_parse_spec_strings(spec, expected) -> None:
    assert priors.parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gamma:1:2", "--prior-tau: unknown prior family 'gamma' in 'gamma:1:2'; expected one of"),
        ("", "--prior-tau: empty prior SPEC"),
        ("halfnormal", "--prior-tau: 'halfnormal' has 0 parameter(s); expected halfnormal:SCALE"),
        ("normal:0", "--prior-tau: 'normal:0' has 1 parameter(s); expected normal:MEAN:SD"),
        ("halft:3:0.5:1", "has 3 parameter(s); expected halft:NU:SCALE"),
        ("halfnormal:abc", "--prior-tau: SCALE in 'halfnormal:abc' is not a number: 'abc'"),
        ("invgamma:2:inf", "--prior-tau: BETA in 'invgamma:2:inf' must be finite"),
        ("halfnormal:-0.5", "--prior-tau: 'halfnormal:-0.5': HalfNormal: scale must be > 0"),
        ("uniform:1:0", "Uniform: low must be < high"),
    ],
)
def test_parse_errors_name_the_option(spec, message) -> None:
    with pytest.raises(InputError) as err:
        priors.parse(spec, argument="--prior-tau")
    assert message in str(err.value)


def test_mu_and_tau_priors_are_checked() -> None:
    assert priors.check_mu_prior(priors.Uniform(-3, 3)) == priors.Uniform(-3, 3)
    assert priors.check_tau_prior("halfnormal:0.5") == priors.HalfNormal(0.5)
    with pytest.raises(
        InputError, match=r"prior_mu: HalfNormal\(scale=0.5\) is not a prior for mu"
    ):
        priors.check_mu_prior(priors.HalfNormal(0.5))
    with pytest.raises(InputError, match=r"prior_tau: Normal\(mean=0.0, sd=1.0\) puts mass on neg"):
        priors.check_tau_prior(priors.Normal(0, 1))
    with pytest.raises(InputError, match="prior_tau: Uniform"):
        priors.check_tau_prior(priors.Uniform(-1, 1))
    with pytest.raises(InputError, match="prior_tau must be a prior object"):
        priors.check_tau_prior(0.5)


def test_pymc_data_names() -> None:
    assert priors.HalfStudentT(3, 0.5).data("tau") == {"tau_nu": 3.0, "tau_scale": 0.5}
    assert priors.Normal(0, 4).data("mu") == {"mu_mean": 0.0, "mu_sd": 4.0}


@pytest.mark.parametrize("prior", ALL, ids=repr)
def test_pymc_distribution_matches_scipy(prior) -> None:
    """The PyMC variable built by to_pymc has the density of logpdf (same family, same
    hyperparameters), and its hyperparameters are pm.Data containers."""
    pm = pytest.importorskip("pymc")
    with pm.Model() as model:
        rv = prior.to_pymc("x")
    assert set(prior.data("x")) <= set(model.named_vars)
    x = float(prior.ppf(0.37))
    logp = pm.logp(rv, x).eval()
    assert float(logp) == pytest.approx(float(prior.logpdf(x)), rel=TOL_PYMC)


@pytest.mark.parametrize(
    "prior",
    [
        priors.Normal(0.3, 2.0),
        priors.Uniform(-1.0, 3.0),
        priors.HalfNormal(0.5),
        priors.HalfCauchy(0.7),
        priors.HalfStudentT(3.0, 0.5),
        priors.LogNormal(math.log(0.5), 0.5),
        priors.InverseGamma(0.5, 0.01),
    ],
    ids=lambda p: p.family,
)
def test_range_check_closed_forms_bound_the_central_interval(prior: priors.Prior) -> None:
    """The range check's closed forms (no scipy.stats import at start-up) hold the
    central 99.9% interval that scipy's quantile function gives: equal where the family
    has an exact form, wider (the support) for Uniform and at 0 for the positive ones."""
    bounds = prior._range_bounds()
    assert bounds is not None
    lo, hi = bounds
    q_lo, q_hi = prior.ppf(np.array([5e-4, 1 - 5e-4]))
    assert lo <= q_lo + 1e-12 and q_hi <= hi * (1 + 1e-9) + 1e-12
    if prior.family != "Uniform":
        assert hi == pytest.approx(q_hi, rel=1e-9)
    if prior.family == "Normal":
        assert lo == pytest.approx(q_lo, rel=1e-9)


def test_range_check_near_the_bound_still_refuses() -> None:
    """A prior whose closed-form bound is beyond the accepted magnitude goes to scipy's
    check, which refuses it (the fast path only ever accepts)."""
    with pytest.raises(InputError, match="numerically degenerate"):
        priors.LogNormal(27.0, 0.5)  # 99.95% quantile exp(27 + 1.645) > 1e12
    with pytest.raises(InputError, match="numerically degenerate"):
        priors.Normal(0.0, 4e11)  # 3.29 sd > 1e12
