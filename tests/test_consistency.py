"""Consistency warnings between statistics of the same arm (issue 12, item 3).

Each check on small synthetic studies with numbers worked by hand, then on the study
files (the n = 34 study's printed discrepancies; Terashima et al.'s Child-Pugh B HR
whose CI and p disagree), then through ``hccmeta validate``.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest

import hccmeta as hm
from hccmeta.cli import main
from hccmeta.data.checks import consistency_findings, printed_tolerance, whole_fraction
from hccmeta.data.schema import Study
from hccmeta.effects import consistency_warnings, derive_effects, p_value_warnings
from hccmeta.effects.consistency import implied_p

PROV = [{"location": "Table 1", "snippet": "synthetic snippet"}]
ROOT = Path(__file__).parents[1]


def _study(records: list[dict[str, Any]], **over: Any) -> Study:
    data: dict[str, Any] = {
        "id": "syn",
        "citation": "Synthetic study for tests",
        "source_kind": "full_text",
        "design": "retrospective_cohort",
        "setting": "sorafenib_after_tace_failure",
        "population_size": 40,
        "provenance": PROV,
        "arms": [{"id": "a", "label": "A", "regimen": "sorafenib", "n": 40, "provenance": PROV}],
        "records": records,
    }
    data.update(over)
    return Study.model_validate(data)


def _surv(rid: str, group: dict[str, Any], **over: Any) -> dict[str, Any]:
    rec = {
        "id": rid,
        "type": "survival",
        "endpoint": "os",
        "time_origin": "sorafenib_start",
        "analysis": "descriptive",
        "groups": [{"id": "g", "arm": "a", **group}],
        "provenance": PROV,
    }
    rec.update(over)
    return rec


def _checks(study: Study) -> list[str]:
    return [f.check for f in consistency_findings(study)]


def test_median_against_landmarks() -> None:
    # median 20: S(18) = 0.45 < 0.5 before the median -> inconsistent
    bad = _study([_surv("r1", {"median": {"value": 20.0}}),
                  _surv("r2", {"landmarks": [{"time": 18.0, "survival": 0.45}]})])  # fmt: skip
    found = consistency_findings(bad)
    assert [f.check for f in found] == ["median_vs_landmark"]
    assert found[0].loc == ("records", 1, "groups", 0, "landmarks", 0, "survival")
    assert "S(18) = 0.45" in found[0].message and "median is 20" in found[0].message
    # after the median, S(24) = 0.55 > 0.5 -> inconsistent
    late = _study([_surv("r1", {"median": {"value": 20.0},
                                "landmarks": [{"time": 24.0, "survival": 0.55}]})])  # fmt: skip
    assert _checks(late) == ["median_vs_landmark"]
    # consistent: S(12) = 0.62 before a median of 16.5, S(24) = 0.36 after it; and the
    # rounding of what is printed: a median printed 25 may be 24.5, S printed 0.50 may
    # be 0.495 -> S(24.6) = 0.49 with median 25 is not flagged
    lm = [{"time": 12.0, "survival": 0.62}, {"time": 24.0, "survival": 0.36}]
    ok = _study(
        [
            _surv("r1", {"median": {"value": 16.5}, "landmarks": lm}),
            _surv("r2", {"median": {"value": 25.0}}, endpoint="pfs"),
            _surv("r3", {"landmarks": [{"time": 24.6, "survival": 0.49}]}, endpoint="pfs"),
        ]
    )
    assert _checks(ok) == []


def test_follow_up_against_landmarks_and_deaths() -> None:
    """n = 40, 36 deaths (4 alive at the end), S(6) = 0.80, S(12) = 0.60, median
    follow-up 7 months. S(7) = 0.80 (0.60 / 0.80)^(1/6) = 0.762223 (constant hazard
    between the landmarks). Observed for at most 7 months: died by 7 (at most 23.8%) or
    censored (at most 4/40 = 10%): 33.8% < 50% -> inconsistent. With 20 deaths (50%
    censored at most) it fits."""
    lm = [{"time": 6.0, "survival": 0.80}, {"time": 12.0, "survival": 0.60}]
    fu = {
        "id": "fu",
        "type": "summary",
        "quantity": "follow_up",
        "unit": "months",
        "time_origin": "sorafenib_start",
        "analysis": "descriptive",
        "groups": [{"id": "all", "arm": "all", "median": {"value": 7.0}}],
        "provenance": PROV,
    }
    bad = _study([_surv("os", {"events": 36, "landmarks": lm}, groups=[
        {"id": "all", "arm": "all", "events": 36, "landmarks": lm}]), fu])  # fmt: skip
    found = consistency_findings(bad)
    assert [f.check for f in found] == ["follow_up_vs_landmarks"]
    assert "S(7) = 0.76" in found[0].message and "34% < 50%" in found[0].message
    ok = _study([_surv("os", {}, groups=[
        {"id": "all", "arm": "all", "events": 20, "landmarks": lm}]), fu])  # fmt: skip
    assert _checks(ok) == []
    # without a time origin the follow-up is not compared
    loose = _study([_surv("os", {}, groups=[
        {"id": "all", "arm": "all", "events": 36, "landmarks": lm}]),
        {**fu, "time_origin": None}])  # fmt: skip
    assert _checks(loose) == []
    # S(F) below one half: fewer than half can have been followed beyond F
    short = _study([_surv("os", {}, groups=[
        {"id": "all", "arm": "all", "landmarks": [{"time": 6.0, "survival": 0.40}]}]),
        {**fu, "groups": [{"id": "all", "arm": "all", "median": {"value": 6.0}}]}])  # fmt: skip
    assert _checks(short) == ["follow_up_vs_landmarks"]


def test_rates_that_are_no_whole_fraction_of_n() -> None:
    # 90% of 34: 30/34 = 0.882, 31/34 = 0.912, none within 0.005 -> flagged;
    # 49.9% of 34: 17/34 = 0.500 is 0.001 away, more than 0.0005 -> flagged;
    # 2.5% of 79: 2/79 = 0.0253 -> fine
    assert not whole_fraction(0.90, 34)
    assert not whole_fraction(0.499, 34)
    assert whole_fraction(0.025, 79) and whole_fraction(0.532, 79)
    assert printed_tolerance(0.9) == pytest.approx(0.005)
    assert printed_tolerance(0.499) == pytest.approx(0.0005)
    rec = {
        "id": "ae",
        "type": "counts",
        "endpoint": "adverse_event",
        "event": "any",
        "analysis": "descriptive",
        "groups": [
            {"id": "all", "arm": "a", "proportion": 0.90},
            {"id": "b", "arm": "a", "proportion": 0.5, "count": 20},
        ],
        "provenance": PROV,
    }
    arm = {"id": "a", "label": "A", "regimen": "sorafenib", "n": 34, "provenance": PROV}
    study = _study([rec], population_size=34, arms=[arm])
    found = consistency_findings(study)
    assert [f.check for f in found] == ["rate_not_whole_fraction"]
    assert found[0].loc == ("records", 0, "groups", 0, "proportion")


def test_the_n34_study_and_terashima() -> None:
    ev = hm.load_studies()
    n34 = [w for w in ev.warnings if w.study == "tace_resistant_n34"]
    checks = sorted(w.check for w in n34)
    assert checks.count("median_vs_landmark") == 1
    assert checks.count("follow_up_vs_landmarks") == 1
    assert checks.count("rate_not_whole_fraction") == 2
    med = next(w for w in n34 if w.check == "median_vs_landmark")
    assert med.record == "tace_resistant_n34.os.sorafenib_start.landmarks"
    assert "S(24) = 0.45" in med.message and "median is 25" in med.message
    # the line of "- {time: 24, survival: 0.45}" of the combination arm
    lines = (ROOT / "study_data" / "tace_resistant_n34.yaml").read_text().splitlines()
    assert "{time: 24, survival: 0.45}" in lines[med.line - 1]
    fu = next(w for w in n34 if w.check == "follow_up_vs_landmarks")
    # S(7) = 0.82 (0.62 / 0.82)^(1/6) = 0.783676; 1 - 0.783676 + 4/34 = 0.333971
    assert "S(7) = 0.78" in fu.message and "33% < 50%" in fu.message
    assert ev.warnings_table["check"].tolist() == [w.check for w in ev.warnings]


def test_p_values_the_derived_effect_cannot_reproduce() -> None:
    # Terashima et al., Table 3: HR 2.999 (1.478-6.087): z = 1.098279 / 0.361095 =
    # 3.041527, implied p = 0.002354 against the printed 0.009 -> flagged; AFP 2.207
    # (1.230-3.958): z = 0.791634 / 0.298150 = 2.655154, p = 0.007928, printed 0.008 -> fine
    assert implied_p(1.098279, 0.361095) == pytest.approx(0.002354, abs=2e-6)
    assert implied_p(0.791634, 0.298150) == pytest.approx(0.007928, abs=2e-6)
    ev = hm.load_studies()
    found = p_value_warnings(ev, derive_effects(ev))
    tera = [w for w in found if w.study == "terashima2016"]
    assert [w.record for w in tera] == ["terashima2016.sas.child_pugh.adjusted"]
    assert "p = 0.009" in tera[0].message and "p = 0.0024" in tera[0].message
    lines = (ROOT / "study_data" / "terashima2016.yaml").read_text().splitlines()
    assert "0.009" in lines[tera[0].line - 1]
    # the medians + p of Lee et al. (Child-Pugh B 5.3 vs 8.9 months, p = 0.004): the
    # floor raises the SE to 0.453609, so ln(8.9 / 5.3) / 0.453609 = 1.142710 gives
    # p = 0.253 -> flagged
    lee = next(w for w in found if w.record == "lee2017.os.child_pugh")
    assert "p = 0.25" in lee.message
    assert math.isclose(implied_p(math.log(8.9 / 5.3), 0.453609), 0.2532, abs_tol=5e-4)
    both = consistency_warnings(ev)
    assert len(both) == len(ev.warnings) + len(found)


def test_validate_prints_warnings_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(ROOT / "study_data" / "tace_resistant_n34.yaml", tmp_path)
    assert main(["validate", "--data", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("valid: 1 studies")
    assert "warnings" in captured.err.splitlines()[-1]
    lines = [ln for ln in captured.err.strip().splitlines() if ": warning: " in ln]
    assert lines and all(": warning: record tace_resistant_n34." in ln for ln in lines)
    first = lines[0]
    assert first.split(":")[0].endswith("tace_resistant_n34.yaml") and first.split(":")[1].isdigit()
    assert main(["validate", "--data", str(tmp_path), "--strict"]) == 2
    strict = capsys.readouterr().err
    assert ": error: record tace_resistant_n34." in strict and "(--strict)" in strict


def test_inclusion_condition_is_data() -> None:
    ev = hm.load_studies()
    cond = ev.inclusion_conditions
    row = cond[cond["study"] == "tace_resistant_n34"].iloc[0]
    assert row["min_time"] == 3 and row["time_origin"] == "sorafenib_start"
    assert "three months" in row["condition"]
    eff = derive_effects(ev).effects
    tagged = eff[eff["assumptions"].str.contains("conditional_on_inclusion")]
    assert set(tagged["study"]) == set(cond["study"])
