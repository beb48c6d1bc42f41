"""Reading YAML with line numbers, under a reading policy for untrusted files.

ruamel.yaml's round-trip loader keeps the line of every key and list item; this module
turns a document into plain Python values (what the pydantic schema validates) and keeps
a :class:`LineMap` that finds the line of any location path such as
``("records", 3, "groups", 0, "median", "value")``.

The reading policy (study files and ``analyses.yaml`` alike) refuses, each with one
``FILE:LINE: message``, before anything is built:

- anything but a regular file (a directory, a FIFO -- never opened, so never waited
  on --, a device such as ``/dev/zero``), and files above :data:`MAX_BYTES`;
- text that is not UTF-8 (the line and column of the first bad byte), NUL bytes and the
  other characters YAML does not allow;
- anchors and aliases (``&a`` / ``*a``: a few lines of nested aliases expand to
  gigabytes, the "billion laughs"), explicit tags (``!foo``, ``!!python/object``) and
  ``%YAML`` / ``%TAG`` directives;
- nesting deeper than :data:`MAX_DEPTH` levels;
- and every other parser error, with its line.

Numbers follow :mod:`hccmeta.numeric`: an integer or float written otherwise than in plain
decimal notation (``0x36``, ``5_4``, ``054``, ``.inf``) or outside the bounds becomes a
:class:`BadNumber`, text that the schema refuses where it expects a number (with the
reason as its message) and keeps as written where it expects text.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import os
import re
import stat
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    NodeEvent,
)

from hccmeta.errors import Problem
from hccmeta.numeric import MAX_MAGNITUDE
from hccmeta.scoped import Scoped

#: Largest file the reader accepts (a study file is tens of kilobytes).
MAX_BYTES = 4 * 1024 * 1024
#: Deepest nesting of mappings and lists (a study file needs about ten levels).
MAX_DEPTH = 40

# the characters YAML 1.2 allows in a stream (its "printable" set)
_NOT_ALLOWED = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
#: Text that reads as a number in digits other than ASCII 0-9 (Arabic-Indic, ...).
_FOREIGN_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


_RANGE = f"(at most {MAX_MAGNITUDE:g} in absolute value)"


class BadNumber(str):
    """A YAML number the numeric policy refuses (or a date): its text, and why.

    The schema refuses it where a number is expected (the loader reports
    :attr:`reason`); where text is expected it is that text.
    """

    reason: str

    def __new__(cls, text: str, reason: str) -> BadNumber:
        obj = super().__new__(cls, text)
        obj.reason = reason
        return obj


class _Constructor(RoundTripConstructor):
    """The round-trip constructor, with numbers checked against :mod:`hccmeta.numeric`."""

    def construct_checked_int(self, node: Any) -> Any:
        text = str(node.value)
        if not _PLAIN_INT.fullmatch(text):
            digits = text.lstrip("+-").lower()
            why = "is not written in plain decimal digits"
            if digits[:2] in ("0x", "0o", "0b"):
                why = "is hexadecimal, octal or binary"
            elif digits[:1] == "0" and digits.isdigit():
                why = "has a leading zero (YAML 1.1 reads it as octal)"
            return BadNumber(text, f"the number {text!r} {why}: write it as a plain decimal number")
        value = int(text)
        if abs(value) > MAX_MAGNITUDE:
            return BadNumber(
                text,
                f"the number {text} is outside the accepted range {_RANGE}",
            )
        return self.construct_yaml_int(node)

    def construct_checked_float(self, node: Any) -> Any:
        text = str(node.value)
        if not _PLAIN_FLOAT.fullmatch(text):
            return BadNumber(text, f"{text!r} is not a finite number in plain decimal notation")
        value = float(text)
        if abs(value) > MAX_MAGNITUDE:
            return BadNumber(
                text,
                f"the number {text} is outside the accepted range {_RANGE}",
            )
        return self.construct_yaml_float(node)


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_checked_int)
_Constructor.add_constructor("tag:yaml.org,2002:float", _Constructor.construct_checked_float)

Loc = Sequence[str | int]


class LineMap:
    """Find the 1-based line of a location path in a round-trip-loaded YAML document."""

    def __init__(self, root: Any) -> None:
        self._root = root

    def line(self, loc: Loc) -> int | None:
        """Line of the deepest node on ``loc`` that exists in the document.

        Parts of ``loc`` that are not keys of the document (pydantic adds the tag of a
        discriminated union, e.g. ``'survival'``) are skipped.
        """
        node = self._root
        line: int | None = 1 if node is not None else None
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            elif isinstance(part, str) and isinstance(node, CommentedMap | CommentedSeq):
                continue  # a pydantic-only part of the path (union tag)
            else:
                break
        return line


def to_plain(node: Any) -> Any:
    """Convert ruamel's round-trip types into plain dicts, lists, str, int, float, bool
    (a :class:`BadNumber` stays one)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None or isinstance(node, BadNumber):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        if _FOREIGN_NUMBER.fullmatch(node) and not node.isascii():
            return BadNumber(node, f"{node!r} is not a number (only ASCII digits 0-9 count)")
        return str(node)
    if isinstance(node, datetime.date):
        text = node.isoformat()
        return BadNumber(text, f"YAML reads {text} as a date: quote it ('{text}') if it is text")
    return node  # other scalars: the schema rejects them with a type error


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - start + 1


