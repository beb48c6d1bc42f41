"""Where a snippet occurs in a source text, or the closest text to it.

Helps encoding a study: ``hccmeta locate SOURCE TEXT`` says on which line of the source
a snippet occurs and under which heading, with the same whitespace- and
hyphenation-insensitive matching as ``hccmeta validate`` (:func:`hccmeta.data.provenance.squash`);
when it does not occur, it shows the closest passage (found by voting of common 5-grams,
scored with :class:`difflib.SequenceMatcher`) and the first place where the two differ.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher

from hccmeta.data.provenance import SourceText, ignored, squash

__all__ = ["SnippetLocation", "locate"]

_SECTION = re.compile(
    r"(\d+(\.\d+)*\.?\s*)?(abstract|background|introduction|methods?|materials and methods|"
    r"patients and methods|results|discussion|conclusions?|references|acknowledge?ments?|"
    r"statistical analysis|case report)[.:]?",
    re.IGNORECASE,
)
#: Characters of context shown on each side of a match in a long line.
_CONTEXT = 60
_CAPTION = re.compile(r"^\s*(table|fig\.?|figure)\s*\d+", re.IGNORECASE)
_GRAM = 5
_CANDIDATES = 8


@dataclass(frozen=True)
class SnippetLocation:
    """Where a snippet occurs in a source (or the closest passage to it).

    Attributes
    ----------
    source : str
        The source file name.
    found : bool
        True if the snippet occurs (as ``hccmeta validate`` matches it).
    line, end_line : int
        First and last line (1-based) of the match or of the closest passage; 0 when
        nothing resembles the snippet.
    similarity : float
        1.0 for a match; else the similarity of the closest passage (0 to 1).
    lines : tuple of str
        The source lines from ``line`` to ``end_line``.
    section : str or None
        The nearest section heading above (Abstract, Methods, Results, ...).
    heading : str or None
        The nearest heading-like line above (a short line without final punctuation).
    caption : str or None
        The nearest table or figure caption above, if it comes after ``section``.
    difference : str or None
        For a near-miss: the first place where snippet and source differ.
    """

    source: str
    found: bool
    line: int
    end_line: int
    similarity: float
    lines: tuple[str, ...] = ()
    section: str | None = None
    heading: str | None = None
    caption: str | None = None
    difference: str | None = None

    def where(self) -> str:
        """'section 'Results', under 'Overall survival', Table 2. ...' (what is known)."""
        parts = []
        if self.section:
            parts.append(f"section '{self.section}'")
        if self.heading and self.heading != self.section:
            parts.append(f"under '{self.heading}'")
        if self.caption:
            parts.append(f"in '{_short(self.caption, 60)}'")
        return ", ".join(parts) or "no heading found above it"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "\u2026"


class _Index:
    """The squashed text of a source with the position of each kept character."""

    def __init__(self, source: SourceText) -> None:
        self.text = unicodedata.normalize("NFKC", source.text)
        self.kept = [i for i, ch in enumerate(self.text) if not ignored(ch)]
        self.squashed = "".join(self.text[i] for i in self.kept)
        self.lines = self.text.split("\n")
        self._starts = [0]
        for line in self.lines[:-1]:
            self._starts.append(self._starts[-1] + len(line) + 1)

    def original(self, squashed_pos: int) -> int:
        """Position in the (normalised) source text of a position in the squashed text."""
        return self.kept[min(max(squashed_pos, 0), len(self.kept) - 1)]

    def line_of(self, squashed_pos: int) -> int:
        """1-based line of a position in the squashed text."""
        pos = self.original(squashed_pos)
        lo, hi = 0, len(self._starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def excerpt(self, start: int, end: int) -> tuple[int, int, tuple[str, ...]]:
        """(first line, last line, the lines) of squashed positions ``start..end``
        (inclusive); long lines are cut to the passage and some context ('…')."""
        first, last = self.line_of(start), self.line_of(end)
        lo, hi = self.original(start) - _CONTEXT, self.original(end) + 1 + _CONTEXT
        out = []
        for n in range(first, last + 1):
            a = self._starts[n - 1]
            line = self.lines[n - 1]
            cut_a, cut_b = max(0, lo - a), min(len(line), hi - a)
            text = line[cut_a:cut_b]
            out.append(("…" if cut_a > 0 else "") + text + ("…" if cut_b < len(line) else ""))
        return first, last, tuple(out)


def _heading_like(lines: list[str], i: int) -> bool:
    raw = lines[i]
    line = raw.strip()
    if not 3 <= len(line) <= 60 or raw != raw.rstrip() or len(line.split()) > 6:
        return False
    if not line[0].isupper() or line[-1] in ".,;:" or any(c.isdigit() for c in line):
        return False
    after = next((x.lstrip() for x in lines[i + 1 : i + 4] if x.strip()), "")
    if after[:1].islower():  # a sentence that goes on: not a heading
        return False
    return i == 0 or not lines[i - 1].strip() or lines[i - 1].rstrip().endswith(".")


def _context(lines: list[str], line: int) -> tuple[str | None, str | None, str | None]:
    section = heading = caption = None
    section_at = -1
    for i in range(line - 1, -1, -1):
        text = lines[i].strip()
        if section is None and _SECTION.fullmatch(text):
            section, section_at = text, i
        if heading is None and _heading_like(lines, i):
            heading = text
        if section is not None and heading is not None:
            break
    for i in range(line - 1, section_at, -1):
        if _CAPTION.match(lines[i]):
            caption = lines[i].strip()
            break
    return section, heading, caption


def _difference(needle: str, window: str) -> str | None:
    """The first difference, as the two texts around it (spaces and hyphens removed)."""
    ops = SequenceMatcher(None, needle, window, autojunk=False).get_opcodes()
    for tag, i1, _i2, j1, _j2 in ops:
        if tag == "equal":
            continue
        a = needle[max(0, i1 - 15) : i1 + 15]
        b = window[max(0, j1 - 15) : j1 + 15]
        return f"snippet '…{a}…' vs source '…{b}…' (spaces and hyphens removed)"
    return None


def locate(source: SourceText, snippet: str) -> SnippetLocation:
    """Where ``snippet`` occurs in ``source``, or the closest passage.

    Parameters
    ----------
    source : SourceText
        The source text.
    snippet : str
        The text to look for (whitespace, line breaks, hyphens and dashes are ignored,
        as ``hccmeta validate`` ignores them).

    Returns
    -------
    SnippetLocation
    """
    idx = _Index(source)
    needle = squash(snippet)
    name = source.path.name
    if not needle:
        return SnippetLocation(name, False, 0, 0, 0.0)
    pos = idx.squashed.find(needle)
    if pos >= 0:
        first, last, lines = idx.excerpt(pos, pos + len(needle) - 1)
        section, heading, caption = _context(idx.lines, first)
        return SnippetLocation(name, True, first, last, 1.0, lines, section, heading, caption)
    start, end, score = _closest(idx.squashed, needle)
    if start < 0:
        return SnippetLocation(name, False, 0, 0, 0.0)
    first, last, lines = idx.excerpt(start, end)
    section, heading, caption = _context(idx.lines, first)
    window = idx.squashed[start : end + 1]
    return SnippetLocation(
        name, False, first, last, score, lines, section, heading, caption,
        _difference(needle, window),
    )  # fmt: skip


def _closest(hay: str, needle: str) -> tuple[int, int, float]:
    """Start, end (inclusive, in ``hay``) and similarity of the passage most like
    ``needle``: candidate starts get a vote from every common 5-gram (case-insensitive);
    the best candidates are scored with SequenceMatcher, and the passage is trimmed to
    the span that matches."""
    low_hay, low_needle = hay.lower(), needle.lower()
    n = min(_GRAM, len(needle))
    where: dict[str, list[int]] = defaultdict(list)
    for i in range(len(low_hay) - n + 1):
        where[low_hay[i : i + n]].append(i)
    votes: Counter[int] = Counter()
    for j in range(len(low_needle) - n + 1):
        for i in where.get(low_needle[j : j + n], ()):
            votes[i - j] += 1
    if not votes:
        return -1, -1, 0.0
    slack = max(2, len(needle) // 4)
    best = (-1, -1, -1.0)
    for cand, _ in votes.most_common(_CANDIDATES):
        lo = max(0, cand - slack)
        window = hay[lo : cand + len(needle) + slack]
        sm = SequenceMatcher(None, needle, window, autojunk=False)
        blocks = [b for b in sm.get_matching_blocks() if b.size]
        if not blocks:
            continue
        a, b = lo + blocks[0].b, lo + blocks[-1].b + blocks[-1].size
        score = SequenceMatcher(None, needle, hay[a:b], autojunk=False).ratio()
        if score > best[2]:
            best = (a, b - 1, score)
    return best
