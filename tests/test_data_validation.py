"""Bad study data gets a clear error naming file, line, record and field — and changes nothing.

Every file in tests/bad_data/ is the valid made-up study tests/data/demo_study/demo2020.yaml
with one error; its header states the error (``# error:``) and every line ``hccmeta
validate`` must print for it (``# expect:``), line numbers included.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from hccmeta import StudyDataError, load_studies
from hccmeta.cli import main

HERE = Path(__file__).parent
BAD = HERE / "bad_data"
DEMO = HERE / "data" / "demo_study"
BAD_FILES = sorted(BAD.glob("*.yaml"))


def _expected(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect: ").rstrip("\n")
        for line in path.read_text().splitlines()
        if line.startswith("# expect: ")
    ]


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
        for p in sorted(directory.iterdir())
    }


def test_the_base_study_is_valid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(DEMO)
    assert main(["validate", "--data", "."]) == 0
    out = capsys.readouterr().out.strip()
    assert out == "valid: 1 studies, 4 records, 1 baseline characteristics"


def test_the_corpus_covers_every_kind_of_error() -> None:
    kinds = {p.stem for p in BAD_FILES}
    required = {
        "malformed_yaml", "empty_file", "not_a_mapping", "duplicate_yaml_key", "unknown_key",
        "wrong_type_text", "wrong_type_float_count", "missing_required_field",
        "missing_provenance", "unknown_endpoint", "unknown_record_type", "negative_median",
        "zero_median", "negative_n", "events_above_n", "count_above_n", "categories_above_n",
        "p_zero", "p_above_one", "ci_reversed", "ci_excludes_estimate", "hr_not_positive",
        "proportion_in_percent", "survival_in_percent", "ci_level_in_percent",
        "duplicate_record_id", "duplicate_arm_id", "reserved_arm_id", "unknown_arm",
        "unknown_contrast_group", "subgroups_do_not_add_up", "arms_do_not_add_up",
        "characteristic_count_above_arm", "rate_disagrees_with_counts", "survival_increases",
        # the risk-of-bias block
        "rob_unknown_domain", "rob_judgement_off_scale", "rob_overall_milder",
        "rob_domain_missing", "rob2_for_non_randomised", "rob_unknown_record",
        "rob_unknown_favoured_group", "rob_favours_missing",
    }  # fmt: skip
    assert required <= kinds
    for path in BAD_FILES:
        assert path.read_text().startswith("# error: "), path.name
        assert _expected(path), f"{path.name} states no expected message"


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_file_is_rejected_with_its_message(
    path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copy(path, tmp_path / path.name)
    monkeypatch.chdir(tmp_path)
    before = _digest(tmp_path)
    status = main(["validate", "--data", "."])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert captured.err.strip().splitlines() == _expected(path)
    assert _digest(tmp_path) == before, "validation must not change the data"


def test_every_problem_names_file_line_record_and_field(tmp_path: Path) -> None:
    """Through the Python API: the StudyDataError carries structured problems."""
    shutil.copy(BAD / "events_above_n.yaml", tmp_path / "x.yaml")
    with pytest.raises(StudyDataError) as info:
        load_studies(tmp_path)
    (problem,) = info.value.problems
    assert problem.file.endswith("x.yaml")
    assert problem.line == 50
    assert problem.record == "demo2020.os"
    assert problem.kind == "record"
    assert problem.field == "groups[0].events"
    assert problem.message == "number of events 11 exceeds n 10"


def test_duplicate_ids_across_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(BAD / "duplicate_id_across_files")
    assert main(["validate", "--data", "."]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "b_other2021.yaml:39: record demo2020.os: field id: duplicate record id "
        "'demo2020.os' (first defined in a_demo2020.yaml:39)"
    ]


def test_problems_of_all_files_are_reported_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("p_zero.yaml", "ci_reversed.yaml", "malformed_yaml.yaml"):
        shutil.copy(BAD / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--data", "."]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = [*_expected(BAD / "ci_reversed.yaml"), *_expected(BAD / "malformed_yaml.yaml")]
    expected += _expected(BAD / "p_zero.yaml")
    assert err == expected


def test_missing_data_directory_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--data", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "data directory not found" in err and "Traceback" not in err


def test_a_directory_without_studies_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--data", str(tmp_path)]) == 2
    assert "no study files" in capsys.readouterr().err


def test_snippet_not_in_sources_and_number_not_in_snippet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--sources: a made-up source text that supports all but two values of the demo study."""
    data = tmp_path / "data"
    data.mkdir()
    text = (DEMO / "demo2020.yaml").read_text()
    # the HR snippet now claims 0.45, which its source does not print
    text = text.replace("HR 0.4 (0.2-0.8)", "HR 0.45 (0.2-0.8)")
    (data / "demo2020.yaml").write_text(text)
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "demo.txt").write_text(
        "In all, 30 patients were included: sorafenib alone (n = 10) and sorafenib with\n"
        "TACE (n = 20). Child-Pugh A 12 3 9 B 18 7 11. The median OS 9 vs 25 months (95% CI\n"
        "12-30), HR 0.4 (0.2-0.8), P = 0.001. Child-Pugh B (n = 18) vs A (n = 12), 5.3 ver-\n"
        "sus 8.9 months, p = 0.004. CR 0 3 PR 0 10 SD 4 2 PD 6 5. Diarrhea 8 (80%) 12 (60%).\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--data", "data", "--sources", "sources"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "data/demo2020.yaml:63: record demo2020.os: field provenance[0].snippet: snippet not "
        "found in any source text: 'median OS 9 vs 25 months (95% CI 12-30), HR 0.45 (0.2-0.8), "
        "P = 0.001'",
        # 9, 25 and 12 do occur in the snippet; 6, 0.58, 0.32 and the HR 0.4 do not
        "data/demo2020.yaml:51: record demo2020.os: field groups[0].landmarks[0].time: value 6 "
        "does not occur in the record's snippets",
        "data/demo2020.yaml:51: record demo2020.os: field groups[0].landmarks[0].survival: value "
        "0.58 (or 58%) does not occur in the record's snippets",
        "data/demo2020.yaml:52: record demo2020.os: field groups[0].landmarks[1].survival: value "
        "0.32 (or 32%) does not occur in the record's snippets",
        "data/demo2020.yaml:59: record demo2020.os: field contrasts[0].hr.value: value 0.4 "
        "does not occur in the record's snippets",
    ]


