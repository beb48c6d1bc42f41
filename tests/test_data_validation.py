"""Bad study data gets a clear error naming file, line, record and field — and changes nothing.

Every file in tests/bad_data/ is the valid made-up study tests/data/demo_study/demo2020.yaml
with one error; its header states the error (``# error:``) and every line ``hccmeta
validate`` must print for it (``# expect:``), line numbers included. Each case is
validated in a directory of its own beside the demo registry, under the name its study id
requires (``demo2020.yaml``, or the name a ``# file:`` header gives); the expected lines
name the case's file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from hccmeta import StudyDataError, load_studies
from hccmeta.cli import main

HERE = Path(__file__).parent
BAD = HERE / "bad_data"
DEMO = HERE / "data" / "demo_study"
BAD_FILES = sorted(BAD.glob("*.yaml"))


def _header(path: Path) -> list[str]:
    """The lines of a case (as text even where the case holds bytes that are not UTF-8)."""
    return path.read_bytes().decode("utf-8", "replace").splitlines()


def _expected(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect: ").rstrip("\n")
        for line in _header(path)
        if line.startswith("# expect: ")
    ]


def _file_name(path: Path) -> str:
    """The name a case is validated under: its ``# file:`` header, else demo2020.yaml."""
    for line in _header(path):
        if line.startswith("# file: "):
            return line.removeprefix("# file: ").strip()
    return "demo2020.yaml"


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
    assert out == (
        "valid: 1 studies, 4 records, 1 baseline characteristics; "
        "provenance NOT checked: no --sources given (nor HCCMETA_SOURCES)"
    )


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
        "unknown_setting", "unknown_regimen", "unknown_time_origin", "unknown_subgroup_level",
        # hostile files (issue 14): the YAML reading policy and the README's rules
        "billion_laughs", "alias_in_a_value", "deep_nesting", "custom_tag", "python_tag",
        "yaml_directive", "nul_byte", "raw_control_character", "escaped_control_character",
        "bidi_override", "hex_integer", "underscore_integer", "underscore_float",
        "leading_zero_integer", "arabic_indic_digits", "infinite_number", "huge_number",
        "date_value", "multiple_documents", "study_id_not_file_name", "record_id_wrong_prefix",
        "characteristic_id_wrong_prefix", "arm_n_zero", "upper_case_extension", "invalid_utf8",
    }  # fmt: skip
    assert required <= kinds
    for path in BAD_FILES:
        assert _header(path)[0].startswith("# error: "), path.name
        assert _expected(path), f"{path.name} states no expected message"


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_file_is_rejected_with_its_message(
    path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = _file_name(path)
    shutil.copy(path, tmp_path / name)
    shutil.copy(DEMO / "analyses.yaml", tmp_path / "analyses.yaml")
    shutil.copy(DEMO / "vocabulary.yaml", tmp_path / "vocabulary.yaml")
    monkeypatch.chdir(tmp_path)
    before = _digest(tmp_path)
    status = main(["validate", "--data", "."])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert "Traceback" not in captured.err
    shown = captured.err.strip().splitlines()
    if name == "demo2020.yaml":  # the expected lines name the case's file
        shown = [line.replace(name, path.name) for line in shown]
    assert shown == _expected(path)
    assert _digest(tmp_path) == before, "validation must not change the data"


def test_every_problem_names_file_line_record_and_field(tmp_path: Path) -> None:
    """Through the Python API: the StudyDataError carries structured problems."""
    shutil.copy(BAD / "events_above_n.yaml", tmp_path / "demo2020.yaml")
    with pytest.raises(StudyDataError) as info:
        load_studies(tmp_path)
    (problem,) = info.value.problems
    assert problem.file.endswith("demo2020.yaml")
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
        "other2021.yaml:39: record demo2020.os: field id: record id 'demo2020.os' must start "
        "with its study's id and a dot: 'other2021.'",
        "other2021.yaml:39: record demo2020.os: field id: duplicate record id "
        "'demo2020.os' (first defined in demo2020.yaml:39)",
    ]


