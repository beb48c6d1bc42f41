"""The default analyses on the real data (SPEC section 5).

Normal-normal analyses use the exact engine, so their numbers are compared with
independent computations; the MCMC analyses are checked for clean diagnostics and for
agreement with the normal-normal model where the two overlap.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

import hccmeta as hm
from hccmeta.analyses import Variation, load_registry, run_analysis
from hccmeta.analyses.account import evidence_account
from hccmeta.cli import main

from .conftest import STUDY_DATA, TOL_EXACT, DefaultResult, posterior_mu_k1


@pytest.fixture(scope="module")
def derived(evidence: hm.Evidence) -> object:
    return hm.derive_effects(evidence)


def test_registry_lists_every_spec_question(evidence: hm.Evidence) -> None:
    names = load_registry(evidence.data_dir).names
    for required in (
        "os_tace_plus_sorafenib_vs_sorafenib",
        "ttp_tace_plus_sorafenib_vs_sorafenib",
        "os_tace_plus_sorafenib_vs_tace_alone",
        "prognostic_factors",
        "median_ttp_per_regimen",
        "median_os_per_regimen",
        "survival_6_12_24_per_regimen",
        "objective_response",
        "disease_control",
        "ae_hand_foot_skin_reaction",
        "ae_diarrhoea",
        "ae_fatigue",
        "ae_grade_3_4",
    ):
        assert required in names


def test_os_contrast_takes_both_studies_oriented(default_result: DefaultResult) -> None:
    res = default_result("os_tace_plus_sorafenib_vs_sorafenib")
    eff = res.effects.set_index("study")
    # Terashima Table 3 prints group B vs group A, HR 2.628 (1.309-5.278): the question
    # asks A (with intrahepatic therapy) vs B, so ln HR = -ln 2.628 = -0.9662
    assert eff.loc["terashima2016", "yi"] == pytest.approx(-math.log(2.628), abs=1e-12)
    assert eff.loc["terashima2016", "sei"] == pytest.approx(
        (math.log(5.278) - math.log(1.309)) / (2 * stats.norm.ppf(0.975)), rel=1e-9
    )
    assert bool(eff.loc["terashima2016", "reversed"])
    # n=34 study: the log-rank P = 0.002 of the survival curves (Figure 2; the P = 0.001
    # printed next to the medians names no test), 30 deaths, 12 vs 22 patients (Peto
    # O-E/V): V = 30 * 12 * 22 / 34^2 = 6.851, ln HR = -z(0.001) / sqrt(V)
    # = -3.0902 / 2.6175 = -1.1806
    v = 30 * 12 * 22 / 34**2
    assert eff.loc["tace_resistant_n34", "yi"] == pytest.approx(
        -stats.norm.isf(0.001) / math.sqrt(v), rel=1e-9
    )
    assert "p_from_other_record" in eff.loc["tace_resistant_n34", "assumptions"]
    assert res.k == 2 and res.status == "ok"
    row = res.estimates.iloc[0]
    assert row["natural_scale"] == "HR"
    assert row["natural_median"] == pytest.approx(math.exp(row["median"]), rel=1e-12)


def test_k1_analysis_is_the_study_effect_shrunk_by_the_prior(default_result: DefaultResult) -> None:
    """TTP: one study (n=34: medians 5 vs 8 months, P = 0.058). The pooled mu is that
    study's ln HR under mu ~ N(0, 1), tau ~ HalfNormal(0.5), as a 2-D quadrature gives."""
    res = default_result("ttp_tace_plus_sorafenib_vs_sorafenib")
    (row,) = res.effects.itertuples()
    y = math.log(5 / 8)
    assert row.yi == pytest.approx(y, abs=1e-12)
    # |ln HR| / z(0.029) = 0.248 is below what 12 + 22 patients can support: even if every
    # patient progressed, Var(ln HR) >= N / (n1 n2) = 34 / 264, so SE >= 0.3589 (se_floor)
    assert abs(y) / stats.norm.isf(0.058 / 2) == pytest.approx(0.2479, abs=1e-4)
    assert row.sei == pytest.approx(math.sqrt(34 / (12 * 22)), rel=1e-9)
    assert "se_floor" in row.assumptions
    median, upper = posterior_mu_k1(row.yi, row.sei, 1.0, 0.5)
    est = res.estimates.iloc[0]
    assert est["median"] == pytest.approx(median, abs=TOL_EXACT)
    assert est["ci_upper"] == pytest.approx(upper, abs=TOL_EXACT)
    # shrunk towards 0 by the N(0, 1) prior, never beyond the study's own estimate
    assert row.yi < est["median"] < 0


