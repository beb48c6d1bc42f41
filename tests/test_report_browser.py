"""The HTML report in a real browser: headless Chromium loads ``index.html`` from a
``file://`` URL; every figure must render (``naturalWidth > 0``), nothing may fail to
load, and nothing may be requested but the page itself and its ``data:`` URIs.

Chromium is driven over the DevTools protocol on a pair of pipes
(``--remote-debugging-pipe``: it reads JSON commands from file descriptor 3 and writes
replies and events to descriptor 4, each message ending in a NUL byte), so there is no
port, no websocket library and no browser download: only Debian's ``chromium``
(``apt-get install chromium``; ``.ci/run`` installs it). Without it the test skips
locally and fails where ``HCCMETA_REQUIRE_BROWSER=1`` (CI): a skip is indistinguishable
from a pass in a job log.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import hccmeta as hm
from hccmeta.report import write_report
from tests.test_report import FAST, data_copy

#: Flags known to work as root in a container (no sandbox, no GPU, no network services).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def find_chromium() -> str | None:
    """The Chromium binary: Debian's real binary first (its /usr/bin/chromium is a shell
    wrapper), then whatever is on PATH."""
    for candidate in ("/usr/lib/chromium/chromium",):
        if os.access(candidate, os.X_OK):
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    """What happened when a page loaded."""

    requests: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    loaded: bool = False
    value: Any = None


class _Pipe:
    def __init__(self, binary: str, profile: str) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def child_fds() -> None:  # runs in the child before exec
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)  # dup2 makes the copies inheritable
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=child_fds,  # a single-threaded test helper
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> int:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        return self._id

    def _read(self, deadline: float) -> dict[str, Any] | None:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return dict(json.loads(raw))

    def call(self, method: str, params: dict[str, Any] | None = None, session: str = "",
             timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        want = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(deadline)
            if msg is None:
                raise TimeoutError(f"no reply to {method} within {timeout} s")
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            msg = self._read(deadline)
            if msg is None:
                return False
            self.events.append(msg)
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


def load_page(url: str, expression: str, *, timeout: float = 60.0,
              screenshot: str | None = None, width: int = 1280) -> PageReport:  # fmt: skip
    """Load ``url`` in headless Chromium and evaluate ``expression`` (its JSON-able value
    is returned in :attr:`PageReport.value`); optionally save a full-page PNG screenshot."""
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium not found")
    profile = tempfile.mkdtemp(prefix="hccmeta-chromium-")
    pipe = _Pipe(binary, profile)
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Network", "Page", "Runtime", "Log"):
            pipe.call(f"{domain}.enable", {}, session)
        pipe.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        pipe.call("Page.navigate", {"url": url}, session)
        report = PageReport(loaded=pipe.wait_event("Page.loadEventFired", timeout))
        result = pipe.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        report.value = result.get("result", {}).get("value")
        if screenshot is not None:
            import base64

            shot = pipe.call(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session
            )
            with open(screenshot, "wb") as fh:
                fh.write(base64.b64decode(shot["data"]))
        for e in pipe.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Network.requestWillBeSent":
                report.requests.append(str(params.get("request", {}).get("url", "")))
            elif method == "Network.loadingFailed":
                report.failed.append((str(params.get("requestId")), str(params.get("errorText"))))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                report.console_errors.append(str(params["entry"].get("text")))
            elif method == "Runtime.exceptionThrown":
                report.console_errors.append(str(params.get("exceptionDetails", {}).get("text")))
        return report
    finally:
        pipe.close()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------------------- the tests
REPO = Path(__file__).resolve().parents[1]

#: Evaluated in the loaded page: every image, whether it rendered, and every table that
#: does not fit: with every <details> opened, a table wider than its container (part of
#: it would be hidden behind a scroll bar), a container reaching beyond the main column,
#: or a cell whose content is wider than the cell (a long id overlapping its neighbour).
CHECKS = """(() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const main = document.querySelector('main') || document.body;
  const right = main.getBoundingClientRect().right;
  const overflow = [];
  document.querySelectorAll('table').forEach((t, i) => {
    const box = t.parentElement;
    const head = Array.from(t.querySelectorAll('th')).map(h => h.textContent).join('|');
    const where = `table ${i} (${head.slice(0, 60)})`;
    if (t.scrollWidth > box.clientWidth + 1)
      overflow.push(`${where}: ${t.scrollWidth}px wide in a ${box.clientWidth}px container`);
    if (box.getBoundingClientRect().right > right + 1)
      overflow.push(`${where}: reaches beyond the main column`);
    t.querySelectorAll('td, th').forEach(c => {
      if (c.scrollWidth > c.clientWidth + 1)
        overflow.push(`${where}: cell "${c.textContent.slice(0, 40)}" overflows ` +
                      `(${c.scrollWidth}px in ${c.clientWidth}px)`);
    });
  });
  return JSON.stringify({
    images: Array.from(document.images).map(i => ({
      alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
      scheme: i.src.split(':')[0]})),
    title: document.title,
    sections: document.querySelectorAll('section.analysis').length,
    stylesheets: document.styleSheets.length,
    tables: document.querySelectorAll('table').length,
    overflow: overflow,
  });
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        msg = "headless Chromium not found (apt-get install chromium)"
        if os.environ.get("HCCMETA_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " — required here (HCCMETA_REQUIRE_BROWSER=1)")
        pytest.skip(msg)
    return binary


def _check(html: Path) -> dict[str, Any]:
    url = html.absolute().as_uri()
    page = load_page(url, CHECKS)
    assert page.loaded, "the load event never fired"
    assert page.failed == [], f"resources failed to load: {page.failed}"
    assert page.console_errors == [], page.console_errors
    others = [u for u in page.requests if u != url and not u.startswith("data:")]
    assert others == [], f"requests other than the page and data: URIs: {others}"
    value = json.loads(page.value)
    assert value["images"], "no figures in the report"
    broken = [i["alt"] for i in value["images"] if not (i["complete"] and i["width"] > 0)]
    assert broken == [], f"figures that did not render: {broken}"
    assert all(i["scheme"] == "data" for i in value["images"])
    assert value["stylesheets"] == 1  # the inline style sheet
    assert value["tables"] > 0
    assert value["overflow"] == [], "tables that do not fit:\n" + "\n".join(value["overflow"])
    return dict(value)


@pytest.mark.browser
def test_generated_report_renders(chromium: str, tmp_path: Path) -> None:
    data = data_copy(tmp_path / "study_data", FAST)
    out = tmp_path / "reports"
    write_report(hm.load_studies(data), out, seed=1)
    value = _check(out / "index.html")
    assert value["sections"] == len(FAST)
    assert len(value["images"]) == len(list((out / "figures").glob("*.png")))
