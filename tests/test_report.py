"""``hccmeta report``: the files it writes, reproducibility, all-or-nothing replacement,
invalid data, and the committed report.

Most tests run the report on a copy of the study data whose registry keeps the
analyses of the exact normal-normal engine (and the one without eligible records), so
that they take seconds; the test marked ``sampling`` adds an MCMC analysis.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from ruamel.yaml import YAML

import hccmeta as hm
from hccmeta.cli import main
from hccmeta.errors import InputError
from hccmeta.report import write_report
from hccmeta.report import writer as report_writer
from hccmeta.report.outputs import FLOAT_FORMAT

from .conftest import STUDY_DATA  # the five studies

#: Analyses of the exact engine (milliseconds per fit) and the empty one.
FAST = (
    "os_tace_plus_sorafenib_vs_sorafenib",
    "ttp_tace_plus_sorafenib_vs_sorafenib",
    "os_tace_plus_sorafenib_vs_tace_alone",
    "median_ttp_per_regimen",
    "pfs_6m_per_regimen",
)
CSVS = ("pooled_estimates.csv", "sensitivity.csv", "effects.csv", "evidence_account.csv")


def data_copy(dest: Path, analyses: tuple[str, ...]) -> Path:
    """A copy of study_data/ whose registry keeps only ``analyses``."""
    shutil.copytree(STUDY_DATA, dest)
    yaml = YAML()
    path = dest / "analyses.yaml"
    registry = yaml.load(path.read_text("utf-8"))
    registry["analyses"] = [a for a in registry["analyses"] if a["name"] in analyses]
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(registry, fh)
    return dest


@pytest.fixture(scope="module")
def fast_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data_copy(tmp_path_factory.mktemp("data") / "study_data", FAST)


@pytest.fixture(scope="module")
def fast_report(fast_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "reports"
    # figures and posterior files drawn in the background process (``workers=1``)
    summary = write_report(hm.load_studies(fast_data), out, seed=7, workers=1)
    assert summary.out_dir == out.absolute()
    return out


def _bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------------ the outputs
def test_report_writes_every_output(fast_report: Path, fast_data: Path) -> None:
    names = {p.name for p in fast_report.iterdir()}
    assert {"index.md", "index.html", "provenance.json", "figures", "posteriors", *CSVS} <= names
    ok = [n for n in FAST if n != "os_tace_plus_sorafenib_vs_tace_alone"]
    assert sorted(p.stem for p in (fast_report / "posteriors").glob("*.nc")) == sorted(ok)
    figures = {p.stem for p in (fast_report / "figures").glob("*.png")}
    assert {f"{n}_forest" for n in ok} <= figures
    assert "os_tace_plus_sorafenib_vs_sorafenib_tau" in figures  # normal-normal fit
    prov = json.loads((fast_report / "provenance.json").read_text())
    assert prov["data_hash"] == hm.load_studies(fast_data).data_hash
    assert prov["seed"] == 7
    assert prov["analyses"] == list(FAST)
    assert {"numpy", "pymc", "nutpie", "arviz", "hccmeta"} <= set(prov["packages"])
    # no stray temporary directories beside the report
    assert [p.name for p in fast_report.parent.iterdir()] == ["reports"]


def test_pooled_estimates_csv(fast_report: Path) -> None:
    pooled = pd.read_csv(fast_report / "pooled_estimates.csv")
    assert list(pooled["analysis"].drop_duplicates()) == list(FAST)
    empty = pooled[pooled["analysis"] == "os_tace_plus_sorafenib_vs_tace_alone"]
    assert list(empty["status"]) == ["no_eligible_records"]
    os_row = pooled[pooled["analysis"] == "os_tace_plus_sorafenib_vs_sorafenib"].iloc[0]
    # HRs on the ratio scale: the natural columns are exp of the log-scale ones
    assert os_row["natural_scale"] == "HR"
    assert os_row["natural_median"] == pytest.approx(2.718281828 ** os_row["median"], rel=1e-5)
    assert 0.0 <= os_row["p_benefit"] <= 1.0
    assert {"reml_estimate", "dl_estimate"} <= set(pooled.columns)


def test_effects_csv_repools_with_the_sign_each_analysis_uses(fast_report: Path) -> None:
    """effects.csv has one row per effect and analysis that uses it, oriented as that
    analysis pools it: re-pooling the rows of an analysis gives its pooled estimate
    (Terashima's B vs A HR 2.628 is used reversed, -ln 2.628)."""
    effects = pd.read_csv(fast_report / "effects.csv")
    name = "os_tace_plus_sorafenib_vs_sorafenib"
    rows = effects[effects["used_by"] == name].set_index("study")
    ter = rows.loc["terashima2016"]
    assert (ter["orientation"], ter["exposed"], ter["reference"]) == (
        "reversed", "group_a", "group_b",
    )  # fmt: skip
    assert ter["yi"] == pytest.approx(-math.log(2.628), rel=1e-5)  # 6 significant digits
    unused = effects[effects["used_by"].isna()]
    assert (unused["orientation"] == "as derived").all()
    # every derived effect is in the file, used or not
    assert set(effects["effect"]) >= set(rows["effect"])
    pooled = pd.read_csv(fast_report / "pooled_estimates.csv").set_index("analysis").loc[name]
    again = hm.pool(rows["yi"].to_numpy(), rows["sei"].to_numpy(), measure="hr")
    assert again.summary().loc["mu", "median"] == pytest.approx(pooled["median"], rel=1e-4)


def test_markdown_sections(fast_report: Path) -> None:
    md = (fast_report / "index.md").read_text("utf-8")
    for heading in (
        "## Results at a glance",
        "## Evidence account",
        "## Methods",
        "### References",
    ):
        assert heading in md
    # the empty analysis says so cleanly
    section = md.split("## OS: TACE + sorafenib vs TACE alone", 1)[1].split("\n## ", 1)[0]
    assert "**No eligible records.**" in section
    assert "Forest plot" not in section
    # provenance of the records: location, verbatim snippet, file:line
    # (cells are Markdown-escaped: study\_data reads study_data once rendered)
    shown = re.sub(r"\\([\\`*_\[\]<>#])", r"\1", md)
    assert re.search(r"\| “[^|]+” \([^|]+\) \| study_data/[a-z0-9_]+\.yaml:\d+ \|", shown)
    # derivations with their assumptions in words
    assert "Assumptions behind these effects" in md
    # every figure the Markdown links exists
    for link in re.findall(r"\]\((figures/[^)]+\.png)\)", md):
        assert (fast_report / link).is_file(), link


def test_report_speaks_to_clinicians(fast_report: Path) -> None:
    """Study labels, variant descriptions, readable priors and options in words in
    index.md (issue 13, item 7); the CSVs keep the ids."""
    md = (fast_report / "index.md").read_text("utf-8")
    # the studies table maps each label to its id; elsewhere the labels stand alone
    assert "| Terashima 2016 | terashima2016 | Terashima T, et al." in md
    assert "| TACE-resistant cohort (n = 34) | tace\\_resistant\\_n34 |" in md
    section = md.split("<a id=", 2)[1]  # the first analysis: OS, TACE + sorafenib
    effects = section.split("### Derived effects", 1)[1]
    assert "\n| Terashima 2016 |" in effects and "\n| TACE-resistant cohort (n = 34) |" in effects
    statement = section.split("**In words.**", 1)[1].split("\n", 1)[0]
    # Tace-resistant study enrolled only patients on sorafenib >= 3 months (its YAML)
    assert "TACE-resistant cohort (n = 34) enrolled only patients who" in statement
    assert "its prior (HalfNormal(0.5))" in statement
    # the variants that change the conclusion, by description: HalfNormal(1) for tau
    assert "tau ~ HalfNormal(1) instead of HalfNormal(0.5)" in statement
    # no variant name, no prior repr, no reweighting bookkeeping, no option dump
    for code in ("tau_halfnormal_1", "tau\\_halfnormal\\_1", "loo\\_", "scale=", "mean=",
                 "mu=-", "terashima2016:", "= True", "p\\_bound"):  # fmt: skip
        assert code not in md, code
    assert not re.search(r"Pareto k -?\d", md)
    sens = section.split("### Sensitivity analyses", 1)[1]
    assert "| prior on the heterogeneity | tau ~ HalfNormal(0.25) instead of HalfNormal(0.5) |" in (
        sens
    )
    assert "| leave one study out | leave out Terashima 2016 |" in sens
    # priors in the Methods table: Normal(log 10, 1.5) is median_ttp's prior for log median
    methods = md.split("## Methods", 1)[1]
    assert "| Median TTP per regimen | sorafenib\\_tace.mu | Normal(log 10, 1.5) |" in methods
    assert "a p-value printed as a bound ('p \\< 0.05') was taken at the bound" in methods
    # the machine-facing outputs keep the ids
    table = pd.read_csv(fast_report / "sensitivity.csv")
    assert "tau_halfnormal_1" in set(table["variant"])
    assert "loo_terashima2016" in set(table["variant"])
    assert "terashima2016" in set(pd.read_csv(fast_report / "effects.csv")["study"])


def test_forest_plot_rows_are_labelled(
    fast_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forest plot the report draws labels each study 'Terashima 2016'."""
    from hccmeta.report import plots

    drawn: dict[str, pd.DataFrame] = {}
    draw = plots.draw_forest

    def spy(rows: pd.DataFrame, title: str) -> object:
        drawn[title] = rows
        return draw(rows, title)

    monkeypatch.setattr(plots, "draw_forest", spy)
    ev = hm.load_studies(fast_data)
    write_report(ev, tmp_path / "reports", seed=7, sensitivity=False, workers=0)
    title = "OS: adding TACE or another intrahepatic-targeted therapy to sorafenib-based care"
    rows = drawn[title]
    studies = set(rows.loc[rows["kind"] == "study", "label"])
    assert studies == {"Terashima 2016", "TACE-resistant cohort (n = 34)"}
    assert set(rows.loc[rows["kind"] == "shrunken", "label"]) == studies
    fig = plots.draw_forest(rows, title)
    ticks = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert {"Terashima 2016", "TACE-resistant cohort (n = 34)", "Pooled"} <= ticks


def test_html_is_self_contained(fast_report: Path) -> None:
    html = (fast_report / "index.html").read_text("utf-8")
    srcs = re.findall(r'<img src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert len(srcs) == len(list((fast_report / "figures").glob("*.png")))
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    assert "<link" not in html and "<script" not in html
    assert "default-src 'none'" in html


def test_methods_cite_only_what_was_run(fast_report: Path) -> None:
    md = (fast_report / "index.md").read_text("utf-8")
    methods = md.split("## Methods", 1)[1]
    assert "bayesmeta" in methods and "Röver C. Bayesian random-effects" in methods
    # only exact-engine analyses ran: no sampler is described or cited
    assert "nutpie" not in methods
    assert "PeerJ" not in methods


def test_netcdf_round_trip(fast_report: Path) -> None:
    from hccmeta.report.netcdf import read_posteriors

    tree = read_posteriors(fast_report / "posteriors" / "median_ttp_per_regimen.nc")
    assert tree.attrs["analysis"] == "median_ttp_per_regimen"
    assert tree.attrs["seed"] == 7
    post = tree["sorafenib_tace"]["posterior"]
    assert post["mu"].shape == (4, 1000)
    assert "created_at" not in post.attrs


def test_netcdf_without_h5py(
    fast_report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without h5py the DataTree is flattened into one classic netCDF file and read back
    with the same groups, values and attributes."""
    import numpy as np

    from hccmeta.models import netcdf as tree_io
    from hccmeta.report import netcdf

    tree = netcdf.read_posteriors(fast_report / "posteriors" / "median_ttp_per_regimen.nc")
    # the tree I/O (hccmeta.models.netcdf) decides the layout; the report writes through it
    monkeypatch.setattr(tree_io, "has_h5py", lambda: False)

    from types import SimpleNamespace

    fit = SimpleNamespace(datatree=tree["sorafenib_tace"])
    result = SimpleNamespace(name="x", data_hash="hash", seed=7, fits={"sorafenib_tace": fit})
    path = tmp_path / "flat.nc"
    assert netcdf.write_posteriors(result, path) == "netcdf3-flat"  # type: ignore[arg-type]
    back = netcdf.read_posteriors(path)
    np.testing.assert_array_equal(
        back["sorafenib_tace/posterior"]["mu"].values, tree["sorafenib_tace/posterior"]["mu"].values
    )
    assert back.attrs["analysis"] == "x"
    assert back["sorafenib_tace"].attrs["prior_tau"] == tree["sorafenib_tace"].attrs["prior_tau"]


def test_same_seed_byte_identical(fast_report: Path, fast_data: Path, tmp_path: Path) -> None:
    write_report(hm.load_studies(fast_data), tmp_path / "again", seed=7, workers=1)
    a, b = _bytes(fast_report), _bytes(tmp_path / "again")
    for name in CSVS:
        assert a[name] == b[name], name
    assert a == b  # figures, netCDF, Markdown and HTML too: no timestamps anywhere
    text = a["pooled_estimates.csv"].decode()
    assert "\r" not in text
    # every number in the fixed float format (six significant digits)
    cells = [c for line in text.splitlines()[1:] for c in line.split(",")]
    numbers = [c for c in cells if re.fullmatch(r"-?[\d.]+(e[-+]\d+)?", c)]
    assert numbers and all(FLOAT_FORMAT % float(c) == c for c in numbers)


@pytest.mark.sampling
@pytest.mark.slow
def test_same_seed_byte_identical_with_mcmc(tmp_path: Path) -> None:
    data = data_copy(tmp_path / "study_data", ("ae_grade_3_4", "median_ttp_per_regimen"))
    ev = hm.load_studies(data)
    write_report(ev, tmp_path / "a", seed=3, sensitivity=False)
    write_report(ev, tmp_path / "b", seed=3, sensitivity=False)
    a, b = _bytes(tmp_path / "a"), _bytes(tmp_path / "b")
    for name in CSVS:
        assert a[name] == b[name], name
    assert a["posteriors/ae_grade_3_4.nc"] == b["posteriors/ae_grade_3_4.nc"]


# ----------------------------------------------------------------- all or nothing
def _fails_and_keeps_previous(
    fast_data: Path, tmp_path: Path, match: str, *, workers: int | None = None
) -> None:
    out = tmp_path / "reports"
    ev = hm.load_studies(fast_data)
    before = _bytes(out)
    with pytest.raises((RuntimeError, ValueError), match=match):
        write_report(ev, out, seed=2, sensitivity=False, workers=workers)
    assert _bytes(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]  # temporary directory removed


@pytest.fixture
def previous(fast_report: Path, tmp_path: Path) -> Path:
    """A report already in place (the one a failing run must leave untouched)."""
    out = tmp_path / "reports"
    shutil.copytree(fast_report, out)
    return out


def test_failure_midway_leaves_previous_report(
    previous: Path, fast_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails after the figures and posteriors are written into the new directory."""

    def boom(*args: object, **kwargs: object) -> None:
        # in the new report's temporary directory, beside the previous report
        new = [p for p in tmp_path.iterdir() if p.name != "reports"]
        assert new and any((p / "posteriors").glob("*.nc") for p in new)
        raise RuntimeError("injected failure while writing the documents")

    import hccmeta.report.context as report_context

    monkeypatch.setattr(report_context, "build_context", boom)
    _fails_and_keeps_previous(fast_data, tmp_path, "injected failure")


def test_failure_in_an_analysis_leaves_previous_report(
    previous: Path, fast_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hccmeta.analyses.run as run

    real = run.run_analysis

    def flaky(name: str, *args: object, **kwargs: object) -> object:
        if name == "median_ttp_per_regimen":
            raise RuntimeError("injected failure in an analysis")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run, "run_analysis", flaky)
    _fails_and_keeps_previous(fast_data, tmp_path, "injected failure in an analysis")


def test_failure_in_the_background_worker_leaves_previous_report(
    previous: Path, fast_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hccmeta.report.figures import Renderer

    def bad_job(self: Renderer, result: object, posteriors: Path, **kwargs: object) -> None:
        self.submit("x", "no such job", None)

    monkeypatch.setattr(Renderer, "submit_primary", bad_job)
    _fails_and_keeps_previous(fast_data, tmp_path, "unknown render job", workers=1)


def test_background_worker_writes_the_same_bytes(
    fast_report: Path, fast_data: Path, tmp_path: Path
) -> None:
    write_report(hm.load_studies(fast_data), tmp_path / "here", seed=7, workers=0)
    assert _bytes(tmp_path / "here") == _bytes(fast_report)  # drawn in the worker


def test_new_report_replaces_previous(fast_report: Path, fast_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    shutil.copytree(fast_report, out)  # a previous report (seed 7)
    (out / "stale.txt").write_text("from an older report")
    write_report(hm.load_studies(fast_data), out, seed=2, sensitivity=False)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "provenance.json").read_text())["seed"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]


def test_refuses_to_replace_a_directory_that_is_not_a_report(
    fast_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("not a report")
    with pytest.raises(InputError, match="not an hccmeta report"):
        write_report(hm.load_studies(fast_data), out, seed=1, sensitivity=False)
    assert (out / "notes.txt").read_text() == "not a report"


def test_swap_without_rename_exchange(
    fast_report: Path, fast_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback swap (rename aside, rename in, then remove) where renameat2 is missing."""
    monkeypatch.setattr(report_writer, "_rename_exchange", lambda a, b: False)
    test_new_report_replaces_previous(fast_report, fast_data, tmp_path)


# ------------------------------------------------------------------ command line
def test_cli_report(fast_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    status = main(["report", "--data", str(fast_data), "--out", str(out), "--seed", "5"])
    assert status == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.match(
        rf"report: {len(FAST)} analyses \({len(FAST) - 1} with eligible records\), \d+ "
        rf"sensitivity variants, \d+ "
        rf"figures in [\d.]+ s -> {re.escape(str(out.absolute() / 'index.html'))}$",
        line,
    ), line


def test_cli_invalid_data_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_copy(tmp_path / "study_data", FAST)
    path = data / "park2012.yaml"
    text = path.read_text("utf-8")
    bad, n = re.subn(r"(\n\s+value: )7\.1\n", r"\g<1>-7.1\n", text, count=1)  # median TTP
    assert n == 1, "could not inject an invalid median"
    path.write_text(bad, "utf-8")
    out = tmp_path / "reports"
    status = main(["report", "--data", str(data), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert "park2012.yaml:" in err and "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study_data"]


def test_a_released_worker_exits_while_later_jobs_run_here() -> None:
    """Renderer.release: the worker shuts down in the background once its outputs are
    in hand; a job queued afterwards is drawn in this process (the same bytes as the
    worker's), and close waits for the worker to be gone."""
    import numpy as np

    from hccmeta.report.figures import Renderer, render_job

    grid = np.linspace(0.01, 1.0, 50)
    curves = [{"title": "tau", "prior": "HalfNormal(0.5)", "grid": grid,
               "prior_density": np.exp(-grid), "posterior_density": np.exp(-2 * grid)}]  # fmt: skip
    renderer = Renderer(1)
    renderer.submit("worker", "tau", curves)
    drawn = renderer.results()["worker"]
    pool = renderer._pool
    assert pool is not None
    processes = list(pool._processes.values())
    assert processes and drawn.startswith(b"\x89PNG")
    renderer.release()
    renderer.submit("here", "tau", curves)
    assert renderer._jobs["here"] == drawn == render_job("tau", curves)  # drawn here at once
    renderer.close()
    assert renderer._pool is None
    for process in processes:
        process.join(timeout=10)
        assert not process.is_alive()


def test_jobs_the_worker_has_not_started_are_drawn_here() -> None:
    """Renderer.results: while it waits for the worker, this process draws the queued
    jobs the worker has not started, from the last back; every output is the bytes the
    worker would have drawn, in the order submitted."""
    import concurrent.futures as cf

    import numpy as np

    from hccmeta.report.figures import Renderer, render_job

    grid = np.linspace(0.01, 1.0, 50)
    jobs = {
        f"tau{i}": [{"title": f"tau {i}", "prior": "HalfNormal(0.5)", "grid": grid,
                     "prior_density": np.exp(-grid), "posterior_density": np.exp(-(i + 1) * grid)}]
        for i in range(6)
    }  # fmt: skip
    expected = {key: render_job("tau", curves) for key, curves in jobs.items()}
    with Renderer(1) as renderer:
        for key, curves in jobs.items():
            renderer.submit(key, "tau", curves)
        futures = dict(renderer._jobs)
        out = renderer.results()
    assert all(isinstance(f, cf.Future) for f in futures.values())
    assert list(out) == list(jobs)
    assert out == expected
    # the worker starts with the first jobs (it imports matplotlib first); the last job
    # was queued behind them and was drawn here (its future cancelled), and what was
    # drawn here is a tail of the queue
    here = [key for key, f in futures.items() if f.cancelled()]
    assert here and here[-1] == "tau5"
    assert here == list(jobs)[len(jobs) - len(here) :]