def test_empty_analysis_reports_no_eligible_records(
    capsys: pytest.CaptureFixture[str], default_result: DefaultResult
) -> None:
    res = default_result("os_tace_plus_sorafenib_vs_tace_alone")
    assert res.status == "no_eligible_records"
    assert res.estimates.empty and res.k == 0
    assert main(["run", "os_tace_plus_sorafenib_vs_tace_alone", "--data", str(STUDY_DATA)]) == 0
    assert "no eligible records" in capsys.readouterr().out


NEW_STUDY = """\
id: newtrial2026
citation: A made-up randomised trial of TACE plus sorafenib vs TACE alone (test only).
source_kind: full_text
design: randomised
setting: concurrent_tace_sorafenib
population_size: 200
arms_partition_population: true
provenance:
  - {location: Abstract, snippet: 200 patients were randomised}
arms:
  - id: tace_sor
    label: TACE plus sorafenib
    regimen: sorafenib_tace
    n: 100
    provenance: [{location: Abstract, snippet: TACE plus sorafenib (n = 100)}]
  - id: tace
    label: TACE alone
    regimen: tace
    n: 100
    provenance: [{location: Abstract, snippet: TACE alone (n = 100)}]
records:
  - id: newtrial2026.os
    type: survival
    endpoint: os
    time_origin: treatment_start
    analysis: univariate
    groups:
      - {id: tace_sor, arm: tace_sor}
      - {id: tace, arm: tace}
    contrasts:
      - exposed: tace_sor
        reference: tace
        hr: {value: 0.8, ci: {lower: 0.6, upper: 1.07, level: 0.95}}
    provenance: [{location: Results, snippet: 'OS HR 0.8 (95% CI 0.6-1.07)'}]
"""


def test_empty_analysis_fills_in_when_a_study_is_added(tmp_path: Path) -> None:
    data = tmp_path / "study_data"
    shutil.copytree(STUDY_DATA, data)
    (data / "newtrial2026.yaml").write_text(NEW_STUDY)
    ev = hm.load_studies(data)
    res = run_analysis("os_tace_plus_sorafenib_vs_tace_alone", ev)
    assert res.status == "ok" and res.k == 1
    (row,) = res.effects.itertuples()
    assert row.study == "newtrial2026"
    assert row.yi == pytest.approx(math.log(0.8))
    median, _ = posterior_mu_k1(row.yi, row.sei, 1.0, 0.5)
    assert res.estimates.iloc[0]["median"] == pytest.approx(median, abs=TOL_EXACT)


def test_alternative_mapping_terashima_a_vs_c(evidence: hm.Evidence, derived: object) -> None:
    res = run_analysis(
        "os_tace_plus_sorafenib_vs_sorafenib",
        evidence,
        derived=derived,
        variation=Variation(alternative="terashima_a_vs_c"),
    )
    eff = res.effects.set_index("study")
    # Table 3: group C vs A, HR 5.805 (2.684-12.553), reversed to A vs C
    assert eff.loc["terashima2016", "yi"] == pytest.approx(-math.log(5.805), abs=1e-12)


