"""The committed report: ``reports/`` is committed so that readers see the results
without running anything; it must be the report of the committed study data, and its
HTML must render in a real browser (see :mod:`tests.test_report_browser`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hccmeta as hm
from tests.test_report import CSVS
from tests.test_report_browser import _check, chromium  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
STUDY_DATA = REPO / "study_data"


def test_committed_report_matches_the_data() -> None:
    """reports/ is committed so that readers see the results without running anything;
    it must be the report of the committed study data (regenerate: `make report`)."""
    prov = REPO / "reports" / "provenance.json"
    assert prov.is_file(), "reports/ is missing: run `make report` and commit it"
    recorded = json.loads(prov.read_text("utf-8"))
    current = hm.load_studies(STUDY_DATA).data_hash
    assert recorded["data_hash"] == current, (
        "reports/ is stale: the study data changed since it was generated "
        "(run `make report` and commit reports/)"
    )
    for name in ("index.md", "index.html", *CSVS):
        assert (REPO / "reports" / name).is_file(), name


@pytest.mark.browser
@pytest.mark.usefixtures("chromium")
def test_committed_report_renders() -> None:
    html = REPO / "reports" / "index.html"
    if not html.is_file():
        pytest.fail("reports/index.html is missing: run `make report` and commit reports/")
    value = _check(html)
    assert len(value["images"]) == len(list((REPO / "reports" / "figures").glob("*.png")))
