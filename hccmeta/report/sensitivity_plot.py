"""The sensitivity plot: the primary estimand of an analysis under every variant.

One row per variant (the rows of :func:`hccmeta.sensitivity.sensitivity` for one
estimand), grouped by variant group with a heading per group: the posterior median and
its 95% interval, on the natural scale where there is one (HR, OR on a log axis; months;
probabilities), else on the analysis scale. The primary analysis is drawn in red, its
interval shaded across the plot, and a thin line marks no effect (1 for a ratio, 0 on
the analysis scale). Failed variants and variants without eligible records are listed
with that word instead of an interval; the estimate and interval of every row are
printed at the right.

matplotlib is imported inside the function; the figure is a plain
``matplotlib.figure.Figure`` drawn by the Agg canvas (no pyplot state, no display).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from hccmeta.errors import InputError
from hccmeta.sensitivity.table import GROUPS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["sensitivity_plot"]

_RATIO_SCALES = frozenset({"HR", "OR", "RR"})
_GROUP_TITLES = {
    "primary": "Primary analysis",
    "prior_tau": "Prior on the heterogeneity",
    "prior_mu": "Prior on the pooled effect",
    "effects_model": "Fixed vs random effects",
    "leave_one_out": "Leave one study out",
    "conversion": "Conversion assumptions",
    "subset": "Study subsets",
    "alternative": "Alternative contrast mappings",
    "bias": "Bias adjustment",
    "power_scaling": "Power-scaling (^0.8)",
}
_LOG_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
_PRIMARY_COLOR = "#a1282c"
_COLOR = "#2f4b7c"
_MUTED = "#8c8c8c"
#: Characters per line of a row's label (the label column is a third of the figure).
_LABEL_WIDTH = 52
#: Characters per line of the title.
_TITLE_WIDTH = 110


def _pick(table: pd.DataFrame, analysis: str | None, estimand: str | None) -> pd.DataFrame:
    if table.empty:
        raise InputError("sensitivity_plot: the table has no rows")
    names = list(dict.fromkeys(table["analysis"].astype(str)))
    if analysis is None:
        if len(names) > 1:
            raise InputError(
                f"sensitivity_plot: the table holds {len(names)} analyses; pass analysis= "
                f"(one of {', '.join(names)})"
            )
        analysis = names[0]
    elif analysis not in names:
        raise InputError(f"sensitivity_plot: no analysis {analysis!r} in the table")
    rows = table[table["analysis"].astype(str) == analysis]
    if estimand is None:
        wanted = table.attrs.get("primary_estimand", {}).get(analysis)
        primary = rows[(rows["variant"] == "primary") & rows["estimand"].notna()]
        estimand = wanted or (str(primary["estimand"].iloc[0]) if len(primary) else None)
    if estimand is None:
        return rows.iloc[0:0]
    known = set(rows["estimand"].dropna().astype(str))
    if estimand not in known:
        raise InputError(
            f"sensitivity_plot: no estimand {estimand!r} for {analysis!r} "
            f"(known: {', '.join(sorted(known)) or 'none'})"
        )
    return rows[rows["estimand"].astype(str) == estimand]


def _scale(rows: pd.DataFrame) -> tuple[str, str, str, str, bool]:
    """(median column, lower, upper, axis label, log axis)."""
    natural = rows["natural_scale"].dropna().astype(str)
    natural = natural[natural.str.len() > 0]
    if len(natural) and rows["natural_median"].notna().any():
        name = natural.iloc[0]
        label = {"months": "months", "probability": "probability (%)"}.get(name, name)
        return (
            "natural_median",
            "natural_ci_lower",
            "natural_ci_upper",
            label,
            name in _RATIO_SCALES,
        )
    scale = rows["scale"].dropna().astype(str)
    label = scale.iloc[0] if len(scale) else "estimate"
    return "median", "ci_lower", "ci_upper", f"{label} (analysis scale)", False


def _row_label(row: Any, labels: Mapping[str, str] | None) -> str:
    """The variant's description in words, wrapped to two lines of the label column."""
    import textwrap

    from hccmeta.report.words import variant_text

    text = variant_text(str(row["description"]), labels, short=True) or str(row["variant"])
    lines = textwrap.wrap(text, _LABEL_WIDTH)
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), _LABEL_WIDTH, placeholder=" …")]
    return "\n".join(lines)