def test_undeclared_mixing_is_an_error(evidence: hm.Evidence, derived: object) -> None:
    definition = load_registry(evidence.data_dir).get("os_tace_plus_sorafenib_vs_sorafenib")
    strict = definition.model_copy(update={"mixes": []})
    with pytest.raises(hm.InputError, match="differ in time_origin"):
        run_analysis(strict, evidence, derived=derived)


def test_leave_one_out_equals_a_direct_fit(evidence: hm.Evidence, derived: object) -> None:
    res = run_analysis(
        "os_tace_plus_sorafenib_vs_sorafenib",
        evidence,
        derived=derived,
        variation=Variation(exclude_studies=("terashima2016",)),
    )
    direct = hm.pool([-1.1806127], [0.3820466], measure="hr", method="exact")
    assert res.k == 1
    assert res.estimates.iloc[0]["median"] == pytest.approx(
        direct.summary().loc["mu", "median"], abs=1e-5
    )


@pytest.mark.sampling
def test_mcmc_analyses_run_cleanly(default_result: DefaultResult) -> None:
    for name in ("prognostic_factors", "objective_response", "ae_grade_3_4"):
        res = default_result(name)
        assert res.status == "ok", name
        assert res.ok, (name, res.diagnostics.to_dict("records"))
        assert (res.diagnostics["n_divergent"] == 0).all()
        assert (res.diagnostics["max_rhat"] < 1.01).all()


@pytest.mark.sampling
def test_prognostic_single_factor_agrees_with_normal_normal(default_result: DefaultResult) -> None:
    """With one factor informed by one study (AFP: Terashima's adjusted HR 2.207,
    1.230-3.958), the joint model's mu_f is close to the exact normal-normal fit of
    that study: both have mu ~ N(0, 1); the joint model's hierarchical tau prior has a
    scale of about 0.5, like the HalfNormal(0.5). Monte Carlo error and the different
    tau priors allow a difference of about 0.1 on the log scale."""
    res = default_result("prognostic_factors")
    joint = res.estimates.set_index("estimand").loc["afp_400"]
    y = math.log(2.207)
    se = (math.log(3.958) - math.log(1.230)) / (2 * stats.norm.ppf(0.975))
    exact = hm.pool([y], [se], measure="hr", method="exact").summary().loc["mu"]
    assert joint["median"] == pytest.approx(exact["median"], abs=0.1)


@pytest.mark.sampling
def test_every_default_analysis_runs_and_the_account_covers_every_record(
    evidence: hm.Evidence, derived: object
) -> None:
    registry = load_registry(evidence.data_dir)
    results = [run_analysis(a.name, evidence, derived=derived) for a in registry.analyses]
    for res in results:
        # every analysis gives pooled estimates, or (TACE + sorafenib vs TACE alone,
        # with these five sources) a clean "no eligible records"
        if res.name == "os_tace_plus_sorafenib_vs_tace_alone":
            assert res.status == "no_eligible_records"
            continue
        assert res.status == "ok", res.name
        assert not res.estimates.empty, res.name
        assert res.estimates[["median", "ci_lower", "ci_upper"]].notna().all().all(), res.name
        # clean MCMC diagnostics wherever a model was sampled
        assert res.ok, (res.name, res.diagnostics.to_dict("records"))
        if not res.diagnostics.empty:
            assert (res.diagnostics["n_divergent"] == 0).all(), res.name
            assert (res.diagnostics["max_rhat"] < 1.01).all(), res.name
    account = evidence_account(evidence, derived, results, registry)
    assert len(account) == evidence.n_records + evidence.n_characteristics
    assert account["record"].is_unique
    unused = account[account["status"] != "used"]
    assert (unused["reason"].str.len() > 10).all()
    assert not unused["reason"].str.startswith("no effect derived and no reason").any()
    used = set(account.loc[account["status"] == "used", "record"])
    assert {
        "tace_resistant_n34.os.sorafenib_start.median",
        "terashima2016.sas.subsequent_therapy.adjusted",
        "lee2017.os.child_pugh",
        "tace_resistant_n34.response.mrecist_3m",
    } <= used


