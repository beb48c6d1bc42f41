"""Rendering: display tables, and the Jinja2 templates of ``index.md`` and ``index.html``.

Both documents are rendered from the same context (:mod:`hccmeta.report.context`);
tables are :class:`Table` objects of display strings, turned into Markdown or HTML by
the filters ``md_table`` and ``html_table``. The HTML document embeds its style sheet
and its figures (base64 PNG data URIs) and forbids every external resource in its
Content-Security-Policy, so it opens offline from a single file.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from markupsafe import Markup, escape

__all__ = ["Table", "data_uri", "md_code", "md_escape", "render_html", "render_markdown", "slug"]


@dataclass
class Table:
    """A table of display strings.

    Attributes
    ----------
    columns : list of str
        Header cells.
    rows : list of list of str
        Body cells (already formatted).
    numeric : set of int
        Indices of right-aligned columns.
    classes : list of str
        CSS classes of each body row (HTML only; e.g. ``warn`` for a failed variant).
    """

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)
    classes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows)


def slug(text: str) -> str:
    """An HTML id / anchor from ``text``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _md_cell(text: str) -> str:
    """A table cell: Markdown-escaped like running text (:func:`md_escape`, which also
    escapes ``|``), line breaks as ``<br>``."""
    return md_escape(str(text)).replace("\r\n", "\n").replace("\n", "<br>").strip()


def md_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table."""
    if not table.columns:
        return ""
    head = "| " + " | ".join(_md_cell(c) for c in table.columns) + " |"
    sep = (
        "|"
        + "|".join("---:" if i in table.numeric else "---" for i in range(len(table.columns)))
        + "|"
    )
    body = ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join([head, sep, *body])


def html_table(table: Table, css: str = "") -> Markup:
    """An HTML table (cells escaped)."""
    if not table.columns:
        return Markup("")
    cls = f' class="{escape(css)}"' if css else ""
    out = [f'<div class="scroll"><table{cls}><thead><tr>']
    for i, c in enumerate(table.columns):
        num = ' class="num"' if i in table.numeric else ""
        out.append(f"<th{num}>{escape(c)}</th>")
    out.append("</tr></thead><tbody>")
    for r, row in enumerate(table.rows):
        row_cls = table.classes[r] if r < len(table.classes) else ""
        out.append(f'<tr class="{escape(row_cls)}">' if row_cls else "<tr>")
        for i, c in enumerate(row):
            num = ' class="num"' if i in table.numeric else ""
            out.append(f"<td{num}>{escape(c)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return Markup("".join(out))


def md_escape(text: str) -> str:
    """Escape the characters Markdown would interpret in running text.

    Backslash escapes of CommonMark: ``<`` and ``>`` (no raw HTML, no autolinks such as
    ``<javascript:...>``), ``[`` and ``]`` (no links or images), code, emphasis, table
    pipes and headings; free text of the study data and the registry reaches
    ``index.md`` only through this filter, :func:`md_code` or a table cell.
    """
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", str(text))


def md_code(text: str) -> str:
    """``text`` as a Markdown code span, safe whatever it holds: the fence is one
    backtick longer than the longest run of backticks in it (CommonMark), padded with
    spaces where the text starts or ends with a backtick; line breaks become spaces."""
    text = " ".join(str(text).splitlines())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _environment(autoescape: bool) -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hccmeta.report", "templates"),
        autoescape=autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md_table"] = md_table
    env.filters["html_table"] = html_table
    env.filters["md"] = md_escape
    env.filters["md_code"] = md_code
    env.filters["slug"] = slug
    return env


def _css() -> str:
    return (resources.files("hccmeta.report") / "templates" / "report.css").read_text("utf-8")


def render_markdown(context: Mapping[str, Any]) -> str:
    """``index.md`` from the report context."""
    text: str = _environment(False).get_template("index.md.j2").render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def render_html(context: Mapping[str, Any], figures: Mapping[str, bytes]) -> str:
    """``index.html`` from the report context, figures embedded as data URIs.

    Parameters
    ----------
    context : mapping
        The report context.
    figures : mapping of str to bytes
        PNG bytes by file name (``figures/<name>.png`` in the Markdown).
    """
    uris = {name: data_uri(png) for name, png in figures.items()}
    env = _environment(True)
    html: str = env.get_template("index.html.j2").render(**context, css=Markup(_css()), uris=uris)
    return html.rstrip() + "\n"


def join(items: Sequence[str], sep: str = ", ") -> str:
    """Join non-empty strings."""
    return sep.join(i for i in items if i)
