"""derive_effects: on small synthetic studies (schema-driven rules) and on study_data/.

Expected values on the real data are worked by hand in tests/test_effects_formulas.py;
here they are checked to come out of the study files with the right context columns.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import hccmeta
from hccmeta.data.evidence import Evidence
from hccmeta.data.schema import Study
from hccmeta.effects import EFFECT_COLUMNS, UNDERIVABLE_COLUMNS, derive_effects
from hccmeta.effects.derive import rate_tolerance
from hccmeta.errors import InputError

#: Hand-worked values are written to 6 decimals.
HAND_TOL = 5e-6

PROV = [{"location": "Table 1", "snippet": "synthetic snippet"}]


def _study(records: list[dict[str, Any]], **over: Any) -> Study:
    data: dict[str, Any] = {
        "id": "syn",
        "citation": "Synthetic study for tests",
        "source_kind": "full_text",
        "design": "retrospective_cohort",
        "setting": "sorafenib_after_tace_failure",
        "population_size": 30,
        "arms_partition_population": True,
        "provenance": PROV,
        "arms": [
            {
                "id": "sor",
                "label": "Sorafenib",
                "regimen": "sorafenib",
                "n": 10,
                "provenance": PROV,
            },
            {
                "id": "combo",
                "label": "Sorafenib + TACE",
                "regimen": "sorafenib_tace",
                "n": 20,
                "provenance": PROV,
            },
        ],
        "records": records,
    }
    data.update(over)
    return Study.model_validate(data)


def _evidence(*studies: Study) -> Evidence:
    return Evidence(studies=tuple(studies), data_dir=Path("."), data_hash="test")


def _surv(rid: str, groups: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": rid,
        "type": "survival",
        "endpoint": "os",
        "time_origin": "sorafenib_start",
        "analysis": "univariate",
        "groups": groups,
        "provenance": PROV,
    }
    rec.update(over)
    return rec


def _counts(rid: str, groups: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": rid,
        "type": "counts",
        "endpoint": "adverse_event",
        "event": "diarrhea",
        "grade": "any",
        "analysis": "descriptive",
        "groups": groups,
        "provenance": PROV,
    }
    rec.update(over)
    return rec


ARM_GROUPS = [
    {"id": "all", "arm": "all", "events": 24, "median": {"value": 10.0}},
    {"id": "sor", "arm": "sor", "median": {"value": 6.0}},
    {"id": "combo", "arm": "combo", "median": {"value": 12.0}},
]
CONTRAST = {"exposed": "combo", "reference": "sor", "p": {"value": 0.01, "test": "log_rank"}}


def test_columns_and_types() -> None:
    res = derive_effects(_evidence(_study([_surv("syn.os", ARM_GROUPS, contrasts=[CONTRAST])])))
    assert list(res.effects.columns) == list(EFFECT_COLUMNS)
    assert list(res.underivable.columns) == list(UNDERIVABLE_COLUMNS)
    assert res.effects["effect"].is_unique
    assert (res.effects["vi"] == res.effects["sei"] ** 2).all()
    assert res.data_hash == "test"


def test_survival_contrast_methods_and_ranking() -> None:
    res = derive_effects(
        _evidence(_study([_surv("syn.os", ARM_GROUPS, contrasts=[CONTRAST])])), se_floor=False
    )
    hr = res.select(measure="log_hr").set_index("method")
    # medians + p: ln(6/12) = -0.693147; SE = 0.693147 / z(0.01) = 0.693147 / 2.575829
    assert hr.loc["medians_logrank_p", "yi"] == pytest.approx(-0.693147, abs=HAND_TOL)
    assert hr.loc["medians_logrank_p", "sei"] == pytest.approx(0.269097, abs=HAND_TOL)
    # Peto: the 'all' group's 24 events are those of the two arms (they partition the
    # study): V = 24 x 20 x 10 / 30^2 = 5.333333; ln HR = -2.575829 / 2.309401 = -1.115365
    assert hr.loc["logrank_peto", "yi"] == pytest.approx(-1.115365, abs=HAND_TOL)
    assert hr.loc["logrank_peto", "sei"] == pytest.approx(1 / math.sqrt(5.333333), abs=HAND_TOL)
    assert "direction_from_medians" in hr.loc["logrank_peto", "assumptions"]
    # imputed events 24 x 20/30 = 16, 24 x 10/30 = 8: SE = sqrt(2.081369 (1/16 + 1/8))
    # = 0.624705 (Kaplan-Meier variances of the two medians)
    assert hr.loc["medians_events", "sei"] == pytest.approx(0.624705, abs=HAND_TOL)
    assert "imputed_events" in hr.loc["medians_events", "assumptions"]
    # Peto (no imputation) is the primary derivation of this estimand
    assert hr["primary"].sum() == 1 and hr.loc["logrank_peto", "primary"]
    row = hr.loc["logrank_peto"]
    assert (row["exposed_arm"], row["reference_arm"]) == ("combo", "sor")
    assert (row["exposed_regimen"], row["reference_regimen"]) == ("sorafenib_tace", "sorafenib")
    assert (row["n_exposed"], row["n_reference"]) == (20, 10)
    assert row["p"] == 0.01 and row["p_test"] == "log_rank"


def test_imputation_off_and_events_by_difference() -> None:
    res = derive_effects(
        _evidence(_study([_surv("syn.os", ARM_GROUPS, contrasts=[CONTRAST])])),
        impute_events=False,
    )
    assert "medians_events" not in set(res.effects["method"])
    assert not res.effects["assumptions"].str.contains("imputed_events").any()
    groups = [dict(ARM_GROUPS[0]), {**ARM_GROUPS[1], "events": 9}, dict(ARM_GROUPS[2])]
    res = derive_effects(_evidence(_study([_surv("syn.os", groups, contrasts=[CONTRAST])])))
    me = res.select(method="medians_events").iloc[0]
    # 24 - 9 = 15 events in the combination arm: SE = sqrt(2.081369 (1/15 + 1/9))
    # = 0.608294
    assert me["sei"] == pytest.approx(0.608294, abs=HAND_TOL)
    assert me["assumptions"] == "events_by_difference;exponential;km_median_variance"
    assert (me["events_exposed"], me["events_reference"]) == (15, 9)


def test_hr_contrast_and_p_bound_options() -> None:
    rec = _surv(
        "syn.os.adj",
        [{"id": "c", "arm": "combo"}, {"id": "s", "arm": "sor"}],
        analysis="adjusted",
        adjusted_for=["age"],
        contrasts=[
            {
                "exposed": "c",
                "reference": "s",
                "hr": {"value": 0.5, "ci": {"lower": 0.25, "upper": 1.0, "level": 0.95}},
                "p": {"value": 0.05, "relation": "<", "test": "cox_wald"},
            }
        ],
    )
    res = derive_effects(_evidence(_study([rec])))
    by = res.effects.set_index("method")
    assert by.loc["ratio_ci", "primary"] and not by.loc["ratio_p", "primary"]
    assert by.loc["ratio_ci", "adjusted_for"] == "age"
    assert "p_bound" in by.loc["ratio_p", "assumptions"]
    # midpoint: p = 0.025, z = 2.241403 -> SE = 0.693147 / 2.241403 = 0.309247
    mid = derive_effects(_evidence(_study([rec])), p_bound="midpoint", se_floor=False)
    assert mid.select(method="ratio_p")["sei"].iloc[0] == pytest.approx(0.309247, abs=HAND_TOL)
    excl = derive_effects(_evidence(_study([rec])), p_bound="exclude")
    assert "ratio_p" not in set(excl.effects["method"])
    assert excl.underivable["reason"].str.contains("p_bound='exclude'").any()


def test_p_choice_between_records() -> None:
    medians = _surv("syn.os.med", ARM_GROUPS, contrasts=[CONTRAST])
    curves = _surv(
        "syn.os.curves",
        [{"id": "sor", "arm": "sor"}, {"id": "combo", "arm": "combo"}],
        contrasts=[{**CONTRAST, "p": {"value": 0.02, "test": "log_rank"}}],
    )
    ev = _evidence(_study([medians, curves]))
    own = derive_effects(ev, se_floor=False).select(method="medians_logrank_p").iloc[0]
    assert own["p"] == 0.01 and own["records"] == "syn.os.med"
    big = derive_effects(ev, p_choice="largest", se_floor=False)
    big = big.select(method="medians_logrank_p").iloc[0]
    assert big["p"] == 0.02
    assert big["records"] == "syn.os.med;syn.os.curves"
    assert "p_from_other_record" in big["assumptions"]
    assert big["sei"] > own["sei"]
    small = derive_effects(ev, p_choice="smallest").select(method="medians_logrank_p").iloc[0]
    assert small["p"] == 0.01
    under = derive_effects(ev).underivable
    row = under[under["record"] == "syn.os.curves"].iloc[0]
    assert "syn.os.med" in row["reason"] and "p_choice" in row["reason"]


def test_se_floor() -> None:
    """An SE from a p-value cannot be below what the group sizes and events allow."""
    ev = _evidence(_study([_surv("syn.os", ARM_GROUPS, contrasts=[CONTRAST])]))
    row = derive_effects(ev).select(method="medians_logrank_p").iloc[0]
    # |ln 0.5| / z(0.01) = 0.269097, below the bound with 24 events in arms of 20 and 10:
    # N / sqrt(D n_e n_r) = 30 / sqrt(24 x 20 x 10) = 0.433013
    assert row["sei"] == pytest.approx(0.433013, abs=HAND_TOL)
    assert "se_floor" in row["assumptions"]
    assert row["yi"] == pytest.approx(math.log(0.5))
    # subgroups of one arm (n = 20) of unknown size: the least favourable split allowed
    # (each at least 10% of 20): 2 vs 18, SE >= sqrt(1/2 + 1/18) = 0.745356 (the even
    # split would allow 2 / sqrt(20) = 0.447214)
    sub = _surv(
        "syn.os.sub",
        [
            {
                "id": "b",
                "arm": "combo",
                "subgroup": {"variable": "cp", "level": "B"},
                "median": {"value": 5.0},
            },
            {
                "id": "a",
                "arm": "combo",
                "subgroup": {"variable": "cp", "level": "A"},
                "median": {"value": 9.0},
            },
        ],
        contrasts=[{"exposed": "b", "reference": "a", "p": {"value": 0.001, "test": "log_rank"}}],
    )
    res = derive_effects(_evidence(_study([sub])))
    assert res.effects["sei"].iloc[0] == pytest.approx(0.745356, abs=HAND_TOL)
    assert "se_floor_split_assumed" in res.effects["assumptions"].iloc[0]
    even = derive_effects(_evidence(_study([sub])), subgroup_share_min=0.5)
    assert even.effects["sei"].iloc[0] == pytest.approx(0.447214, abs=HAND_TOL)
    # share 0.25: 5 vs 15, sqrt(1/5 + 1/15) = 0.516398
    quarter = derive_effects(_evidence(_study([sub])), subgroup_share_min=0.25)
    assert quarter.effects["sei"].iloc[0] == pytest.approx(0.516398, abs=HAND_TOL)
    # ln(9/5) / z(0.001) = 0.587787 / 3.290527 = 0.178630 without the floor
    raw = derive_effects(_evidence(_study([sub])), se_floor=False)
    assert raw.effects["sei"].iloc[0] == pytest.approx(0.178630, abs=HAND_TOL)
    assert raw.effects["assumptions"].iloc[0] == "exponential;p_normal_approximation"


def test_weibull_and_km_options() -> None:
    ev = _evidence(_study([_surv("syn.os", ARM_GROUPS, contrasts=[CONTRAST])]))
    k = derive_effects(ev, weibull_shape=1.5).select(method="medians_logrank_p").iloc[0]
    assert k["yi"] == pytest.approx(1.5 * math.log(0.5))
    assert "weibull_shape" in k["assumptions"]
    km = derive_effects(ev)  # the default: the Kaplan-Meier variance
    row = km.select(method="median_events", exposed="all").iloc[0]
    # 24 events: SE = sqrt(2.081369 / 24) = 0.294488
    assert row["sei"] == pytest.approx(0.294488, abs=HAND_TOL)
    assert "km_median_variance" in row["assumptions"]
    mle = derive_effects(ev, median_variance="exponential_mle")
    row = mle.select(method="median_events", exposed="all").iloc[0]
    # the exponential-MLE variant: SE = 1 / sqrt(24) = 0.204124
    assert row["sei"] == pytest.approx(0.204124, abs=HAND_TOL)
    assert "exponential_mle_median_variance" in row["assumptions"]
    f = derive_effects(ev, km_median_factor=1.5)
    assert f.select(method="median_events", exposed="all")["sei"].iloc[0] == pytest.approx(
        math.sqrt(1.5 / 24)
    )


def test_invalid_options() -> None:
    ev = _evidence(_study([]))
    for kwargs in (
        {"p_bound": "half"},
        {"p_choice": "first"},
        {"weibull_shape": 0.0},
        {"km_median_factor": 0.5},
        {"median_variance": "parametric"},
        {"subgroup_share_min": 0.0},
        {"subgroup_share_min": 0.6},
        {"continuity_correction": -1.0},
    ):
        with pytest.raises(InputError):
            derive_effects(ev, **kwargs)


def test_landmarks() -> None:
    groups = [
        {"id": "sor", "arm": "sor", "landmarks": [{"time": 6, "survival": 0.58}]},
        {
            "id": "combo",
            "arm": "combo",
            "landmarks": [
                {"time": 6, "survival": 0.9, "n_at_risk": 17},
                {
                    "time": 12,
                    "survival": 0.7,
                    "ci": {"lower": 0.5, "upper": 0.85, "level": 0.95},
                },
            ],
        },
    ]
    res = derive_effects(_evidence(_study([_surv("syn.lm", groups)])))
    lm = res.select(measure="cloglog_survival").set_index(["exposed", "time"])
    assert lm.loc[("sor", 6.0), "method"] == "landmark_binomial"
    assert lm.loc[("combo", 6.0), "method"] == "landmark_peto"
    assert lm.loc[("combo", 12.0), "method"] == "landmark_ci"
    # Peto: sqrt(0.1 / 17) / |ln 0.9| = 0.076696 / 0.105361 = 0.727939
    assert lm.loc[("combo", 6.0), "sei"] == pytest.approx(0.727939, abs=HAND_TOL)
    off = derive_effects(_evidence(_study([_surv("syn.lm", groups)])), impute_n_at_risk=False)
    assert "landmark_binomial" not in set(off.effects["method"])
    assert off.underivable["reason"].str.contains("impute_n_at_risk is off").any()
    # two groups, no comparison printed
    assert (res.underivable["what"] == "comparison of groups").any()


def test_landmarks_allow_for_the_censoring_of_the_follow_up_dates() -> None:
    """Entry January 2010 - December 2011 (24 months), follow-up to December 2012 (12
    months after the last entry): the 10-patient arm's landmarks 0.8 at 6 and 0.5 at 18
    months. At 6 months nobody can have been censored (n = 10); at 18 months the number at
    risk is Greenwood's under that censoring, by quadrature of the integral
    (exp(H) - 1) / int h exp(H) / G: hazard ln(1/0.8)/6 to 6 months, ln(0.8/0.5)/12 after;
    G = 1 to 12 months, (36 - u) / 24 after."""
    from scipy import integrate

    groups = [
        {
            "id": "sor",
            "arm": "sor",
            "landmarks": [{"time": 6, "survival": 0.8}, {"time": 18, "survival": 0.5}],
        }
    ]
    enrolment = {"start": "2010-01", "end": "2011-12", "follow_up_end": "2012-12"}
    res = derive_effects(_evidence(_study([_surv("syn.lm", groups)], enrolment=enrolment)))
    lm = res.select(measure="cloglog_survival").set_index("time")
    assert set(lm["method"]) == {"landmark_follow_up"}
    assert "censoring_from_accrual" in lm.loc[18.0, "assumptions"]
    h1, h2 = math.log(1 / 0.8) / 6, math.log(0.8 / 0.5) / 12

    def hazard_over_g(u: float) -> float:
        big_h = h1 * u if u <= 6 else h1 * 6 + h2 * (u - 6)
        g = 1.0 if u <= 12 else (36 - u) / 24
        return (h1 if u <= 6 else h2) * math.exp(big_h) / g

    integral = sum(integrate.quad(hazard_over_g, a, b)[0] for a, b in ((0, 6), (6, 12), (12, 18)))
    n_eff = 10 * (1 / 0.5 - 1) / integral
    assert n_eff < 10
    binomial = {6.0: (0.8, 10.0), 18.0: (0.5, n_eff)}
    for t, (s, n) in binomial.items():
        assert lm.loc[t, "sei"] == pytest.approx(
            math.sqrt((1 - s) / (n * s)) / abs(math.log(s)), rel=1e-9
        )
    # switched off (the sensitivity variant), or without an end of follow-up: the group
    # size, nobody censored before the landmark
    off = derive_effects(
        _evidence(_study([_surv("syn.lm", groups)], enrolment=enrolment)),
        censoring_from_follow_up=False,
    )
    no_end = derive_effects(
        _evidence(
            _study([_surv("syn.lm", groups)], enrolment={"start": "2010-01", "end": "2011-12"})
        )
    )
    for other in (off, no_end):
        lm2 = other.select(measure="cloglog_survival").set_index("time")
        assert set(lm2["method"]) == {"landmark_binomial"}
        assert lm2.loc[18.0, "sei"] == pytest.approx(
            math.sqrt(0.5 / 5.0) / math.log(2.0), rel=1e-12
        )


@pytest.mark.parametrize(
    ("enrolment", "message"),
    [
        ({"start": "2012-01", "end": "2011-12"}, "start '2012-01' is after end '2011-12'"),
        (
            {"start": "2010", "end": "2011-12", "follow_up_end": "2011-06"},
            "end '2011-12' is after follow_up_end '2011-06'",
        ),
        ({"start": "2010", "end": "2011", "follow_up_end": "2011-13"}, "should match pattern"),
    ],
)
def test_enrolment_dates_must_be_in_order(enrolment: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _study([], enrolment=enrolment)


def test_counts_reported_implied_and_rates() -> None:
    recs = [
        _counts(
            "syn.ae",
            [
                {"id": "all", "arm": "all", "count": 12},
                {"id": "sor", "arm": "sor", "count": 0},
                {"id": "combo", "arm": "combo", "count": 12},
            ],
        ),
        _counts(
            "syn.orr",
            [
                {"id": "sor", "arm": "sor", "proportion": 0.1},
                {"id": "combo", "arm": "combo", "proportion": 0.45},
            ],
            endpoint="objective_response",
            event=None,
            grade=None,
            analysis="univariate",
            contrasts=[
                {"exposed": "combo", "reference": "sor", "p": {"value": 0.04, "test": "fisher"}}
            ],
        ),
        _counts(
            "syn.resp",
            [
                {"id": "sor", "arm": "sor", "categories": {"CR": 0, "PR": 1, "SD": 4, "PD": 5}},
                {"id": "combo", "arm": "combo", "categories": {"CR": 3, "PR": 6, "SD": 5, "PD": 6}},
            ],
            endpoint="tumour_response",
            event=None,
            grade=None,
        ),
    ]
    res = derive_effects(_evidence(_study(recs)))
    ae = res.effects[(res.effects["record"] == "syn.ae") & (res.effects["kind"] == "contrast")]
    assert set(ae["measure"]) == {"log_or", "log_rr", "rd"}
    assert (ae["contrast_source"] == "implied").all()
    assert (ae["exposed_regimen"] == "sorafenib_tace").all()
    # 12/20 vs 0/10 with 0.5 added to each cell: log OR = ln(12.5 x 10.5 / (8.5 x 0.5))
    log_or = ae[ae["measure"] == "log_or"].iloc[0]
    assert log_or["yi"] == pytest.approx(math.log(12.5 * 10.5 / (8.5 * 0.5)))
    assert log_or["assumptions"] == "continuity_correction"
    # the printed rates 0.1 x 10 = 1 and 0.45 x 20 = 9 give counts (flagged)
    orr = res.effects[(res.effects["record"] == "syn.orr") & (res.effects["measure"] == "log_or")]
    assert (orr["events_exposed"].iloc[0], orr["events_reference"].iloc[0]) == (9, 1)
    assert orr["contrast_source"].iloc[0] == "reported"
    assert "count_from_rate" in orr["assumptions"].iloc[0]
    # the categories give the same ORR counts: those (no reconstruction) are primary
    cat = res.effects[
        (res.effects["record"] == "syn.resp")
        & (res.effects["endpoint"] == "objective_response")
        & (res.effects["measure"] == "log_or")
    ]
    assert cat["primary"].iloc[0] and not orr["primary"].iloc[0]
    assert cat["yi"].iloc[0] == pytest.approx(orr["yi"].iloc[0])
    dcr = res.effects[
        (res.effects["endpoint"] == "disease_control") & (res.effects["kind"] == "group")
    ]
    assert sorted(dcr["events_exposed"].tolist()) == [5, 14]
    no_rate = derive_effects(_evidence(_study(recs)), count_from_rate=False)
    assert not (no_rate.effects["record"] == "syn.orr").any()


def test_non_finite_derivations_are_listed() -> None:
    # p = 1: infinite SE; a zero cell without continuity correction: infinite log OR
    rec = _surv(
        "syn.os", ARM_GROUPS, contrasts=[{**CONTRAST, "p": {"value": 1.0, "test": "log_rank"}}]
    )
    res = derive_effects(_evidence(_study([rec])), se_floor=False, impute_events=False)
    assert "medians_logrank_p" not in set(res.effects["method"])
    assert res.underivable["reason"].str.contains("no usable estimate").any()
    ae = _counts(
        "syn.ae",
        [{"id": "sor", "arm": "sor", "count": 0}, {"id": "combo", "arm": "combo", "count": 5}],
    )
    res = derive_effects(_evidence(_study([ae])), continuity_correction=0.0)
    assert res.effects[["yi", "sei"]].map(math.isfinite).all().all()
    assert (res.underivable["record"] == "syn.ae").any()


def test_rate_tolerance() -> None:
    assert rate_tolerance(0.499) == pytest.approx(0.0005)
    assert rate_tolerance(0.9) == pytest.approx(0.005)
    assert rate_tolerance(0.09) == pytest.approx(0.005)


def test_group_size_of_whole_study_needs_partition() -> None:
    rec = _counts("syn.ae", [{"id": "all", "arm": "all", "count": 3}])
    res = derive_effects(_evidence(_study([rec], arms_partition_population=False)))
    assert res.effects.empty
    assert res.underivable["reason"].str.contains("without a group size").any()


# ---- the study data ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> tuple[Evidence, Any]:
    ev = hccmeta.load_studies()
    return ev, hccmeta.derive_effects(ev)


def test_every_record_is_derived_or_listed(real: tuple[Evidence, Any]) -> None:
    ev, res = real
    used = set(res.effects["records"].str.split(";").explode())
    listed = set(res.underivable["record"])
    ids = {r.id for _, r in ev.records()} | {c.id for _, c in ev.characteristics()}
    assert ids <= used | listed, sorted(ids - used - listed)
    assert (res.underivable["reason"].str.len() > 10).all()


def test_text_columns_are_objects_holding_only_text_or_nan(
    real: tuple[Evidence, Any],
) -> None:
    """The effects table keeps its text as plain Python strings in NumPy object columns
    (a row selection is then one take, not one per Arrow column): every value is a
    string or NaN (no None, no other type), so converting to pandas' own text dtype
    changes no value, missing value or selection."""
    import pandas as pd

    _, res = real
    e = res.effects
    text = [c for c in e.columns if e[c].dtype == object]
    assert {"study", "effect", "measure", "kind"} <= set(text)
    assert not any(isinstance(t, pd.StringDtype) for t in e.dtypes)
    as_str = e.astype({c: "str" for c in text})
    for c in text:
        assert all(isinstance(v, str) or pd.isna(v) for v in e[c]), c
        assert e[c].isna().tolist() == as_str[c].isna().tolist(), c
        assert e[c].dropna().tolist() == as_str[c].dropna().tolist(), c
    pick = (e["kind"] == "contrast").to_numpy() & e["study"].notna().to_numpy()
    pd.testing.assert_frame_equal(e[pick].astype({c: "str" for c in text}), as_str[pick])


def test_effects_finite_and_unique(real: tuple[Evidence, Any]) -> None:
    _, res = real
    e = res.effects
    assert e["effect"].is_unique
    assert e[["yi", "sei"]].map(math.isfinite).all().all()
    assert (e["sei"] > 0).all()


def test_lee_pvi_from_study_data(real: tuple[Evidence, Any]) -> None:
    _, res = real
    e = res.effects
    row = e[
        (e["study"] == "lee2017")
        & (e["endpoint"] == "os")
        & (e["subgroup_variable"] == "portal_vein_invasion")
    ]
    assert len(row) == 1
    r = row.iloc[0]
    # 3.7 vs 8.4 months, p = 0.004: 0.819899 and 0.284869 (tests/test_effects_formulas.py);
    # the subgroup sizes of the 54 patients are not printed, so the SE floor takes the
    # least favourable split allowed (10%): 5.4 vs 48.6, sqrt(1/5.4 + 1/48.6) = 0.453609
    assert r["yi"] == pytest.approx(0.819899, abs=HAND_TOL)
    assert r["sei"] == pytest.approx(0.453609, abs=HAND_TOL)
    assert "se_floor_split_assumed" in r["assumptions"]
    assert r["exposed_level"] == "main_or_lobar"
    assert "p_test_not_stated" in r["assumptions"]


def test_terashima_group_c_from_study_data(real: tuple[Evidence, Any]) -> None:
    _, res = real
    e = res.effects
    r = e[
        (e["study"] == "terashima2016")
        & (e["method"] == "ratio_ci")
        & (e["exposed_arm"] == "group_c")
    ].iloc[0]
    assert r["yi"] == pytest.approx(1.758720, abs=HAND_TOL)
    assert r["sei"] == pytest.approx(0.393541, abs=HAND_TOL)
    assert r["analysis"] == "adjusted" and r["time_origin"] == "sorafenib_failure"
    assert (r["exposed_regimen"], r["reference_regimen"]) == (
        "sorafenib_then_none",
        "sorafenib_then_intrahepatic",
    )


def test_n34_from_study_data(real: tuple[Evidence, Any]) -> None:
    _, res = real
    e = res.effects[res.effects["study"] == "tace_resistant_n34"]
    lm = e[(e["measure"] == "cloglog_survival") & (e["exposed_arm"] == "sorafenib_tace")]
    assert lm.sort_values("time")["yi"].tolist() == pytest.approx(
        [-2.970195, -1.341838, -0.225011], abs=HAND_TOL
    )
    peto = e[(e["method"] == "logrank_peto") & (e["time_origin"] == "sorafenib_start")].iloc[0]
    # the log-rank P = 0.002 (curves) with 30 deaths: -z(0.001) / sqrt(6.851211) = -1.180613
    assert peto["yi"] == pytest.approx(-1.180613, abs=HAND_TOL)
    assert peto["primary"]
    orr = e[
        (e["endpoint"] == "objective_response") & (e["measure"] == "log_or") & e["primary"]
    ].iloc[0]
    assert (
        orr["events_exposed"],
        orr["n_exposed"],
        orr["events_reference"],
        orr["n_reference"],
    ) == (
        13,
        22,
        0,
        12,
    )
    assert orr["yi"] == pytest.approx(3.570274, abs=HAND_TOL)


def test_tamai_underivable(real: tuple[Evidence, Any]) -> None:
    _, res = real
    u = res.underivable[res.underivable["study"] == "tamai2017"]
    ttp = u[u["record"].str.contains("ttp")]
    assert (ttp["what"] == "comparison of groups").any()
    assert ttp["reason"].str.contains("no group size").sum() == 2


def test_one_primary_per_estimand(real: tuple[Evidence, Any]) -> None:
    _, res = real
    e = res.effects.assign(
        analysis_key=res.effects["analysis"].where(res.effects["type"] == "survival", "any")
    )
    cols = [
        "study",
        "kind",
        "measure",
        "endpoint",
        "event",
        "grade",
        "criteria",
        "time_origin",
        "time",
        "analysis_key",
        "exposed_arm",
        "subgroup_variable",
        "exposed_level",
        "reference_arm",
        "reference_level",
    ]
    counts = e.groupby(cols, dropna=False)["primary"].sum()
    assert (counts == 1).all()
    assert res.primary()["primary"].all()
