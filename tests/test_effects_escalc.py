"""hccmeta's count conversions against metafor's ``escalc``.

The reference values come from ``validation/escalc/run_escalc.R`` (metafor 3.8-1 under
R 4.2, defaults add = 1/2, to = "only0", drop00 = FALSE, vtype = "LS"), committed as
``tests/data/escalc_reference.json``. Regenerate with
``Rscript validation/escalc/run_escalc.R``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hccmeta.effects import logit_proportion, two_arm_counts

REFERENCE = Path(__file__).parent / "data" / "escalc_reference.json"

#: Estimates: jsonlite writes 15 significant digits and both sides evaluate the same
#: closed forms in double precision, so only the last printed digit may differ.
YI_TOL = 1e-12
#: Variances: sums of reciprocals of cells, same argument as for the estimates.
VI_TOL = 1e-12

pytestmark = pytest.mark.r


def _reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text())
    return data


def test_reference_records_versions() -> None:
    ref = _reference()
    assert ref["metafor_version"].startswith("3.8")
    assert ref["r_version"].startswith("R version 4.2")
    assert ref["escalc_defaults"] == {"add": 0.5, "to": "only0", "drop00": False, "vtype": "LS"}


@pytest.mark.parametrize("measure", ["log_or", "log_rr", "rd"])
def test_two_arm_against_escalc(measure: str) -> None:
    rows = _reference()["two_arm"][measure]
    assert len(rows) >= 10
    d = two_arm_counts(
        [r["events_exp"] for r in rows],
        [r["n_exp"] for r in rows],
        [r["events_ref"] for r in rows],
        [r["n_ref"] for r in rows],
        measure=measure,  # type: ignore[arg-type]
    )
    ref_yi = np.array([r["yi"] for r in rows], dtype=float)
    ref_vi = np.array([r["vi"] for r in rows], dtype=float)
    np.testing.assert_allclose(d.yi, ref_yi, rtol=0, atol=YI_TOL)
    np.testing.assert_allclose(d.vi, ref_vi, rtol=0, atol=VI_TOL)
    # the continuity correction applies exactly where a cell is zero
    zero = np.array(
        [
            min(
                r["events_exp"],
                r["n_exp"] - r["events_exp"],
                r["events_ref"],
                r["n_ref"] - r["events_ref"],
            )
            == 0
            for r in rows
        ]
    )
    np.testing.assert_array_equal(d.flags["continuity_correction"], zero)


def test_one_arm_logit_against_escalc() -> None:
    rows = _reference()["one_arm"]["logit_p"]
    d = logit_proportion([r["events"] for r in rows], [r["n"] for r in rows])
    np.testing.assert_allclose(d.yi, [r["yi"] for r in rows], rtol=0, atol=YI_TOL)
    np.testing.assert_allclose(d.vi, [r["vi"] for r in rows], rtol=0, atol=VI_TOL)


def test_max_abs_deviation_report() -> None:
    """Largest deviation from metafor over all reference values (printed with -s)."""
    ref = _reference()
    worst = 0.0
    for measure, rows in ref["two_arm"].items():
        d = two_arm_counts(
            *(
                np.array([r[k] for r in rows])
                for k in ("events_exp", "n_exp", "events_ref", "n_ref")
            ),
            measure=measure,
        )
        worst = max(worst, float(np.max(np.abs(d.yi - [r["yi"] for r in rows]))))
        worst = max(worst, float(np.max(np.abs(d.vi - [r["vi"] for r in rows]))))
    rows = ref["one_arm"]["logit_p"]
    d = logit_proportion([r["events"] for r in rows], [r["n"] for r in rows])
    worst = max(worst, float(np.max(np.abs(d.yi - [r["yi"] for r in rows]))))
    worst = max(worst, float(np.max(np.abs(d.vi - [r["vi"] for r in rows]))))
    print(f"max abs deviation from metafor escalc: {worst:.3g}")
    assert worst <= max(YI_TOL, VI_TOL)


@pytest.mark.slow
def test_reference_regenerates_identically(tmp_path: Path) -> None:
    """Re-running validation/escalc/run_escalc.R reproduces the committed JSON."""
    import shutil
    import subprocess

    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not on PATH")
    script = Path(__file__).parents[1] / "validation" / "escalc" / "run_escalc.R"
    out = tmp_path / "ref.json"
    subprocess.run(["Rscript", str(script), str(out)], check=True, capture_output=True)
    fresh = json.loads(out.read_text())
    committed = _reference()
    if fresh["metafor_version"] != committed["metafor_version"]:
        pytest.skip(f"metafor {fresh['metafor_version']} differs from the reference's")
    assert fresh == committed