def test_problems_of_all_files_are_reported_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("p_zero.yaml", "ci_reversed.yaml", "malformed_yaml.yaml"):
        shutil.copy(BAD / name, tmp_path / name)
    shutil.copy(DEMO / "analyses.yaml", tmp_path / "analyses.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--data", "."]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    expected = [
        *_expected(BAD / "ci_reversed.yaml"),
        "ci_reversed.yaml:4: study demo2020: field id: study id 'demo2020' does not match the "
        "file name: the file of study 'demo2020' is demo2020.yaml",
        *_expected(BAD / "malformed_yaml.yaml"),
    ]
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
    text = text.replace("source_kind: full_text", "source_kind: full_text\nsources: [demo.txt]")
    (data / "demo2020.yaml").write_text(text)
    shutil.copy(DEMO / "analyses.yaml", data / "analyses.yaml")
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
        "data/demo2020.yaml:64: record demo2020.os: field provenance[0].snippet: snippet not "
        "found in demo.txt: 'median OS 9 vs 25 months (95% CI 12-30), HR 0.45 (0.2-0.8), "
        "P = 0.001' (`hccmeta locate` shows the closest text)",
        # 9, 25 and 12 do occur in the snippet; 6, 0.58, 0.32 and the HR 0.4 do not
        "data/demo2020.yaml:52: record demo2020.os: field groups[0].landmarks[0].time: value 6 "
        "does not occur in the record's snippets",
        "data/demo2020.yaml:52: record demo2020.os: field groups[0].landmarks[0].survival: value "
        "0.58 (or 58%) does not occur in the record's snippets",
        "data/demo2020.yaml:53: record demo2020.os: field groups[0].landmarks[1].survival: value "
        "0.32 (or 32%) does not occur in the record's snippets",
        "data/demo2020.yaml:60: record demo2020.os: field contrasts[0].hr.value: value 0.4 "
        "does not occur in the record's snippets",
    ]


