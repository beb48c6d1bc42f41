"""The ``log_likelihood`` and ``log_prior`` groups of the multi-format survival fit
(hccmeta.models.survival) and the power-scaling rows they give its analyses.

Reference of the consistency check: the PyMC model the fit builds, its log density
compiled by PyMC (``model.compile_logp(jacobian=False)``, FAST_COMPILE) at the draws.
That model samples ``mu_hr`` and ``m_eta`` integrated out and the study effects as a
centred mean plus non-centred deviations (``x = xbar 1 + s H z``,
hccmeta.models._hierarchy), whereas ``log_prior`` holds the top-level priors at the
joint draws (``mu_hr`` and ``m_eta`` drawn from their exact conditionals). For
exchangeable effects ``x`` (K of them) with scale ``s`` and mean ``m ~ Normal(m0, b)``,
at every draw and for any value of ``m``::

    log p(xbar, z | s) = sum_i log N(x_i | m, s^2) + log p(m) - log p(m | x, s)
                         + 1/2 log K + (K - 1) log s

(marginal = joint / conditional; ``sqrt(K) s^(K-1)`` is the Jacobian of ``(xbar, z) ->
x``). Hence, with ``jacobian=False`` (the densities of tau, sigma_eta on their own scale,
not of their log-transformed values):

- the potentials ``med + lm + ct`` of the model = the sum of ``log_likelihood``;
- the log density of the model's free variables = the sum of ``log_prior`` + the
  terms above for the log HRs and (random baselines) the exchangeable baselines
  + (exponential fit) the prior of the unused ``log_k_raw``.

These run on stand-in draws (no sampling, no nutpie compile): ``mcmc.sample`` is
replaced by a function that draws the model's parameters around its initial point.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hccmeta as hm
from hccmeta import priors as pr
from hccmeta.models import mcmc
from hccmeta.models.survival import DEFAULT_LOG_MEDIAN, DEFAULT_LOG_SHAPE
from tests.test_model_survival import EXP, REF, _fit, n34, n34_and_terashima

#: Log densities computed two ways in double precision (different summation order).
TOL_LOGP = 1e-8

CHAINS, DRAWS = 2, 5


class _Capture:
    """Stand-in for :func:`mcmc.sample`: random values of the model's free variables."""

    def __init__(self) -> None:
        self.model: Any = None
        self.raw: dict[str, np.ndarray] = {}

    def __call__(self, key, build, data, *, seed, settings, coords=None, **kwargs):  # type: ignore[no-untyped-def]
        import pymc as pm
        import xarray as xr

        model = build()
        with model:
            pm.set_data(dict(data))
        rng = np.random.default_rng(7)
        raw: dict[str, np.ndarray] = {}
        posterior: dict[str, Any] = {}
        for name, init in model.initial_point().items():
            shape = (CHAINS, DRAWS, *np.shape(init))
            raw[name] = np.asarray(init) + 0.4 * rng.standard_normal(shape)
            rv = name.removesuffix("_log__")
            value = np.exp(raw[name]) if name.endswith("_log__") else raw[name]
            dims = ["chain", "draw", *(f"{rv}_dim_{i}" for i in range(np.ndim(init)))]
            posterior[rv] = (dims, value)
        self.model, self.raw = model, raw
        trace = xr.DataTree.from_dict({"posterior": xr.Dataset(posterior)})
        diagnostics = mcmc.Diagnostics(1.0, 1e4, 1e4, 0, True, settings=settings)
        return trace, diagnostics

    def model_logp(self, which: str) -> np.ndarray:
        """The model's log density of its potentials or its free variables at the draws."""
        model = self.model
        terms = model.potentials if which == "potentials" else model.free_RVs
        fn = model.compile_logp(vars=terms, jacobian=False, mode="FAST_COMPILE")
        out = np.empty((CHAINS, DRAWS))
        for c in range(CHAINS):
            for d in range(DRAWS):
                out[c, d] = fn({name: x[c, d] for name, x in self.raw.items()})
        return out


def _integrated_terms(x: np.ndarray, m: np.ndarray, s: np.ndarray, m0: float, sd0: float):  # type: ignore[no-untyped-def]
    """log p(xbar, z | s) - log p(m) - sum log N(x | m, s^2) (see the module docstring)."""
    size = x.shape[-1]
    a, b = s**2, sd0**2
    cond_mean = (m0 * a + b * x.sum(axis=-1)) / (a + size * b)
    cond_sd = np.sqrt(a * b / (a + size * b))
    return (
        stats.norm.logpdf(x, m[..., None], s[..., None]).sum(axis=-1)
        - stats.norm.logpdf(m, cond_mean, cond_sd)
        + 0.5 * math.log(size)
        + (size - 1) * np.log(s)
    )


