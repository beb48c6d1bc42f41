"""The result cache of ``hccmeta report`` (:mod:`hccmeta.report.cache`).

Runs :func:`hccmeta.report.collect.collect` (and once :func:`write_report`) twice on a
copy of the five studies whose registry keeps two analyses of the exact engine, with
the cache in a temporary directory, and counts the analyses fitted by wrapping
:func:`hccmeta.analyses.run.run_analysis`. The reference for "the same result" is a
run without the cache on the same data: a cached result must equal a recomputation.

The two analyses take different studies: ``os_tace_plus_sorafenib_vs_sorafenib`` the
hazard ratios of tace_resistant_n34 and terashima2016 (lee2017's hazard ratios compare
prognostic groups, which it does not select); ``pfs_6m_per_regimen`` the 6-month PFS
landmark of park2012. park2012 is relevant to the second only, so editing its landmark
refits the second and reuses the first.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ruamel.yaml import YAML

import hccmeta as hm
import hccmeta.analyses.run as run_module
import hccmeta.effects.derive as derive_module
import hccmeta.sensitivity.executor as executor_module
from hccmeta.analyses.registry import load_registry
from hccmeta.cli import main
from hccmeta.errors import InputError
from hccmeta.report import cache as cache_module
from hccmeta.report.cache import ResultCache, analysis_key, cache_dir, relevant_studies
from hccmeta.report.collect import ReportData, collect

from .conftest import STUDY_DATA

OS = "os_tace_plus_sorafenib_vs_sorafenib"
PFS = "pfs_6m_per_regimen"
#: park2012's 6-month PFS rate (52%, CI 37.3-66.1), edited to 55%.
PARK_PFS_OLD, PARK_PFS_NEW = "survival: 0.52", "survival: 0.55"


def _copy(dest: Path, analyses: tuple[str, ...] = (OS, PFS)) -> Path:
    """A copy of the five studies whose registry keeps ``analyses``."""
    shutil.copytree(STUDY_DATA, dest)
    yaml = YAML()
    path = dest / "analyses.yaml"
    registry = yaml.load(path.read_text("utf-8"))
    registry["analyses"] = [a for a in registry["analyses"] if a["name"] in analyses]
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(registry, fh)
    return dest


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert text.count(old) == 1, f"{path.name}: {old!r}"
    path.write_text(text.replace(old, new), "utf-8")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return _copy(tmp_path / "study_data")


@pytest.fixture
def fitted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The analyses run_analysis is called for (primary and variant fits)."""
    calls: list[str] = []
    original = run_module.run_analysis

    def counting(analysis: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(analysis if isinstance(analysis, str) else analysis.name)
        return original(analysis, *args, **kwargs)

    monkeypatch.setattr(run_module, "run_analysis", counting)
    monkeypatch.setattr(executor_module, "run_analysis", counting)
    return calls


def _collect(data: Path, cache: ResultCache | None, *, seed: int = 5) -> ReportData:
    return collect(hm.load_studies(data), seed=seed, sensitivity=False, cache=cache)


def _estimates(report: ReportData) -> dict[str, pd.DataFrame]:
    return {s.name: s.result.estimates for s in report.sections}


def _assert_same(a: ReportData, b: ReportData) -> None:
    assert [s.name for s in a.sections] == [s.name for s in b.sections]
    for sa, sb in zip(a.sections, b.sections, strict=True):
        pd.testing.assert_frame_equal(sa.result.estimates, sb.result.estimates)
        pd.testing.assert_frame_equal(sa.result.effects, sb.result.effects)
        assert sa.result.data_hash == sb.result.data_hash
        assert sa.result.priors == sb.result.priors
        assert sa.statement == sb.statement
    pd.testing.assert_frame_equal(a.account, b.account)


# ------------------------------------------------------------------------ reuse
def test_second_run_fits_nothing_and_gives_the_same_results(
    data: Path, tmp_path: Path, fitted: list[str]
) -> None:
    cache = ResultCache(tmp_path / "cache")
    first = _collect(data, cache)
    assert sorted(set(fitted)) == [OS, PFS]
    assert cache.stats["writes"] == 2 and cache.stats["hits"] == 0
    fitted.clear()
    second = _collect(data, ResultCache(tmp_path / "cache"))
    assert fitted == []  # nothing refitted
    _assert_same(first, second)
    _assert_same(_collect(data, None), second)  # and what a recomputation gives


def test_editing_one_study_refits_only_the_analyses_it_is_relevant_to(
    data: Path, tmp_path: Path, fitted: list[str]
) -> None:
    ev = hm.load_studies(data)
    derived = hm.derive_effects(ev)
    registry = load_registry(data)
    assert "park2012" in relevant_studies(registry.get(PFS), derived)
    assert "park2012" not in relevant_studies(registry.get(OS), derived)
    before = _collect(data, ResultCache(tmp_path / "cache"))
    _edit(data / "park2012.yaml", PARK_PFS_OLD, PARK_PFS_NEW)
    fitted.clear()
    cache = ResultCache(tmp_path / "cache")
    edited = _collect(data, cache)
    assert set(fitted) == {PFS}
    assert cache.stats["hits"] == 1
    _assert_same(edited, _collect(data, None))
    # the edit reached the refitted analysis: park2012's effect changed, not the other's
    old, new = (
        next(s.result for s in r.sections if s.name == PFS).effects.set_index("study")["yi"]
        for r in (before, edited)
    )
    assert new["park2012"] != old["park2012"]
    pd.testing.assert_series_equal(new.drop("park2012"), old.drop("park2012"))


def test_a_changed_prior_or_seed_invalidates(data: Path, tmp_path: Path, fitted: list[str]) -> None:
    _collect(data, ResultCache(tmp_path / "cache"))
    fitted.clear()
    _collect(data, ResultCache(tmp_path / "cache"), seed=6)  # another seed: every fit
    assert sorted(set(fitted)) == [OS, PFS]
    yaml = YAML()
    path = data / "analyses.yaml"
    registry = yaml.load(path.read_text("utf-8"))
    for a in registry["analyses"]:
        if a["name"] == OS:
            a["prior_tau"] = "halfnormal:0.3"
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(registry, fh)
    fitted.clear()
    changed = _collect(data, ResultCache(tmp_path / "cache"))
    assert set(fitted) == {OS}
    os_result = next(s.result for s in changed.sections if s.name == OS)
    assert os_result.priors["tau"] == "HalfNormal(scale=0.3)"


def test_code_version_change_invalidates(
    data: Path, tmp_path: Path, fitted: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _collect(data, ResultCache(tmp_path / "cache"))
    monkeypatch.setattr(hm, "__version__", hm.__version__ + ".post1")
    fitted.clear()
    _collect(data, ResultCache(tmp_path / "cache"))
    assert sorted(set(fitted)) == [OS, PFS]
    # a change to a source file of the package (its hash), the version unchanged
    monkeypatch.setattr(cache_module, "_source_hash", lambda: "another source tree")
    fitted.clear()
    _collect(data, ResultCache(tmp_path / "cache"))
    assert sorted(set(fitted)) == [OS, PFS]


# ------------------------------------------------------------------- robustness
def test_corrupt_entries_are_misses(data: Path, tmp_path: Path, fitted: list[str]) -> None:
    root = tmp_path / "cache"
    first = _collect(data, ResultCache(root))
    entries = sorted((root / f"v{cache_module.FORMAT}" / "primary").rglob("*.pkl"))
    assert len(entries) == 2
    entries[0].write_bytes(entries[0].read_bytes()[:200])  # truncated
    blob = bytearray(entries[1].read_bytes())
    blob[-10] ^= 0xFF  # one byte of the payload flipped
    entries[1].write_bytes(bytes(blob))
    fitted.clear()
    cache = ResultCache(root)
    second = _collect(data, cache)
    assert sorted(set(fitted)) == [OS, PFS]
    assert cache.stats["bad"] == 2 and cache.stats["writes"] == 2
    _assert_same(first, second)
    fitted.clear()
    _collect(data, ResultCache(root))  # rewritten: good entries again
    assert fitted == []


def test_entry_format(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c")
    cache.put("primary", "ab" * 32, {"x": 1.5})
    assert cache.get("primary", "ab" * 32) == {"x": 1.5}
    assert cache.get("sensitivity", "ab" * 32) is None  # another kind
    (path,) = (tmp_path / "c").rglob("*.pkl")
    for damage in (b"", b"not a cache entry", path.read_bytes().replace(b'"ab', b'"cd', 1)):
        path.write_bytes(damage)
        assert cache.get("primary", "ab" * 32) is None
    assert cache.stats["bad"] == 3
    cache.put("primary", "cd" * 32, lambda: None)  # does not pickle: counted, not raised
    assert cache.stats["write_errors"] == 1
    assert not list((tmp_path / "c").rglob("*.tmp"))  # no partial entry left
    assert cache.get("primary", "cd" * 32) is None
    off = ResultCache(None)
    off.put("primary", "ab" * 32, 1)
    assert off.get("primary", "ab" * 32) is None and not off.enabled


def test_cache_directory_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for value in ("off", "OFF", "0", "false"):
        monkeypatch.setenv("HCCMETA_CACHE", value)
        assert cache_dir() is None
    monkeypatch.setenv("HCCMETA_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("HCCMETA_CACHE")
    repo = Path(cache_module.__file__).resolve().parents[2]
    assert cache_dir() == repo / ".hccmeta-cache"
    assert "/.hccmeta-cache/" in (repo / ".gitignore").read_text("utf-8").split()


def _entries(root: Path) -> dict[str, int]:
    """Size of every entry under ``root``, by key."""
    return {p.stem: p.stat().st_size for p in root.rglob("*.pkl")}


def test_prune_by_age_then_least_recently_used_beyond_the_size_limit(tmp_path: Path) -> None:
    root = tmp_path / "c"
    cache = ResultCache(root)
    keys = [f"{i:02d}" * 32 for i in range(6)]
    for key in keys:
        cache.put("fit", key, bytes(1000))
    (size,) = set(_entries(root).values())  # entries of equal size
    now = time.time()
    for i, key in enumerate(keys):  # last used: keys[0] 6 hours ago ... keys[5] 1 hour ago
        os.utime(cache._path("fit", key), (now - 3600 * (6 - i),) * 2)
    os.utime(cache._path("fit", keys[0]), (now - 31 * 86400,) * 2)  # unused for 31 days
    assert cache.get("fit", keys[1]) == bytes(1000)  # read: now the most recently used
    temp = root / "v1" / "fit"
    (temp / ".killed.tmp").write_bytes(b"x")
    os.utime(temp / ".killed.tmp", (now - 2 * 86400,) * 2)  # a killed run's, 2 days old
    (temp / ".running.tmp").write_bytes(b"x")  # a running report's: kept

    assert cache.prune() == 2  # no size limit: keys[0] and the old temporary file
    assert sorted(_entries(root)) == keys[1:]
    # room for 3.5 entries: the least recently used go (keys[2], keys[3]), not keys[1]
    assert cache.prune(max_bytes=3 * size + size // 2) == 2
    assert sorted(_entries(root)) == [keys[1], keys[4], keys[5]]
    assert (temp / ".running.tmp").exists()
    assert cache.get("fit", keys[2]) is None and cache.get("fit", keys[1]) == bytes(1000)
    assert ResultCache(root, max_bytes=3 * size).prune() == 0  # within the limit
    assert ResultCache(root, max_bytes=0).prune() == 3
    assert _entries(root) == {} and (temp / ".running.tmp").exists()


def test_size_limit_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCCMETA_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("HCCMETA_CACHE_MAX_MB", raising=False)
    assert ResultCache.from_env().max_bytes == 1000 * 10**6
    for text, limit in (("250", 250 * 10**6), (" 0 ", 0)):
        monkeypatch.setenv("HCCMETA_CACHE_MAX_MB", text)
        assert ResultCache.from_env().max_bytes == limit
    for text in ("abc", "-1", "1.5", "1e3"):
        monkeypatch.setenv("HCCMETA_CACHE_MAX_MB", text)
        with pytest.raises(InputError, match=rf"^HCCMETA_CACHE_MAX_MB='{re.escape(text)}': "):
            ResultCache.from_env()
        assert ResultCache.from_env(enabled=False).max_bytes is None  # not read when off
    monkeypatch.setenv("HCCMETA_CACHE", "off")
    assert ResultCache.from_env().directory is None


def test_report_command_keeps_the_cache_within_its_limit(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "reports"
    monkeypatch.setenv("HCCMETA_CACHE", str(cache))
    monkeypatch.setenv("HCCMETA_CACHE_MAX_MB", "ten")
    args = ["report", "--data", str(data), "--out", str(out), "--no-sensitivity"]
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(
        "hccmeta report: error: HCCMETA_CACHE_MAX_MB='ten': expected the cache's size limit"
    )
    assert not out.exists() and not cache.exists()  # nothing written
    monkeypatch.setenv("HCCMETA_CACHE_MAX_MB", "0")
    assert main(args) == 0
    assert (out / "index.html").is_file() and _entries(cache) == {}
    monkeypatch.delenv("HCCMETA_CACHE_MAX_MB")
    assert main(args) == 0
    assert _entries(cache)  # the default limit keeps this run's entries


def test_key_depends_on_the_relevant_studies_only(data: Path) -> None:
    ev = hm.load_studies(data)
    registry = load_registry(data)
    keys = {n: analysis_key(registry.get(n), ev, hm.derive_effects(ev), seed=1) for n in (OS, PFS)}
    _edit(data / "park2012.yaml", PARK_PFS_OLD, PARK_PFS_NEW)
    ev2 = hm.load_studies(data)
    assert ev2.data_hash != ev.data_hash
    d2 = hm.derive_effects(ev2)
    assert analysis_key(registry.get(OS), ev2, d2, seed=1) == keys[OS]
    assert analysis_key(registry.get(PFS), ev2, d2, seed=1) != keys[PFS]


def test_a_study_no_selector_takes_is_not_relevant(data: Path) -> None:
    """lee2017 has hazard ratios (the OS analysis's measure) but of prognostic groups,
    which only the prognostic analysis selects: editing one changes that analysis's key,
    not the OS analysis's."""
    full = load_registry(STUDY_DATA)
    prognostic = full.get("prognostic_factors")
    ev = hm.load_studies(data)
    derived = hm.derive_effects(ev)
    assert "lee2017" in set(derived.effects.loc[derived.effects["measure"] == "log_hr", "study"])
    assert "lee2017" not in relevant_studies(full.get(OS), derived)
    assert "lee2017" in relevant_studies(prognostic, derived)
    before = {a.name: analysis_key(a, ev, derived, seed=1) for a in (full.get(OS), prognostic)}
    _edit(data / "lee2017.yaml", "median: {value: 3.7}", "median: {value: 3.9}")
    ev2 = hm.load_studies(data)
    d2 = hm.derive_effects(ev2)
    assert analysis_key(full.get(OS), ev2, d2, seed=1) == before[OS]
    assert analysis_key(prognostic, ev2, d2, seed=1) != before["prognostic_factors"]


def test_relevant_studies_cover_every_selection_and_derivation(data: Path) -> None:
    """For every registered analysis: no conversion variant's derivation makes another
    study relevant (what the report checks before storing a sensitivity table); and for
    those of the exact engine, the studies that the analysis and each alternative
    contrast actually take (run_analysis) are relevant."""
    from hccmeta.analyses.run import Variation, run_analysis
    from hccmeta.effects.table import DeriveOptions
    from hccmeta.sensitivity.conversions import CONVERSIONS
    from hccmeta.sensitivity.variants import EXACT_MODELS

    ev = hm.load_studies(data)
    derived = hm.derive_effects(ev)
    others = [hm.derive_effects(ev, **DeriveOptions(**o).as_dict()) for _n, o, _t in CONVERSIONS]
    registry = load_registry(STUDY_DATA)
    checked = 0
    for analysis in registry.analyses:
        base = set(relevant_studies(analysis, derived))
        for other in others:
            assert set(relevant_studies(analysis, other)) <= base, analysis.name
        if analysis.model not in EXACT_MODELS:
            continue
        variations = [Variation()] + [Variation(alternative=a.name) for a in analysis.alternatives]
        for variation in variations:
            res = run_analysis(
                analysis, ev, derived=derived, variation=variation, registry=registry, seed=1
            )
            taken = set(res.effects["study"].astype(str)) if not res.effects.empty else set()
            assert taken <= base, (analysis.name, variation)
            checked += bool(taken)
    assert checked >= 2  # the OS and PFS analyses at least


def test_each_study_is_derived_once_per_options(data: Path, tmp_path: Path) -> None:
    """The derivation store (hccmeta.effects.derive.derive_store, kept in the result
    cache): the tables from stored rows are those derived afresh; after one study is
    edited only that study's rows are derived again, under every set of options."""
    from hccmeta.effects.derive import derive_store

    cache = ResultCache(tmp_path / "cache")
    derived_now: list[str] = []
    original = derive_module._Deriver._study

    def counting(self: Any, study: Any) -> None:
        derived_now.append(study.id)
        original(self, study)

    ev = hm.load_studies(data)
    ids = [s.id for s in ev.studies]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(derive_module._Deriver, "_study", counting)
        with derive_store(cache):
            first = [hm.derive_effects(ev), hm.derive_effects(ev, weibull_shape=1.5)]
        assert derived_now == ids + ids
        derived_now.clear()
        with derive_store(ResultCache(tmp_path / "cache")):
            again = [hm.derive_effects(ev), hm.derive_effects(ev, weibull_shape=1.5)]
        assert derived_now == []
        _edit(data / "park2012.yaml", PARK_PFS_OLD, PARK_PFS_NEW)
        ev2 = hm.load_studies(data)
        with derive_store(ResultCache(tmp_path / "cache")):
            edited = [hm.derive_effects(ev2), hm.derive_effects(ev2, weibull_shape=1.5)]
        assert derived_now == ["park2012", "park2012"]
    fresh = [hm.derive_effects(ev), hm.derive_effects(ev, weibull_shape=1.5)]
    fresh2 = [hm.derive_effects(ev2), hm.derive_effects(ev2, weibull_shape=1.5)]
    for got, want in ((first, fresh), (again, fresh), (edited, fresh2)):
        for a, b in zip(got, want, strict=True):
            pd.testing.assert_frame_equal(a.effects, b.effects, check_exact=True)
            pd.testing.assert_frame_equal(a.underivable, b.underivable, check_exact=True)
    # the edit reached the table: park2012's 6-month PFS effect changed
    old, new = (t[0].effects for t in (fresh, fresh2))
    assert not old[old["study"] == "park2012"]["yi"].equals(new[new["study"] == "park2012"]["yi"])


def test_relevance_covers_agrees_with_selecting_every_derivation() -> None:
    """A sensitivity table is stored only if the studies relevant under the default
    derivation cover those of every conversion variant's derivation; the check skips
    the derivations whose effects signature is the primary's. It gives what selecting
    from every derivation gives, and refuses a derivation that takes another study."""
    from dataclasses import replace

    from hccmeta.effects.table import DeriveOptions
    from hccmeta.report.cache import relevance_covers
    from hccmeta.sensitivity.conversions import CONVERSIONS

    ev = hm.load_studies(STUDY_DATA)
    registry = load_registry(STUDY_DATA)
    base = hm.derive_effects(ev)
    others = [hm.derive_effects(ev, **DeriveOptions(**o).as_dict()) for _, o, _ in CONVERSIONS]
    for name in registry.names:
        analysis = registry.get(name)
        want = set(relevant_studies(analysis, base))
        brute = all(set(relevant_studies(analysis, o)) <= want for o in others)
        assert relevance_covers(analysis, base, others) is brute, name
    # without one relevant study's effects, the full derivation takes a study more
    analysis = registry.get(OS)
    study = relevant_studies(analysis, base)[0]
    fewer = replace(base, effects=base.effects[base.effects["study"] != study])
    assert study not in relevant_studies(analysis, fewer)
    assert relevance_covers(analysis, fewer, [base]) is False
    assert relevance_covers(analysis, base, [fewer]) is True