def utf8_problem(data: bytes, exc: UnicodeDecodeError, display: str) -> Problem:
    """The located problem of bytes that are not UTF-8: line and column of the first
    invalid byte."""
    line, col = _line_col(data, exc.start)
    return Problem(
        display,
        line,
        None,
        None,
        f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} at column {col} "
        "(save the file as UTF-8)",
    )


def read_file(path: Path, display: str, *, max_bytes: int = MAX_BYTES) -> bytes | Problem:
    """The bytes of a regular file, or a :class:`Problem`.

    A FIFO, a device or a directory is refused from its ``stat`` (never opened); the
    file is opened non-blocking and read up to ``max_bytes`` (a larger file is refused).
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        return Problem(display, None, None, None, f"cannot read: {exc.strerror or exc}")
    if not stat.S_ISREG(st.st_mode):
        kind = "an unknown kind of file"
        if stat.S_ISDIR(st.st_mode):
            kind = "a directory"
        elif stat.S_ISFIFO(st.st_mode):
            kind = "a FIFO (named pipe)"
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            kind = "a device"
        elif stat.S_ISSOCK(st.st_mode):
            kind = "a socket"
        return Problem(display, None, None, None, f"not a regular file: {kind}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return Problem(display, None, None, None, "not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        return Problem(display, None, None, None, f"cannot read: {exc.strerror or exc}")
    if len(data) > max_bytes:
        return Problem(display, None, None, None, f"file larger than {max_bytes} bytes: refused")
    return data


def read_text(path: Path, display: str, *, max_bytes: int = MAX_BYTES) -> str | Problem:
    """The UTF-8 text of a regular file (:func:`read_file`) with only the characters
    YAML allows, or a located :class:`Problem`."""
    data = read_file(path, display, max_bytes=max_bytes)
    if isinstance(data, Problem):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return utf8_problem(data, exc, display)
    text = text.removeprefix("\ufeff")
    bad = _NOT_ALLOWED.search(text)
    if bad is not None:
        offset = bad.start()
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        ch = bad.group()
        code = f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
        what = "a NUL byte" if ch == "\0" else f"the control character {code}"
        return Problem(
            display,
            line,
            None,
            None,
            f"{what} at column {col}: not allowed in a YAML file",
            "study",
        )
    return text


def link_problem(path: Path, root: Path, display: str) -> Problem | None:
    """A problem if ``path`` is a symbolic link that is broken, loops, or leads out of
    the directory ``root`` (resolved); None otherwise."""
    if not path.is_symlink():
        return None
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        if (isinstance(exc, OSError) and exc.errno == errno.ELOOP) or isinstance(exc, RuntimeError):
            return Problem(display, None, None, None, "symbolic link loop: cannot be read")
        try:
            shown = os.readlink(path)
        except OSError:  # pragma: no cover - it was a link a moment ago
            shown = "?"
        return Problem(
            display, None, None, None, f"broken symbolic link (its target {shown} does not exist)"
        )
    if not target.is_relative_to(root):
        return Problem(
            display,
            None,
            None,
            None,
            f"symbolic link to {target}, outside the data directory: refused (copy the "
            "file into the directory instead)",
        )
    return None


def _check_events(yaml: YAML, text: str, display: str) -> Problem | None:
    """Refuse aliases, anchors, explicit tags, directives and deep nesting, from the
    parser's events (which expand nothing)."""
    depth = 0
    for event in yaml.parse(text):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, AliasEvent):
            return Problem(
                display,
                line,
                None,
                None,
                f"YAML alias '*{event.anchor}' is not allowed (write the values out)",
                "study",
            )
        if isinstance(event, NodeEvent) and event.anchor is not None:
            return Problem(
                display,
                line,
                None,
                None,
                f"YAML anchor '&{event.anchor}' is not allowed (no anchors or aliases)",
                "study",
            )
        tag = getattr(event, "tag", None)
        if isinstance(event, NodeEvent) and tag is not None:
            tag = str(tag).replace("tag:yaml.org,2002:", "!!")
            return Problem(
                display,
                line,
                None,
                None,
                f"YAML tag '{tag}' is not allowed (plain YAML only; quote the value if it is text)",
                "study",
            )
        if isinstance(event, DocumentStartEvent) and (event.version is not None or event.tags):
            return Problem(
                display, line, None, None, "YAML directives (%YAML, %TAG) are not allowed", "study"
            )
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return Problem(
                    display, line, None, None, f"nested more than {MAX_DEPTH} levels deep", "study"
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
    return None


def _marked(display: str, exc: MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    what = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem and exc.problem.startswith("but "):
        what = f"{exc.context}, {exc.problem}"
    return Problem(display, line, None, None, f"malformed YAML: {what}", "study")


class ParseStore(Protocol):
    """Where :func:`read_yaml` keeps what it parsed (see :func:`parse_store`); a store
    never raises: a failure to read is a miss."""

    def get_parsed(self, key: str) -> tuple[Any, LineMap] | None:
        """What was parsed under ``key``, or None."""

    def put_parsed(self, key: str, parsed: tuple[Any, LineMap]) -> None:
        """Keep ``parsed`` under ``key``."""


_STORE: Scoped[ParseStore | None] = Scoped(None)


def parse_store(store: ParseStore | None) -> AbstractContextManager[None]:
    """Within the block, :func:`read_yaml` reuses, through ``store``, what it parsed from
    the same text before (keyed by the SHA-256 of the text; only files that parse, and
    after the reading policy's checks of the text, so that a refusal is never skipped).
    Parsing is most of the time of loading the study files; ``hccmeta report`` keeps the
    parsed files in its result cache, so that after one study is edited only that file
    is parsed again."""
    return _STORE.using(store)


def read_yaml(
    path: Path, display: str, *, what: str = "a study file"
) -> tuple[Any, LineMap] | Problem:
    """Parse ``path`` under the reading policy; return (plain data, line map) or a
    :class:`Problem` (one line, with the line number where one applies)."""
    text = read_text(path, display)
    if isinstance(text, Problem):
        return text
    store = _STORE.get()
    if store is None:
        return _parse(text, display, what)
    key = hashlib.sha256(f"{what}\0{text}".encode()).hexdigest()
    hit = store.get_parsed(key)
    if hit is not None:
        return hit
    parsed = _parse(text, display, what)
    if not isinstance(parsed, Problem):
        store.put_parsed(key, parsed)
    return parsed


def _parse(text: str, display: str, what: str) -> tuple[Any, LineMap] | Problem:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    try:
        refused = _check_events(yaml, text, display)
        if refused is not None:
            return refused
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        return _marked(display, exc)
    except RecursionError:
        return Problem(display, None, None, None, "malformed YAML: nested too deeply", "study")
    except YAMLError as exc:  # other parser errors carry no mark
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Problem(display, None, None, None, f"malformed YAML: {first}", "study")
    if doc is None:
        return Problem(display, None, None, None, "the file is empty (no YAML content)", "study")
    if not isinstance(doc, CommentedMap):
        line = doc.lc.line + 1 if isinstance(doc, CommentedSeq) else 1
        return Problem(display, line, None, None, f"{what} must be a mapping of fields", "study")
    return to_plain(doc), LineMap(doc)
