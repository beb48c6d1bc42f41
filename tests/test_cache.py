"""The result cache of ``hccmeta report`` (:mod:`hccmeta.report.cache`).

Runs :func:`hccmeta.report.collect.collect` (and once :func:`write_report`) twice on a
copy of the five studies whose registry keeps two analyses of the exact engine, with
the cache in a temporary directory, and counts the analyses fitted by wrapping
:func:`hccmeta.analyses.run.run_analysis`. The reference for "the same result" is a
run without the cache on the same data: a cached result must equal a recomputation.

The two analyses take different studies: ``os_tace_plus_sorafenib_vs_sorafenib`` the
hazard ratios of lee2017, tace_resistant_n34 and terashima2016; ``pfs_6m_per_regimen``
the 6-month PFS landmarks of park2012 and tace_resistant_n34. park2012 is relevant to the
second only, so editing its landmark refits the second and reuses the first.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ruamel.yaml import YAML

import hccmeta as hm
import hccmeta.analyses.run as run_module
import hccmeta.sensitivity.executor as executor_module
from hccmeta.analyses.registry import load_registry
from hccmeta.report import cache as cache_module
from hccmeta.report import write_report
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


# ------------------------------------------------------------------- the report
def test_report_from_the_cache_is_the_same_bytes(
    tmp_path: Path,
    fitted: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whole report with sensitivity analyses: without cache, cold cache, warm cache,
    and via the command line (HCCMETA_CACHE pointing at the cache); run again with
    nothing changed, the command writes nothing and says the report is up to date; with
    a file of the report edited, it writes the report again."""
    from hccmeta.cli import main

    data = _copy(tmp_path / "study_data", (OS,))
    root = tmp_path / "cache"

    def files(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    write_report(hm.load_studies(data), tmp_path / "plain", seed=3, workers=0)
    write_report(
        hm.load_studies(data), tmp_path / "cold", seed=3, workers=0, cache=ResultCache(root)
    )
    fitted.clear()
    summary = write_report(
        hm.load_studies(data), tmp_path / "warm", seed=3, workers=0, cache=ResultCache(root)
    )
    assert fitted == []
    assert summary.cache is not None and summary.cache["misses"] == 0
    plain = files(tmp_path / "plain")
    assert plain == files(tmp_path / "cold") == files(tmp_path / "warm")
    monkeypatch.setenv("HCCMETA_CACHE", str(root))
    fitted.clear()
    assert main(["report", "--data", str(data), "--out", str(tmp_path / "cli"), "--seed", "3"]) == 0
    assert fitted == [] and files(tmp_path / "cli") == plain
    from hccmeta.report import writer

    cli = ["report", "--data", str(data), "--out", str(tmp_path / "cli"), "--seed", "3"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cli").rglob("*")}
    calls: list[int] = []
    real = writer.write_report

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "write_report", counting)
    capsys.readouterr()
    assert main(cli) == 0
    assert calls == [] and "up to date" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cli").rglob("*")} == stamps
    (tmp_path / "cli" / "index.md").write_text("edited by hand\n")
    assert main(cli) == 0
    assert calls == [1] and "up to date" not in capsys.readouterr().out
    assert fitted == [] and files(tmp_path / "cli") == plain
    assert main([*cli, "--no-sensitivity"]) == 0  # other options: another report
    assert calls == [1, 1] and fitted == []
    fitted.clear()
    out = tmp_path / "quick"
    args = ["report", "--data", str(data), "--out", str(out), "--seed", "3", "--no-sensitivity"]
    assert main([*args, "--no-cache"]) == 0
    assert set(fitted) == {OS}  # --no-cache: fitted anew
    assert not list(root.rglob("*.tmp"))


# ------------------------------------------------------------------------ evidence
def test_evidence_and_registry_come_from_the_cache_until_a_file_changes(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The validated evidence (and the registry) are stored under the hash of every file
    of the data directory: a second load does not parse the YAML, gives the same
    evidence (studies, warnings, data hash) and leaves the result counts alone; an
    edited study file is parsed again; an invalid one raises and stores nothing."""
    from hccmeta.data import loader
    from hccmeta.errors import StudyDataError
    from hccmeta.report.cache import load_evidence, load_registry_cached

    cache = ResultCache(tmp_path / "c")
    first = load_evidence(cache, data, None)
    registry = load_registry_cached(cache, data)
    parsed: list[str] = []
    original = loader.load_studies

    def counting(*args: Any, **kwargs: Any) -> Any:
        parsed.append("load")
        return original(*args, **kwargs)

    monkeypatch.setattr(loader, "load_studies", counting)
    import hccmeta.data as data_module

    monkeypatch.setattr(data_module, "load_studies", counting)
    again = load_evidence(cache, data, None)
    assert parsed == []
    assert again.data_hash == first.data_hash == hm.load_studies(data).data_hash
    assert again.warnings == first.warnings
    assert again.provenance == first.provenance
    assert again.studies_table.equals(first.studies_table)
    assert load_registry_cached(cache, data).names == registry.names
    assert cache.stats["hits"] == cache.stats["misses"] == 0  # results only

    _edit(data / "park2012.yaml", PARK_PFS_OLD, PARK_PFS_NEW)
    edited = load_evidence(cache, data, None)
    assert parsed == ["load"] and edited.data_hash != first.data_hash

    _edit(data / "park2012.yaml", PARK_PFS_NEW, "survival: 1.55")
    with pytest.raises(StudyDataError, match="park2012"):
        load_evidence(cache, data, None)
    with pytest.raises(StudyDataError, match="park2012"):  # not stored: raises again
        load_evidence(cache, data, None)


def _yaml_entries(cache: ResultCache) -> set[str]:
    assert cache.directory is not None
    root = cache.directory / f"v{cache_module.FORMAT}" / "yaml"
    return {p.name for p in root.rglob("*.pkl")} if root.is_dir() else set()


def test_an_edited_study_is_the_only_file_parsed_again(data: Path, tmp_path: Path) -> None:
    """Each parsed YAML file is kept under the hash of its text: after one study is
    edited, loading stores one new parsed file (the edited one) and gives what loading
    without any cache gives; a file the reading policy refuses is never stored."""
    from hccmeta.data.yamlio import parse_store, read_yaml
    from hccmeta.errors import Problem
    from hccmeta.report.cache import load_evidence

    cache = ResultCache(tmp_path / "c")
    load_evidence(cache, data, None)
    files = _yaml_entries(cache)
    n_yaml = len(list(data.glob("*.yaml")))
    assert 1 <= len(files) <= n_yaml  # the study files and the vocabulary

    _edit(data / "park2012.yaml", PARK_PFS_OLD, PARK_PFS_NEW)
    edited = load_evidence(cache, data, None)
    assert len(_yaml_entries(cache) - files) == 1  # only park2012.yaml parsed and kept
    fresh = hm.load_studies(data)
    assert edited.data_hash == fresh.data_hash
    assert edited.warnings == fresh.warnings
    assert edited.provenance == fresh.provenance
    assert edited.studies_table.equals(fresh.studies_table)
    study = next(s for s in edited.studies if s.id == "park2012")
    assert "0.55" in repr(study)

    # a refused text: a Problem with its line, every time, and nothing kept
    bad = tmp_path / "anchor.yaml"
    bad.write_text("a: &x 1\nb: *x\n", "utf-8")
    before = _yaml_entries(cache)
    with parse_store(cache):
        for _ in range(2):
            got = read_yaml(bad, "anchor.yaml")
            assert isinstance(got, Problem) and got.line == 1 and "anchor" in got.message
    assert _yaml_entries(cache) == before
    # a good text read back from the store has its line numbers
    good = data / "park2012.yaml"
    with parse_store(cache):
        stored = read_yaml(good, "park2012.yaml")
    plain = read_yaml(good, "park2012.yaml")
    assert not isinstance(stored, Problem) and not isinstance(plain, Problem)
    assert stored[0] == plain[0]
    assert stored[1].line(("records", 0)) == plain[1].line(("records", 0)) > 1