def _fmt(x: float, percent: bool = False) -> str:
    if not math.isfinite(x):
        return "NA"
    if percent:
        return f"{100 * x:.0f}%"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def sensitivity_plot(
    table: pd.DataFrame,
    *,
    estimand: str | None = None,
    analysis: str | None = None,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Estimates and 95% intervals of one estimand under every sensitivity variant.

    Parameters
    ----------
    table : DataFrame
        A sensitivity table (:func:`hccmeta.sensitivity.sensitivity`).
    estimand : str, keyword-only, optional
        The estimand to show (default: the analysis's primary estimand as recorded in
        ``table.attrs["primary_estimand"]``, else the first estimand of the primary row).
    analysis : str, keyword-only, optional
        The analysis, when the table holds several.
    title : str, keyword-only, optional
        Figure title (default: the analysis and estimand).
    labels : mapping, keyword-only, optional
        ``{study id: label}`` (:attr:`hccmeta.data.Evidence.study_labels`): study ids in
        the variants' descriptions are printed as labels.

    Each row is labelled by its variant's description in words
    (:func:`hccmeta.report.words.variant_text`); a probability is shown in percent.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = _pick(table, analysis, estimand)
    name = str(rows["analysis"].iloc[0]) if len(rows) else str(table["analysis"].iloc[0])
    est_name = str(rows["estimand"].iloc[0]) if len(rows) else "none"
    order = {g: i for i, g in enumerate(GROUPS)}
    rows = rows.assign(_g=rows["variant_group"].map(order).fillna(len(order)))
    rows = rows.sort_values("_g", kind="stable")
    med_c, lo_c, hi_c, xlabel, log_x = _scale(rows)
    percent = xlabel == "probability (%)"

    # layout: a heading line per group, then its variants
    lines: list[tuple[str, Any]] = []
    for _, sub in rows.groupby("_g", sort=True):
        g = str(sub["variant_group"].iloc[0])
        lines.append(("heading", _GROUP_TITLES.get(g, g)))
        lines += [("row", r) for _, r in sub.iterrows()]
    n = max(len(lines), 1)
    import textwrap

    heading = textwrap.wrap(
        title or f"{name}: {est_name}, under each sensitivity analysis (median, 95% interval)",
        _TITLE_WIDTH,
    )
    extra = 0.17 * (len(heading) - 1)
    height = 1.2 + 0.3 * n + extra
    fig = Figure(figsize=(9.0, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.33, 0.9 / height, 0.45, 1 - (1.3 + extra) / height))
    ax.set_ylim(n - 0.5, -0.5)
    primary = rows[rows["variant"] == "primary"]
    finite = rows[[lo_c, hi_c]].to_numpy(dtype=float)
    finite = finite[pd.notna(finite).all(axis=1)]
    if log_x:
        ax.set_xscale("log")
        ax.axvline(1.0, color=_MUTED, lw=0.8, zorder=1)
    elif med_c == "median":
        ax.axvline(0.0, color=_MUTED, lw=0.8, zorder=1)
    if len(primary) and pd.notna(primary[med_c].iloc[0]):
        p = primary.iloc[0]
        ax.axvspan(p[lo_c], p[hi_c], color=_PRIMARY_COLOR, alpha=0.08, lw=0, zorder=0)
        ax.axvline(p[med_c], color=_PRIMARY_COLOR, lw=0.9, ls="--", zorder=1)
    text_x = 1.02
    for y, (kind, item) in enumerate(lines):
        if kind == "heading":
            ax.text(-0.02, y, str(item), transform=ax.get_yaxis_transform(), ha="right",
                    va="center", fontsize=8.5, fontweight="bold")  # fmt: skip
            continue
        r = item
        is_primary = r["variant"] == "primary"
        color = _PRIMARY_COLOR if is_primary else _COLOR
        words = "primary analysis" if is_primary else _row_label(r, labels)
        ax.text(-0.02, y, "  " + words, transform=ax.get_yaxis_transform(),
                ha="right", va="center", fontsize=7.5, linespacing=0.95,
                fontweight="bold" if is_primary else "normal")  # fmt: skip
        status = str(r["status"])
        med, lo, hi = (float(r[c]) if pd.notna(r[c]) else math.nan for c in (med_c, lo_c, hi_c))
        if status == "ok" and math.isfinite(med):
            ax.plot([lo, hi], [y, y], color=color, lw=2.0 if is_primary else 1.3, zorder=3)
            ax.plot([med], [y], marker="D" if is_primary else "o", color=color,
                    ms=6 if is_primary else 4.5, zorder=4)  # fmt: skip
            label = f"{_fmt(med, percent)} ({_fmt(lo, percent)} to {_fmt(hi, percent)})"
        elif status == "failed" and math.isfinite(med):
            ax.plot([lo, hi], [y, y], color=_MUTED, lw=1.0, ls=":", zorder=2)
            ax.plot([med], [y], marker="x", color=_MUTED, ms=5, zorder=3)
            label = "failed"
        else:
            label = "failed" if status == "failed" else "no eligible records"
        ax.text(text_x, y, label, transform=ax.get_yaxis_transform(), ha="left", va="center",
                fontsize=7.5, color=_MUTED if status != "ok" else "#222222")  # fmt: skip
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    if percent:
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    if len(finite) and log_x:
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

        lo_all, hi_all = float(finite.min()), float(finite.max())
        lo_x, hi_x = min(lo_all, 1.0) / 1.15, max(hi_all, 1.0) * 1.15
        ax.set_xlim(lo_x, hi_x)
        ticks = [t for t in _LOG_TICKS if lo_x <= t <= hi_x]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle("\n".join(heading), fontsize=9.5, x=0.02, ha="left")
    return fig
