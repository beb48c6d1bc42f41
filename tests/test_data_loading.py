"""The loader on the real study data: spot checks of values against the sources.

Each expected value below is copied from the source text named in the comment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import hccmeta as hm
from hccmeta.data.schema import CountRecord, SurvivalRecord

from .conftest import STUDY_DATA


def _stat(ev: hm.Evidence, record: str, statistic: str, *, group: str | None = None,
          contrast: str | None = None) -> pd.Series:  # fmt: skip
    s = ev.statistics
    sel = (s.record == record) & (s.statistic == statistic)
    sel &= s.group.eq(group) if group is not None else s.group.isna()
    if contrast is not None:
        sel &= s.contrast == contrast
    rows = s[sel]
    assert len(rows) == 1, (record, statistic, group, contrast, len(rows))
    return rows.iloc[0]


def test_five_studies_with_their_designs(evidence: hm.Evidence) -> None:
    t = evidence.studies_table.set_index("study")
    assert list(t.index) == [
        "lee2017",
        "park2012",
        "tace_resistant_n34",
        "tamai2017",
        "terashima2016",
    ]
    # SPEC section 1: n = 54, 50, 34 and 79; Tamai: 113 patients underwent initial TACE
    assert t.population_size.to_dict() == {
        "lee2017": 54,
        "park2012": 50,
        "tace_resistant_n34": 34,
        "tamai2017": 113,
        "terashima2016": 79,
    }
    assert t.loc["park2012", "design"] == "prospective_single_arm"
    assert t.loc["terashima2016", "design"] == "retrospective_cohort"
    assert t.loc["lee2017", "source_kind"] == "abstract"


def test_arms(evidence: hm.Evidence) -> None:
    arms = evidence.arms_table.set_index(["study", "arm"]).n
    # n=34 study: "22 received sorafenib in combination with TACE, 12 received sorafenib
    # monotherapy"
    assert arms["tace_resistant_n34", "sorafenib"] == 12
    assert arms["tace_resistant_n34", "sorafenib_tace"] == 22
    # Terashima: "44, 19, and 16 patients were classified as group A, B, and C"
    assert [arms["terashima2016", g] for g in ("group_a", "group_b", "group_c")] == [44, 19, 16]
    # Tamai: "TACE alone was given to 23 of these patients"; sorafenib group sizes not reported
    tamai = evidence.arms_table[evidence.arms_table.study == "tamai2017"].set_index("arm").n
    assert tamai.isna().sum() == 2 and 23 in tamai.to_list()


def test_lee_medians_and_p(evidence: hm.Evidence) -> None:
    # Lee abstract: "main (or lobar) portal vein invasion (PVI) (3.7 versus 8.4 months, p = 0.004)"
    r = "lee2017.os.pvi"
    assert _stat(evidence, r, "median", group="main_lobar_pvi").value == 3.7
    assert _stat(evidence, r, "median", group="segmental_or_no_mvi").value == 8.4
    p = evidence.statistics.query("record == @r and statistic == 'p'")
    assert p.value.to_list() == [0.004]


def test_park_ttp_and_landmark(evidence: hm.Evidence) -> None:
    # Park abstract: "median TTP was 7.1 months (95% confidence interval (CI), 4.8-7.5 months)"
    _, rec = evidence.record("park2012.ttp")
    assert isinstance(rec, SurvivalRecord)
    median = rec.groups[0].median
    assert median is not None and median.ci is not None
    assert (median.value, median.ci.lower, median.ci.upper, median.ci.level) == (
        7.1,
        4.8,
        7.5,
        0.95,
    )
    # "The 6-month progression-free survival rate was 52% (95% CI, 37.3-66.1)"
    _, rec = evidence.record("park2012.pfs.landmark_6m")
    assert isinstance(rec, SurvivalRecord)
    (lm,) = rec.groups[0].landmarks
    assert lm.time == 6 and lm.survival == pytest.approx(0.52)
    assert lm.ci is not None and (lm.ci.lower, lm.ci.upper) == pytest.approx((0.373, 0.661))


def test_n34_survival_rates_per_arm(evidence: hm.Evidence) -> None:
    # "at 6, 12, and 24 months were 95%, 77%, and 45% ... 58%, 32%, and 16% ... monotherapy"
    _, rec = evidence.record("tace_resistant_n34.os.sorafenib_start.landmarks")
    assert isinstance(rec, SurvivalRecord)
    by_group = {g.id: [(lm.time, lm.survival) for lm in g.landmarks] for g in rec.groups}
    assert by_group["sorafenib_tace"] == [(6, 0.95), (12, 0.77), (24, 0.45)]
    assert by_group["sorafenib"] == [(6, 0.58), (12, 0.32), (24, 0.16)]
    assert by_group["all"] == [(6, 0.82), (12, 0.62), (24, 0.36)]
    # the curves' log-rank test: "(P = 0.002) (Figure 2)"
    p = [c.p for c in rec.contrasts]
    assert p[0] is not None and p[0].value == 0.002


def test_n34_medians_and_p_values(evidence: hm.Evidence) -> None:
    # Table 1: "mOS1 16.5 9 25 0.001", "mOS2 33.5 28.5 37.5 0.094", "TTP (month) 5 5 8 0.058"
    for record, (m_all, m_sor, m_tace, p) in {
        "tace_resistant_n34.os.sorafenib_start.median": (16.5, 9, 25, 0.001),
        "tace_resistant_n34.os.diagnosis": (33.5, 28.5, 37.5, 0.094),
        "tace_resistant_n34.ttp": (5, 5, 8, 0.058),
    }.items():
        assert _stat(evidence, record, "median", group="all").value == m_all
        assert _stat(evidence, record, "median", group="sorafenib").value == m_sor
        assert _stat(evidence, record, "median", group="sorafenib_tace").value == m_tace
        pv = _stat(evidence, record, "p", contrast="sorafenib_tace vs sorafenib")
        assert (pv.value, pv.relation) == (p, "=")
    # "At the end of this study, 4 patients were still alive, and the other 30 were deceased."
    assert (
        _stat(evidence, "tace_resistant_n34.os.sorafenib_start.median", "events", group="all").value
        == 30
    )


def test_n34_response_and_adverse_events(evidence: hm.Evidence) -> None:
    # Table 1 tumour response: CR 3 (0 / 3), PR 10 (0 / 10), SD 7 (5 / 2), PD 14 (7 / 7)
    _, rec = evidence.record("tace_resistant_n34.response.mrecist_3m")
    assert isinstance(rec, CountRecord)
    cats = {g.id: g.categories for g in rec.groups}
    assert cats["sorafenib"] == {"CR": 0, "PR": 0, "SD": 5, "PD": 7}
    assert cats["sorafenib_tace"] == {"CR": 3, "PR": 10, "SD": 2, "PD": 7}
    assert cats["all"] == {"CR": 3, "PR": 10, "SD": 7, "PD": 14}
    # Table 2: "Diarrhea 20 (58.8%) 5 (14.7%) 8 (66.7%) 2 (16.7%) 12 (54.5%) 3 (13.6%)"
    any_grade = {
        g.id: g.count for g in evidence.record("tace_resistant_n34.ae.diarrhea.any")[1].groups
    }
    severe = {
        g.id: g.count for g in evidence.record("tace_resistant_n34.ae.diarrhea.grade3_4")[1].groups
    }
    assert any_grade == {"all": 20, "sorafenib": 8, "sorafenib_tace": 12}
    assert severe == {"all": 5, "sorafenib": 2, "sorafenib_tace": 3}
    # Table 2 has eight adverse events, each with all grades and grade 3-4
    table2 = [r for r in evidence.records_table.record if r.startswith("tace_resistant_n34.ae.")]
    events = {r.split(".")[2] for r in table2} - {"any", "other"}
    assert len(events) == 8


def test_terashima_table3(evidence: hm.Evidence) -> None:
    # Table 3: "group C 16 3.6 0.001 5.805 (2.684-12.553) <0.001"
    r = "terashima2016.sas.subsequent_therapy.adjusted"
    c = "group_c vs group_a"
    assert _stat(evidence, r, "hr", contrast=c).value == 5.805
    assert _stat(evidence, r, "hr_ci_lower", contrast=c).value == 2.684
    assert _stat(evidence, r, "hr_ci_upper", contrast=c).value == 12.553
    p = _stat(evidence, r, "p", contrast=c)
    assert (p.value, p.relation) == (0.001, "<")
    # "B 31 4.7 0.070 2.999 (1.478-6.087) 0.009"
    u = "terashima2016.sas.child_pugh.univariate"
    assert _stat(evidence, u, "n", group="cp_b").value == 31
    assert _stat(evidence, u, "median", group="cp_b").value == 4.7
    assert (
        _stat(
            evidence, "terashima2016.sas.child_pugh.adjusted", "hr", contrast="cp_b vs cp_a5"
        ).value
        == 2.999
    )
    # eleven factors in Table 3, four of them in the multivariable model
    records = evidence.records_table.record
    assert records.str.match(r"terashima2016\.sas\..*\.univariate").sum() == 11
    assert records.str.match(r"terashima2016\.sas\..*\.adjusted").sum() == 4


def test_terashima_table4_correlations(evidence: hm.Evidence) -> None:
    # Table 4, all patients: "63 0.949 <0.001 0.508 <0.001"
    assert _stat(evidence, "terashima2016.corr.os_vs_sas", "r", group="all_study2").value == 0.949
    assert _stat(evidence, "terashima2016.corr.os_vs_ttf", "r", group="all_study2").value == 0.508
    assert _stat(evidence, "terashima2016.corr.os_vs_sas", "n", group="all_study2").value == 63


def test_tidy_view_columns(evidence: hm.Evidence) -> None:
    s = evidence.statistics
    assert list(s.columns) == [
        "study", "record", "type", "endpoint", "time_origin", "analysis", "location",
        "group", "arm", "subgroup_variable", "subgroup_level", "contrast", "statistic",
        "value", "relation",
    ]  # fmt: skip
    assert s.value.notna().all()
    # one row per record and statistic: every record has at least one row
    assert set(s.record) == set(evidence.records_table.record)
    assert len(evidence.records_table) == evidence.n_records


def test_data_hash_is_stable_and_tracks_changes(tmp_path: Path) -> None:
    a = hm.load_studies(STUDY_DATA)
    b = hm.load_studies(STUDY_DATA)
    assert a.data_hash == b.data_hash and len(a.data_hash) == 64
    copy = tmp_path / "data"
    shutil.copytree(STUDY_DATA, copy)
    assert hm.load_studies(copy).data_hash == a.data_hash  # content, not location
    target = copy / "lee2017.yaml"
    target.write_text(target.read_text() + "\n# a comment changes the bytes\n")
    assert hm.load_studies(copy).data_hash != a.data_hash


def test_unknown_ids_raise_clean_errors(evidence: hm.Evidence) -> None:
    with pytest.raises(hm.InputError, match="unknown record id 'nope'"):
        evidence.record("nope")
    with pytest.raises(hm.InputError, match="unknown study id 'nope'"):
        evidence.study("nope")
