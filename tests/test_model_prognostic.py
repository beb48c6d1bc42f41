"""Tests of the joint prognostic-factor model (hccmeta.models.prognostic).

Realistic inputs are the prognostic factors of Lee et al. 2017 (abstract: medians and
log-rank p per factor, univariate, from sorafenib start) and Terashima et al. 2016
(Table 3: multivariable Cox HRs with 95% CI, from sorafenib failure).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from hccmeta import priors as pr
from hccmeta.errors import InputError
from hccmeta.models import mcmc
from hccmeta.models.prognostic import _conditional_theta, fit_prognostic
from tests.simulate import normal_normal_exact

#: Tolerances, one per kind of quantity. Posterior means and SDs from 4 x 2000 draws
#: (bulk ESS > 3000) have Monte Carlo SEs of about 0.02 SD; the log-normal hyperprior
#: with log-sd 1e-3 differs from a fixed scale by < 0.1%.
TOL_MEAN_SD_UNITS = 0.15  # |mean - exact| in posterior SDs
TOL_SD_REL = 0.10  # relative error of a posterior SD
TOL_TAU_MEAN = 0.05  # absolute, on the log-HR scale

SETTINGS = mcmc.SamplerSettings(draws=500, tune=500, chains=4, target_accept=0.9)
#: Agreement with an exact posterior: more draws (sampling is cheap once compiled; a
#: posterior SD of a prior-dominated mean has heavy tails, and 4 x 500 draws leave a
#: relative Monte Carlo error near 10%).
AGREEMENT = mcmc.SamplerSettings(draws=2000, tune=1000, chains=4, target_accept=0.9)


def _from_medians_p(m_ref: float, m_exp: float, p: float) -> tuple[float, float]:
    """ln HR = ln(M_ref / M_exp), SE = |ln HR| / z_{1-p/2} (exponential assumption)."""
    y = math.log(m_ref / m_exp)
    return y, abs(y) / stats.norm.isf(p / 2)


def _from_ci(hr: float, lo: float, hi: float) -> tuple[float, float]:
    return math.log(hr), (math.log(hi) - math.log(lo)) / (2 * stats.norm.isf(0.025))


def lee_terashima() -> pd.DataFrame:
    rows = []
    # Lee 2017 abstract: "main (or lobar) PVI (3.7 versus 8.4 months, p = 0.004), dose
    # reduction of sorafenib (4.0 versus 8.8 months, p = 0.002) and Child-Pugh class B
    # (5.3 versus 8.9 months, p = 0.004)"
    for factor, (m_exp, m_ref, p) in {
        "main_pvi": (3.7, 8.4, 0.004),
        "dose_reduction": (4.0, 8.8, 0.002),
        "child_pugh_b": (5.3, 8.9, 0.004),
    }.items():
        y, s = _from_medians_p(m_ref, m_exp, p)
        rows.append(("lee2017", factor, y, s, False, "sorafenib_start"))
    # Terashima 2016 Table 3 (multivariate Cox): B 2.999 (1.478-6.087), AFP >= 400
    # 2.207 (1.230-3.958), tumour progression 2.331 (1.168-4.650)
    for factor, ci in {
        "child_pugh_b": (2.999, 1.478, 6.087),
        "afp_400": (2.207, 1.230, 3.958),
        "progression": (2.331, 1.168, 4.650),
    }.items():
        y, s = _from_ci(*ci)
        rows.append(("terashima2016", factor, y, s, True, "sorafenib_failure"))
    return pd.DataFrame(rows, columns=["study", "factor", "yi", "sei", "adjusted", "time_origin"])


# --------------------------------------------------------------------------------------
# input checks (no sampling)


def test_mixed_adjustment_is_refused_unless_chosen() -> None:
    df = lee_terashima()
    with pytest.raises(InputError, match="mixes adjusted levels"):
        fit_prognostic(df, time_origin="pool")
    with pytest.raises(InputError, match="mixes time_origin levels"):
        fit_prognostic(df, adjusted="pool")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns="adjusted"), "missing column"),
        (lambda d: d.assign(sei=-0.1), "column sei"),
        (lambda d: d.assign(yi=np.nan), "column yi"),
        (lambda d: d.assign(adjusted=1), "not a bool"),
        (lambda d: pd.concat([d, d.iloc[[0]]]), "more than once"),
        (lambda d: d.assign(factor=""), "column factor: empty"),
    ],
)
def test_bad_input_names_row_and_column(change, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message):
        fit_prognostic(change(lee_terashima()), adjusted="pool", time_origin="pool")


def test_bad_reference_origin() -> None:
    with pytest.raises(InputError, match="reference_time_origin"):
        fit_prognostic(
            lee_terashima(), adjusted="pool", time_origin="shift", reference_time_origin="x"
        )


def test_conditional_theta_limits() -> None:
    rng = np.random.default_rng(0)
    y, s = np.array([1.0]), np.array([0.2])
    m = np.zeros((2000, 1))
    # tau = 0: every study effect is the mean
    assert np.all(_conditional_theta(y, s, m, np.zeros((2000, 1)), rng) == 0.0)
    # tau large: the study's own estimate with its SE
    draws = _conditional_theta(y, s, m, np.full((2000, 1), 1e6), rng)
    assert abs(draws.mean() - 1.0) < 0.02
    assert abs(draws.std() - 0.2) < 0.02


# --------------------------------------------------------------------------------------
# sampling


@pytest.mark.sampling
def test_one_factor_agrees_with_plain_random_effects() -> None:
    """One factor, three studies, the heterogeneity scale fixed at 0.5 (log-sd 1e-3):
    the model is then y_i ~ N(mu, s_i^2 + tau^2), mu ~ N(0, 1), tau ~ HalfNormal(0.5),
    whose exact posterior tests/simulate.normal_normal_exact computes by quadrature."""
    yi = np.array([0.52, 1.10, 0.79])
    sei = np.array([0.18, 0.36, 0.30])
    df = pd.DataFrame(
        {
            "factor": "child_pugh_b",
            "study": ["a", "b", "c"],
            "yi": yi,
            "sei": sei,
            "adjusted": False,
            "time_origin": "sorafenib_start",
        }
    )
    res = fit_prognostic(
        df,
        prior_tau_scale=pr.LogNormal(math.log(0.5), 1e-3),
        seed=11,
        settings=AGREEMENT,
    )
    assert res.diagnostics.ok, res.diagnostics.messages
    assert res.diagnostics.n_divergent == 0
    exact = normal_normal_exact(yi, sei, mu_mean=0.0, mu_sd=1.0, tau_scale=0.5)
    table = res.summary()
    mu = table.loc["mu[child_pugh_b]"]
    assert abs(mu["mean"] - exact["mu_mean"]) < TOL_MEAN_SD_UNITS * exact["mu_sd"]
    assert abs(mu["sd"] / exact["mu_sd"] - 1) < TOL_SD_REL
    assert abs(table.loc["tau[child_pugh_b]", "mean"] - exact["tau_mean"]) < TOL_TAU_MEAN
    # the natural scale is exp of the analysis scale, draw by draw
    hr = table.loc["hr[child_pugh_b]"]
    assert hr["median"] == pytest.approx(math.exp(mu["median"]), rel=0.02)


@pytest.mark.sampling
def test_lee_terashima_with_explicit_shifts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Factors reported by one or two studies, adjusted and univariate, two time origins:
    samples cleanly with both shifts, and the covariates are explicit in the output."""
    df = lee_terashima()
    res = fit_prognostic(df, adjusted="shift", time_origin="shift", seed=5, settings=SETTINGS)
    assert res.diagnostics.ok, res.diagnostics.messages
    assert res.diagnostics.n_divergent == 0
    table = res.summary()
    assert list(table.columns[-5:]) == ["mean", "median", "sd", "ci_lower", "ci_upper"]
    assert {"mu", "hr", "tau", "theta_new", "hr_new", "beta_adjusted", "mu_adjusted"} <= set(
        table["estimand"]
    )
    assert "beta_time_origin[sorafenib_start]" in table.index  # reference: the mode, ties a-z
    cov = res.tree.attrs["covariates"]
    assert '"adjusted": "shift"' in cov and '"reference_time_origin"' in cov
    rows = res.inputs["rows"]
    assert rows.loc[rows["study"] == "terashima2016", "x_adjusted"].eq(1.0).all()
    # a study's shrunken log HR exists only where the study reports the factor
    assert "theta[afp_400, lee2017]" not in table.index
    assert "theta[afp_400, terashima2016]" in table.index
    # the interval level changes the numbers, never the column names
    narrow = res.summary(ci_prob=0.5)
    assert list(narrow.columns) == list(table.columns)
    assert (narrow["ci_upper"] - narrow["ci_lower"] < table["ci_upper"] - table["ci_lower"]).all()
    # tau_f share one scale: every factor's tau is finite and the prior is recorded
    assert "tau_scale ~ LogNormal" in res.priors["tau"]
    for key in ("priors", "data_hash", "versions", "seed"):
        assert key in res.tree.attrs
    assert set(res.tree.children) >= {"posterior", "observed_data", "sample_stats"}
    # the DataTree saves to netCDF and describes itself
    path = tmp_path / "prognostic.nc"
    res.to_netcdf(str(path))
    back = xr.open_datatree(path)
    assert back.attrs["data_hash"] == res.tree.attrs["data_hash"]
    assert int(back.attrs["seed"]) == 5
    np.testing.assert_allclose(back["posterior"]["mu"].values, res.posterior["mu"].values)
    back.close()
    # a refit with new values of the same structure does not recompile
    before = mcmc.compile_count()
    again = fit_prognostic(
        df.assign(yi=df["yi"] * 0.9),
        adjusted="shift",
        time_origin="shift",
        seed=6,
        settings=SETTINGS,
    )
    assert mcmc.compile_count() == before
    assert again.diagnostics.ok
