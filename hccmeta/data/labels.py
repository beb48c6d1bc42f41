"""Study labels for readers: 'Lee 2017' instead of the study id ``lee2017``.

The report prints a study by its label (forest plots, tables, statements); the CSV and
JSON outputs keep the ids. A study's label is its ``label`` field where the study file
gives one, else the first author's surname and the year of its citation
(:func:`label_from_citation`), else its id. Labels that coincide get a letter in id
order ('Lee 2017a', 'Lee 2017b'), as author-year citations do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.data.schema import Study

__all__ = ["label_from_citation", "relabel", "study_label", "study_labels"]

#: The first author of a Vancouver-style citation: a surname (optionally after
#: lower-case particles such as 'van der') followed by initials and a comma or full stop.
_AUTHOR = re.compile(r"^\s*((?:[a-z]+\s+){0,3}[^\W\d_][\w'’-]*)\s+[A-Z]{1,4}(?=[,.;])")
#: The year of a journal reference ('2017;11(3)'), else any year.
_JOURNAL_YEAR = re.compile(r"\b((?:19|20)\d\d)\s*[;:(]")
_YEAR = re.compile(r"\b((?:19|20)\d\d)\b")


def label_from_citation(citation: str) -> str | None:
    """'Lee 2017' from 'Lee S, Kang JH, ... Hepatology International 2017;11(3):292-299';
    None when the citation does not start with an author's surname and initials or names
    no year.

    Examples
    --------
    >>> label_from_citation("Terashima T, et al. BMC Cancer 2016;16:338 (full text).")
    'Terashima 2016'
    >>> label_from_citation("Retrospective study of 34 patients enrolled 2008 - 2015.") is None
    True
    """
    author = _AUTHOR.match(citation)
    if author is None:
        return None
    surname = author.group(1)
    if not surname.split()[-1][:1].isupper():
        return None
    rest = citation[author.end() :]
    year = _JOURNAL_YEAR.search(rest) or _YEAR.search(rest)
    if year is None:
        return None
    return f"{surname} {year.group(1)}"


def study_label(study: Study) -> str:
    """The label of one study (without disambiguation; see :func:`study_labels`)."""
    return study.label or label_from_citation(study.citation) or study.id


def study_labels(studies: Iterable[Study]) -> dict[str, str]:
    """``{study id: label}``; labels shared by several studies get 'a', 'b', ... in id
    order."""
    studies = sorted(studies, key=lambda s: s.id)
    raw = {s.id: study_label(s) for s in studies}
    shared: dict[str, list[str]] = {}
    for sid, label in raw.items():
        shared.setdefault(label, []).append(sid)
    out = dict(raw)
    for label, ids in shared.items():
        if len(ids) > 1:
            for i, sid in enumerate(ids):
                out[sid] = f"{label}{chr(ord('a') + i)}" if i < 26 else f"{label} ({sid})"
    return out


def relabel(text: str, labels: Mapping[str, str]) -> str:
    """``text`` with every study id of ``labels`` that stands as a word replaced by its
    label (longest ids first, so ``lee2017b`` is not read as ``lee2017``)."""
    if not labels or not text:
        return text
    ids = sorted(labels, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w/.-])(" + "|".join(map(re.escape, ids)) + r")(?![\w/-])(?!\.\w)")
    return pattern.sub(lambda m: labels[m.group(1)], text)