def test_a_study_without_risk_of_bias_validates_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (DEMO / "demo2020.yaml").read_text()
    (tmp_path / "demo2020.yaml").write_text(text[: text.index("risk_of_bias:")])
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--data", "."]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "valid: 1 studies, 4 records, 1 baseline characteristics"
    lines = captured.err.strip().splitlines()
    assert (
        "demo2020.yaml:2: warning: study demo2020: no risk_of_bias block: its results count as "
        "not assessed for risk of bias (the certainty of evidence is rated down for it)"
    ) in lines
    assert sum("risk_of_bias" in line for line in lines) == 1


def test_risk_of_bias_snippets_are_verified_against_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    text = (DEMO / "demo2020.yaml").read_text()
    text = text.replace(
        "{domain: confounding, judgement: serious, reason: Treatment chosen by clinicians "
        "without adjustment.}",
        "{domain: confounding, judgement: serious, reason: Treatment chosen by clinicians "
        "without adjustment., provenance: [{location: Methods, snippet: chosen by the "
        "treating physician}]}",
    )
    (data / "demo2020.yaml").write_text(text)
    sources = tmp_path / "sources"
    sources.mkdir()
    # the demo source of the test above, without the sentence the snippet quotes
    (sources / "demo.txt").write_text(
        "In all, 30 patients were included: sorafenib alone (n = 10) and sorafenib with\n"
        "TACE (n = 20). Child-Pugh A 12 3 9 B 18 7 11. The median OS 9 vs 25 months (95% CI\n"
        "12-30), HR 0.4 (0.2-0.8), P = 0.001. 6 months 58% 32%. Child-Pugh B (n = 18) vs A\n"
        "(n = 12), 5.3 versus 8.9 months, p = 0.004, HR 2.1 (1.1-4.0). CR 0 3 PR 0 10 SD 4 2\n"
        "PD 6 5. Diarrhea 8 (80%) 12 (60%).\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--data", "data", "--sources", "sources"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert [e for e in err if "risk" in e or "assessment" in e] == [
        "data/demo2020.yaml:119: assessment rob.os: field domains[0].provenance[0].snippet: "
        "snippet not found in any source text: 'chosen by the treating physician'"
    ]
    # and found once the source prints it
    with (sources / "demo.txt").open("a") as fh:
        fh.write("Treatment was chosen by the treating physician.\n")
    main(["validate", "--data", "data", "--sources", "sources"])
    assert "assessment rob.os" not in capsys.readouterr().err


def test_assessment_lookup_prefers_the_most_specific() -> None:
    """An assessment naming the two groups beats one for the whole record; an exact id
    beats a wildcard; tools filter (Terashima: A vs B serious, A vs C critical)."""
    ev = load_studies(HERE.parent / "study_data")
    from hccmeta.data.bias import assessment_for

    rob = ev.study("terashima2016").risk_of_bias
    rec = "terashima2016.sas.subsequent_therapy.adjusted"
    a_b = assessment_for(rob, rec, groups=("group_a", "group_b"), tools=("robins_i",))
    a_c = assessment_for(rob, rec, groups=("group_c", "group_a"), tools=("robins_i",))
    assert (a_b.id, a_b.overall) == ("rob.group_a_vs_b", "serious")  # type: ignore[union-attr]
    assert (a_c.id, a_c.overall) == ("rob.group_a_vs_c", "critical")  # type: ignore[union-attr]
    cp = assessment_for(rob, "terashima2016.sas.child_pugh.univariate", tools=("quips",))
    assert cp is not None and cp.id == "rob.prognostic_univariate"
    assert assessment_for(rob, "terashima2016.sas.child_pugh.univariate", tools=("rob2",)) is None
