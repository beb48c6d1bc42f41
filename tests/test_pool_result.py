"""PoolResult of the exact engine: closed forms (fixed effect), summaries at other
interval levels, the ratio scale, tail probabilities, the DataTree and its attributes."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hccmeta as hm
from hccmeta import priors
from hccmeta.models.result import SUMMARY_COLUMNS

#: Closed forms (conjugate normal posterior): floating point and Newton tolerance.
TOL_CLOSED_FORM = 1e-9
#: Exact draws vs exact summaries: Monte Carlo error of 4000 independent draws, with
#: a margin of about 5 standard errors.
MC_SE_FACTOR = 5.0

Y = [-0.35, -0.10, -0.62, 0.05, -0.41]
SE = [0.21, 0.30, 0.25, 0.40, 0.18]
STUDIES = ["Lee 2017", "Park 2012", "Tamai 2017", "n34", "Terashima 2016"]


@pytest.fixture(scope="module")
def res() -> hm.models.result.PoolResult:
    return hm.pool(Y, SE, study=STUDIES, measure="hr")


def test_fixed_effect_is_the_conjugate_normal_posterior() -> None:
    """tau = 0 and mu ~ N(m0, s0^2): mu | y ~ N(M, 1/P) with P = sum(1/s^2) + 1/s0^2 and
    M = (sum(y/s^2) + m0/s0^2) / P (the textbook conjugate update)."""
    y, s = np.array(Y), np.array(SE)
    r = hm.pool(y, s, model="fixed", prior_mu=priors.Normal(0.1, 2.0))
    P = (1 / s**2).sum() + 1 / 4.0
    M = ((y / s**2).sum() + 0.1 / 4.0) / P
    table = r.summary()
    z = stats.norm.ppf(0.975)
    expected = [M, M, math.sqrt(1 / P), M - z / math.sqrt(P), M + z / math.sqrt(P)]
    for var in ("mu", "theta_new", "theta[1]", "theta[5]"):
        np.testing.assert_allclose(table.loc[var].to_numpy(), expected, rtol=TOL_CLOSED_FORM)
    assert (table.loc["tau"] == 0).all()
    assert r.p_mu_below_0 == pytest.approx(stats.norm.cdf(0, M, math.sqrt(1 / P)), abs=1e-12)
    assert r.prior_tau is None and r.model == "fixed"


def test_summary_layout(res) -> None:
    table = res.summary()
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    assert list(table.index) == [
        "mu",
        "tau",
        "theta_new",
        *(f"theta[{s}]" for s in STUDIES),
    ]
    assert table.index.name == "variable"
    # column names do not depend on the level; the interval does
    narrow = res.summary(ci_prob=0.5)
    assert list(narrow.columns) == list(SUMMARY_COLUMNS)
    assert (narrow["ci_lower"] > table["ci_lower"]).all()
    assert (narrow["ci_upper"] < table["ci_upper"]).all()
    np.testing.assert_allclose(narrow["median"], table["median"])
    # the interval bounds are the quantiles they claim to be
    assert res.prob_below(table.loc["mu", "ci_lower"]) == pytest.approx(0.025, abs=1e-10)
    assert res.prob_below(narrow.loc["tau", "ci_upper"], "tau") == pytest.approx(0.75, abs=1e-10)
    assert res.prob_below(table.loc["theta[n34]", "ci_upper"], "theta[n34]") == pytest.approx(
        0.975, abs=1e-10
    )


def test_ratio_scale(res) -> None:
    log = res.summary()
    ratio = res.summary(scale="ratio")
    assert "tau" not in ratio.index
    for col in ("median", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(ratio[col], np.exp(log.drop(index="tau")[col]), rtol=1e-12)
    # mean and sd of exp(mu) from the exact draws agree with the exact values
    draws = np.exp(res.posterior_draws()["mu"].ravel())
    se = draws.std() / math.sqrt(draws.size)
    assert abs(ratio.loc["mu", "mean"] - draws.mean()) < MC_SE_FACTOR * se
    assert res.ratio_summary().equals(ratio)
    with pytest.raises(hm.InputError, match="scale='ratio' needs a ratio measure"):
        hm.pool(Y, SE, measure="generic").summary(scale="ratio")


def test_tail_probabilities(res) -> None:
    assert 0.5 < res.p_mu_below_0 < 1
    assert res.p_mu_below_0 == res.prob_below(0.0, "mu")
    assert res.p_theta_new_below_0 == pytest.approx(res.prob_below(0.0, "theta_new"))
    # P(HR < 0.8) on the ratio scale is P(log HR < log 0.8)
    assert res.prob_below(0.8, "mu", scale="ratio") == pytest.approx(
        res.prob_below(math.log(0.8), "mu"), abs=1e-14
    )
    assert res.prob_above(0.2, "tau") == pytest.approx(1 - res.prob_below(0.2, "tau"))
    tp = res.tail_probabilities([0.0, -0.2])
    assert list(tp.columns) == ["variable", "threshold", "prob_below"]
    with pytest.raises(hm.InputError, match="unknown variable"):
        res.prob_below(0.0, "sigma")
    with pytest.raises(hm.InputError, match="tau has no ratio scale"):
        res.prob_below(1.0, "tau", scale="ratio")


def test_exact_draws_agree_with_exact_summary(res) -> None:
    post = res.posterior_draws()
    assert post["mu"].shape == (4, 1000)
    assert post["theta"].shape == (4, 1000, len(STUDIES))
    table = res.summary()
    for name in ("mu", "tau", "theta_new"):
        x = post[name].ravel()
        se = x.std() / math.sqrt(x.size)
        assert abs(x.mean() - table.loc[name, "mean"]) < MC_SE_FACTOR * se, name
    x = post["theta"][..., 2].ravel()
    se = x.std() / math.sqrt(x.size)
    assert abs(x.mean() - table.loc["theta[Tamai 2017]", "mean"]) < MC_SE_FACTOR * se


def test_same_seed_same_draws() -> None:
    a = hm.pool(Y, SE, seed=11).posterior_draws()
    b = hm.pool(Y, SE, seed=11).posterior_draws()
    c = hm.pool(Y, SE, seed=12).posterior_draws()
    np.testing.assert_array_equal(a["theta"], b["theta"])
    assert not np.array_equal(a["mu"], c["mu"])


def test_datatree_layout_and_attributes(res) -> None:
    tree = res.datatree
    assert set(tree.children) == {
        "posterior",
        "prior",
        "observed_data",
        "constant_data",
        "log_likelihood",
        "log_prior",
    }
    post = tree["posterior"]
    assert dict(post.sizes) == {"chain": 4, "draw": 1000, "study": 5}
    assert list(post["study"].values) == STUDIES
    assert set(post.data_vars) == {"mu", "tau", "theta", "theta_new"}
    np.testing.assert_array_equal(tree["observed_data"]["y"].values, Y)
    np.testing.assert_array_equal(tree["constant_data"]["sei"].values, SE)
    attrs = tree.attrs
    assert attrs["method"] == "exact"
    assert attrs["prior_mu"] == "Normal(mean=0.0, sd=1.0)"
    assert attrs["prior_tau"] == "HalfNormal(scale=0.5)"
    assert attrs["seed"] == 20261122  # the one default seed (hccmeta.defaults)
    versions = json.loads(attrs["package_versions"])
    assert versions["hccmeta"] == hm.__version__ and "numpy" in versions
    # the data hash is the sha256 of the inputs (labels and exact float values)
    payload = json.dumps(
        {
            "study": STUDIES,
            "yi": [float(v).hex() for v in Y],
            "sei": [float(v).hex() for v in SE],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert attrs["data_hash"] == hashlib.sha256(payload.encode()).hexdigest()
    assert hm.pool(Y, SE, study=STUDIES).data_hash == attrs["data_hash"]
    assert hm.pool([*Y[:4], -0.4100001], SE, study=STUDIES).data_hash != attrs["data_hash"]
    # log likelihood of the draws
    ll = tree["log_likelihood"]["y"].values
    theta = post["theta"].values
    np.testing.assert_allclose(ll, stats.norm.logpdf(np.array(Y), theta, np.array(SE)))


def test_to_netcdf_round_trip(res, tmp_path) -> None:
    """netCDF4 groups with h5py; without it, the flattened classic netCDF layout of
    hccmeta.report.netcdf. Either way the file reads back to the same tree."""
    from hccmeta.report.netcdf import read_posteriors

    path = tmp_path / "fit.nc"
    fmt = res.to_netcdf(path)
    assert fmt in ("netcdf4", "netcdf3-flat")
    back = read_posteriors(path)
    assert back.attrs["data_hash"] == res.data_hash
    assert back.attrs["prior_tau"] == "HalfNormal(scale=0.5)"
    np.testing.assert_array_equal(back["posterior"]["mu"].values, res.datatree["posterior"]["mu"])
    assert list(back["posterior"]["study"].values) == STUDIES


def test_dataframe_input_shapes() -> None:
    base = hm.pool(Y, SE, study=STUDIES, measure="hr").summary()
    df = pd.DataFrame({"study": STUDIES, "yi": Y, "sei": SE})
    pd.testing.assert_frame_equal(hm.pool(df, measure="hr").summary(), base)
    dv = pd.DataFrame({"study": STUDIES, "yi": Y, "vi": np.square(SE)})
    pd.testing.assert_frame_equal(hm.pool(dv, measure="hr").summary(), base, rtol=1e-12)
    # HR with 95% CI on the natural scale: SE = (ln U - ln L) / (2 z_0.975)
    z = stats.norm.ppf(0.975)
    ci = pd.DataFrame(
        {
            "study": STUDIES,
            "estimate": np.exp(Y),
            "ci_lower": np.exp(np.array(Y) - z * np.array(SE)),
            "ci_upper": np.exp(np.array(Y) + z * np.array(SE)),
        }
    )
    pd.testing.assert_frame_equal(hm.pool(ci, measure="hr").summary(), base, rtol=1e-9)
    counts = pd.DataFrame(
        {"events_t": [4, 9], "n_t": [36, 54], "events_c": [11, 29], "n_c": [36, 54]}
    )
    r = hm.pool(counts, measure="or")
    np.testing.assert_allclose(
        r.yi, [math.log(4 * 25 / (32 * 11)), math.log(9 * 25 / (45 * 29))], rtol=1e-12
    )
    assert r.study == ("1", "2")


def test_generic_measure_gets_priors_scaled_to_the_data() -> None:
    """Medians in months (12 and 7.5, SEs 2 and 3): s = max|yi| + max sei = 12 + 3 = 15,
    mu ~ Normal(0, 2.5 s = 37.5 -> 38 at two significant digits), tau ~ HalfNormal(7.5);
    said in a warning, and recorded in the result."""
    with pytest.warns(hm.errors.HccmetaWarning, match=r"s = max\|yi\| \+ max sei = 15"):
        r = hm.pool([12.0, 7.5], [2.0, 3.0])
    assert r.prior_mu == priors.Normal(0.0, 38.0)
    assert r.prior_tau == priors.HalfNormal(7.5)
    assert r.prior_note is not None and "Normal(0, 38), tau ~ HalfNormal(7.5)" in r.prior_note
    # the posterior mean of mu lies between the two studies, not pulled to 0 (with the
    # log-ratio default N(0, 1) it would be about 1)
    assert 7.5 < r.summary().loc["mu", "mean"] < 12.0
    # explicit priors (or a ratio measure) are used as given, without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given = hm.pool([12.0, 7.5], [2.0, 3.0], prior_mu="normal:0:100", prior_tau="halfnormal:5")
        hr = hm.pool([-0.3, -0.1], [0.2, 0.3], measure="hr")
    assert given.prior_note is None and hr.prior_mu == priors.Normal(0.0, 1.0)


def test_frequentist_comparison(res) -> None:
    from hccmeta.models.frequentist import rma

    freq = res.frequentist("DL")
    assert freq == rma(Y, sei=SE, method="DL")
    assert freq.k == res.k


def test_fixed_effect_with_uniform_prior_is_a_truncated_normal() -> None:
    """tau = 0 and mu ~ Uniform(0, 1): mu | y is the normal N(sum(w y)/sum(w), 1/sum(w))
    truncated to [0, 1] (scipy.stats.truncnorm)."""
    y, s = np.array([0.1, 0.5, -0.2]), np.array([0.2, 0.3, 0.25])
    r = hm.pool(y, s, model="fixed", prior_mu=priors.Uniform(0, 1))
    w = 1 / s**2
    m, sd = (w * y).sum() / w.sum(), 1 / math.sqrt(w.sum())
    tn = stats.truncnorm((0 - m) / sd, (1 - m) / sd, loc=m, scale=sd)
    lo, hi = tn.ppf([0.025, 0.975])
    expected = [tn.mean(), tn.median(), tn.std(), lo, hi]
    np.testing.assert_allclose(r.summary().loc["mu"].to_numpy(), expected, rtol=TOL_CLOSED_FORM)
    assert r.prob_below(0.2) == pytest.approx(tn.cdf(0.2), abs=TOL_CLOSED_FORM)
