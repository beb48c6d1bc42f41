"""The certainty of evidence (GRADE) of every estimate, worked by hand.

The rules are those of :mod:`hccmeta.analyses.certainty`; each case below derives the
rating domain by domain from the study data and the estimate, and checks the module
gives the same. Study-specific facts name their studies (tests copy the data where they
add a study)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

import hccmeta as hm
from hccmeta.analyses.certainty import (
    APPRECIABLE,
    LEVELS,
    OIS_EVENTS,
    ROB_DEFICIT,
    weighted_level,
)
from tests.conftest import STUDY_DATA, DefaultResult

# ---------------------------------------------------------------------- the rules alone


def test_schoenfeld_information_size() -> None:
    # 4 (z_0.975 + z_0.8)^2 / ln(0.75)^2 = 4 * 2.8016^2 / 0.08276 = 379.4 events
    from scipy.stats import norm

    events = 4 * (norm.ppf(0.975) + norm.ppf(0.8)) ** 2 / math.log(0.75) ** 2
    assert events == pytest.approx(379.4, abs=0.05)
    assert math.ceil(events) == OIS_EVENTS


@pytest.mark.parametrize(
    ("levels", "weights", "expected"),
    [
        ([0, 1], [0.5, 0.5], 1),  # a tie goes to the more severe level
        ([0, 1], [0.6, 0.4], 0),  # the study at risk carries less than half
        ([0, 1, 2], [0.2, 0.3, 0.5], 2),  # 50% reach level 2
        ([0, 1, 2], [0.3, 0.3, 0.4], 1),  # 70% reach level 1, 40% level 2
        ([1], [1.0], 1),
    ],
)
def testweighted_level(levels: list[int], weights: list[float], expected: int) -> None:
    assert weighted_level(levels, weights) == expected


def test_robins_i_moderate_costs_nothing_more_than_starting_low() -> None:
    # Schünemann et al. 2019: a non-randomised study at moderate risk is as good as such
    # studies get; serious and critical rate down further.
    assert ROB_DEFICIT[("robins_i", "moderate")] == 0
    assert ROB_DEFICIT[("robins_i", "serious")] == 1
    assert ROB_DEFICIT[("robins_i", "critical")] == 2
    assert ROB_DEFICIT[("rob2", "some_concerns")] == 1


# ------------------------------------------------------- the default analyses, by hand


def _rating(result: hm.AnalysisResult, estimand: str) -> pd.Series:
    return result.certainty.set_index("estimand").loc[estimand]


def _imprecision_by_hand(row: pd.Series) -> int:
    """GRADE imprecision of a ratio from its 95% CrI and patient count."""
    lo, hi = row["natural_ci_lower"], row["natural_ci_upper"]
    if lo <= APPRECIABLE[0] and hi >= APPRECIABLE[1]:
        return 2
    if lo <= 1 <= hi:
        return 1
    n = row["n_patients"]
    return 1 if not math.isfinite(n) or n < OIS_EVENTS else 0


def test_os_with_vs_without_intrahepatic_therapy(default_result: DefaultResult) -> None:
    """tace_resistant_n34 (ROBINS-I serious, direct) and terashima2016 group A vs B
    (ROBINS-I serious, indirect in population, intervention, comparator and time
    origin): non-randomised, so it starts low (2); risk of bias: both serious, deficit 1
    for 100% of the weight: -1; indirectness: Terashima carries 53% of the weight
    (SE 0.356 vs 0.382: 1/0.356^2 / (1/0.356^2 + 1/0.382^2) = 0.535) >= 50%: -1;
    imprecision: the CrI excludes 1 but 97 patients < 380 events: -1. 2 - 3 -> very low."""
    res = default_result("os_tace_plus_sorafenib_vs_sorafenib")
    row = res.estimates.set_index("estimand").loc["effect"]
    c = _rating(res, "effect")
    assert set(res.effects["study"]) == {"tace_resistant_n34", "terashima2016"}
    assert (c["design"], c["start"]) == ("non_randomised", "low")
    assert c["risk_of_bias"] == -1
    assert c["inconsistency"] == 0  # two studies, I^2 = 0
    assert c["indirectness"] == -1
    assert c["imprecision"] == -_imprecision_by_hand(row)
    assert c["publication_bias"] == 0 and c["rated_up"] == 0
    expected = max(0, 1 - 1 - 1 - _imprecision_by_hand(row))
    assert c["certainty"] == LEVELS[expected] == "very_low"
    assert row["certainty"] == "very_low" and row["design"] == "non_randomised"
    assert any("terashima2016 indirect in population" in r for r in c["certainty_reasons"])


def test_prognostic_factors(default_result: DefaultResult) -> None:
    """Prognostic factors start high (cohorts are the right design). Child-Pugh B vs A:
    lee2017 and terashima2016 are QUIPS moderate (deficit 1 for all the weight): -1;
    Terashima (factors at sorafenib failure) is indirect and, with its B vs class A SE
    0.3036 against Lee's floored 0.4536 (medians + p, least favourable split), carries
    1/0.3036^2 / (1/0.3036^2 + 1/0.4536^2) = 69% >= 50%: -1.
    Dose reduction: Lee's QUIPS high (a factor arising during treatment): -2. AFP,
    extrahepatic spread and cause of failure: Terashima only, moderate (-1), indirect
    (-1)."""
    res = default_result("prognostic_factors")
    est = res.estimates.set_index("estimand")
    cp = _rating(res, "child_pugh_b_vs_a")
    se = res.effects[res.effects["role"] == "child_pugh_b_vs_a"].set_index("study")["sei"]
    assert se["lee2017"] == pytest.approx(0.4536, abs=1e-4)
    assert se["terashima2016"] == pytest.approx(0.3036, abs=1e-4)
    share = 0.3036**-2 / (0.3036**-2 + 0.4536**-2)
    assert share == pytest.approx(0.69, abs=0.005)
    assert (cp["start"], cp["risk_of_bias"], cp["indirectness"]) == ("high", -1, -1)
    imp = _imprecision_by_hand(est.loc["child_pugh_b_vs_a"])
    assert cp["imprecision"] == -imp
    assert cp["certainty"] == LEVELS[max(0, 3 - 2 - imp)]
    dose = _rating(res, "dose_reduction")
    assert dose["risk_of_bias"] == -2 and dose["indirectness"] == 0
    for factor in ("afp_400", "extrahepatic_spread", "progression_vs_intolerance"):
        f = _rating(res, factor)
        assert (f["risk_of_bias"], f["indirectness"]) == (-1, -1), factor
        assert f["inconsistency"] == 0  # one study: not assessable
        imp = _imprecision_by_hand(est.loc[factor])
        assert f["certainty"] == LEVELS[max(0, 3 - 2 - imp)]


def test_absolute_outcomes_per_regimen(default_result: DefaultResult) -> None:
    """Outcomes under a regimen start high (overall prognosis). park2012's TTP: QUIPS
    moderate (-1); the n=34 study's arms: QUIPS high (selected on three months of
    sorafenib, -2). Imprecision of a median: upper/lower >= 4 -> -2, >= 2 -> -1."""
    ttp = default_result("median_ttp_per_regimen")
    c = _rating(ttp, "sorafenib_tace")
    row = ttp.estimates.set_index("estimand").loc["sorafenib_tace"]
    assert set(ttp.effects.loc[ttp.effects["role"] == "sorafenib_tace", "study"]) == {"park2012"}
    ratio = row["natural_ci_upper"] / row["natural_ci_lower"]
    imp = 2 if ratio >= 4 else 1 if ratio >= 2 else 0
    assert (c["start"], c["risk_of_bias"], c["imprecision"]) == ("high", -1, -imp)
    assert c["certainty"] == LEVELS[max(0, 3 - 1 - imp)]
    os_ = default_result("median_os_per_regimen")
    for est in ("median_sorafenib", "median_sorafenib_tace"):
        assert _rating(os_, est)["risk_of_bias"] == -2
    hr = _rating(os_, "log_hr")  # the arms' contrast in the same model: ROBINS-I serious
    assert (hr["type"], hr["start"], hr["risk_of_bias"]) == ("intervention", "low", -1)


def test_response_rates_borrowing_a_first_line_arm(default_result: DefaultResult) -> None:
    """Objective response, sorafenib alone: the n=34 arm (0 of 12, QUIPS high) and
    Terashima's first-line rate (2 of 79, QUIPS moderate, indirect outcome: RECIST 1.1
    best response). Weights from the logit SEs: Terashima's larger arm carries most, so
    the risk of bias is rated by its moderate judgement (-1) plus the high one only if the
    n=34 arm reaches half the weight; indirectness -1."""
    res = default_result("objective_response")
    c = _rating(res, "sorafenib")
    rows = res.effects[res.effects["role"] == "sorafenib"].set_index("study")
    w = rows["sei"].astype(float) ** -2
    share_n34 = w["tace_resistant_n34"] / w.sum()
    assert c["risk_of_bias"] == (-2 if share_n34 >= 0.5 else -1)
    assert c["indirectness"] == -1
    contrast = _rating(res, "log_or")
    assert (contrast["design"], contrast["start"], contrast["risk_of_bias"]) == (
        "non_randomised",
        "low",
        -1,
    )


def _absolute_imprecision(row: pd.Series) -> int:
    """GRADE imprecision of a median (bounds' ratio >= 2: -1, >= 4: -2) or a probability
    (interval width >= 0.30: -1, >= 0.50: -2), the thresholds named in the module."""
    lo, hi = row["natural_ci_lower"], row["natural_ci_upper"]
    if row["natural_scale"] == "months":
        return 2 if hi / lo >= 4 else 1 if hi / lo >= 2 else 0
    return 2 if hi - lo >= 0.5 else 1 if hi - lo >= 0.3 else 0


# (analysis, estimand): (start, risk of bias, inconsistency, indirectness), by hand from
# the studies' assessments (study_data/*.yaml, risk_of_bias) and the registry's
# directness; imprecision follows from each estimate's interval (worked in the test).
BY_HAND = {
    # n=34 TTP: ROBINS-I serious (confounding, selection, unblinded imaging): starts low, -1
    ("ttp_tace_plus_sorafenib_vs_sorafenib", "effect"): ("low", -1, 0, 0),
    # the n=34 arms for absolute survival: QUIPS high (selected on three months of
    # sorafenib): starts high, -2; its HR between the arms: ROBINS-I serious
    ("median_os_per_regimen", "median_sorafenib"): ("high", -2, 0, 0),
    ("median_os_per_regimen", "median_sorafenib_tace"): ("high", -2, 0, 0),
    ("median_os_per_regimen", "log_hr"): ("low", -1, 0, 0),
    ("survival_6_12_24_per_regimen", "survival_12m_sorafenib_tace"): ("high", -2, 0, 0),
    ("survival_6_12_24_per_regimen", "survival_24m_sorafenib"): ("high", -2, 0, 0),
    # park2012 (phase II, abstract): QUIPS moderate: -1
    ("median_ttp_per_regimen", "sorafenib_tace"): ("high", -1, 0, 0),
    ("pfs_6m_per_regimen", "sorafenib_tace"): ("high", -1, 0, 0),
    # disease control, sorafenib alone: n=34 arm (QUIPS high) and Terashima's first-line
    # rate (QUIPS moderate, indirect outcome); the larger Terashima arm carries most of
    # the weight: -1 and -1. The n=34 combination arm: QUIPS high, -2. The OR: ROBINS-I
    # serious, -1.
    ("disease_control", "sorafenib"): ("high", -1, 0, -1),
    ("disease_control", "sorafenib_tace"): ("high", -2, 0, 0),
    ("disease_control", "log_or"): ("low", -1, 0, 0),
    # adverse events: the n=34 arms (QUIPS high) and their OR (ROBINS-I serious)
    ("ae_hand_foot_skin_reaction", "log_or"): ("low", -1, 0, 0),
    ("ae_diarrhoea", "sorafenib"): ("high", -2, 0, 0),
    ("ae_fatigue", "log_or"): ("low", -1, 0, 0),
    ("ae_grade_3_4", "sorafenib_tace"): ("high", -2, 0, 0),
}


@pytest.mark.parametrize(("analysis", "estimand"), list(BY_HAND), ids=lambda x: str(x))
def test_default_analyses_domain_by_domain(
    analysis: str, estimand: str, default_result: DefaultResult
) -> None:
    res = default_result(analysis)
    row = res.estimates.set_index("estimand").loc[estimand]
    c = _rating(res, estimand)
    start, rob, inc, ind = BY_HAND[(analysis, estimand)]
    assert (c["start"], c["risk_of_bias"], c["inconsistency"], c["indirectness"]) == (
        start,
        rob,
        inc,
        ind,
    )
    imp = _absolute_imprecision(row) if c["type"] == "absolute" else _imprecision_by_hand(row)
    assert c["imprecision"] == -imp
    assert c["publication_bias"] == 0 and c["rated_up"] == 0
    level = LEVELS.index(start) + rob + inc + ind - imp
    assert c["certainty"] == LEVELS[max(0, level)]


def test_every_default_estimate_is_rated(default_result: DefaultResult) -> None:
    from hccmeta.analyses.registry import load_registry

    for name in load_registry(STUDY_DATA).names:
        res = default_result(name)
        if res.status != "ok":
            continue
        assert set(res.certainty["estimand"]) == set(res.estimates["estimand"]), name
        assert res.estimates["certainty"].isin(LEVELS).all(), name
        for reasons in res.estimates["certainty_reasons"]:
            assert len(reasons) >= 5 and all(isinstance(r, str) and r for r in reasons)


# ------------------------------------------------------------- a new randomised trial

RCT = """\
id: rct2030
citation: A made-up randomised trial of TACE plus sorafenib vs TACE alone (test data only).
source_kind: full_text
design: randomised
phase: III
setting: concurrent_tace_sorafenib
population_size: 600
arms_partition_population: true
provenance:
  - {location: Abstract, snippet: 600 patients were randomised}
arms:
  - id: combo
    label: TACE plus sorafenib
    regimen: sorafenib_tace
    n: 300
    provenance: [{location: Abstract, snippet: TACE plus sorafenib (n = 300)}]
  - id: tace
    label: TACE alone
    regimen: tace
    n: 300
    provenance: [{location: Abstract, snippet: TACE alone (n = 300)}]
records:
  - id: rct2030.os
    type: survival
    endpoint: os
    time_origin: treatment_start
    analysis: univariate
    groups:
      - {id: combo, arm: combo}
      - {id: tace, arm: tace}
    contrasts:
      - exposed: combo
        reference: tace
        hr: {value: 0.87, ci: {lower: 0.70, upper: 1.08, level: 0.95}}
    provenance:
      - {location: Abstract, snippet: "overall survival HR 0.87 (95% CI 0.70-1.08)"}
"""

ROB2_LOW = """\
risk_of_bias:
  assessed_by: the authors of this test
  assessments:
    - id: rob.os
      tool: rob2
      comparison: TACE plus sorafenib vs TACE alone, overall survival
      records: [rct2030.os]
      domains:
        - {domain: randomisation, judgement: low, reason: Central computer randomisation.}
        - {domain: deviations, judgement: low, reason: Intention-to-treat analysis.}
        - {domain: missing_data, judgement: low, reason: Survival known for every patient.}
        - {domain: measurement, judgement: low, reason: Death measured without judgement.}
        - {domain: reporting, judgement: low, reason: Analysis as in the registered protocol.}
      overall: low
      reason: A well-conducted trial.
"""


@pytest.mark.parametrize("with_rob", [False, True], ids=["no_rob_block", "rob2_low"])
def test_a_new_randomised_trial_is_rated_and_worded_as_randomised(
    tmp_path: Path, with_rob: bool
) -> None:
    """Added as a study file, the trial fills os_tace_plus_sorafenib_vs_tace_alone.
    Start high; without a risk-of-bias block it is 'not assessed' (-1), with RoB 2 low
    nothing; one study: inconsistency not assessable; undeclared directness: taken as
    direct; imprecision from its CrI by hand."""
    data = tmp_path / "study_data"
    shutil.copytree(STUDY_DATA, data)
    (data / "rct2030.yaml").write_text(RCT + (ROB2_LOW if with_rob else ""))
    ev = hm.load_studies(data)
    missing = [w.study for w in ev.warnings if w.check == "risk_of_bias_missing"]
    assert ("rct2030" in missing) is not with_rob
    res = hm.run_analysis("os_tace_plus_sorafenib_vs_tace_alone", ev)
    assert res.status == "ok" and set(res.effects["study"]) == {"rct2030"}
    row = res.estimates.set_index("estimand").loc["effect"]
    c = _rating(res, "effect")
    assert (c["design"], c["start"]) == ("randomised", "high")
    assert c["risk_of_bias"] == (0 if with_rob else -1)
    assert c["indirectness"] == 0
    assert any("directness not declared for rct2030" in r for r in c["certainty_reasons"])
    imp = _imprecision_by_hand(row)
    assert c["certainty"] == LEVELS[max(0, 3 - (0 if with_rob else 1) - imp)]
    statement = res.interpret()
    assert "randomised," in statement and "non-randomised" not in statement
    assert "the probability that the treatment lowers the hazard" in statement
    assert "associated" not in statement
    # the non-randomised comparison beside it keeps its wording
    nrs = hm.run_analysis("os_tace_plus_sorafenib_vs_sorafenib", ev).interpret()
    assert "non-randomised" in nrs and "associated with" in nrs
    assert "lowers the hazard" not in nrs


RCT_ADDED_TO_SORAFENIB = """\
id: rct2031
citation: A made-up randomised trial of TACE added to sorafenib vs sorafenib alone (test data).
source_kind: full_text
design: randomised
setting: sorafenib_after_tace_failure
population_size: 400
arms_partition_population: true
provenance:
  - {location: Abstract, snippet: 400 patients were randomised}
arms:
  - id: combo
    label: Sorafenib plus TACE
    regimen: sorafenib_tace
    n: 200
    provenance: [{location: Abstract, snippet: sorafenib plus TACE (n = 200)}]
  - id: sor
    label: Sorafenib alone
    regimen: sorafenib
    n: 200
    provenance: [{location: Abstract, snippet: sorafenib alone (n = 200)}]
records:
  - id: rct2031.os
    type: survival
    endpoint: os
    time_origin: sorafenib_start
    analysis: univariate
    groups:
      - {id: combo, arm: combo}
      - {id: sor, arm: sor}
    contrasts:
      - exposed: combo
        reference: sor
        hr: {value: 0.8, ci: {lower: 0.65, upper: 0.98, level: 0.95}}
    provenance:
      - {location: Abstract, snippet: "overall survival HR 0.8 (95% CI 0.65-0.98)"}
"""


def test_randomised_and_non_randomised_evidence_together(tmp_path: Path) -> None:
    """A large trial joins the two cohorts of os_tace_plus_sorafenib_vs_sorafenib. Its SE
    (ln 0.98 - ln 0.65) / 3.92 = 0.105 gives it 1/0.105^2 = 91 of the ~106 units of
    weight (86%): the body starts high. Risk of bias: the trial is not assessed (1); each
    cohort is ROBINS-I serious (1) plus two levels for being non-randomised in a body
    rated from randomised evidence (3); studies at level >= 1 carry all the weight, at
    level 3 only 14%: -1. Terashima's indirectness (7% of the weight): no rating down."""
    data = tmp_path / "study_data"
    shutil.copytree(STUDY_DATA, data)
    (data / "rct2031.yaml").write_text(RCT_ADDED_TO_SORAFENIB)
    ev = hm.load_studies(data)
    res = hm.run_analysis("os_tace_plus_sorafenib_vs_sorafenib", ev)
    assert set(res.effects["study"]) == {"rct2031", "tace_resistant_n34", "terashima2016"}
    se = (math.log(0.98) - math.log(0.65)) / (2 * 1.959963984540054)
    w = res.effects.set_index("study")["sei"].astype(float) ** -2
    assert w["rct2031"] == pytest.approx(se**-2)
    assert w["rct2031"] / w.sum() == pytest.approx(0.86, abs=0.01)
    c = _rating(res, "effect")
    row = res.estimates.set_index("estimand").loc["effect"]
    assert (c["design"], c["start"], c["risk_of_bias"], c["indirectness"]) == (
        "mixed",
        "high",
        -1,
        0,
    )
    imp = _imprecision_by_hand(row)
    inc = int(c["inconsistency"])
    assert c["certainty"] == LEVELS[max(0, 3 - 1 + inc - imp)]
    # the comparison has non-randomised evidence: a bias-adjusted estimate, and the
    # statement names both designs without calling the result a treatment effect
    assert math.isfinite(row["bias_adjusted_natural_median"])
    statement = res.interpret()
    assert "randomised and non-randomised" in statement
    assert "lowers the hazard" not in statement
    # the combined model (bias learnt from the randomised trial) is a sensitivity variant
    table = hm.sensitivity(res, ev, groups=["bias"], progress=False)
    assert "bias_combined" in set(table["variant"])