def test_a_study_without_risk_of_bias_validates_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (DEMO / "demo2020.yaml").read_text()
    (tmp_path / "demo2020.yaml").write_text(text[: text.index("risk_of_bias:")])
    for name in ("analyses.yaml", "vocabulary.yaml"):
        shutil.copy(DEMO / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--data", "."]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("valid: 1 studies, 4 records, 1 baseline characteristics;")
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
    text = text.replace("source_kind: full_text", "source_kind: full_text\nsources: [demo.txt]")
    (data / "demo2020.yaml").write_text(text)
    for name in ("analyses.yaml", "vocabulary.yaml"):
        shutil.copy(DEMO / name, data / name)
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
        "data/demo2020.yaml:120: assessment rob.os: field domains[0].provenance[0].snippet: "
        "snippet not found in demo.txt: 'chosen by the treating physician' (`hccmeta locate` "
        "shows the closest text)"
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


# ---- every entry of the data directory (issue 14): what cannot be a study is an error --


def _validate(data: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    status = main(["validate", "--data", "."])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.err.strip().splitlines()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symbolic links")
def test_every_directory_entry_is_a_study_or_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory named x.yaml, broken and looping links, a FIFO (never opened, so never
    waited on), a link to /dev/zero (never read), a link out of the directory, a file
    that is not a study file, and a file name with a newline (printed escaped)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(DEMO / "demo2020.yaml", data / "demo2020.yaml")
    shutil.copy(DEMO / "analyses.yaml", data / "analyses.yaml")
    (data / "README.md").write_text("documentation is left alone")
    (data / ".hidden.yaml").write_text("hidden entries are left alone")
    (data / "x.yaml").mkdir()
    (data / "dangling.yaml").symlink_to("nowhere.yaml")
    (data / "loop.yaml").symlink_to("loop.yaml")
    os.mkfifo(data / "fifo.yaml")
    (data / "zero.yaml").symlink_to("/dev/zero")
    outside = tmp_path / "outside.yaml"
    shutil.copy(DEMO / "demo2020.yaml", outside)
    (data / "out.yaml").symlink_to(outside)
    (data / "inside.yaml").symlink_to("demo2020.yaml")  # inside: followed (and a duplicate)
    (data / "notes.txt").write_text("not a study")
    (data / "new\nline.yml").write_text("id: x\n")
    monkeypatch.chdir(data)
    before = {p.name for p in data.iterdir()}
    status, err = _validate(data, capsys)
    assert status == 2
    assert err == [
        "dangling.yaml: broken symbolic link (its target nowhere.yaml does not exist)",
        "loop.yaml: symbolic link loop: cannot be read",
        "notes.txt: not a study file (study files are named <study id>.yaml; documentation is "
        "*.md)",
        f"out.yaml: symbolic link to {outside.resolve()}, outside the data directory: refused "
        "(copy the file into the directory instead)",
        "zero.yaml: symbolic link to /dev/zero, outside the data directory: refused (copy the "
        "file into the directory instead)",
        "fifo.yaml: not a regular file: a FIFO (named pipe)",
        "inside.yaml:2: study demo2020: field id: study id 'demo2020' does not match the file "
        "name: the file of study 'demo2020' is demo2020.yaml",
        "inside.yaml:2: study demo2020: field id: duplicate study id 'demo2020' (first defined "
        "in demo2020.yaml:2)",
        "inside.yaml:40: record demo2020.os: field id: duplicate record id 'demo2020.os' (first "
        "defined in demo2020.yaml:40)",
        "inside.yaml:64: record demo2020.os.by_child_pugh: field id: duplicate record id "
        "'demo2020.os.by_child_pugh' (first defined in demo2020.yaml:64)",
        "inside.yaml:84: record demo2020.response: field id: duplicate record id "
        "'demo2020.response' (first defined in demo2020.yaml:84)",
        "inside.yaml:99: record demo2020.ae.diarrhea: field id: duplicate record id "
        "'demo2020.ae.diarrhea' (first defined in demo2020.yaml:99)",
        "inside.yaml:28: characteristic demo2020.baseline.child_pugh: field id: duplicate "
        "characteristic id 'demo2020.baseline.child_pugh' (first defined in demo2020.yaml:28)",
        "new\\nline.yml:1: study x: field citation: required field is missing",
        "new\\nline.yml:1: study x: field source_kind: required field is missing",
        "new\\nline.yml:1: study x: field design: required field is missing",
        "new\\nline.yml:1: study x: field setting: required field is missing",
        "new\\nline.yml:1: study x: field population_size: required field is missing",
        "new\\nline.yml:1: study x: field provenance: required field is missing",
        "new\\nline.yml:1: study x: field arms: required field is missing",
        "x.yaml: not a regular file: a directory",
    ]
    assert {p.name for p in data.iterdir()} == before


REGISTRY_CASES = [
    ("missing", None, ["analyses.yaml: the analysis registry is missing (a data directory "
                       "holds analyses.yaml beside the study files)"]),
    ("syntax error", "analyses:\n  - name: x\n    title: [unclosed\n",
     ["analyses.yaml:4: malformed YAML: expected ',' or ']', but got '<stream end>'"]),
    ("unknown field", "analyses: []\nanalysis: []\n",
     ["analyses.yaml:2: field analysis: unknown field (not in the registry schema; check its "
      "spelling)"]),
    ("alias", "x: &a [1]\nanalyses: *a\n",
     ["analyses.yaml:1: YAML anchor '&a' is not allowed (no anchors or aliases)"]),
    ("not a mapping", "- a\n", ["analyses.yaml:1: the registry must be a mapping of fields"]),
    ("degenerate prior",
     (DEMO / "analyses.yaml").read_text() + "    prior_tau: halfnormal:1e-300\n",
     ["analyses.yaml:17: analysis demo_os: field prior_tau: prior_tau: 'halfnormal:1e-300': "
      "HalfNormal: scale = 1e-300 is below the smallest accepted value 1e-12 (the posterior "
      "would be numerically degenerate)"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in REGISTRY_CASES], ids=[c[0] for c in REGISTRY_CASES]
)
def test_validate_checks_the_registry(
    text: str | None,
    expected: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copy(DEMO / "demo2020.yaml", tmp_path / "demo2020.yaml")
    if text is not None:
        (tmp_path / "analyses.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    status, err = _validate(tmp_path, capsys)
    assert status == 2
    assert err == expected


def test_problems_of_studies_and_registry_are_listed_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(BAD / "p_zero.yaml", tmp_path / "demo2020.yaml")
    (tmp_path / "analyses.yaml").write_text("analyses: []\nanalysis: []\n")
    monkeypatch.chdir(tmp_path)
    status, err = _validate(tmp_path, capsys)
    assert status == 2
    assert err == [
        line.replace("p_zero.yaml", "demo2020.yaml") for line in _expected(BAD / "p_zero.yaml")
    ] + [
        "analyses.yaml:2: field analysis: unknown field (not in the registry schema; check its "
        "spelling)"
    ]


def test_sources_that_are_not_utf8_are_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(DEMO, data)
    study = data / "demo2020.yaml"
    study.write_text(
        study.read_text().replace(
            "source_kind: full_text", "source_kind: full_text\nsources: [demo.txt]"
        )
    )
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "demo.txt").write_bytes(b"line one\nline two \xe9t\xe9\n")  # Latin-1
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "--data", "data", "--sources", "sources"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "sources/demo.txt:2: not UTF-8 text: invalid byte 0xe9 at column 10 (save the file "
        "as UTF-8)\n"
    )


def test_the_end_of_follow_up_is_checked_against_its_snippet(
    tmp_path: Path, sources: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The n=34 study prints "until the end of the study (Dec 31, 2015)": encoded as
    follow_up_end '2015-12' it verifies; 2016 is in none of the study's snippets."""
    from .conftest import STUDY_DATA

    data = tmp_path / "data"
    shutil.copytree(STUDY_DATA, data)
    path = data / "tace_resistant_n34.yaml"
    text = path.read_text("utf-8")
    assert "follow_up_end: '2015-12'" in text
    assert main(["validate", "--data", str(data), "--sources", str(sources)]) == 0
    path.write_text(text.replace("follow_up_end: '2015-12'", "follow_up_end: '2016-12'"))
    capsys.readouterr()
    assert main(["validate", "--data", str(data), "--sources", str(sources)]) == 2
    line = 1 + text[: text.index("\nenrolment:") + 1].count("\n")
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{path}:{line}: study tace_resistant_n34: field enrolment.follow_up_end: value 2016 "
        "does not occur in the record's snippets"
    ]
