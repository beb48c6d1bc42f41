"""The per-study bias on the log HR of the multi-format survival model (``bias=``) and
its wiring into the survival analyses (issue 11 for the survival synthesis).

References: a study without a bias distribution (None) has bias mean 0 and SD 0, so
its term is no term (the model's log density is the unadjusted one plus the standard
normal density of the unused ``w_bias``); a bias ``m + v w`` moves what the study's
statistics show by exactly that amount; with
contrasts only and tau pinned near 0, ``mu_hr | y`` is normal with precision
``sum_i 1 / (s_i^2 + v_i^2) + 1`` (the Normal(0, 1) prior) and mean ``sum_i (y_i - m_i)
/ (s_i^2 + v_i^2) / precision`` -- the additive bias model of hccmeta.pool.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hccmeta as hm
from hccmeta import priors
from hccmeta.errors import InputError
from hccmeta.models import mcmc
from hccmeta.models.survival import fit_survival
from tests.test_model_survival import EXP, REF, n34, n34_and_terashima

#: Posterior means within this many Monte Carlo SEs of the closed form.
N_MCSE = 4.0
#: Log densities computed two ways in double precision.
TOL_LOGP = 1e-9

SETTINGS = mcmc.SamplerSettings(draws=1000, tune=1000, chains=4, target_accept=0.9)


class _Models:
    """Stand-in for :func:`mcmc.sample` that keeps the built model and stops."""

    def __init__(self) -> None:
        self.built: list[Any] = []

    def __call__(self, key, build, data, **kwargs):  # type: ignore[no-untyped-def]
        import pymc as pm

        model = build()
        with model:
            pm.set_data(dict(data))
        self.built.append(model)
        raise _Stop


class _Stop(Exception):
    pass


def test_zero_bias_is_the_unadjusted_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """No bias distribution for either study (None: mean 0, SD 0 in the model's data,
    the bias variables still in the graph): at any point, the model's log density is
    the unadjusted one plus log N(w_bias; 0, 1) of the unused standard normals."""
    models = _Models()
    monkeypatch.setattr(mcmc, "sample", models)
    data = n34_and_terashima()
    for bias in (None, {"n34": None, "terashima2016": None}):
        with pytest.raises(_Stop):
            fit_survival(
                data["arms"],
                reference=REF,
                medians=data["medians"],
                landmarks=data["landmarks"],
                contrasts=data["contrasts"],
                bias=bias,
            )
    plain, zero = models.built
    point = plain.initial_point()
    rng = np.random.default_rng(3)
    point = {k: np.asarray(v) + 0.3 * rng.standard_normal(np.shape(v)) for k, v in point.items()}
    w = np.array([0.7, -1.1])
    lp_plain = plain.compile_logp(mode="FAST_COMPILE")(point)
    lp_zero = zero.compile_logp(mode="FAST_COMPILE")({**point, "w_bias": w})
    assert lp_zero == pytest.approx(lp_plain + stats.norm.logpdf(w).sum(), abs=TOL_LOGP)


def test_a_bias_shifts_every_statistic_of_the_study(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bias N(-0.3, 0.5^2) on the n=34 study, at w_bias = 0.4: b = -0.3 + 0.5 x 0.4 =
    -0.1, and its arms and contrast see beta + b, so the likelihood terms (the model's
    potentials) at beta = -0.8 equal the unadjusted ones at beta = -0.9."""
    models = _Models()
    monkeypatch.setattr(mcmc, "sample", models)
    data = n34()
    for bias in (None, {"n34": priors.Normal(-0.3, 0.5)}):
        with pytest.raises(_Stop):
            fit_survival(
                data["arms"],
                reference=REF,
                medians=data["medians"],
                landmarks=data["landmarks"],
                contrasts=data["contrasts"],
                bias=bias,
            )
    plain, shifted = models.built
    point = {k: np.asarray(v) for k, v in plain.initial_point().items()}
    point["log_hr_bar"] = np.asarray(-0.8)
    lp_shifted = shifted.compile_logp(vars=shifted.potentials, mode="FAST_COMPILE")(
        {**point, "w_bias": np.array([0.4])}
    )
    moved = {**point, "log_hr_bar": np.asarray(-0.8 + (-0.3 + 0.5 * 0.4))}
    plain_logp = plain.compile_logp(vars=plain.potentials, mode="FAST_COMPILE")
    assert lp_shifted == pytest.approx(plain_logp(moved), abs=TOL_LOGP)
    # and the shift matters: unshifted, the terms differ
    assert abs(lp_shifted - plain_logp(point)) > 1e-3


