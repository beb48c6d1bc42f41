"""``hccmeta pool``: SPEC section 7 (CSV shapes, prior SPEC strings, --json keys) and
invalid input (exit 2, row and column named, no traceback)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import hccmeta as hm
from hccmeta import priors
from hccmeta.cli import main

#: The CLI prints floats with json (repr): the same numbers as the API.
TOL_SAME = 1e-12

JSON_KEYS = {"method", "measure", "k", "mu", "tau", "theta_new", "p_mu_below_0"}
STAT_KEYS = {"mean", "median", "sd", "ci_lower", "ci_upper"}
NATURAL_KEYS = {"natural_scale", "natural_median", "natural_ci_lower", "natural_ci_upper"}


def write(tmp_path: Path, text: str, name: str = "in.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_json(capsys, args: list[str]) -> dict:
    assert main(["pool", *args, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_json_has_exactly_the_spec_keys(tmp_path, capsys) -> None:
    path = write(tmp_path, "study,yi,sei\nA,-0.35,0.21\nB,-0.10,0.30\nC,-0.62,0.25\n")
    out = run_json(capsys, ["--csv", path])
    # SPEC section 7's keys, extended (never changed): the estimate keys of run --json
    assert set(out) >= JSON_KEYS
    for key in ("mu", "tau", "theta_new"):
        assert set(out[key]) == STAT_KEYS | NATURAL_KEYS
    assert (out["method"], out["measure"], out["k"]) == ("exact", "generic", 3)
    ref = hm.pool([-0.35, -0.10, -0.62], [0.21, 0.30, 0.25], study=["A", "B", "C"])
    table = ref.summary()
    for key in ("mu", "tau", "theta_new"):
        for stat in STAT_KEYS:
            assert out[key][stat] == pytest.approx(table.loc[key, stat], rel=TOL_SAME)
    assert out["p_mu_below_0"] == pytest.approx(ref.p_mu_below_0, rel=TOL_SAME)


def test_four_csv_shapes_agree(tmp_path, capsys) -> None:
    """The same two log ORs given as yi,sei | yi,vi | OR with 95% CI | counts."""
    # counts: 4/36 vs 11/36 and 9/54 vs 29/54 (Crins et al. 2014, Spada and Ganschow)
    y = np.array([math.log(4 * 25 / (32 * 11)), math.log(9 * 25 / (45 * 29))])
    v = np.array([1 / 4 + 1 / 32 + 1 / 11 + 1 / 25, 1 / 9 + 1 / 45 + 1 / 29 + 1 / 25])
    y, v = y.tolist(), v.tolist()
    s = [math.sqrt(x) for x in v]
    z = float(stats.norm.ppf(0.975))
    files = {
        "sei": "study,yi,sei\n" + "".join(f"S{i},{y[i]!r},{s[i]!r}\n" for i in range(2)),
        "vi": "study,yi,vi\n" + "".join(f"S{i},{y[i]!r},{v[i]!r}\n" for i in range(2)),
        "ci": "study,estimate,ci_lower,ci_upper\n"
        + "".join(
            f"S{i},{math.exp(y[i])!r},{math.exp(y[i] - z * s[i])!r},{math.exp(y[i] + z * s[i])!r}\n"
            for i in range(2)
        ),
        "counts": "study,events_t,n_t,events_c,n_c\nS0,4,36,11,36\nS1,9,54,29,54\n",
    }
    outs = [
        run_json(capsys, ["--csv", write(tmp_path, text), "--measure", "or"])
        for text in files.values()
    ]
    for out in outs[1:]:
        assert out["mu"]["median"] == pytest.approx(outs[0]["mu"]["median"], rel=1e-9)
        assert out["tau"]["mean"] == pytest.approx(outs[0]["tau"]["mean"], rel=1e-9)
        assert out["measure"] == "or" and out["k"] == 2


def test_ci_level_column(tmp_path, capsys) -> None:
    """A 90% CI gives SE = (ln U - ln L) / (2 z_0.95)."""
    path = write(
        tmp_path,
        "study,estimate,ci_lower,ci_upper,ci_level\nA,0.7,0.5,0.98,0.90\nB,0.9,0.6,1.35,\n",
    )
    out = run_json(capsys, ["--csv", path, "--measure", "hr"])
    se_a = (math.log(0.98) - math.log(0.5)) / (2 * stats.norm.ppf(0.95))
    se_b = (math.log(1.35) - math.log(0.6)) / (2 * stats.norm.ppf(0.975))
    ref = hm.pool([math.log(0.7), math.log(0.9)], [se_a, se_b], measure="hr")
    assert out["mu"]["mean"] == pytest.approx(ref.summary().loc["mu", "mean"], rel=1e-9)


@pytest.mark.parametrize(
    ("option", "spec", "prior"),
    [
        ("--prior-mu", "normal:0:4", priors.Normal(0, 4)),
        ("--prior-mu", "uniform:-3:3", priors.Uniform(-3, 3)),
        ("--prior-tau", "halfnormal:0.25", priors.HalfNormal(0.25)),
        ("--prior-tau", "halfcauchy:0.5", priors.HalfCauchy(0.5)),
        ("--prior-tau", "halft:3:0.5", priors.HalfStudentT(3, 0.5)),
        ("--prior-tau", "lognormal:-1.975:0.67", priors.LogNormal(-1.975, 0.67)),
        ("--prior-tau", "invgamma:2.42:0.30", priors.InverseGamma(2.42, 0.30)),
        ("--prior-tau", "uniform:0:2", priors.Uniform(0, 2)),
        ("--prior-tau", "turner2015_all_cause_mortality", priors.turner2015_all_cause_mortality),
    ],
)
def test_every_prior_spec(tmp_path, capsys, option, spec, prior) -> None:
    path = write(tmp_path, "study,yi,sei\nA,-0.35,0.21\nB,-0.10,0.30\nC,-0.62,0.25\n")
    out = run_json(capsys, ["--csv", path, option, spec])
    kwargs = {"prior_mu": prior} if option == "--prior-mu" else {"prior_tau": prior}
    ref = hm.pool([-0.35, -0.10, -0.62], [0.21, 0.30, 0.25], **kwargs)
    assert out["tau"]["median"] == pytest.approx(ref.summary().loc["tau", "median"], rel=1e-12)


def test_text_output_back_transforms(tmp_path, capsys) -> None:
    path = write(tmp_path, "study,estimate,ci_lower,ci_upper\nA,0.70,0.46,1.06\nB,0.90,0.50,1.62\n")
    assert main(["pool", "--csv", path, "--measure", "hr"]) == 0
    out = capsys.readouterr().out
    assert "back-transformed (HR)" in out and "P(mu < 0) = " in out


def test_fixed_effect_option(tmp_path, capsys) -> None:
    path = write(tmp_path, "study,yi,sei\nA,-0.35,0.21\nB,-0.10,0.30\n")
    out = run_json(capsys, ["--csv", path, "--model", "fixed"])
    assert out["tau"]["mean"] == 0.0


@pytest.mark.sampling
def test_mcmc_with_seed(tmp_path, capsys) -> None:
    path = write(tmp_path, "study,yi,sei\nA,0.1,0.2\nB,0.5,0.3\nC,-0.2,0.25\n")
    a = run_json(capsys, ["--csv", path, "--method", "mcmc", "--seed", "7"])
    b = run_json(capsys, ["--csv", path, "--method", "mcmc", "--seed", "7"])
    assert a == b and a["method"] == "mcmc"
    exact = run_json(capsys, ["--csv", path])
    assert abs(a["mu"]["mean"] - exact["mu"]["mean"]) < 0.02


# -- invalid input: exit 2, the row and column named -----------------------------------------

BAD = [
    (
        "reversed_ci",
        "study,estimate,ci_lower,ci_upper\nA,0.7,0.5,0.9\nB,0.8,1.2,0.6\n",
        "hr",
        "in.csv:3: column ci_lower: CI reversed or empty",
    ),
    (
        "estimate_outside_ci",
        "study,estimate,ci_lower,ci_upper\nA,1.7,0.5,0.9\n",
        "hr",
        "in.csv:2: column estimate: estimate 1.7 lies outside its CI (0.5, 0.9)",
    ),
    (
        "non_positive_ratio",
        "study,estimate,ci_lower,ci_upper\nA,0.7,0.5,0.9\nB,-0.2,-0.5,0.1\n",
        "hr",
        "in.csv:3: column estimate: -0.2 is not positive",
    ),
    (
        "zero_se",
        "study,yi,sei\nA,0.1,0.2\nB,0.3,0\n",
        "generic",
        "in.csv:3: column sei: standard error 0 must be > 0",
    ),
    (
        "negative_se",
        "study,yi,sei\nA,0.1,-0.2\n",
        "generic",
        "in.csv:2: column sei: standard error -0.2 must be > 0",
    ),
    (
        "negative_vi",
        "study,yi,vi\nA,0.1,-0.04\n",
        "generic",
        "in.csv:2: column vi: variance -0.04 must be > 0",
    ),
    ("nan", "study,yi,sei\nA,nan,0.2\n", "generic", "in.csv:2: column yi: missing value 'nan'"),
    (
        "non_numeric",
        "study,yi,sei\nA,0.1,0.2\nB,abc,0.2\n",
        "generic",
        "in.csv:3: column yi: 'abc' is not a number",
    ),
    ("missing_column", "study,yi\nA,0.1\n", "generic", "missing column 'sei' or 'vi'"),
    ("missing_study", "yi,sei\n0.1,0.2\n", "generic", "missing column 'study'"),
    ("empty_file", "", "generic", "empty file"),
    ("header_only", "study,yi,sei\n", "generic", "empty file (a header but no data rows)"),
    (
        "ci_level_95",
        "study,estimate,ci_lower,ci_upper,ci_level\nA,0.7,0.5,0.9,95\n",
        "hr",
        "in.csv:2: column ci_level: 95 looks like a percentage",
    ),
    (
        "events_above_n",
        "study,events_t,n_t,events_c,n_c\nA,4,36,11,36\nB,60,54,29,54\n",
        "or",
        "in.csv:3: column events_t: events_t 60 exceeds n_t 54",
    ),
]


@pytest.mark.parametrize(("label", "text", "measure", "message"), BAD, ids=[b[0] for b in BAD])
def test_invalid_csv_exit_2(tmp_path, capsys, label, text, measure, message) -> None:
    path = write(tmp_path, text)
    assert main(["pool", "--csv", path, "--measure", measure, "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(("hccmeta pool: error: ", f"{path}:")), captured.err
    assert message in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prior-tau", "gamma:1:2"], "--prior-tau: unknown prior family 'gamma'"),
        (
            ["--prior-tau", "halfnormal:-1"],
            "--prior-tau: 'halfnormal:-1': HalfNormal: scale must be > 0",
        ),
        (
            ["--prior-tau", "normal:0:1"],
            "--prior-tau: Normal(mean=0.0, sd=1.0) puts mass on negative",
        ),
        (["--prior-mu", "halfcauchy:1"], "--prior-mu: HalfCauchy(scale=1.0) is not a prior for mu"),
        (["--prior-mu", "normal:0:x"], "--prior-mu: SD in 'normal:0:x' is not a number: 'x'"),
        (["--seed", "-3"], "--seed must be a non-negative integer"),
        (["--prior-tau", ""], "--prior-tau: empty prior SPEC"),  # not the default
        (["--prior-mu", "normal:0:1e-300"], "--prior-mu: 'normal:0:1e-300': Normal: sd = 1e-300"),
        (
            ["--model", "fixed", "--prior-tau", "halfnormal:1"],
            "--prior-tau cannot be used with --model fixed",
        ),
    ],
)
def test_invalid_options_exit_2(tmp_path, capsys, args, message) -> None:
    path = write(tmp_path, "study,yi,sei\nA,0.1,0.2\n")
    assert main(["pool", "--csv", path, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_file_exit_2(tmp_path, capsys) -> None:
    assert main(["pool", "--csv", str(tmp_path / "nope.csv")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_end_to_end_process_no_traceback(tmp_path) -> None:
    path = write(tmp_path, "study,estimate,ci_lower,ci_upper\nA,0.7,0.9,0.5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "hccmeta.cli", "pool", "--csv", path, "--measure", "hr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "column ci_lower" in proc.stderr and "Traceback" not in proc.stderr
