"""Reading YAML with line numbers.

ruamel.yaml's round-trip loader keeps the line of every key and list item; this module
turns a document into plain Python values (what the pydantic schema validates) and keeps
a :class:`LineMap` that finds the line of any location path such as
``("records", 3, "groups", 0, "median", "value")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from hccmeta.errors import Problem

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
    """Convert ruamel's round-trip types into plain dicts, lists, str, int, float, bool."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node  # dates and other scalars: the schema rejects them with a type error


def read_yaml(path: Path, display: str) -> tuple[Any, LineMap] | Problem:
    """Parse ``path``; return (plain data, line map) or a :class:`Problem` on a syntax error."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return Problem(display, None, None, None, f"not UTF-8 text ({exc.reason})")
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        return Problem(display, line, None, None, f"malformed YAML: {what}")
    except YAMLError as exc:  # other parser errors carry no position
        return Problem(display, None, None, None, f"malformed YAML: {exc}")
    if doc is None:
        return Problem(display, None, None, None, "the file is empty (no YAML content)")
    if not isinstance(doc, CommentedMap):
        line = doc.lc.line + 1 if isinstance(doc, CommentedSeq) else 1
        return Problem(display, line, None, None, "a study file must be a mapping of fields")
    return to_plain(doc), LineMap(doc)