def test_bias_argument_errors() -> None:
    data = n34()
    arms = pd.concat([data["arms"], pd.DataFrame({"study": ["r"], "arm": [REF]})])
    with pytest.raises(InputError, match="cannot carry a bias on the log hazard ratio"):
        fit_survival(
            arms, reference=REF, contrasts=data["contrasts"], bias={"r": priors.Normal(0, 0.1)}
        )
    with pytest.raises(InputError, match="unknown study 'x'"):
        fit_survival(
            arms, reference=REF, contrasts=data["contrasts"], bias={"x": priors.Normal(0, 0.1)}
        )
    with pytest.raises(InputError, match="must be a Normal or None"):
        fit_survival(
            arms, reference=REF, contrasts=data["contrasts"], bias={"n34": priors.HalfNormal(1)}
        )


@pytest.mark.sampling
def test_bias_shift_worked_by_hand() -> None:
    """Two large trials reported by their HRs only (SE 0.03 and 0.04), tau pinned near 0
    (HalfNormal(0.001)), biases N(-0.2, 0.05) and N(0.1, 0.1): mu_hr's posterior is the
    bias-adjusted inverse-variance mean with the Normal(0, 1) prior (module docstring)."""
    y, s = np.array([-0.60, -0.35]), np.array([0.03, 0.04])
    m, v = np.array([-0.2, 0.1]), np.array([0.05, 0.1])
    data = {
        "arms": pd.DataFrame({"study": ["a", "a", "b", "b"], "arm": [REF, EXP] * 2}),
        "contrasts": pd.DataFrame({"study": ["a", "b"], "yi": y, "sei": s, "kind": "hr"}),
    }
    bias = {"a": priors.Normal(-0.2, 0.05), "b": priors.Normal(0.1, 0.1)}
    res = fit_survival(
        data["arms"],
        reference=REF,
        contrasts=data["contrasts"],
        prior_tau=priors.HalfNormal(0.001),
        bias=bias,
        seed=5,
        settings=SETTINGS,
    )
    assert res.ok, res.diagnostics
    w = 1 / (s**2 + v**2)
    prec = w.sum() + 1.0
    mean = float((w * (y - m)).sum() / prec)
    mu = res.posterior["mu_hr"].to_numpy()
    import arviz_stats as azs

    assert float(mu.mean()) == pytest.approx(mean, abs=N_MCSE * float(azs.mcse(mu, method="mean")))
    assert float(mu.std()) == pytest.approx(prec**-0.5, rel=0.1)
    assert "bias" in res.posterior
    assert res.priors["bias"] == (
        "b[a] ~ Normal(mean=-0.2, sd=0.05); b[b] ~ Normal(mean=0.1, sd=0.1)"
    )


