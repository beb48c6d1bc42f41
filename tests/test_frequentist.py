"""REML, DerSimonian-Laird and fixed-effect estimates against metafor.

Reference: tests/data/metafor_rma_reference.json, written by
validation/metafor/run_rma.R (metafor's rma() and predict(); the R and metafor versions
are recorded in the file). Names map one to one: estimate = beta, se = se,
ci_lower/ci_upper = ci.lb/ci.ub, pi_lower/pi_upper = pi.lb/pi.ub, tau2, i2 = I2,
h2 = H2, q = QE, q_p = QEp.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import hccmeta as hm
from hccmeta.models.frequentist import rma

pytestmark = pytest.mark.r

REFERENCE = Path(__file__).parent / "data" / "metafor_rma_reference.json"

#: Closed-form quantities (DL, FE; and everything given tau^2): both sides compute the same
#: formulas in double precision; the JSON keeps 15 significant digits.
TOL_CLOSED = 1e-10
#: REML tau^2 (and what depends on it): both sides iterate Fisher scoring to convergence
#: (metafor to a change below 1e-12, run_rma.R), so they agree to ~1e-9.
TOL_REML = 1e-8
#: p-values: R's pchisq vs scipy's chi2.sf.
TOL_P = 1e-10

FIELDS = ("estimate", "se", "ci_lower", "ci_upper", "pi_lower", "pi_upper", "tau2", "i2", "h2", "q")


def _cases():
    data = json.loads(REFERENCE.read_text())
    for name, d in data["datasets"].items():
        for key, fit in d["fits"].items():
            yield pytest.param(d["yi"], d["vi"], fit, id=f"{name}-{key}")


def test_reference_records_versions() -> None:
    data = json.loads(REFERENCE.read_text())
    assert data["r_version"].startswith("R version 4.")
    assert data["metafor_version"].startswith("3.8")


@pytest.mark.parametrize(("yi", "vi", "ref"), list(_cases()))
def test_against_metafor(yi, vi, ref) -> None:
    res = rma(yi, vi=vi, method=ref["method"], test=ref["test"])
    assert {**res}["tau2"] == res.tau2
    tol = TOL_REML if ref["method"] == "REML" else TOL_CLOSED
    assert res.k == ref["k"]
    for field in FIELDS:
        if ref[field] is None:
            # predict() gives no prediction interval for FE models (ours is the CI: tau = 0)
            assert getattr(res, field) == getattr(res, field.replace("pi_", "ci_"))
            continue
        assert getattr(res, field) == pytest.approx(ref[field], rel=tol, abs=tol), field
    assert res.q_p == pytest.approx(ref["q_p"], rel=TOL_P, abs=TOL_P)
    assert res.tau == pytest.approx(math.sqrt(ref["tau2"]), rel=tol, abs=tol)


def test_second_argument_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        rma([0.1, 0.2], [0.04, 0.09])  # type: ignore[misc]


def test_single_study() -> None:
    """metafor: rma(yi = 0.3, vi = 0.04) gives tau2 = 0, I2 = 0, QE = 0."""
    res = rma([0.3], vi=[0.04])
    assert (res.tau2, res.i2, res.q) == (0.0, 0.0, 0.0)
    assert res.estimate == pytest.approx(0.3)
    assert res.se == pytest.approx(0.2)


def test_summary_layout() -> None:
    res = rma([0.1, 0.5, -0.2], sei=[0.2, 0.3, 0.25], method="DL")
    table = res.summary()
    assert list(table.columns) == ["mean", "median", "sd", "ci_lower", "ci_upper"]
    assert list(table.index) == ["mu", "tau", "theta_new"]
    assert table.loc["theta_new", "ci_lower"] == res.pi_lower


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "ML"}, "method must be 'REML', 'DL' or 'FE', got 'ML'"),
        ({"test": "t"}, "test must be 'z' or 'knha'"),
        ({"level": 95}, "level must lie in (0, 1), got 95 (give a fraction, e.g. 0.95)"),
        ({"sei": [0.2, 0.0]}, "sei[1] = 0: a standard error must be > 0"),
        ({"yi": [0.1, float("nan")]}, "yi[1] is missing (NaN)"),
    ],
)
def test_invalid(kwargs, message) -> None:
    args = {"yi": [0.1, 0.2], "sei": [0.2, 0.3], **kwargs}
    with pytest.raises(hm.InputError) as err:
        rma(args.pop("yi"), **args)
    assert message in str(err.value)
