"""A new user adds studies by following study_data/README.md, section 7, step by step.

The tutorial is executed literally: its blocks marked ``<!-- tutorial: ... -->`` are
source texts to save, ``hccmeta`` commands to run (in a directory holding a copy of
``study_data/`` and a ``sources/`` directory), vocabulary entries to add and study files
to write. Two made-up studies join: a randomised trial of TACE + sorafenib vs TACE alone
(OS hazard ratio with CI, time origin randomisation) in a new setting, and a
retrospective cohort in another new setting with a new time origin. Then every analysis,
the sensitivity table and the report run on that copy.

The facts checked about the new studies come from their made-up source texts in the
README (HR 0.76, 0.58-0.99; HR 0.71, 0.50-0.99; 21 of 60 and 9 of 90 responders); the
tests never count the studies of the copied directory.
"""

from __future__ import annotations

import math
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from ruamel.yaml import YAML
from scipy import stats

import hccmeta as hm
from hccmeta.analyses import Variation, load_registry, run_analysis
from hccmeta.analyses.account import evidence_account
from hccmeta.cli import main
from hccmeta.models.mcmc import SamplerSettings
from hccmeta.report import write_report

from .conftest import REPO_STUDY_DATA, TOL_EXACT, posterior_mu_k1

README = REPO_STUDY_DATA / "README.md"
NEW = ("smith2024", "jones2023")
MARKER = re.compile(r"<!-- tutorial: (\w+)(?: (\S+))? -->\n```\w*\n(.*?)```", re.DOTALL)
#: Analyses of the exact engine (the report runs on these to stay fast).
FAST = (
    "os_tace_plus_sorafenib_vs_sorafenib",
    "ttp_tace_plus_sorafenib_vs_sorafenib",
    "os_tace_plus_sorafenib_vs_tace_alone",
    "median_ttp_per_regimen",
    "pfs_6m_per_regimen",
)


@dataclass
class Ran:
    command: str
    status: int
    expected: int
    out: str
    err: str


def _steps() -> list[tuple[str, str | None, str]]:
    text = README.read_text("utf-8")
    section = text[text.index("## 7. Adding a study, step by step") :]
    return [(m.group(1), m.group(2), m.group(3)) for m in MARKER.finditer(section)]


def _add_terms(vocabulary: Path, section: str, block: str) -> None:
    """Insert ``block`` (indented entries) right after the line ``section:``."""
    lines = vocabulary.read_text("utf-8").splitlines(keepends=True)
    at = lines.index(f"{section}:\n") + 1
    vocabulary.write_text("".join([*lines[:at], block, *lines[at:]]), "utf-8")


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Ran]]:
    """Follow the tutorial in a fresh directory; returns it and every command run."""
    root = tmp_path_factory.mktemp("tutorial")
    shutil.copytree(REPO_STUDY_DATA, root / "study_data")
    (root / "sources").mkdir()
    ran: list[Ran] = []
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.delenv("HCCMETA_SOURCES", raising=False)
    mp.delenv("HCCMETA_DATA", raising=False)
    try:
        for kind, arg, body in _steps():
            if kind == "source":
                (root / "sources" / str(arg)).write_text(body, "utf-8")
            elif kind == "study":
                (root / "study_data" / str(arg)).write_text(body, "utf-8")
            elif kind == "vocabulary":
                _add_terms(root / "study_data" / "vocabulary.yaml", str(arg), body)
            elif kind == "run":
                for line in body.splitlines():
                    command, _, comment = line.partition("#")
                    if not command.strip():
                        continue
                    m = re.search(r"exit (\d)", comment)
                    argv = shlex.split(command)
                    assert argv[0] == "hccmeta", line
                    capture = _Capture()
                    with capture:
                        status = main(argv[1:])
                    ran.append(
                        Ran(command.strip(), status, int(m.group(1)) if m else 0,
                            capture.out, capture.err)
                    )  # fmt: skip
            else:  # pragma: no cover - a marker this test does not know
                raise AssertionError(f"unknown tutorial step {kind!r}")
    finally:
        mp.undo()
    return root, ran


class _Capture:
    """Capture stdout and stderr of an in-process command."""

    def __enter__(self) -> _Capture:
        import contextlib
        import io

        self._out, self._err = io.StringIO(), io.StringIO()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self._out))
        self._stack.enter_context(contextlib.redirect_stderr(self._err))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.out, self.err = self._out.getvalue(), self._err.getvalue()


def _original_ids() -> set[str]:
    ids = set()
    for path in REPO_STUDY_DATA.glob("*.yaml"):
        if path.name in ("analyses.yaml", "vocabulary.yaml"):
            continue
        data = YAML(typ="safe").load(path.read_text("utf-8"))
        ids.add(data["id"])
    return ids


