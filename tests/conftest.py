"""Shared fixtures: the real evidence, the source texts."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats

import hccmeta as hm
from hccmeta.analyses.run import AnalysisResult

REPO = Path(__file__).resolve().parents[1]
#: The repository's study data, whatever studies it holds (a user may have added some).
REPO_STUDY_DATA = REPO / "study_data"
#: The type of the :func:`default_result` fixture.
DefaultResult = Callable[[str], AnalysisResult]

#: The five studies the tests state facts about (SPEC section 1), by id and file.
FIVE_STUDIES = ("lee2017", "park2012", "tace_resistant_n34", "tamai2017", "terashima2016")


def _five_studies() -> Path:
    """A copy of study_data/ with the five named studies only (and the vocabulary and the
    registry), so that tests stating facts about them keep holding when a user adds a
    study (one copy per test process, removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="hccmeta-five-studies-"))
    atexit.register(shutil.rmtree, root, True)
    data = root / "study_data"
    data.mkdir()
    for name in (*(f"{s}.yaml" for s in FIVE_STUDIES), "vocabulary.yaml", "analyses.yaml"):
        shutil.copy2(REPO_STUDY_DATA / name, data / name)
    return data


#: The data directory of the tests: the five studies (see :func:`_five_studies`).
STUDY_DATA = _five_studies()


#: $HCCMETA_SOURCES as the test session found it (each test runs without it: see
#: :func:`_no_sources_from_the_environment`).
_SOURCES_ENV = os.environ.get("HCCMETA_SOURCES")


def sources_dir() -> Path | None:
    """The source texts: the first directory of $HCCMETA_SOURCES, else ../shared/sources
    beside the repository."""
    env = (_SOURCES_ENV or "").split(os.pathsep)[0]
    path = Path(env) if env else REPO.parent / "shared" / "sources"
    return path if path.is_dir() and any(path.iterdir()) else None


@pytest.fixture(autouse=True)
def _no_sources_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands in tests check provenance only where a test passes --sources: the
    outputs they expect must not depend on $HCCMETA_SOURCES of the shell."""
    monkeypatch.delenv("HCCMETA_SOURCES", raising=False)


@pytest.fixture(autouse=True)
def _no_result_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """``hccmeta report`` in tests fits everything: no test reads or fills the result
    cache of the repository (tests/test_cache.py points it at a temporary directory)."""
    monkeypatch.setenv("HCCMETA_CACHE", "off")


@pytest.fixture(scope="session")
def sources() -> Path:
    """The source texts, or skip — except in CI, where a missing folder fails the test.

    A skip is indistinguishable from a pass in a job log, so ``.ci/run`` sets
    ``HCCMETA_REQUIRE_SOURCES=1``.
    """
    path = sources_dir()
    if path is None:
        msg = "source texts not found (set HCCMETA_SOURCES or put them in ../shared/sources)"
        if os.environ.get("HCCMETA_REQUIRE_SOURCES") == "1":
            pytest.fail(msg + " — required here (HCCMETA_REQUIRE_SOURCES=1)")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def evidence() -> hm.Evidence:
    """The validated study data of the five studies (a copy of study_data/ holding them)."""
    return hm.load_studies(STUDY_DATA)


@pytest.fixture(scope="session")
def default_result(evidence: hm.Evidence) -> DefaultResult:
    """``default_result(name)``: ``hm.run_analysis(name, evidence)`` of the five studies
    with every default (data, options, priors, seed), computed once per test process.
    Many tests read the same default analyses; each fit is made once, not per test (a
    test must not modify the result it gets)."""
    done: dict[str, AnalysisResult] = {}

    def get(name: str) -> AnalysisResult:
        if name not in done:
            done[name] = hm.run_analysis(name, evidence)
        return done[name]

    return get


#: Test modules that read the default analyses of the five studies (:func:`default_result`):
#: one xdist work unit, so that one worker makes each of those fits once per session.
SHARED_DEFAULT_RESULTS = frozenset(
    {
        "test_analyses.py",
        "test_certainty.py",
        "test_cli_contract.py",
        "test_prior_dominance.py",
        "test_sensitivity.py",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (``make test``), except that the modules of
    :data:`SHARED_DEFAULT_RESULTS` are one work unit. (xdist's own ``loadgroup`` marks a
    group in ``item._nodeid``, which pytest 9 no longer reads: it runs as ``load``.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _SharedDefaults(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "default_results" if Path(path).name in SHARED_DEFAULT_RESULTS else path

    return _SharedDefaults(config, log)


#: Exact engine vs a brute-force quadrature of the same posterior: both are numerical
#: integrations of a smooth 1-D density, so they agree to ~1e-4 on the log-HR scale.
TOL_EXACT = 2e-3


def posterior_mu_k1(y: float, s: float, mu_sd: float, tau_scale: float) -> tuple[float, float]:
    """Posterior median and 97.5% quantile of mu for one study, mu ~ N(0, mu_sd^2),
    tau ~ HalfNormal(tau_scale): a brute-force trapezoid rule on a 2-D grid of (mu, tau),
    independent of the engine's quadrature."""
    mu = np.linspace(-6.0, 6.0, 2401)[:, None]
    tau = np.linspace(0.0, 8.0 * tau_scale, 1601)[None, :]
    joint = (
        stats.norm.pdf(y, mu, np.sqrt(s**2 + tau**2))
        * stats.norm.pdf(mu, 0.0, mu_sd)
        * stats.halfnorm.pdf(tau, scale=tau_scale)
    )
    dens = integrate.trapezoid(joint, tau.ravel(), axis=1)
    cdf = integrate.cumulative_trapezoid(dens, mu.ravel(), initial=0.0)
    cdf /= cdf[-1]
    grid = mu.ravel()
    return float(np.interp(0.5, cdf, grid)), float(np.interp(0.975, cdf, grid))
