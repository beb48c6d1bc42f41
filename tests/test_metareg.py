"""Meta-regression (MCMC) against an exact reference: given tau, (mu, beta) have a
normal posterior under normal priors, so the marginal posterior of tau and the posterior
moments follow from one-dimensional quadrature over tau (as R's bayesmeta::bmr computes
them, Röver & Friede 2023)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hccmeta as hm
from hccmeta import priors
from hccmeta.models.metareg import design_matrix, metareg

#: Number of Monte Carlo standard errors tolerated between MCMC and exact values.
N_MCSE = 4.0

Y = np.array([-0.45, -0.10, -0.62, 0.05, -0.41, -0.20, -0.70])
SE = np.array([0.21, 0.30, 0.25, 0.40, 0.18, 0.22, 0.35])
COV = pd.DataFrame(
    {
        "design": ["retro", "pro", "retro", "pro", "retro", "pro", "retro"],
        "year": [2012.0, 2016.0, 2017.0, 2014.0, 2016.0, 2013.0, 2015.0],
    }
)


def exact_reference(y, s, X, m0, s0, b0, sb, tau_scale):
    """Posterior means and sds of mu, beta and tau for normal priors on mu and beta and
    a HalfNormal prior on tau, by quadrature over tau."""
    Z = np.column_stack([np.ones_like(y), X])
    prior_mean = np.array([m0] + [b0] * X.shape[1])
    prior_prec = np.diag([1 / s0**2] + [1 / sb**2] * X.shape[1])
    taus = np.linspace(0, 6 * tau_scale, 6001)[1:]
    logw, means, covs = [], [], []
    for t in taus:
        W = np.diag(1 / (s**2 + t**2))
        P = Z.T @ W @ Z + prior_prec
        C = np.linalg.inv(P)
        m = C @ (Z.T @ W @ y + prior_prec @ prior_mean)
        # marginal likelihood of y given tau: N(y; Z b0, S + Z B0 Z')
        V = np.diag(s**2 + t**2) + Z @ np.linalg.inv(prior_prec) @ Z.T
        ll = stats.multivariate_normal.logpdf(y, Z @ prior_mean, V)
        logw.append(ll + stats.halfnorm.logpdf(t, scale=tau_scale))
        means.append(m)
        covs.append(C)
    w = np.exp(np.array(logw) - max(logw))
    w /= w.sum()
    means, covs = np.array(means), np.array(covs)
    mean = w @ means
    second = np.einsum("t,tij->ij", w, covs + np.einsum("ti,tj->tij", means, means))
    sd = np.sqrt(np.diag(second) - mean**2)
    tau_mean = w @ taus
    tau_sd = np.sqrt(w @ taus**2 - tau_mean**2)
    return mean, sd, tau_mean, tau_sd


def test_design_matrix_codes_levels() -> None:
    X, names = design_matrix(COV, 7)
    assert names == ["design[retro]", "year"]
    np.testing.assert_array_equal(X[:, 0], [1, 0, 1, 0, 1, 0, 1])
    with pytest.raises(hm.InputError, match="covariate 'x1' is the same in every study"):
        design_matrix(np.ones(7), 7)
    with pytest.raises(hm.InputError, match="covariates have 6 rows for 7 studies"):
        design_matrix(np.arange(6.0), 7)
    with pytest.raises(hm.InputError, match=r"covariates\['year'\]\[1\] is missing"):
        design_matrix(pd.DataFrame({"year": [1.0, None, 3.0]}), 3)


def test_too_few_studies() -> None:
    with pytest.raises(hm.InputError, match="3 studies for 2 covariate"):
        metareg([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], np.array([[0, 1], [1, 0], [1, 1.0]]))


@pytest.mark.sampling
def test_metareg_matches_exact_reference() -> None:
    import arviz_stats as azs

    year = (COV["year"] - 2015.0).to_numpy()
    cov = pd.DataFrame({"design": COV["design"], "year": year})
    res = metareg(
        Y,
        SE,
        cov,
        prior_mu=priors.Normal(0, 1),
        prior_tau=priors.HalfNormal(0.5),
        prior_beta=priors.Normal(0, 1),
        seed=4,
    )
    assert res.ok, res.diagnostics
    X, _ = design_matrix(cov, len(Y))
    mean, sd, tau_mean, tau_sd = exact_reference(Y, SE, X, 0, 1, 0, 1, 0.5)
    d = res.posterior_draws()
    checks = [
        ("mu", d["mu"], mean[0], sd[0]),
        ("beta[design[retro]]", d["beta"][..., 0], mean[1], sd[1]),
        ("beta[year]", d["beta"][..., 1], mean[2], sd[2]),
        ("tau", d["tau"], tau_mean, tau_sd),
    ]
    table = res.summary()
    for name, draws, m, s in checks:
        tol_m = N_MCSE * float(azs.mcse(draws, method="mean"))
        tol_s = N_MCSE * float(azs.mcse(draws, method="sd"))
        assert abs(table.loc[name, "mean"] - m) <= tol_m, (name, table.loc[name, "mean"], m)
        assert abs(table.loc[name, "sd"] - s) <= tol_s, (name, table.loc[name, "sd"], s)
    assert list(res.datatree["posterior"]["covariate"].values) == ["design[retro]", "year"]
    assert 0 <= res.prob_below(0.0, "beta[year]") <= 1
