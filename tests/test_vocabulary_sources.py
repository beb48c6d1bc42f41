"""The open vocabulary, sources per study, and the helpers for encoding a study
(``new-study``, ``locate``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import hccmeta as hm
from hccmeta.analyses import load_registry, run_analysis
from hccmeta.cli import main
from hccmeta.data.locate import locate
from hccmeta.data.provenance import SourceText
from hccmeta.data.vocabulary import is_randomised, load_vocabulary

from .conftest import STUDY_DATA


@pytest.fixture
def data(tmp_path: Path) -> Path:
    out = tmp_path / "study_data"
    shutil.copytree(STUDY_DATA, out)
    return out


def _replace(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` in ``path``; returns the 1-based line it was on."""
    text = path.read_text("utf-8")
    i = text.index(old)
    path.write_text(text[:i] + new + text[i + len(old) :], "utf-8")
    return text[:i].count("\n") + 1


# ------------------------------------------------------------------------ vocabulary
def test_design_flags_and_labels_come_from_the_vocabulary(evidence: hm.Evidence) -> None:
    vocab = load_vocabulary(STUDY_DATA)
    assert is_randomised("randomised", vocab) is True
    assert is_randomised("retrospective_cohort", vocab) is False
    with pytest.raises(hm.InputError, match="unknown design 'cohort'"):
        is_randomised("cohort", vocab)
    t = evidence.studies_table.set_index("study")
    # Park et al.: phase II single arm, prospective; Terashima: retrospective
    assert bool(t.loc["park2012", "randomised"]) is False
    assert t.loc["park2012", "design_label"] == "Prospective single-arm study"
    assert t.loc["terashima2016", "setting_label"] == "Therapy after sorafenib failure"
    arms = evidence.arms_table.set_index(["study", "arm"])
    assert arms.loc[("tace_resistant_n34", "sorafenib_tace"), "regimen_label"] == (
        "Sorafenib + TACE"
    )


def test_a_design_added_to_the_vocabulary_is_data(data: Path) -> None:
    """A new design with its flags: validated, and the 'prospective only' subset follows
    its ``prospective`` flag (Park's design redefined as retrospective drops it)."""
    _replace(
        data / "vocabulary.yaml",
        "design:\n",
        "design:\n  registry_cohort:\n    label: Registry cohort\n    definition: patients "
        "of a disease registry\n    randomised: false\n    prospective: false\n",
    )
    _replace(data / "park2012.yaml", "design: prospective_single_arm", "design: registry_cohort")
    ev = hm.load_studies(data)
    assert ev.studies_table.set_index("study").loc["park2012", "design_label"] == (
        "Registry cohort"
    )
    res = run_analysis("median_ttp_per_regimen", ev)
    assert "park2012" in set(res.effects["study"])
    sub = run_analysis(
        "median_ttp_per_regimen", ev, variation=hm.analyses.Variation(subset="prospective_only")
    )
    assert "park2012" not in set(sub.effects["study"])


def test_registry_selector_naming_an_unknown_term_is_a_located_error(data: Path) -> None:
    path = data / "analyses.yaml"
    line = _replace(path, "reference_regimen: [tace]", "reference_regimen: [tace_alone]")
    with pytest.raises(hm.StudyDataError) as info:
        load_registry(data)
    (problem,) = info.value.problems
    assert problem.line == line
    assert problem.record == "os_tace_plus_sorafenib_vs_tace_alone"
    assert problem.field == "select.reference_regimen[0]"
    assert problem.message.startswith("unknown regimen 'tace_alone' (known: sorafenib, ")


def test_registry_level_must_be_a_level_of_the_variable(data: Path) -> None:
    line = _replace(data / "analyses.yaml", 'exposed_level: [">=400"]', 'exposed_level: [">400"]')
    with pytest.raises(hm.StudyDataError) as info:
        load_registry(data)
    (problem,) = info.value.problems
    assert (problem.line, problem.record) == (line, "prognostic_factors")
    assert problem.field == "factors.afp_400.select.exposed_level[0]"
    assert problem.message == (
        "unknown level '>400' of afp (known: <400, >=400); levels are defined in vocabulary.yaml"
    )