def _with_single_arm(data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Plus a single arm of the experimental regimen with a median (Park-like)."""
    data = dict(data)
    data["arms"] = pd.concat(
        [data["arms"], pd.DataFrame({"study": ["park2012"], "arm": [EXP]})], ignore_index=True
    )
    data["medians"] = pd.concat(
        [
            data["medians"],
            pd.DataFrame(
                {"study": ["park2012"], "arm": [EXP], "yi": [math.log(7.1)], "sei": [0.1]}
            ),
        ],
        ignore_index=True,
    )
    return data


CASES = {
    "one study": (n34, {}),
    "two studies": (n34_and_terashima, {}),
    "fixed baselines, cloglog, marginal, family weights": (
        n34_and_terashima,
        {
            "baseline": "fixed",
            "landmark_likelihood": "cloglog",
            "landmark_terms": "marginal",
            "overlap": "families",
        },
    ),
    "exponential, no overlap weights": (n34_and_terashima, {"weibull": False, "overlap": "none"}),
    "single arm excluded": (
        lambda: _with_single_arm(n34_and_terashima()),
        {"single_arm_experimental": "exclude"},
    ),
    "single arm arm-based, HalfCauchy tau": (
        lambda: _with_single_arm(n34_and_terashima()),
        {"prior_tau": pr.HalfCauchy(0.3)},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_log_densities_add_up_to_the_models_log_density(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    make, kwargs = CASES[case]
    capture = _Capture()
    monkeypatch.setattr(mcmc, "sample", capture)
    res = _fit(make(), **kwargs)
    tree = res.tree
    ll, lp = tree["log_likelihood"].to_dataset(), tree["log_prior"].to_dataset()
    post = res.posterior

    # the likelihood: the model's potentials, term by term summed
    ll_sum = sum(ll[v].sum(v_dim).to_numpy() for v, v_dim in _term_dims(ll))
    np.testing.assert_allclose(ll_sum, capture.model_logp("potentials"), rtol=0, atol=TOL_LOGP)

    # the prior: the model's free variables, with mu_hr and m_eta integrated out
    expected = capture.model_logp("free")
    got = sum(lp[v].to_numpy().reshape(CHAINS, DRAWS, -1).sum(axis=-1) for v in lp.data_vars)
    hr_studies = [
        s for s in post["study"].to_numpy() if np.isfinite(post["log_hr_study"].sel(study=s)).all()
    ]
    beta = post["log_hr_study"].sel(study=hr_studies).transpose("chain", "draw", "study")
    got = got + _integrated_terms(
        beta.to_numpy(), post["mu_hr"].to_numpy(), post["tau"].to_numpy(), 0.0, 1.0
    )
    if kwargs.get("baseline", "random") == "random":
        excluded = kwargs.get("single_arm_experimental") == "exclude"
        studies = list(post["study"].to_numpy())
        exch = studies[:-1] if excluded else studies  # own baselines come last
        eta = post["eta"].sel(study=exch).transpose("chain", "draw", "study").to_numpy()
        got = got + _integrated_terms(
            eta,
            post["m_eta"].to_numpy(),
            post["sigma_eta"].to_numpy(),
            DEFAULT_LOG_MEDIAN.mean,
            DEFAULT_LOG_MEDIAN.sd,
        )
        assert ("eta" in lp) == excluded
    else:
        assert set(lp["eta"]["study"].to_numpy()) == set(post["study"].to_numpy())
    if kwargs.get("weibull", True) is False:
        got = got + DEFAULT_LOG_SHAPE.logpdf(capture.raw["log_k_raw"])
        assert "log_k" not in lp
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL_LOGP)

    # dimensions: one term per used statistic, labelled; draws as the posterior
    terms = res.inputs["terms"]
    used = terms[terms["used"]]
    for family, v_dim in _term_dims(ll):
        assert ll[family].dims == ("chain", "draw", v_dim)
        assert ll[family].sizes[v_dim] == int((used["term"] == family).sum())
        assert len(set(ll[family][v_dim].to_numpy())) == ll[family].sizes[v_dim]
    assert {v for v, _ in _term_dims(ll)} == set(used["term"])
    for name in lp.data_vars:
        assert lp[name].dims[:2] == ("chain", "draw")
        assert np.isfinite(lp[name]).all()


def _term_dims(ll: Any) -> list[tuple[str, str]]:
    return [(str(v), f"{v}_term") for v in ll.data_vars]


def test_log_groups_survive_a_netcdf_round_trip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import xarray as xr

    monkeypatch.setattr(mcmc, "sample", _Capture())
    res = _fit(n34())
    path = tmp_path / "fit.nc"
    res.to_netcdf(str(path))
    back = xr.open_datatree(path)
    for group in ("log_likelihood", "log_prior"):
        xr.testing.assert_allclose(back[group].to_dataset(), res.tree[group].to_dataset())


# --------------------------------------------------------------------------------------
# sampling: the real fit and its power-scaling rows

#: Small runs (the survival fit's target acceptance 0.9; 4 x 300 draws fail R-hat <= 1.01
#: for some seeds); diagnostics relaxed to 50 ESS per chain, as in
#: tests/test_sensitivity_sampling.py.
SETTINGS = mcmc.SamplerSettings(
    draws=500, tune=500, target_accept=0.9, ess_min_per_chain=50, max_retries=1
)


@pytest.mark.sampling
def test_power_scaling_rows_of_the_survival_synthesis(evidence: hm.Evidence) -> None:
    """Both survival analyses select alike (one compiled structure, one fit cached by the
    runner); their power-scaling rows are ok with finite psense values."""
    from hccmeta.sensitivity import sensitivity

    for name in ("median_os_per_regimen", "survival_6_12_24_per_regimen"):
        table = sensitivity(
            name, evidence, groups=["power_scaling"], settings=SETTINGS, progress=False
        )
        primary = table[table["variant"] == "primary"]
        rows = table[table["variant_group"] == "power_scaling"]
        assert set(rows["variant"]) == {"prior_power_0.8", "likelihood_power_0.8"}
        assert set(rows["estimand"]) == set(primary["estimand"])
        assert (rows["status"] == "ok").all(), rows["error"].tolist()
        assert np.isfinite(rows["psense"].astype(float)).all()
        assert (rows["psense"] >= 0).all()
        assert rows["psense_diagnosis"].notna().all()


#: Tolerance between two MCMC estimates of the same posterior quantity (log scale), as
#: in tests/test_sensitivity_sampling.py (MC SE of a median below 0.03, of a 2.5% or
#: 97.5% quantile below about 0.08 for these posteriors, SD 0.3-0.7).
MC_TOL = 0.2
#: Relative tolerance of a posterior SD between a reweighted and a refitted posterior.
TOL_SD_REL = 0.1


@pytest.mark.sampling
def test_prior_power_scaling_equals_a_refit_with_widened_priors() -> None:
    """Every prior of ``log_prior`` is a Normal or HalfNormal, whose density to the power
    0.8 is the same family with its SD or scale divided by sqrt(0.8): reweighting the
    posterior by ``exp(-0.2 log_prior)`` (Pareto-smoothed, as the power-scaling rows do)
    must give the posterior of a refit under the five widened priors (one study, n34;
    the structure of the survival analyses of the study data)."""
    from hccmeta.models.survival import DEFAULT_SIGMA_BASELINE
    from hccmeta.sensitivity.draws import weighted_stats
    from hccmeta.sensitivity.reweight import KHAT_MAX, psis

    settings = mcmc.SamplerSettings(draws=1000, tune=1000, target_accept=0.9)
    alpha = 0.8
    res = _fit(n34(), seed=11, settings=settings)
    lp = res.tree["log_prior"].to_dataset()
    assert set(lp.data_vars) == {"mu_hr", "tau", "log_k", "m_eta", "sigma_eta"}
    log_weights, khat = psis((alpha - 1.0) * sum(lp[v].to_numpy() for v in lp.data_vars))
    assert khat <= KHAT_MAX
    widen = 1.0 / math.sqrt(alpha)
    assert isinstance(DEFAULT_SIGMA_BASELINE, pr.HalfNormal)
    assert isinstance(pr.DEFAULT_TAU, pr.HalfNormal) and isinstance(pr.DEFAULT_MU, pr.Normal)
    refit = _fit(
        n34(),
        seed=12,
        settings=settings,
        prior_mu_hr=pr.Normal(pr.DEFAULT_MU.mean, pr.DEFAULT_MU.sd * widen),
        prior_tau=pr.HalfNormal(pr.DEFAULT_TAU.scale * widen),
        prior_log_median=pr.Normal(DEFAULT_LOG_MEDIAN.mean, DEFAULT_LOG_MEDIAN.sd * widen),
        prior_sigma_baseline=pr.HalfNormal(DEFAULT_SIGMA_BASELINE.scale * widen),
        prior_log_shape=pr.Normal(DEFAULT_LOG_SHAPE.mean, DEFAULT_LOG_SHAPE.sd * widen),
    )
    assert res.ok and refit.ok
    for name, x, y in (
        ("mu_hr", res.posterior["mu_hr"], refit.posterior["mu_hr"]),
        (
            "log median, reference",
            *(np.log(r.posterior["median"].sel(arm=REF)) for r in (res, refit)),
        ),
        (
            "log median, experimental",
            *(np.log(r.posterior["median"].sel(arm=EXP)) for r in (res, refit)),
        ),
        ("log k", np.log(res.posterior["k"]), np.log(refit.posterior["k"])),
    ):
        reweighted = weighted_stats(x.to_numpy(), log_weights)
        direct = weighted_stats(y.to_numpy())
        for col in ("median", "ci_lower", "ci_upper"):
            assert reweighted[col] == pytest.approx(direct[col], abs=MC_TOL), (name, col)
        assert reweighted["sd"] == pytest.approx(direct["sd"], rel=TOL_SD_REL), name