def test_the_tutorial_has_every_step() -> None:
    kinds = [(k, a) for k, a, _ in _steps()]
    assert ("source", "smith2024.txt") in kinds and ("study", "smith2024.yaml") in kinds
    assert ("vocabulary", "setting") in kinds and ("vocabulary", "time_origin") in kinds
    assert kinds.count(("run", None)) >= 3


def test_every_tutorial_command_exits_as_the_readme_says(
    tutorial: tuple[Path, list[Ran]],
) -> None:
    _, ran = tutorial
    for r in ran:
        assert r.status == r.expected, (r.command, r.out, r.err)
        assert "Traceback" not in r.err, r.command


def test_the_skeleton_lists_the_todos_left(tutorial: tuple[Path, list[Ran]]) -> None:
    _, ran = tutorial
    first = next(r for r in ran if r.command.startswith("hccmeta validate"))
    assert first.status == 2
    lines = first.err.strip().splitlines()
    todo = [x for x in lines if "smith2024.yaml" in x]
    assert todo and all(x.endswith("still TODO: fill in this value") for x in todo)
    assert any("field design:" in x for x in todo) and any("field setting:" in x for x in todo)
    # every other line is a warning about an original study's source text (sources/
    # holds only the tutorial's texts), one line each
    others = [x for x in lines if x not in todo]
    assert all("provenance of this study NOT verified" in x for x in others)


def test_validation_verifies_the_new_studies_and_warns_for_the_others(
    tutorial: tuple[Path, list[Ran]],
) -> None:
    _, ran = tutorial
    last = [r for r in ran if r.command.startswith("hccmeta validate")][-1]
    assert last.status == 0
    assert re.fullmatch(
        r"valid: \d+ studies, \d+ records, \d+ baseline characteristics; provenance verified "
        r"against 2 source files \(\d+ values\); \d+ studies unverified \(source text not "
        r"available: .*\)\n",
        last.out,
    ), last.out
    unverified = [x for x in last.err.splitlines() if "provenance of this study NOT verified" in x]
    warned = {re.search(r"study (\S+):", x).group(1) for x in unverified}  # type: ignore[union-attr]
    assert warned == _original_ids()
    assert not warned & set(NEW)


def test_the_new_vocabulary_is_data(tutorial: tuple[Path, list[Ran]]) -> None:
    root, _ = tutorial
    ev = hm.load_studies(root / "study_data", sources=root / "sources")
    t = ev.studies_table.set_index("study")
    assert t.loc["smith2024", "setting_label"] == "First-line TACE, intermediate stage"
    assert t.loc["smith2024", "design_label"] == "Randomised controlled trial"
    assert bool(t.loc["smith2024", "randomised"]) is True
    assert bool(t.loc["jones2023", "randomised"]) is False
    assert t.loc["smith2024", "provenance"] == "verified"
    assert ev.label("time_origin", "first_tace") == "first TACE"
    assert ev.label("regimen", "tace") == "TACE alone"


def test_the_trial_fills_in_tace_plus_sorafenib_vs_tace_alone(
    tutorial: tuple[Path, list[Ran]],
) -> None:
    root, ran = tutorial
    run = next(r for r in ran if r.command.startswith("hccmeta run os_tace_plus_sorafenib_vs_tace"))
    assert "no eligible records" not in run.out and "HR" in run.out
    ev = hm.load_studies(root / "study_data")
    # the trial alone (study_data/ may hold other studies of this comparison)
    others = tuple(s.id for s in ev.studies if s.id != "smith2024")
    res = run_analysis(
        "os_tace_plus_sorafenib_vs_tace_alone", ev, variation=Variation(exclude_studies=others)
    )
    assert res.status == "ok"
    (row,) = res.effects.itertuples()
    # the made-up abstract: hazard ratio 0.76, 95% CI 0.58-0.99
    assert row.study == "smith2024" and row.orientation == "as derived"
    assert row.yi == pytest.approx(math.log(0.76), abs=1e-12)
    se = (math.log(0.99) - math.log(0.58)) / (2 * stats.norm.ppf(0.975))
    assert row.sei == pytest.approx(se, rel=1e-12)
    median, upper = posterior_mu_k1(row.yi, row.sei, 1.0, 0.5)
    est = res.estimates.iloc[0]
    assert est["median"] == pytest.approx(median, abs=TOL_EXACT)
    assert est["ci_upper"] == pytest.approx(upper, abs=TOL_EXACT)
    sens = next(r for r in ran if r.command.startswith("hccmeta sensitivity"))
    primary = next(x for x in sens.out.splitlines() if x.strip().startswith("primary"))
    assert re.search(r"HR 0\.\d+ \(0\.\d+ to \d\.\d+\)  k=\d+", primary), primary