def test_an_invalid_vocabulary_is_a_located_error(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _replace(data / "vocabulary.yaml", "    randomised: true\n", "    randomised: yes\n")
    assert main(["validate", "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"{data / 'vocabulary.yaml'}:{line}: term randomised: field randomised: "
        "Input should be a valid boolean"
    )


def test_a_survival_record_cannot_take_a_counts_endpoint(data: Path) -> None:
    line = _replace(data / "park2012.yaml", "endpoint: ttp", "endpoint: disease_control")
    with pytest.raises(hm.StudyDataError) as info:
        hm.load_studies(data)
    (problem,) = info.value.problems
    assert problem.line == line and problem.field == "endpoint"
    assert problem.message.startswith(
        "endpoint 'disease_control' belongs to counts records, not to a survival record"
    )


# --------------------------------------------------------------------------- sources
def test_a_snippet_must_be_in_its_own_studys_source(
    data: Path, sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lee's abstract (000) names 54 patients; pointing Lee's file at Park's source (001)
    makes every Lee snippet fail, although each occurs in one of the sources."""
    _replace(data / "lee2017.yaml", "000_94976d806e554833.txt", "001_142775ba47d46864.txt")
    assert main(["validate", "--data", str(data), "--sources", str(sources)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all("lee2017.yaml" in x for x in err)
    assert any("snippet not found in 001_142775ba47d46864.txt" in x for x in err)


def test_a_missing_source_text_is_one_warning_and_the_rest_is_verified(
    data: Path, sources: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = tmp_path / "some_sources"
    partial.mkdir()
    for p in sources.iterdir():
        if not p.name.startswith("002_"):  # Tamai's news summary is missing
            shutil.copy(p, partial / p.name)
    assert main(["validate", "--data", str(data), "--sources", str(partial)]) == 0
    out, err = capsys.readouterr()
    # one line for the study without its source (the others are consistency warnings of
    # the statistics, issue 12, in the same FILE:LINE: warning: form)
    (warning,) = [line for line in err.strip().splitlines() if "NOT verified" in line]
    assert re.fullmatch(
        r".*tamai2017\.yaml:\d+: warning: study tamai2017: source text "
        r"002_a787ef733495bd99\.txt not found in .*: provenance of this study NOT verified",
        warning,
    )
    *lines, summary = err.strip().splitlines()
    assert all(": warning: " in line for line in lines)
    assert re.fullmatch(r"hccmeta validate: \d+ warnings?", summary)
    assert "provenance verified against 4 source files" in out
    assert "1 study unverified (source text not available: tamai2017)" in out
    ev = hm.load_studies(data, sources=partial)
    assert ev.unverified_studies.keys() == {"tamai2017"}
    assert ev.studies_table.set_index("study").loc["tamai2017", "provenance"] == "unverified"


def test_sources_from_the_environment_and_repeated(
    data: Path,
    sources: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for p in sorted(sources.iterdir()):
        shutil.copy(p, (a if p.name < "002" else b) / p.name)
    monkeypatch.delenv("HCCMETA_SOURCES", raising=False)
    assert main(["validate", "--data", str(data)]) == 0
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith("provenance NOT checked: no --sources given (nor HCCMETA_SOURCES)")
    )
    assert main(["validate", "--data", str(data), "--sources", str(a), "--sources", str(b)]) == 0
    repeated = capsys.readouterr()
    assert "NOT verified" not in repeated.err
    assert "provenance verified against 5 source files" in repeated.out
    monkeypatch.setenv("HCCMETA_SOURCES", f"{a}:{b}")
    assert main(["validate", "--data", str(data)]) == 0
    assert capsys.readouterr().out == repeated.out
    monkeypatch.setenv("HCCMETA_SOURCES", f"{a}:{tmp_path / 'nope'}")
    assert main(["validate", "--data", str(data)]) == 2
    assert "HCCMETA_SOURCES: sources directory not found" in capsys.readouterr().err


# ------------------------------------------------------------------------ new-study
def test_new_study_skeleton_lists_what_to_fill_in(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-study", "smith2024", "--data", str(data), "--source", "s.txt"]) == 0
    path = data / "smith2024.yaml"
    text = path.read_text("utf-8")
    # the comments list the vocabulary's terms
    assert "# randomised | prospective_single_arm" in text
    capsys.readouterr()
    assert main(["validate", "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    todo_lines = [i + 1 for i, line in enumerate(text.splitlines()) for _ in
                  range(line.split("#")[0].count("TODO"))]  # fmt: skip
    assert [int(x.split(":")[1]) for x in err] == todo_lines
    assert all(x.endswith("still TODO: fill in this value") for x in err)
    # filled in, it validates
    filled = text
    for old, new in (
        ("citation: TODO", "citation: Smith A. A made-up study for this test."),
        ("source_kind: TODO", "source_kind: abstract"),
        ("design: TODO", "design: randomised"),
        ("setting: TODO", "setting: concurrent_tace_sorafenib"),
        ("population_size: TODO", "population_size: 10"),
        ("location: TODO  # e.g. Abstract, Methods", "location: Abstract"),
        ("snippet: TODO  # verbatim text of the source", "snippet: ten patients were treated"),
        ("id: TODO", "id: combo"),
        ("label: TODO", "label: TACE plus sorafenib"),
        ("regimen: TODO", "regimen: sorafenib_tace"),
        ("n: TODO", "n: 10"),
        (
            "{location: TODO, snippet: TODO}",
            "{location: Abstract, snippet: 'ten patients (n = 10)'}",
        ),
    ):
        filled = filled.replace(old, new, 1)
    path.write_text(filled, "utf-8")
    assert main(["validate", "--data", str(data)]) == 0
    # never overwritten
    assert main(["new-study", "smith2024", "--data", str(data)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert path.read_text("utf-8") == filled


# --------------------------------------------------------------------------- locate
def test_locate_finds_line_and_heading(sources: Path) -> None:
    """The n=34 study, 003: line 381 reads 'Median overall survival time from the start
    of' under the heading 'Overall survival and time to progression' (line 362)."""
    src = SourceText.read(sources / "003_e2d4ec54670229da.txt")
    hit = locate(src, "Median overall survival time from the start of sorafenib")
    assert hit.found and (hit.line, hit.end_line) == (381, 382)
    assert hit.heading == "Overall survival and time to progression"
    assert src.text.splitlines()[hit.line - 1].startswith("Median overall survival time")


def test_locate_shows_the_closest_passage(sources: Path) -> None:
    """Table 1 of 003 prints 'Sorafenib with TACE (n = 22)' over lines 214-215; a snippet
    with 23 is not found, the closest passage is that one, and the difference is shown."""
    src = SourceText.read(sources / "003_e2d4ec54670229da.txt")
    miss = locate(src, "Sorafenib with TACE (n = 23)")
    assert not miss.found and (miss.line, miss.end_line) == (214, 215)
    # 'SorafenibwithTACE(n=23)' (spaces ignored, 23 characters): 22 match, so
    # SequenceMatcher's ratio is 2 * 22 / (23 + 23)
    assert miss.similarity == pytest.approx(44 / 46)
    assert miss.difference is not None and "(n=23)" in miss.difference
    assert "(n=22)" in miss.difference
    assert miss.caption == "Table 1. Patients’ clinicopathological characteristics"


def test_locate_command(sources: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data", str(STUDY_DATA), "--sources", str(sources)]
    assert main(["locate", "lee2017", "(3.7 versus 8.4 months, p = 0.004)", *args]) == 0
    assert capsys.readouterr().out.startswith("000_94976d806e554833.txt:10: found")
    assert main(["locate", "lee2017", "(3.7 versus 8.4 months, p = 0.040)", *args]) == 1
    out = capsys.readouterr().out
    assert "not found; closest passage at line 10" in out and "p=0.004)" in out
    assert main(["locate", "nostudy", "text", *args]) == 2
