"""A seeded mutation fuzzer for the command line: study files, the registry and CSVs.

:func:`mutate_yaml` and :func:`mutate_csv` apply one to three random edits to a valid
file (lines deleted, duplicated, swapped, re-indented or truncated; numbers replaced by
hostile ones such as ``0x36``, ``-0_97``, ``1e300``, ``.nan`` or Arabic-Indic digits;
values replaced by markup, anchors, aliases, tags, brackets, quotes or control
characters; invalid UTF-8 and NUL bytes; deep nesting; another delimiter; columns of
another input shape; repeated studies). :func:`run_case` runs one command on the result,
in this process (``hccmeta.cli.main``, the code path of the ``hccmeta`` command) or in a
subprocess (``python -m hccmeta.cli``), under a time limit, and classifies the outcome:

- ``accepted``: exit 0;
- ``clean``: exit 2, every line of stderr located (it names the file it is about) and
  no traceback;
- ``traceback``, ``unlocated`` (exit 2 with a line that names no file, or another exit
  status), ``hang`` (over the time limit), ``modified`` (an input file changed) and
  ``bad_output`` (exit 0 with ``--json`` output that is not JSON of finite numbers): bugs.

Used by ``tests/test_fuzz.py`` (a few seconds in ``make test``) and by
``validation/fuzz/fuzz_cli.py`` (a longer run that prints the counts).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "tests" / "data" / "demo_study"

#: Numbers that Python's float()/int() or YAML accept but hccmeta must refuse or bound.
HOSTILE_NUMBERS = [
    "0x36", "5_4", "-0_97", "1e300", "-1e300", "1e-300", ".inf", "-.inf", ".nan", "inf",
    "nan", "0", "-0", "-1", "054", "0o17", "\u0661\u0662", "\u0967", "99999999999999999999",
    "1e12", "1e13", "1e-13", "2.5e", "1,5", "+7", "0.000000000001", "NaN", "",
]  # fmt: skip
#: Values that are markup, YAML syntax or control characters.
HOSTILE_TEXT = [
    "<script>alert(1)</script>", "[x](javascript:alert(1))", "&a", "*a", "&a x",
    "!!python/object:os.system", "!foo 3", "[", "]", "{", "}", "'", '"', ": ", "- ", "|", ">",
    "#", "%YAML 1.1", "\x00", "\x1b[31m", "\u202e", "\u2028", "\ufeff", "null", "~", "yes",
    "2020-01-01", "? x", "@", "`", "\t", "\\",
]  # fmt: skip

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


@dataclass
class Outcome:
    """What one run did."""

    kind: str  # accepted | clean | traceback | unlocated | hang | modified | bad_output
    status: int | None
    stderr: str
    seconds: float
    detail: str = ""
    stdout: str = ""


@dataclass
class Counts:
    """Outcomes of a fuzzing run, by kind."""

    tried: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, outcome: Outcome, label: str) -> None:
        self.tried += 1
        self.by_kind[outcome.kind] = self.by_kind.get(outcome.kind, 0) + 1
        if outcome.kind not in ("accepted", "clean"):
            self.examples.setdefault(outcome.kind, []).append(
                f"{label}: {outcome.detail or outcome.stderr[-400:]}"
            )

    def bugs(self) -> int:
        return sum(n for k, n in self.by_kind.items() if k not in ("accepted", "clean"))


# ------------------------------------------------------------------------ mutations
def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True) or [""]


def _replace_number(text: str, rng: random.Random) -> str:
    found = list(_NUMBER.finditer(text))
    if not found:
        return text
    m = rng.choice(found)
    return text[: m.start()] + rng.choice(HOSTILE_NUMBERS) + text[m.end() :]


def _replace_value(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    line = lines[i]
    if ": " in line:
        key, _, _ = line.partition(": ")
        lines[i] = f"{key}: {rng.choice(HOSTILE_TEXT)}\n"
    else:
        lines[i] = line.rstrip("\n") + rng.choice(HOSTILE_TEXT) + "\n"
    return "".join(lines)


def _yaml_mutations() -> list[Callable[[str, random.Random], str | bytes]]:
    def delete(t: str, r: random.Random) -> str:
        lines = _lines(t)
        del lines[r.randrange(len(lines))]
        return "".join(lines)

    def duplicate(t: str, r: random.Random) -> str:
        lines = _lines(t)
        i = r.randrange(len(lines))
        lines.insert(i, lines[i])
        return "".join(lines)

    def swap(t: str, r: random.Random) -> str:
        lines = _lines(t)
        i, j = r.randrange(len(lines)), r.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines)

    def indent(t: str, r: random.Random) -> str:
        lines = _lines(t)
        i = r.randrange(len(lines))
        lines[i] = (" " * r.choice([1, 2, 4]) + lines[i]) if r.random() < 0.5 else lines[i][2:]
        return "".join(lines)

    def truncate(t: str, r: random.Random) -> bytes:
        data = t.encode("utf-8")
        return data[: r.randrange(len(data) + 1)]

    def bytes_in(t: str, r: random.Random) -> bytes:
        data = bytearray(t.encode("utf-8"))
        pos = r.randrange(len(data) + 1)
        data[pos:pos] = r.choice([b"\xff", b"\xc3", b"\x00", b"\xe9t\xe9", b"\x80\x80", b"\r"])
        return bytes(data)

    def laughs(t: str, r: random.Random) -> str:
        bomb = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
        for k in range(1, r.randint(2, 9)):
            prev = chr(ord("a") + k - 1)
            cur = chr(ord("a") + k)
            bomb += f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        return bomb + t

    def nest(t: str, r: random.Random) -> str:
        n = r.choice([30, 41, 200, 3000])
        return t + "\nextra: " + "[" * n + "]" * n + "\n"

    def tag(t: str, r: random.Random) -> str:
        return _replace_value(t, r).replace(": ", ": !custom ", 1) if r.random() < 0.3 else t

    return [
        delete, duplicate, swap, indent, truncate, bytes_in, laughs, nest, tag,
        _replace_number, _replace_number, _replace_number, _replace_value, _replace_value,
    ]  # fmt: skip


_YAML_MUTATIONS = _yaml_mutations()


def mutate_yaml(text: str, rng: random.Random) -> bytes:
    """One to three random edits of a YAML document (bytes: some edits break UTF-8)."""
    out: str | bytes = text
    for _ in range(rng.randint(1, 3)):
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace") if rng.random() < 0.5 else out
            if isinstance(out, bytes):
                break
        out = rng.choice(_YAML_MUTATIONS)(out, rng)
    return out if isinstance(out, bytes) else out.encode("utf-8")


def _csv_mutations() -> list[Callable[[list[list[str]], random.Random], list[list[str]]]]:
    def cell_number(rows: list[list[str]], r: random.Random) -> list[list[str]]:
        i = r.randrange(1, len(rows)) if len(rows) > 1 else 0
        if rows[i]:
            rows[i][r.randrange(len(rows[i]))] = r.choice(HOSTILE_NUMBERS)
        return rows

    def cell_text(rows: list[list[str]], r: random.Random) -> list[list[str]]:
        i = r.randrange(len(rows))
        if rows[i]:
            rows[i][r.randrange(len(rows[i]))] = r.choice(HOSTILE_TEXT)
        return rows

    def drop_cell(rows: list[list[str]], r: random.Random) -> list[list[str]]:
        i = r.randrange(len(rows))
        if rows[i]:
            del rows[i][r.randrange(len(rows[i]))]
        return rows

    def duplicate_row(rows: list[list[str]], r: random.Random) -> list[list[str]]:
        if len(rows) > 1:
            rows.append(list(rows[r.randrange(1, len(rows))]))
        return rows

    def add_column(rows: list[list[str]], r: random.Random) -> list[list[str]]:
        name = r.choice(["yi", "sei", "vi", "estimate", "ci_lower", "ci_level", "n_t", "x"])
        rows[0].append(name)
        for row in rows[1:]:
            row.append(r.choice(["0.5", "1", "-2", ""]))
        return rows

    def drop_row(rows: list[list[str]], r: random.Random) -> list[list[str]]:
        if len(rows) > 1:
            del rows[r.randrange(len(rows))]
        return rows

    return [cell_number, cell_number, cell_number, cell_text, drop_cell, duplicate_row,
            add_column, drop_row]  # fmt: skip


_CSV_MUTATIONS = _csv_mutations()


def mutate_csv(text: str, rng: random.Random) -> bytes:
    """One to three random edits of a CSV, then possibly another delimiter or bad bytes."""
    rows = [line.split(",") for line in text.splitlines()]
    for _ in range(rng.randint(1, 3)):
        rows = rng.choice(_CSV_MUTATIONS)(rows, rng)
    delim = rng.choice([",", ",", ",", ",", ";", "\t", "|"])
    out = "".join(delim.join(row) + "\n" for row in rows).encode("utf-8")
    if rng.random() < 0.1:
        pos = rng.randrange(len(out) + 1)
        out = out[:pos] + rng.choice([b"\xff", b"\x00", b"\n\n", b'"']) + out[pos:]
    return out


# -------------------------------------------------------------------------- running
class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise _Timeout

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _digest(directory: Path) -> dict[str, str]:
    out = {}
    for p in sorted(directory.iterdir()):
        if p.is_file() and not p.is_symlink():
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


#: Ids a message of ``hccmeta run`` may name instead of a file: the analysis run on
#: the demo data and its study (the analysis layer names the study and its effects).
RUN_IDS = ("demo_os", "demo2020")


def _located(stderr: str, names: tuple[str, ...], *, command: str = "") -> str | None:
    """None if every line of ``stderr`` names one of ``names`` at its start (after the
    ``hccmeta CMD: error:`` prefix) -- or, for ``run``, names the analysis or a study of
    the data; else the first line that does not."""
    lines = stderr.splitlines()
    if not lines:
        return "(no message)"
    for line in lines:
        body = re.sub(r"^hccmeta [a-z]+: error: ", "", line)
        if any(body.startswith((f"{n}:", f"{n} ")) for n in names):
            continue
        if command == "run" and any(re.search(rf"\b{i}\b", body) for i in RUN_IDS):
            continue
        return line
    return None


def _finite_json(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False

    def finite(v: object) -> bool:
        if isinstance(v, dict):
            return all(finite(x) for x in v.values())
        if isinstance(v, list):
            return all(finite(x) for x in v)
        if isinstance(v, float):
            return v == v and abs(v) != float("inf")
        return True

    return finite(value)


def run_case(
    args: list[str],
    cwd: Path,
    names: tuple[str, ...],
    *,
    time_limit: float = 30.0,
    subprocess_run: bool = False,
) -> Outcome:
    """Run ``hccmeta ARGS`` in ``cwd`` and classify the outcome (see the module doc)."""
    before = _digest(cwd)
    start = time.perf_counter()
    status: int | None
    if subprocess_run:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "hccmeta.cli", *args],
                cwd=cwd,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=time_limit,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome("hang", None, "", time.perf_counter() - start, " ".join(args))
        status, err, out = proc.returncode, proc.stderr, proc.stdout
    else:
        from hccmeta.cli import main

        out_buf, err_buf = io.StringIO(), io.StringIO()
        old_cwd = Path.cwd()
        os.chdir(cwd)
        try:
            with (
                contextlib.redirect_stdout(out_buf),
                contextlib.redirect_stderr(err_buf),
                _time_limit(time_limit),
            ):
                try:
                    status = main(args)
                except SystemExit as exc:  # argparse
                    status = int(exc.code) if isinstance(exc.code, int) else 2
        except _Timeout:
            return Outcome("hang", None, err_buf.getvalue(), time.perf_counter() - start)
        except Exception:  # noqa: BLE001 - what the fuzzer looks for
            return Outcome(
                "traceback", 1, traceback.format_exc(), time.perf_counter() - start,
                traceback.format_exc(limit=-3),
            )  # fmt: skip
        finally:
            os.chdir(old_cwd)
        err, out = err_buf.getvalue(), out_buf.getvalue()
    seconds = time.perf_counter() - start
    if _digest(cwd) != before:
        return Outcome("modified", status, err, seconds, "an input file changed")
    if "Traceback (most recent call last)" in err:
        return Outcome("traceback", status, err, seconds)
    if status == 0:
        if "--json" in args and not _finite_json(out):
            return Outcome("bad_output", status, err, seconds, out[:400], out)
        return Outcome("accepted", status, err, seconds, "", out)
    if status == 2:
        bad = _located(err, names, command=args[0] if args else "")
        if bad is None:
            return Outcome("clean", status, err, seconds)
        return Outcome("unlocated", status, err, seconds, bad)
    return Outcome("unlocated", status, err, seconds, f"exit status {status}")


# --------------------------------------------------------------------------- corpora
SEED_CSVS = {
    "yi_sei.csv": ("generic", "study,yi,sei\na,-0.5,0.2\nb,-0.3,0.3\nc,0.1,0.25\n"),
    "yi_vi.csv": ("hr", "study,yi,vi\na,-0.5,0.04\nb,-0.3,0.09\n"),
    "ci.csv": (
        "hr",
        "study,estimate,ci_lower,ci_upper,ci_level\na,0.6,0.4,0.9,0.95\nb,0.8,0.5,1.3,\n",
    ),
    "counts.csv": ("or", "study,events_t,n_t,events_c,n_c\na,5,20,3,21\nb,0,15,2,14\n"),
}  # fmt: skip


def yaml_case(workdir: Path, rng: random.Random) -> tuple[list[str], tuple[str, ...]]:
    """A copy of the demo study directory with the study file or the registry mutated;
    returns the arguments of ``validate`` and the names its messages may start with."""
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(DEMO, workdir)
    name = "analyses.yaml" if rng.random() < 0.2 else "demo2020.yaml"
    path = workdir / name
    path.write_bytes(mutate_yaml(path.read_text("utf-8"), rng))
    return ["validate", "--data", "."], ("demo2020.yaml", "analyses.yaml")


def csv_case(
    workdir: Path, rng: random.Random, *, command: str = "pool"
) -> tuple[list[str], tuple[str, ...]]:
    """A mutated seed CSV in ``workdir``; the arguments of ``pool`` (or ``convert``)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    name, (measure, text) = rng.choice(sorted(SEED_CSVS.items()))
    (workdir / name).write_bytes(mutate_csv(text, rng))
    if command == "pool" and measure == "rd":
        measure = "or"
    args = [command, "--csv", name, "--measure", measure]
    if command == "pool" and rng.random() < 0.5:
        args.append("--json")
    return args, (name,)
