"""MCMC fits stored across processes (:func:`hccmeta.models.mcmc.fit_store`, issue 13 item 9).

Inside ``fit_store(store)``, :func:`hccmeta.models.mcmc.sample` returns the fit stored
under the hash of its inputs (:func:`~hccmeta.models.mcmc.fit_key`) instead of compiling
and sampling. The reference for "the same fit" is a fit made with no store at all: a
stored fit must be bit-identical to a recomputation, and every input the result depends
on must change the key. ``hccmeta report`` stores the fits in its result cache, under
the code version as well (:meth:`hccmeta.report.cache.ResultCache.get_fit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hccmeta as hm
from hccmeta.analyses.registry import Registry, load_registry
from hccmeta.models import mcmc
from hccmeta.report import cache as cache_module
from hccmeta.report.cache import ResultCache
from hccmeta.report.collect import collect

from .conftest import STUDY_DATA

SETTINGS = mcmc.SamplerSettings(draws=150, tune=150, chains=2, max_retries=0)
KEY = ("tests.fit_store.normal_mean",)


def _build() -> Any:
    """y_i ~ Normal(mu, 1), mu ~ Normal(0, prior_sd): data and prior scale in pm.Data."""
    import pymc as pm

    with pm.Model() as model:
        y = pm.Data("y", np.zeros(3))
        prior_sd = pm.Data("prior_sd", 10.0)
        mu = pm.Normal("mu", 0.0, prior_sd)
        pm.Normal("obs", mu, 1.0, observed=y)
    return model


class DictStore:
    """A store in memory that counts what it is asked for."""

    def __init__(self) -> None:
        self.fits: dict[str, Any] = {}
        self.asked: list[str] = []

    def get_fit(self, key: str) -> Any:
        self.asked.append(key)
        return self.fits.get(key)

    def put_fit(self, key: str, fit: Any) -> None:
        self.fits[key] = fit


def _args(**change: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "key": KEY,
        "data": {"y": np.array([0.5, 1.0, 1.5]), "prior_sd": 10.0},
        "seed": 7,
        "settings": SETTINGS,
        "var_names": ("mu",),
        "coords": None,
        "init": None,
    }
    args.update(change)
    return args


def _key(**change: Any) -> str | None:
    a = _args(**change)
    return mcmc.fit_key(a.pop("key"), a.pop("data"), **a)


# ------------------------------------------------------------------------ the key
def test_fit_key_changes_with_every_input_and_only_with_them() -> None:
    base = _key()
    assert base is not None and len(base) == 64
    # the same inputs, data given in another order and as other array objects: same key
    assert _key(data={"prior_sd": 10.0, "y": [0.5, 1.0, 1.5]}) == base
    changed = {
        "structure": _key(key=("tests.fit_store.other",)),
        "a data value": _key(data={"y": np.array([0.5, 1.0, 1.6]), "prior_sd": 10.0}),
        "a prior value": _key(data={"y": np.array([0.5, 1.0, 1.5]), "prior_sd": 5.0}),
        "a shape": _key(data={"y": np.array([0.5, 1.0]), "prior_sd": 10.0}),
        "a dtype": _key(data={"y": np.array([0.5, 1.0, 1.5], np.float32), "prior_sd": 10.0}),
        "the seed": _key(seed=8),
        "the settings": _key(settings=mcmc.SamplerSettings(draws=150, tune=151, chains=2)),
        "the checked variables": _key(var_names=None),
        "the coordinates": _key(coords={"study": ["a", "b", "c"]}),
        "the start": _key(init={"mu": 0.3}),
    }
    assert base not in changed.values()
    assert len(set(changed.values())) == len(changed), changed
    assert _key(init={"mu": 0.3}) != _key(init={"mu": 0.4})


def test_a_key_printed_with_an_address_is_not_stored() -> None:
    assert _key(key=("tests.fit_store", object())) is None


# ------------------------------------------------------------------------ sampling
@pytest.mark.sampling
def test_a_stored_fit_is_reused_without_sampling_and_equals_a_fresh_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[int] = []
    original = mcmc._run

    def counting(model: Any, settings: Any, seed: int) -> Any:
        runs.append(seed)
        return original(model, settings, seed)

    monkeypatch.setattr(mcmc, "_run", counting)
    a = _args()
    store = DictStore()
    with mcmc.fit_store(store):
        assert mcmc.current_fit_store() is store
        first, diag = mcmc.sample(a.pop("key"), _build, a.pop("data"), **a)
        assert len(runs) == 1 and len(store.fits) == 1
        a = _args()
        again, diag_again = mcmc.sample(a.pop("key"), _build, a.pop("data"), **a)
    assert mcmc.current_fit_store() is None
    assert len(runs) == 1  # read back: not sampled again
    assert diag_again == diag
    mu = np.asarray(first.posterior["mu"])
    np.testing.assert_array_equal(np.asarray(again.posterior["mu"]), mu)
    # with no store the same inputs sample again, and give the very same draws
    a = _args()
    fresh, _ = mcmc.sample(a.pop("key"), _build, a.pop("data"), **a)
    assert len(runs) == 2
    np.testing.assert_array_equal(np.asarray(fresh.posterior["mu"]), mu)
    # the posterior is the conjugate one: mean 3 ybar / (3 + 1/100), sd 1/sqrt(3.01)
    assert abs(mu.mean() - 3.0 / 3.01) < 4 / np.sqrt(3.01) / np.sqrt(len(mu.ravel()) / 2)
    # another data value is another fit
    a = _args(data={"y": np.array([2.5, 3.0, 3.5]), "prior_sd": 10.0})
    with mcmc.fit_store(store):
        other, _ = mcmc.sample(a.pop("key"), _build, a.pop("data"), **a)
    assert len(runs) == 3 and len(store.fits) == 2
    assert float(np.asarray(other.posterior["mu"]).mean()) > mu.mean() + 1.0


# ------------------------------------------------------------------------ the report's cache
def test_result_cache_keeps_fits_per_code_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ResultCache(tmp_path / "cache")
    fit = ({"posterior": np.arange(4.0)}, "diagnostics")
    assert cache.get_fit("k" * 64) is None
    cache.put_fit("k" * 64, fit)
    again = ResultCache(tmp_path / "cache")  # another process
    got = again.get_fit("k" * 64)
    assert got is not None and got[1] == "diagnostics"
    np.testing.assert_array_equal(got[0]["posterior"], np.arange(4.0))
    assert again.fits == {"reused": 1, "sampled": 0}
    assert again.stats["hits"] == again.stats["misses"] == 0  # results are counted apart
    monkeypatch.setattr(cache_module, "code_version", lambda: "another version of the code")
    assert again.get_fit("k" * 64) is None
    assert again.fits == {"reused": 1, "sampled": 1}
    assert ResultCache(None).get_fit("k" * 64) is None  # the cache off


def test_collect_samples_through_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While ``collect`` runs the analyses, the fit store is its result cache (and none
    when the cache is off); it is gone afterwards."""
    import hccmeta.analyses.run as run_module

    seen: list[Any] = []
    original = run_module.run_analysis

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(mcmc.current_fit_store())
        return original(*args, **kwargs)

    monkeypatch.setattr(run_module, "run_analysis", recording)
    evidence = hm.load_studies(STUDY_DATA)
    full = load_registry(STUDY_DATA)
    registry = Registry(analyses=[full.get("os_tace_plus_sorafenib_vs_sorafenib")])
    cache = ResultCache(tmp_path / "cache")
    collect(evidence, seed=5, registry=registry, sensitivity=False, cache=cache)
    assert seen and all(store is cache for store in seen)
    seen.clear()
    collect(evidence, seed=5, registry=registry, sensitivity=False, cache=ResultCache(None))
    assert seen and all(store is None for store in seen)
    assert mcmc.current_fit_store() is None
