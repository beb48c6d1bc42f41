"""The MCMC engine against the exact engine, the compile cache and the diagnostics.

Agreement criterion: for mu and tau, the MCMC mean, median, 2.5% and 97.5% quantiles lie
within 4 Monte Carlo standard errors (arviz-stats ``mcse``: method "mean", and
"quantile" at each probability) of the exact values. The exact engine is itself
validated against bayesmeta and brute-force integration (test_pool_exact.py).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import hccmeta as hm
from hccmeta import priors
from hccmeta.models import mcmc

pytestmark = pytest.mark.sampling

#: Number of Monte Carlo standard errors tolerated between MCMC and exact values.
N_MCSE = 4.0
#: Fixed-effect MCMC vs closed form: Monte Carlo error of 4000 draws, same criterion.

CRINS_YI = [-2.3097, -0.4595, -2.3026, -1.7579, -1.2585, -2.4179]
CRINS_SE = list(np.sqrt([0.3594, 0.3096, 0.7750, 0.2078, 0.4122, 2.3373]))
K3_Y, K3_SE = [0.1, 0.5, -0.2], [0.2, 0.3, 0.25]
#: Near-zero heterogeneity: the estimates scatter far less than their SEs.
HOMOG_Y, HOMOG_SE = [0.10, 0.11, 0.09], [0.30, 0.20, 0.25]


def _mcse(draws: np.ndarray, stat: str) -> float:
    import arviz_stats as azs

    if stat == "mean":
        return float(azs.mcse(draws, method="mean"))
    prob = {"median": 0.5, "ci_lower": 0.025, "ci_upper": 0.975}[stat]
    return float(azs.mcse(draws, method="quantile", prob=prob))


def assert_agree(y, s, prior_mu, prior_tau, *, seed: int = 1) -> hm.models.result.PoolResult:
    exact = hm.pool(y, s, prior_mu=prior_mu, prior_tau=prior_tau).summary()
    res = hm.pool(y, s, prior_mu=prior_mu, prior_tau=prior_tau, method="mcmc", seed=seed)
    assert res.ok, res.diagnostics
    draws = res.posterior_draws()
    table = res.summary()
    for var in ("mu", "tau"):
        for stat in ("mean", "median", "ci_lower", "ci_upper"):
            err = abs(table.loc[var, stat] - exact.loc[var, stat])
            tol = N_MCSE * _mcse(draws[var], stat)
            assert err <= tol, f"{var} {stat}: mcmc {table.loc[var, stat]:.5f}, exact " + (
                f"{exact.loc[var, stat]:.5f}, |diff| {err:.5f} > {N_MCSE} MCSE = {tol:.5f}"
            )
    return res


def test_crins_mcmc_agrees_with_exact() -> None:
    res = assert_agree(CRINS_YI, CRINS_SE, priors.Normal(0, 4), priors.HalfNormal(0.5))
    assert res.diagnostics is not None and res.diagnostics.n_divergent == 0
    assert set(res.datatree.children) >= {"posterior", "prior", "observed_data", "sample_stats"}
    assert res.datatree.attrs["method"] == "mcmc"
    assert "nutpie" in res.datatree.attrs["package_versions"]


def test_near_zero_heterogeneity() -> None:
    assert_agree(HOMOG_Y, HOMOG_SE, priors.Normal(0, 1), priors.HalfNormal(0.5))


def test_two_studies() -> None:
    assert_agree([0.2, -0.4], [0.3, 0.25], priors.Normal(0, 1), priors.HalfNormal(0.5))


def test_one_study() -> None:
    assert_agree([-0.3], [0.2], priors.Normal(0, 1), priors.HalfNormal(0.5))


TAU_FAMILIES = [
    priors.HalfCauchy(0.5),
    priors.HalfStudentT(3, 0.5),
    priors.turner2015_all_cause_mortality,
    priors.bartos2023_log_hr,
    priors.Uniform(0, 2),
]


@pytest.mark.parametrize("prior_tau", TAU_FAMILIES, ids=repr)
def test_every_tau_family(prior_tau) -> None:
    assert_agree(K3_Y, K3_SE, priors.Normal(0, 1), prior_tau)


def test_uniform_prior_on_mu() -> None:
    assert_agree(K3_Y, K3_SE, priors.Uniform(-1, 2), priors.HalfNormal(0.5))


def test_refits_do_not_recompile_and_k_is_part_of_the_key() -> None:
    # whatever other tests of this process compiled (k = 4 included) is forgotten
    mcmc.clear_cache()
    hm.pool(K3_Y, K3_SE, method="mcmc", seed=1)  # compiled for k = 3
    before = mcmc.compile_count()
    # new data, new hyperparameters, same families and k: no compilation
    a = hm.pool(
        [0.3, 0.1, 0.0],
        [0.1, 0.2, 0.3],
        prior_mu=priors.Normal(0.5, 2),
        prior_tau=priors.HalfNormal(0.1),
        method="mcmc",
        seed=2,
    )
    assert mcmc.compile_count() == before
    # the new hyperparameters took effect: tau's posterior follows the tighter prior
    b = hm.pool(
        [0.3, 0.1, 0.0],
        [0.1, 0.2, 0.3],
        prior_mu=priors.Normal(0.5, 2),
        prior_tau=priors.HalfNormal(1.0),
        method="mcmc",
        seed=2,
    )
    assert mcmc.compile_count() == before
    assert a.summary().loc["tau", "mean"] < b.summary().loc["tau", "mean"]
    # another number of studies is another structure (nutpie cannot change the number
    # of parameters with with_data), compiled once
    hm.pool([0.3, 0.1, 0.0, 0.2], [0.1, 0.2, 0.3, 0.2], method="mcmc", seed=2)
    assert mcmc.compile_count() == before + 1


def test_same_seed_same_numbers() -> None:
    a = hm.pool(K3_Y, K3_SE, method="mcmc", seed=5).posterior_draws()
    b = hm.pool(K3_Y, K3_SE, method="mcmc", seed=5).posterior_draws()
    np.testing.assert_array_equal(a["mu"], b["mu"])
    np.testing.assert_array_equal(a["theta_new"], b["theta_new"])


def test_fixed_effect_mcmc() -> None:
    exact = hm.pool(K3_Y, K3_SE, model="fixed").summary()
    res = hm.pool(K3_Y, K3_SE, model="fixed", method="mcmc", seed=3)
    assert res.ok
    mu = res.posterior_draws()["mu"]
    for stat in ("mean", "median", "ci_lower", "ci_upper"):
        err = abs(res.summary().loc["mu", stat] - exact.loc["mu", stat])
        assert err <= N_MCSE * _mcse(mu, stat), stat
    assert (res.posterior_draws()["tau"] == 0).all()


def test_failing_fit_is_flagged_not_reported_clean() -> None:
    """Thresholds no short run can meet: the fit is retried (an ESS failure without
    divergences: a run twice as long at the same target acceptance) and, still failing,
    flagged with the reasons."""
    settings = mcmc.SamplerSettings(
        draws=30, tune=30, chains=2, max_retries=1, ess_min_per_chain=10_000,
        target_accept=0.95, max_divergences=10**6, rhat_max=2.0,
    )  # fmt: skip
    res = hm.pool(K3_Y, K3_SE, method="mcmc", seed=1, settings=settings)
    d = res.diagnostics
    assert d is not None and d.ok is False and res.ok is False
    assert d.retries == 1
    assert any("bulk ESS" in m for m in d.messages)
    assert d.messages[-1] == "still failing after 1 retries with longer runs or safer settings"
    assert d.settings is not None and d.settings.target_accept == 0.95
    assert d.settings.draws == 60 and d.settings.tune == 60
    assert "diagnostics FAILED" in repr(res)
    assert res.datatree.attrs["diagnostics_ok"] == 0


def test_safer_settings() -> None:
    s = mcmc.SamplerSettings()
    t = s.safer()
    assert (t.tune, t.draws, t.target_accept, t.max_treedepth) == (2000, 2000, 0.95, 11)
    assert t.safer().target_accept == pytest.approx(0.99)
    longer = s.longer()
    assert (longer.tune, longer.draws, longer.target_accept, longer.max_treedepth) == (
        2000, 2000, 0.8, 10
    )  # fmt: skip
    # the retry: longer after an ESS failure alone; safer after divergences, an R-hat
    # failure (NaN included) or no run at all
    ess_only = mcmc.Diagnostics(1.001, 150.0, 90.0, 0, False, ("min tail ESS 90 < 400",))
    rhat = mcmc.Diagnostics(1.02, 300.0, 900.0, 0, False, ("max R-hat 1.0200 > 1.01",))
    nan = mcmc.Diagnostics(math.nan, 300.0, 900.0, 0, False, ("max R-hat nan > 1.01",))
    divergent = mcmc.Diagnostics(1.001, 300.0, 900.0, 2, False, ("2 divergent transitions",))
    assert s.retry(ess_only) == longer
    assert s.retry(rhat) == s.retry(nan) == s.retry(divergent) == s.retry(None) == t
    lenient = mcmc.SamplerSettings(max_divergences=5)
    assert lenient.retry(divergent) == lenient.longer()
    with pytest.raises(hm.InputError, match=r"SamplerSettings\.draws must be a positive integer"):
        mcmc.SamplerSettings(draws=0)
    with pytest.raises(hm.InputError, match=r"target_accept must be in \(0, 1\)"):
        mcmc.SamplerSettings(target_accept=1.0)


def test_fast_wrappers_change_no_number(monkeypatch) -> None:
    """hccmeta.models.mcmc replaces nutpie's cfunc wrappers by faster-compiling loops;
    the same model sampled with the same seed gives bit-identical draws either way."""
    import nutpie
    import pytensor
    from nutpie import compile_pymc

    from hccmeta.models.normal_mcmc import _builder

    assert mcmc._use_fast_wrappers()
    data = {
        "y": np.array(K3_Y),
        "sei": np.array(K3_SE),
        "mu_mean": 0.0,
        "mu_sd": 1.0,
        "tau_scale": 0.5,
    }
    build = _builder(3, priors.Normal(0, 1), priors.HalfNormal(0.5))

    def draws() -> np.ndarray:
        # both compiles from scratch: a function loaded from PyTensor's numba cache (written
        # by another process, e.g. another pytest worker) may differ from a fresh compile
        # in the last bits, and NUTS trajectories amplify any difference
        with pytensor.config.change_flags(numba__cache=False):
            model = nutpie.compile_pymc_model(build()).with_data(**data)
        trace = nutpie.sample(model, draws=200, tune=200, chains=2, seed=9, progress_bar=False)
        return np.asarray(trace["posterior"]["mu"].values)

    fast = draws()
    monkeypatch.setattr(compile_pymc, "_make_c_logp_func", mcmc._STOCK["_make_c_logp_func"])
    monkeypatch.setattr(compile_pymc, "_make_c_expand_func", mcmc._STOCK["_make_c_expand_func"])
    stock = draws()
    np.testing.assert_array_equal(fast, stock)


def test_c_callbacks_kept_on_disk(monkeypatch, tmp_path) -> None:
    """The C callbacks around a compiled log density are kept in PyTensor's numba cache:
    compiling the same structure again (the compile cache of this process forgotten, as
    in a new process) loads both callbacks from disk instead of compiling them, and the
    draws are bit-identical to those of a fresh compile with no disk cache at all. A
    structure of another size gets callbacks of its own."""
    import nutpie
    import pytensor
    import pytensor.link.numba.cache as numba_cache

    from hccmeta.models.normal_mcmc import _builder

    assert mcmc._use_fast_wrappers()
    # an empty cache of its own: the first compile below compiles (and writes) everything
    monkeypatch.setattr(numba_cache, "NUMBA_CACHE_PATH", tmp_path)

    def data(k: int) -> dict[str, object]:
        return {"y": np.array(K3_Y[:k]), "sei": np.array(K3_SE[:k]), "mu_mean": 0.0,
                "mu_sd": 1.0, "tau_scale": 0.5}  # fmt: skip

    def build(k: int):  # a builder of the model for k studies
        return _builder(k, priors.Normal(0, 1), priors.HalfNormal(0.5))

    def hits(model) -> list[int]:
        # the forwarders nutpie compiles call the cached callbacks (``real``)
        return [
            func._pyfunc.__globals__["real"].cache_hits
            for func in (model.compiled_logp_func, model.compiled_expand_func)
        ]

    def draws(model, k: int) -> np.ndarray:
        trace = nutpie.sample(
            model.with_data(**data(k)), draws=200, tune=200, chains=2, seed=9,
            progress_bar=False,
        )  # fmt: skip
        return np.asarray(trace["posterior"]["mu"].values)

    mcmc.clear_cache()
    first = mcmc.compiled(("tests.c_callbacks", 3), build(3))
    assert hits(first) == [0, 0]
    assert any(tmp_path.glob("*.logp_numba-*.nbi")) and any(tmp_path.glob("*.expand_numba-*.nbi"))
    mcmc.clear_cache()
    again = mcmc.compiled(("tests.c_callbacks", 3), build(3))
    assert hits(again) == [1, 1]
    other = mcmc.compiled(("tests.c_callbacks", 2), build(2))
    assert hits(other) == [0, 0]
    mcmc.clear_cache()
    with pytensor.config.change_flags(numba__cache=False, numba__fastmath=False):
        fresh = nutpie.compile_pymc_model(build(3)())
    assert "real" not in fresh.compiled_logp_func._pyfunc.__globals__  # not through the cache
    np.testing.assert_array_equal(draws(again, 3), draws(first, 3))
    np.testing.assert_array_equal(draws(again, 3), draws(fresh, 3))


def test_pytensor_functions_kept_on_disk(monkeypatch, tmp_path) -> None:
    """nutpie's PyTensor functions (rewritten log density and gradient, expand function)
    are kept on disk under a hash of the model graph: compiling the same structure again
    (the compile cache of this process forgotten, as in a new process) reads them back
    instead of rewriting; the draws are bit-identical to nutpie's own compile; a
    function read back samples the data of the model it was asked for, not of the model
    that stored it; another graph (prior family, number of studies) is another entry."""
    import nutpie
    import pymc as pm
    import pytensor
    from nutpie import compile_pymc

    from hccmeta.models.normal_mcmc import _builder

    assert mcmc._use_fast_wrappers() and "_make_functions" in mcmc._STOCK
    monkeypatch.setattr(mcmc, "_function_dir", lambda: tmp_path)
    stats = mcmc.FUNCTION_CACHE_STATS
    data = {"y": np.array(K3_Y), "sei": np.array(K3_SE), "mu_mean": 0.0, "mu_sd": 1.0,
            "tau_scale": 0.5}  # fmt: skip

    def draws(model) -> np.ndarray:
        trace = nutpie.sample(
            model.with_data(**data), draws=200, tune=200, chains=2, seed=9, progress_bar=False
        )
        return np.asarray(trace["posterior"]["mu"].values)

    mcmc.clear_cache()
    before = dict(stats)
    mcmc.compiled(("tests.functions", 3), _builder(3, priors.Normal(0, 1), priors.HalfNormal(0.5)))
    assert stats["compiled"] == before["compiled"] + 1 and len(list(tmp_path.glob("*.pkl"))) == 1
    mcmc.clear_cache()
    again = mcmc.compiled(
        ("tests.functions", 3), _builder(3, priors.Normal(0, 1), priors.HalfNormal(0.5))
    )
    # read back without the functions: the C callbacks linked from numba's cache
    assert stats["loaded"] == before["loaded"] + 1 and stats["linked"] == before["linked"] + 1
    assert type(again.logp_func).__name__ == "_LinkedFunction"
    # without numba's cache the callbacks cannot be linked: the functions are read back
    mcmc.clear_cache()
    with pytensor.config.change_flags(numba__cache=False):
        unlinked = mcmc.compiled(
            ("tests.functions", 3), _builder(3, priors.Normal(0, 1), priors.HalfNormal(0.5))
        )
    assert stats["loaded"] == before["loaded"] + 2 and stats["linked"] == before["linked"] + 1
    assert type(unlinked.logp_func).__name__ == "Function"
    mcmc.compiled(("tests.functions", 2), _builder(2, priors.Normal(0, 1), priors.HalfNormal(0.5)))
    mcmc.compiled(
        ("tests.functions", "HC"), _builder(3, priors.Normal(0, 1), priors.HalfCauchy(0.5))
    )
    assert stats["compiled"] == before["compiled"] + 3 and len(list(tmp_path.glob("*.pkl"))) == 3
    monkeypatch.setattr(compile_pymc, "_make_functions", mcmc._STOCK["_make_functions"])
    with pytensor.config.change_flags(numba__fastmath=False):  # as mcmc.compiled does
        stock = nutpie.compile_pymc_model(
            _builder(3, priors.Normal(0, 1), priors.HalfNormal(0.5))(), backend="numba"
        )
    np.testing.assert_array_equal(draws(again), draws(stock))
    np.testing.assert_array_equal(draws(unlinked), draws(stock))
    monkeypatch.undo()
    monkeypatch.setattr(mcmc, "_function_dir", lambda: tmp_path)

    def normal_mean(y0: list[float]):  # y_i ~ N(mu, 1), mu ~ N(0, 10); y's default y0
        def build():
            with pm.Model() as model:
                y = pm.Data("y", np.asarray(y0))
                pm.Normal("obs", pm.Normal("mu", 0.0, 10.0), 1.0, observed=y)
            return model

        return build

    def arms(n_arm: int):  # the same graph for any number of arms; another shape
        def build():
            with pm.Model(coords={"arm": list(range(n_arm))}) as model:
                mu = pm.Normal("mu", 0.0, 1.0, dims="arm")
                pm.Normal("obs", mu[pm.Data("idx", np.zeros(4, dtype="int64"))], 1.0,
                          observed=pm.Data("y", np.zeros(4)))  # fmt: skip
            return model

        return build

    mcmc.clear_cache()
    two = mcmc.compiled(("tests.functions", "arms"), arms(2))
    mcmc.clear_cache()
    three = mcmc.compiled(("tests.functions", "arms"), arms(3))
    assert (two.n_dim, three.n_dim) == (2, 3)
    assert stats["compiled"] == before["compiled"] + 5
    mcmc.clear_cache()
    mcmc.compiled(("tests.functions", "mean"), normal_mean([0.0, 0.0, 0.0]))
    mcmc.clear_cache()
    read = mcmc.compiled(("tests.functions", "mean"), normal_mean([1.0, 2.0, 3.0]))
    assert stats["loaded"] == before["loaded"] + 3 and stats["linked"] == before["linked"] + 2
    trace = nutpie.sample(read, draws=500, tune=300, chains=2, seed=3, progress_bar=False)
    # posterior mean 6 / (3 + 1/100) = 1.993 (sd 0.58) for the data [1, 2, 3]; 0 for [0, 0, 0]
    assert abs(float(trace["posterior"]["mu"].mean()) - 6.0 / 3.01) < 0.1


def test_draws_converted_as_nutpie_converts_them(monkeypatch) -> None:
    """The fast conversion of a finished run (:mod:`hccmeta.models.arrow_trace`) gives
    nutpie's own DataTree: same groups, variables and their order, dtypes, dims,
    coordinates (study labels) and values (missing statistics included), attributes
    but the creation time; a retry's larger run and its warm-up rows too."""
    import sys

    import xarray as xr

    from hccmeta.models.arrow_trace import arrow_to_datatree

    mcmc._use_fast_wrappers()  # imports nutpie
    sample_module = sys.modules["nutpie.sample"]
    seen: list[tuple[object, object, dict]] = []
    stock = mcmc._STOCK.get("_arrow_to_arviz") or sample_module._arrow_to_arviz

    def capture(draw_batches, stat_batches, **kwargs):
        seen.append((draw_batches, stat_batches, kwargs))
        return stock(draw_batches, stat_batches, **kwargs)

    settings = mcmc.SamplerSettings(draws=200, tune=200, max_retries=1, ess_min_per_chain=1e6)
    monkeypatch.setattr(sample_module, "_arrow_to_arviz", capture)
    hm.pool(yi=[0.1, 0.4, -0.2], sei=[0.2, 0.3, 0.25], study=["a", "b", "c"],
            prior_mu=priors.Normal(0, 1), prior_tau=priors.HalfNormal(0.5),
            method="mcmc", seed=3, settings=settings)  # fmt: skip
    assert len(seen) == 2  # the first run and its retry (the ESS bar cannot be met)
    for draw_batches, stat_batches, kwargs in seen:
        assert not kwargs["save_warmup"] and kwargs["coords"]
        want = stock(draw_batches, stat_batches, **kwargs)
        got = arrow_to_datatree(draw_batches, stat_batches, **kwargs)
        assert got is not None
        assert list(got.children) == list(want.children) == ["posterior", "sample_stats"]
        for group in want.children:
            a, b = want[group].to_dataset(), got[group].to_dataset()
            assert a.attrs.pop("created_at") and b.attrs.pop("created_at")
            xr.testing.assert_identical(a, b)
            assert list(a.variables) == list(b.variables)
            assert list(a.attrs) == list(b.attrs)
            assert all(a[v].dtype == b[v].dtype for v in a.variables)
        assert got["posterior"].sizes["draw"] == want["posterior"].sizes["draw"]
        # kept warm-up draws are left to nutpie
        kept = {**kwargs, "save_warmup": True}
        assert arrow_to_datatree(draw_batches, stat_batches, **kept) is None
    assert [t[0][0].num_rows for t in seen] == [400, 800]  # warm-up rows come along


def test_arviz_is_imported_only_when_used() -> None:
    """nutpie's ``import arviz`` (the meta-package: arviz-plots, matplotlib's pyplot)
    is deferred while nothing uses it: an MCMC fit in a new process leaves it unloaded,
    and the first use loads the real module."""
    import subprocess
    import sys

    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import hccmeta as hm\n"
        "r = hm.pool(yi=[0.1, 0.4, -0.2], sei=[0.2, 0.3, 0.25], method='mcmc', seed=3)\n"
        "assert r.diagnostics is not None\n"
        "print('plots' if 'arviz_plots' in sys.modules else 'no plots')\n"
        "import arviz\n"
        "print(callable(arviz.from_dict), 'arviz_plots' in sys.modules)\n"
        "print(sys.modules['nutpie.sample'].arviz.from_dict is sys.modules['arviz'].from_dict)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = "no plots" if os.environ.get("HCCMETA_STOCK_NUTPIE") != "1" else "plots"
    assert out.stdout.splitlines() == [expected, "True True", "True"], out.stderr[-2000:]