class _Draws:
    """Stand-in for :func:`mcmc.sample`: draws of the model's free variables around its
    initial point (no compile), recording the data each fit was given."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []

    def __call__(self, key, build, data, *, seed, settings, coords=None, **kwargs):  # type: ignore[no-untyped-def]
        import xarray as xr

        model = build()
        self.data.append(dict(data))
        rng = np.random.default_rng(7)
        posterior: dict[str, Any] = {}
        for name, init in model.initial_point().items():
            shape = (2, 50, *np.shape(init))
            raw = np.asarray(init) + 0.2 * rng.standard_normal(shape)
            rv = name.removesuffix("_log__")
            dims = ["chain", "draw", *(f"{rv}_dim_{i}" for i in range(np.ndim(init)))]
            posterior[rv] = (dims, np.exp(raw) if name.endswith("_log__") else raw)
        if "bias_mean" in data:
            raw = (
                np.asarray(data["bias_mean"]) + np.asarray(data["bias_sd"]) * posterior["w_bias"][1]
            )
            posterior["bias_log_hr"] = (["chain", "draw", "bias_log_hr_dim_0"], raw)
        trace = xr.DataTree.from_dict({"posterior": xr.Dataset(posterior)})
        return trace, mcmc.Diagnostics(1.0, 1e4, 1e4, 0, True, settings=settings)


def test_survival_analyses_get_a_bias_adjusted_hazard_ratio(
    monkeypatch: pytest.MonkeyPatch, evidence: hm.Evidence
) -> None:
    """median_os_per_regimen: the HR of a non-randomised comparison gets a
    bias-adjusted estimate from a second fit whose n=34 study carries its default bias
    (ROBINS-I serious, favouring the TACE group: N(-0.30, 0.30) on the log HR, below
    being better for a hazard ratio), and the statement names it."""
    from hccmeta.analyses import mcmc_runners

    draws = _Draws()
    monkeypatch.setattr(mcmc, "sample", draws)
    monkeypatch.setattr(mcmc_runners, "_FIT_CACHE", {})
    assert "survival_multiformat" in hm.analyses.run.BIAS_MODELS
    res = hm.run_analysis("median_os_per_regimen", evidence)
    assert len(draws.data) == 2  # the primary fit and the bias-adjusted one
    assert "bias_mean" not in draws.data[0]
    np.testing.assert_allclose(draws.data[1]["bias_mean"][:1], [-0.30])
    np.testing.assert_allclose(draws.data[1]["bias_sd"][:1], [0.30])
    hr = res.estimates.set_index("estimand").loc["log_hr"]
    assert math.isfinite(hr["bias_adjusted_natural_median"])
    medians = res.estimates[res.estimates["estimand"].str.startswith("median_")]
    assert medians["bias_adjusted_natural_median"].isna().all()  # no null value to adjust
    assert res.priors["bias"] == (
        "serious risk of bias in tace_resistant_n34: bias ~ N(-0.30, 0.30²)"
    )
    # the sensitivity table's group "bias" re-fits it with the default and the doubled SD
    from hccmeta.effects import derive_effects
    from hccmeta.sensitivity.bias import bias_variants
    from hccmeta.sensitivity.variants import PlanContext

    derived = derive_effects(evidence)
    ctx = PlanContext(res.analysis, res, derived, lambda options: derived)
    planned = {v.name: v.variation.bias for v in bias_variants(ctx)}
    assert planned == {"bias_default": "default", "bias_doubled_sd": "doubled_sd"}


def test_the_one_over_m_likelihood_is_a_sensitivity_variant_of_every_survival_synthesis(
    monkeypatch: pytest.MonkeyPatch, evidence: hm.Evidence
) -> None:
    """The 1/m composite likelihood (overlap='families') is kept as the conversion
    variant ``survival_overlap_families`` of the multi-format synthesis: the fit gets
    ``joint = 0`` and each term the weight 1/m of its study (m kinds of statistic),
    where the primary fit has ``joint = 1`` and weights 1; other models refuse it."""
    from hccmeta.analyses import mcmc_runners
    from hccmeta.analyses.run import Variation
    from hccmeta.effects import derive_effects
    from hccmeta.sensitivity.conversions import conversion_candidates
    from hccmeta.sensitivity.variants import PlanContext

    draws = _Draws()
    monkeypatch.setattr(mcmc, "sample", draws)
    monkeypatch.setattr(mcmc_runners, "_FIT_CACHE", {})
    primary = hm.run_analysis("median_os_per_regimen", evidence)
    families = hm.run_analysis(
        "median_os_per_regimen", evidence, variation=Variation(survival_overlap="families")
    )
    assert primary.status == families.status == "ok"
    first, second = draws.data[0], draws.data[-1]
    assert float(first["joint"]) == 1.0 and float(second["joint"]) == 0.0
    for prefix in ("lm", "ct", "seg"):
        real = first[f"{prefix}_w"] > 0  # padding rows have weight 0
        assert np.all(first[f"{prefix}_w"][real] == 1.0)
    # every study of this synthesis that reports several kinds gets 1/m < 1 on each term
    weights = np.concatenate([second[f"{p}_w"] for p in ("lm", "ct", "seg")])
    used = weights[weights > 0]
    assert used.min() < 1.0
    assert set(np.round(1.0 / used, 9)) <= {1.0, 2.0, 3.0}
    derived = derive_effects(evidence)
    ctx = PlanContext(primary.analysis, primary, derived, lambda options: derived)
    names = {v.name for v in conversion_candidates(ctx)}
    assert "survival_overlap_families" in names
    with pytest.raises(InputError, match="no multi-format survival likelihood"):
        hm.run_analysis(
            "os_tace_plus_sorafenib_vs_sorafenib",
            evidence,
            variation=Variation(survival_overlap="families"),
        )