def test_run_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["run", "os_tace_plus_sorafenib_vs_sorafenib", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["analysis"] == "os_tace_plus_sorafenib_vs_sorafenib"
    assert out["k"] == 2 and out["status"] == "ok"
    assert set(out["estimates"][0]) == {
        "estimand", "label", "scale", "mean", "median", "sd", "ci_lower", "ci_upper",
        "natural_scale", "natural_median", "natural_ci_lower", "natural_ci_upper",
        "benefit", "p_benefit", "k", "n_patients", "studies",
        "design", "certainty", "certainty_reasons", "bias_adjusted",
        "study_estimate", "dominant_prior", "dominant_prior_text",
    }  # fmt: skip
    est = out["estimates"][0]
    # two studies: no single study's own estimate to show, no prior named
    assert est["study_estimate"] is None and est["dominant_prior"] is None
    assert est["benefit"] == "below"  # p_benefit is P(HR < 1)
    # two retrospective cohorts: non-randomised, rated, and adjusted for bias
    assert est["design"] == "non_randomised"
    assert est["certainty"] in ("high", "moderate", "low", "very_low")
    assert isinstance(est["certainty_reasons"], list) and est["certainty_reasons"]
    assert set(est["bias_adjusted"]) == {
        "median", "ci_lower", "ci_upper", "natural_median", "natural_ci_lower",
        "natural_ci_upper", "p_benefit",
    }  # fmt: skip
    # both studies' bias favours the intrahepatic therapy: the adjusted HR is larger
    assert est["bias_adjusted"]["natural_median"] > est["natural_median"]
    assert "hazard ratio" in out["statement"]


def test_unknown_analysis_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown analysis 'nope'" in err and "Traceback" not in err


def test_estimate_columns(default_result: DefaultResult) -> None:
    res = default_result("median_ttp_per_regimen")
    run = hm.analyses.run
    cols = [*run.ESTIMATE_COLUMNS, *run.CREDIBILITY_COLUMNS, *run.DOMINANCE_COLUMNS]
    assert list(res.estimates.columns) == cols
    row = res.estimates.set_index("estimand").loc["sorafenib_tace"]
    # months on the natural scale, no probability of benefit for a per-regimen median
    assert row["natural_scale"] == "months" and pd.isna(row["p_benefit"])


def test_unrated_run_gives_the_same_estimates_without_the_ratings(
    evidence: hm.Evidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_analysis(rate=False), what a sensitivity variant runs: the same estimate
    fields as the rated run, the certainty and prior-dominance columns empty, and no
    bias-adjusted refit (counted by wrapping run_analysis)."""
    import hccmeta.analyses.run as run_module
    from hccmeta.analyses.dominance import DOMINANCE_COLUMNS
    from hccmeta.analyses.run import CREDIBILITY_COLUMNS
    from hccmeta.sensitivity.table import ESTIMATE_FIELDS

    name = "os_tace_plus_sorafenib_vs_sorafenib"  # exact engine, non-randomised evidence
    rated = run_analysis(name, evidence, seed=3)
    assert rated.estimates["certainty"].notna().all()
    assert rated.estimates["bias_adjusted_median"].notna().any()  # the adjusted refit ran
    calls: list[object] = []
    original = run_module.run_analysis

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("variation"))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "run_analysis", counting)
    unrated = run_module.run_analysis(name, evidence, seed=3, rate=False)
    assert len(calls) == 1  # no bias-adjusted refit
    fields = list(ESTIMATE_FIELDS)
    pd.testing.assert_frame_equal(unrated.estimates[fields], rated.estimates[fields])
    assert list(unrated.estimates.columns) == list(rated.estimates.columns)
    empty = [c for c in (*CREDIBILITY_COLUMNS, *DOMINANCE_COLUMNS) if c != "design"]
    assert unrated.estimates[empty].isna().all().all()
