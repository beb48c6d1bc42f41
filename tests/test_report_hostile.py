"""The report writer under hostile input and a hostile filesystem.

- markup in free text (citation, labels, snippets, notes, registry texts, the data
  directory's name) never becomes a live tag or link: ``index.md`` is rendered with a
  CommonMark renderer (markdown-it-py, raw HTML on, link validation off, so that any
  link the text could form would show) and every tag and link of the result is checked
  against what the template itself writes;
- temporary directories of killed runs are removed by the next run (never those of a
  run still going: a run holds a lock on its own), the figure worker ends when the
  parent is killed (SIGKILL), a symbolic link as ``--out`` is followed, every filesystem
  error is exit 2 naming the path, and the report gets the user's umask.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from ruamel.yaml import YAML

import hccmeta as hm
from hccmeta.cli import main
from hccmeta.errors import InputError
from hccmeta.report import write_report
from hccmeta.report import writer as report_writer
from tests.test_report import data_copy

REPO = Path(__file__).resolve().parents[1]
#: One fast exact-engine analysis is enough to render every section kind that shows text.
ANALYSES = ("ttp_tace_plus_sorafenib_vs_sorafenib", "median_ttp_per_regimen")

PAYLOAD = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)> [click](javascript:alert(3)) "
    "<javascript:alert(4)> ![i](javascript:alert(5)) <!-- c --> <a href='javascript:x'>a</a> "
    "&lt;b&gt; | pipe `code` *em* _u_ # h"
)


# ---------------------------------------------------------------------- markup in text
def _inject(data: Path) -> None:
    """Put PAYLOAD into free-text fields of a study and of the registry."""
    yaml = YAML()
    path = data / "park2012.yaml"
    study = yaml.load(path.read_text("utf-8"))
    study["citation"] = "Park JW et al. " + PAYLOAD
    study["arms"][0]["label"] = "Arm " + PAYLOAD
    for record in study["records"]:
        record["label"] = "Label " + PAYLOAD
        record["note"] = "Note\n" + PAYLOAD
        record["provenance"][0]["location"] = "Loc " + PAYLOAD
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(study, fh)
    path = data / "analyses.yaml"
    registry = yaml.load(path.read_text("utf-8"))
    for analysis in registry["analyses"]:
        analysis["title"] = "Title " + PAYLOAD
        analysis["question"] = "Question " + PAYLOAD
        analysis["mapping"] = ["Mapping " + PAYLOAD]
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(registry, fh)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


#: The tags a CommonMark rendering of the template may hold, and nothing else.
MARKDOWN_TAGS = {
    "h1", "h2", "h3", "p", "ul", "ol", "li", "strong", "em", "code", "a", "img", "table",
    "thead", "tbody", "tr", "th", "td", "br", "blockquote", "hr", "pre",
}  # fmt: skip


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the data directory's name is shown in index.md too
    data = data_copy(tmp_path_factory.mktemp("d") / "data`<b>x</b>`[y](javascript:z)", ANALYSES)
    _inject(data)
    out = tmp_path_factory.mktemp("out") / "reports"
    write_report(hm.load_studies(data), out, seed=1, sensitivity=False, workers=0)
    return out


def test_markdown_renders_no_live_markup(hostile_report: Path) -> None:
    from markdown_it import MarkdownIt

    text = (hostile_report / "index.md").read_text("utf-8")
    assert text.count("alert(1)") >= 5  # the payload is there, as text
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.validateLink = lambda url: True  # let any link through, to see if one forms
    parser = _Tags()
    parser.feed(md.render(text))
    assert parser.tags, "nothing rendered"
    for tag, attrs in parser.tags:
        assert tag in MARKDOWN_TAGS, (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "a":
            href = attrs.get("href")
            assert href is None or href.startswith("#"), attrs  # anchors of the contents
        if tag == "img":
            assert str(attrs.get("src", "")).startswith("figures/"), attrs
    urls = [v for _, attrs in parser.tags for k, v in attrs.items() if k in ("href", "src")]
    assert not [u for u in urls if "javascript:" in str(u)]  # (alt text may quote it)
    rendered = md.render(text)
    assert "<script" not in rendered and '<img src="x"' not in rendered


def test_html_escapes_the_same_text(hostile_report: Path) -> None:
    parser = _Tags()
    parser.feed((hostile_report / "index.html").read_text("utf-8"))
    assert "script" not in {tag for tag, _ in parser.tags}
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for value in attrs.values():
            assert not str(value).startswith("javascript:"), (tag, attrs)


# ---------------------------------------------------------------------- the filesystem
@pytest.fixture(scope="module")
def fast_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data_copy(tmp_path_factory.mktemp("data") / "study_data", ANALYSES)


def _quick(data: Path, out: Path | str) -> None:
    write_report(hm.load_studies(data), out, seed=1, sensitivity=False, workers=0)


def test_stale_temporary_directories_are_removed(fast_data: Path, tmp_path: Path) -> None:
    stale = tmp_path / "reports.tmp-abcd_123"  # a killed run's (no lock held)
    (stale / "figures").mkdir(parents=True)
    (stale / "figures" / "x.png").write_bytes(b"\x89PNG")
    old = tmp_path / "reports.old-zz9_8765"
    old.mkdir()
    live = tmp_path / "reports.tmp-live_run"  # a run still going: it holds its lock
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    other = tmp_path / "reports.tmp-mine"  # not a name the writer makes
    other.mkdir()
    try:
        _quick(fast_data, tmp_path / "reports")
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "reports",
        "reports.tmp-live_run",
        "reports.tmp-mine",
    ]


def test_a_symlinked_out_is_followed(fast_data: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    _quick(fast_data, real)
    first = json.loads((real / "provenance.json").read_text())
    link = tmp_path / "link"
    link.symlink_to(real)
    write_report(hm.load_studies(fast_data), link, seed=2, sensitivity=False, workers=0)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert json.loads((real / "provenance.json").read_text())["seed"] == 2 != first["seed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
    # a dangling link: the report is written where it points
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "new_place")
    _quick(fast_data, dangling)
    assert (tmp_path / "new_place" / "index.md").is_file() and dangling.is_symlink()


def test_out_below_a_file_is_exit_2_naming_the_path(
    fast_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = blocker / "reports"
    status = main(["report", "--data", str(fast_data), "--out", str(out), "--no-sensitivity"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(f"hccmeta report: error: --out {out}: cannot write the report: ")
    assert str(blocker) in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_unwritable_directory_is_exit_2_naming_the_path(
    fast_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A directory without write permission (simulated: the tests may run as root, for
    whom every directory is writable)."""
    out = tmp_path / "reports"

    def denied(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(report_writer.tempfile, "mkdtemp", denied)
    status = main(["report", "--data", str(fast_data), "--out", str(out), "--no-sensitivity"])
    err = capsys.readouterr().err
    assert status == 2
    assert err == (
        f"hccmeta report: error: --out {out}: cannot write the report: Permission denied: "
        f"{tmp_path}\n"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only directories")
def test_read_only_directory_for_real(fast_data: Path, tmp_path: Path, capsys) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        status = main(
            ["report", "--data", str(fast_data), "--out", str(parent / "r"), "--no-sensitivity"]
        )
    finally:
        parent.chmod(0o755)
    err = capsys.readouterr().err
    assert status == 2 and "Permission denied" in err and str(parent) in err


def test_read_only_previous_report_is_refused_before_anything_runs(
    fast_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "reports"
    _quick(fast_data, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*")}
    figures = str(out / "figures")
    real_access = os.access
    monkeypatch.setattr(
        report_writer.os,
        "access",
        lambda path, mode: False if str(path) == figures else real_access(path, mode),
    )
    with pytest.raises(InputError, match=rf"the previous report cannot be replaced: {figures} is"):
        _quick(fast_data, out)
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_report_gets_the_users_umask(fast_data: Path, tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        _quick(fast_data, tmp_path / "r")
    finally:
        os.umask(old)
    out = tmp_path / "r"
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((out / "figures").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((out / "index.md").stat().st_mode) == 0o666 & ~mask


# ------------------------------------------------------------------- a killed parent
_CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})

    def main():
        import hccmeta as hm
        from hccmeta.report import write_report
        print(os.getpid(), flush=True)
        write_report(hm.load_studies({data!r}), Path({out!r}), seed=1, workers=1)

    if __name__ == "__main__":
        main()
    """
)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            ppid = next(line for line in status.splitlines() if line.startswith("PPid:"))
            if int(ppid.split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_parent_ends_the_worker_and_the_next_run_cleans_up(
    fast_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    script = tmp_path / "child.py"
    script.write_text(_CHILD.format(repo=str(REPO), data=str(fast_data), out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        # wait until the figure worker has written a posterior file: it is running
        deadline = time.monotonic() + 300
        while not list(tmp_path.glob("reports.tmp-*/posteriors/*.nc")):
            assert proc.poll() is None, "the report ended before it could be killed"
            assert time.monotonic() < deadline, "the figure worker never wrote a file"
            time.sleep(0.2)
        children = _children(pid)
        assert children, "no worker process"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 20
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)], "workers outlived their parent"
    stale = list(tmp_path.glob("reports.tmp-*"))
    assert stale, "the killed run left no temporary directory to clean up"
    _quick(fast_data, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "reports"]
