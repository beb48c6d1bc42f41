"""No silent wrong answer from ``hccmeta pool``; ``pool --json`` and ``run --json`` share
their estimate keys; one default seed; clean help texts, warnings and tables."""

from __future__ import annotations

import inspect
import json
import math
import re
from pathlib import Path

import pytest

import hccmeta as hm
from hccmeta.analyses import run_analysis
from hccmeta.cli import COMMANDS, build_parser, main
from hccmeta.defaults import DEFAULT_SEED

from .conftest import STUDY_DATA, DefaultResult

#: The estimate keys ``pool --json`` and ``run --json`` share.
ESTIMATE_KEYS = {
    "mean", "median", "sd", "ci_lower", "ci_upper",
    "natural_scale", "natural_median", "natural_ci_lower", "natural_ci_upper",
}  # fmt: skip


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "in.csv"
    path.write_text(text)
    return str(path)


def test_medians_in_months_are_not_pooled_with_log_ratio_priors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's example: three medians of 7.9-10.1 months pooled to 3.89 under the
    N(0, 1) prior meant for log HRs. Now the priors are scaled to the data (s = 10.1 +
    1.2 = 11.3, 11 at two significant digits: Normal(0, 2.5 s = 27.5 -> 28),
    HalfNormal(s / 2 = 5.5)) and one clean line says so."""
    path = _csv(tmp_path, "study,yi,sei\nA,7.9,1.0\nB,9.0,0.8\nC,10.1,1.2\n")
    assert main(["pool", "--csv", path, "--json"]) == 0
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert line.startswith("hccmeta pool: warning: measure 'generic' has no default priors")
    assert "mu ~ Normal(0, 28), tau ~ HalfNormal(5.5)" in line
    assert ".py" not in line and "UserWarning" not in line
    res = json.loads(out)
    assert res["priors"] == {"mu": "Normal(mean=0.0, sd=28.0)", "tau": "HalfNormal(scale=5.5)"}
    assert res["prior_note"] == line.removeprefix("hccmeta pool: warning: ")
    # the same fit through the API with these priors written out
    ref = hm.pool([7.9, 9.0, 10.1], [1.0, 0.8, 1.2], study=list("ABC"),
                  prior_mu="normal:0:28", prior_tau="halfnormal:5.5")  # fmt: skip
    assert res["mu"]["median"] == pytest.approx(ref.summary().loc["mu", "median"], rel=1e-12)
    assert 7.9 < res["mu"]["median"] < 10.1


def test_ratios_with_cis_need_a_measure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path, "study,estimate,ci_lower,ci_upper\nA,0.5,0.3,0.83\nB,0.7,0.5,0.98\n")
    assert main(["pool", "--csv", path]) == 2
    err = capsys.readouterr().err
    assert "need --measure" in err and "these look like ratios" in err
    assert "Traceback" not in err
    # --measure generic is the user's choice: pooled, with one line naming the suspicion
    assert main(["pool", "--csv", path, "--measure", "generic"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert any("symmetric on the log scale, as for ratios" in x for x in err)
    assert all(x.startswith("hccmeta pool: warning: ") for x in err)


def test_counts_need_a_measure_and_rd_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path, "study,events_t,n_t,events_c,n_c\nA,4,36,11,36\nB,9,54,29,54\n")
    assert main(["pool", "--csv", path]) == 2
    assert "need --measure or, rr or rd" in capsys.readouterr().err
    assert main(["pool", "--csv", path, "--measure", "rd", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # risk differences 4/36 - 11/36 and 9/54 - 29/54 (no zero cell: no correction)
    assert [s["yi"] for s in out["studies"]] == pytest.approx([-7 / 36, -20 / 54], rel=1e-12)
    assert out["measure"] == "rd" and out["prior_note"] is None


def test_pool_and_run_json_share_estimate_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "os_tace_plus_sorafenib_vs_sorafenib"
    assert main(["run", name, "--data", str(STUDY_DATA), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    # the run's own effects (as oriented by the analysis), pooled by `pool`
    rows = "".join(f"{e['study']},{e['yi']!r},{e['sei']!r}\n" for e in run["effects"])
    path = _csv(tmp_path, "study,yi,sei\n" + rows)
    assert main(["pool", "--csv", path, "--measure", "hr", "--json"]) == 0
    pool = json.loads(capsys.readouterr().out)
    for key in ("mu", "tau", "theta_new"):
        assert set(pool[key]) == ESTIMATE_KEYS
    assert pool["mu"]["natural_median"] == pytest.approx(math.exp(pool["mu"]["median"]))
    assert pool["tau"]["natural_scale"] is None
    assert [s["study"] for s in pool["studies"]] == [e["study"] for e in run["effects"]]
    assert set(pool["studies"][0]["theta"]) == ESTIMATE_KEYS
    assert pool["diagnostics"] is None and pool["seed"] == DEFAULT_SEED
    (est,) = run["estimates"]
    assert set(est) >= ESTIMATE_KEYS
    assert {s["study"] for s in run["studies"]} == {"tace_resistant_n34", "terashima2016"}
    assert all(set(s) >= ESTIMATE_KEYS for s in run["studies"])
    # the primary fit's priors, and the bias distribution of its bias-adjusted estimate
    # (ROBINS-I serious, bias favouring the TACE group: N(-0.30, 0.30^2) on the log HR)
    assert run["priors"] == {
        "mu": "Normal(mean=0.0, sd=1.0)",
        "tau": "HalfNormal(scale=0.5)",
        "bias": "serious risk of bias in tace_resistant_n34 and terashima2016: bias ~ "
        "N(-0.30, 0.30²)",
    }
    assert run["diagnostics"] == [] and run["seed"] == DEFAULT_SEED
    # the same effects and the same engine: the same posterior
    assert est["median"] == pytest.approx(pool["mu"]["median"], abs=1e-12)


@pytest.mark.sampling
def test_pool_json_reports_mcmc_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path, "study,yi,sei\nA,-0.35,0.21\nB,-0.10,0.30\nC,-0.62,0.25\n")
    assert main(["pool", "--csv", path, "--measure", "hr", "--method", "mcmc", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"max_rhat", "min_ess_bulk", "n_divergent", "ok"} <= set(out["diagnostics"])


def test_one_default_seed_everywhere() -> None:
    from hccmeta.models import binomial, prognostic, survival
    from hccmeta.report import writer
    from hccmeta.sensitivity import run as sens_run

    assert DEFAULT_SEED == 20261122 == writer.DEFAULT_SEED == sens_run.DEFAULT_SEED
    for fn in (hm.pool, run_analysis, binomial.fit_proportion, binomial.fit_contrast,
               prognostic.fit_prognostic, survival.fit_survival):  # fmt: skip
        assert inspect.signature(fn).parameters["seed"].default == DEFAULT_SEED, fn
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("run", "pool", "report"):
        args = sub.choices[name]  # type: ignore[index]
        (seed,) = [a for a in args._actions if a.dest == "seed"]
        assert seed.default == DEFAULT_SEED, name


def test_help_texts_have_no_doubled_percent() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in COMMANDS:
        text = sub.choices[name].format_help()  # type: ignore[index]
        assert "%%" not in text, name


def test_sensitivity_groups_do_not_swallow_the_analysis() -> None:
    parser = build_parser()
    args = parser.parse_args(["sensitivity", "--groups", "prior_tau", "objective_response"])
    assert (args.analysis, args.groups) == ("objective_response", ["prior_tau"])
    args = parser.parse_args(
        ["sensitivity", "x", "--groups", "prior_tau,leave_one_out", "--groups", "subset"]
    )
    assert args.groups == ["prior_tau", "leave_one_out", "subset"]
    with pytest.raises(SystemExit):
        parser.parse_args(["sensitivity", "--groups", "loo", "x"])


def test_run_table_has_headers_and_percentages(capsys: pytest.CaptureFixture[str]) -> None:
    """pfs_6m_per_regimen: Park et al., 6-month PFS 52% (95% CI 37.3-66.1)."""
    assert main(["run", "pfs_6m_per_regimen", "--data", str(STUDY_DATA)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == [
        "estimand", "estimate", "(95%", "CrI)", "P(benefit)", "k", "patients", "analysis",
        "scale:", "median", "(95%", "CrI)",
    ]  # fmt: skip
    row = lines[3]
    assert row.startswith("sorafenib_tace")
    assert re.search(r"  \d+% \(\d+% to \d+%\)  ", row), row


def test_analysis_result_datatree_and_netcdf(
    evidence: hm.Evidence, tmp_path: Path, default_result: DefaultResult
) -> None:
    res = default_result("os_tace_plus_sorafenib_vs_sorafenib")
    assert list(res.fits) == ["effect"]
    tree = res.datatree
    assert tree.attrs["analysis"] == res.name and tree.attrs["seed"] == DEFAULT_SEED
    assert list(tree["posterior"]["study"].values) == ["tace_resistant_n34", "terashima2016"]
    assert res.to_netcdf(tmp_path / "os.nc") in ("netcdf4", "netcdf3-flat")
    from hccmeta.report.netcdf import read_posteriors

    back = read_posteriors(tmp_path / "os.nc")
    assert back.attrs["study_data_hash"] == evidence.data_hash
    per = default_result("median_ttp_per_regimen")
    assert "" not in per.fits and set(per.datatree.children) <= set(per.fits) | {
        "posterior", "prior", "observed_data", "constant_data", "log_likelihood", "log_prior"
    }  # fmt: skip


def test_orientation_of_every_pooled_effect(
    evidence: hm.Evidence, default_result: DefaultResult
) -> None:
    """Terashima's Table 3: group B vs A (the reference), adjusted HR 2.628; the OS
    analysis asks for A vs B, so it pools -ln 2.628, reversed."""
    res = default_result("os_tace_plus_sorafenib_vs_sorafenib")
    t = res.effects.set_index("study").loc["terashima2016"]
    assert (t["orientation"], t["exposed"], t["reference"]) == ("reversed", "group_a", "group_b")
    assert t["yi"] == pytest.approx(-math.log(2.628), abs=1e-12)
    derived = hm.derive_effects(evidence).effects.set_index("effect").loc[t["effect"]]
    assert derived["yi"] == pytest.approx(math.log(2.628), abs=1e-12)
    n34 = res.effects.set_index("study").loc["tace_resistant_n34"]
    assert n34["orientation"] == "as derived"


def test_no_eligible_records_message_is_generated_from_the_data(
    evidence: hm.Evidence, default_result: DefaultResult
) -> None:
    res = default_result("os_tace_plus_sorafenib_vs_tace_alone")
    n = len(evidence.studies_table)  # the studies in the data, however many
    assert res.message == (
        f"no eligible records for os_tace_plus_sorafenib_vs_tace_alone: none of the {n} studies "
        "in the data gives a hazard ratio of OS, Sorafenib + TACE vs TACE alone; tamai2017 "
        "has arms of both regimens, but no effect could be derived from its comparison "
        "(tamai2017.ttp, TTP: no p-value, HR or CI for any comparison of the 3 groups)"
    )