def test_the_cohort_joins_three_analyses(tutorial: tuple[Path, list[Ran]]) -> None:
    root, _ = tutorial
    ev = hm.load_studies(root / "study_data")
    os_ = run_analysis("os_tace_plus_sorafenib_vs_sorafenib", ev)
    jones = os_.effects.set_index("study").loc["jones2023"]
    # adjusted hazard ratio 0.71 (0.50-0.99), sorafenib + TACE vs sorafenib alone
    assert jones["yi"] == pytest.approx(math.log(0.71), abs=1e-12)
    assert jones["orientation"] == "as derived"
    ttp = run_analysis("median_ttp_per_regimen", ev)
    mine = ttp.effects[ttp.effects["study"] == "jones2023"]
    assert list(mine["time_origin"]) == ["first_tace"]
    assert mine["yi"].iloc[0] == pytest.approx(math.log(9.4), abs=1e-12)


@pytest.mark.sampling
def test_every_analysis_the_sensitivity_table_and_the_report_run_on_the_copy(
    tutorial: tuple[Path, list[Ran]], tmp_path: Path
) -> None:
    root, _ = tutorial
    data = root / "study_data"
    ev = hm.load_studies(data)
    registry = load_registry(data)
    small = Variation(settings=SamplerSettings(draws=300, tune=300, chains=2, max_retries=0))
    derived = hm.derive_effects(ev)
    results = [run_analysis(a.name, ev, derived=derived, variation=small, seed=3)
               for a in registry.analyses]  # fmt: skip
    for res in results:
        assert res.status == "ok", (res.name, res.message)
        assert res.estimates[["median", "ci_lower", "ci_upper"]].notna().all().all(), res.name
    orr = next(r for r in results if r.name == "objective_response")
    assert "jones2023" in set(orr.effects["study"])
    # 21 of 60 and 9 of 90 responders enter the binomial model as counts
    mine = orr.effects[orr.effects["study"] == "jones2023"].set_index("role")
    assert mine.loc["sorafenib_tace", ["events_exposed", "n_exposed"]].tolist() == [21, 60]
    assert mine.loc["sorafenib", ["events_exposed", "n_exposed"]].tolist() == [9, 90]
    account = evidence_account(ev, derived, results, registry)
    new = account[account["study"].isin(NEW)].set_index("record")
    assert new.loc["smith2024.os", "analyses"] == "os_tace_plus_sorafenib_vs_tace_alone"
    assert "median_ttp_per_regimen" in new.loc["jones2023.ttp.first_tace", "analyses"]
    assert "objective_response" in new.loc["jones2023.orr", "analyses"]
    assert (new["status"] == "used").all()

    table = hm.sensitivity("os_tace_plus_sorafenib_vs_sorafenib", ev)
    loo = table[table["variant_group"] == "leave_one_out"]
    assert "loo_jones2023" in set(loo["variant"])
    assert set(table["status"]) <= {"ok", "no_eligible_records"}, table["status"].unique()
    assert (table.loc[table["variant"] == "primary", "status"] == "ok").all()

    # the report, on the analyses of the exact engine (seconds, not a minute)
    subset = tmp_path / "study_data"
    shutil.copytree(data, subset)
    yaml = YAML()
    reg = yaml.load((subset / "analyses.yaml").read_text("utf-8"))
    reg["analyses"] = [a for a in reg["analyses"] if a["name"] in FAST]
    with (subset / "analyses.yaml").open("w", encoding="utf-8") as fh:
        yaml.dump(reg, fh)
    out = tmp_path / "reports"
    summary = write_report(hm.load_studies(subset, sources=root / "sources"), out, seed=5)
    assert summary.out_dir == out.absolute()
    pooled = pd.read_csv(out / "pooled_estimates.csv")
    status = pooled.drop_duplicates("analysis").set_index("analysis")["status"]
    assert (status == "ok").all(), status
    effects = pd.read_csv(out / "effects.csv")
    smith = effects[(effects["study"] == "smith2024") & effects["used_by"].notna()]
    assert list(smith["used_by"]) == ["os_tace_plus_sorafenib_vs_tace_alone"]
    acc = pd.read_csv(out / "evidence_account.csv")
    assert set(NEW) <= set(acc["study"])
    assert "smith2024" in (out / "index.md").read_text("utf-8")
