"""Rules of ``study_data/README.md`` that neither the schema nor the cross-field checks
state: names and ids, arm sizes, and text free of control characters.

- a study file is named ``<study id>.yaml`` (or ``.yml``);
- record and characteristic ids start with their own study's id and a dot
  (``lee2017.os.pvi``);
- an arm has at least one patient (``n >= 1``, or null when not reported);
- text holds no control characters (but line breaks and tabs), no Unicode line or
  paragraph separators and no bidirectional controls, which hide or reorder what a
  reader sees.

:func:`check_rules` returns :class:`~hccmeta.data.checks.Finding` objects like
:func:`~hccmeta.data.checks.check_study`; :func:`text_findings` works on the plain data
before the schema, so that it also covers text the schema refuses for another reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from hccmeta.data.checks import Finding, Loc
from hccmeta.data.schema import Study
from hccmeta.errors import printable, unsafe_char

__all__ = ["check_rules", "text_findings"]


def check_rules(study: Study, *, file_stem: str) -> list[Finding]:
    """The README rules for one validated study read from ``<file_stem>.yaml``."""
    out: list[Finding] = []
    if study.id != file_stem:
        out.append(
            Finding(
                ("id",),
                f"study id '{study.id}' does not match the file name: the file of study "
                f"'{study.id}' is {study.id}.yaml",
            )
        )
    prefix = f"{study.id}."
    for part, items in (("records", study.records), ("characteristics", study.characteristics)):
        for i, item in enumerate(items):
            if not item.id.startswith(prefix):
                kind = "record" if part == "records" else "characteristic"
                out.append(
                    Finding(
                        (part, i, "id"),
                        f"{kind} id '{item.id}' must start with its study's id and a dot: "
                        f"'{prefix}'",
                    )
                )
    for i, arm in enumerate(study.arms):
        if arm.n is not None and arm.n < 1:
            out.append(
                Finding(
                    ("arms", i, "n"),
                    f"an arm has at least 1 patient (got {arm.n}; write null if the source "
                    "does not report it)",
                )
            )
    return out


def _strings(node: object, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*loc, str(key)), str(key)
            yield from _strings(value, (*loc, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*loc, i))
    elif isinstance(node, str):
        yield loc, node


def text_findings(data: object) -> list[Finding]:
    """Text (keys and values) of plain YAML data that holds a character
    :func:`hccmeta.errors.unsafe_char` names, other than a line break."""
    out: list[Finding] = []
    for loc, text in _strings(data, ()):
        bad = [ch for ch in text if ch != "\n" and unsafe_char(ch)]
        if bad:
            shown = printable(bad[0])
            out.append(
                Finding(
                    loc,
                    f"text holds the control character {shown} (at position "
                    f"{text.index(bad[0]) + 1}): not allowed in study data",
                )
            )
    return out
