"""Figures of the report: the forest plot of an analysis and the prior and posterior of
the between-study heterogeneity tau.

matplotlib is imported inside the functions; figures are drawn by the Agg canvas without
pyplot (no global state, no display). :func:`png_bytes` writes no timestamp or software
tag, so the same numbers give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hccmeta.report.forest import SCALES, forest_rows
from hccmeta.report.words import prior_text

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from hccmeta.analyses.run import AnalysisResult

__all__ = [
    "DPI",
    "draw_forest",
    "draw_tau",
    "forest_plot",
    "png_bytes",
    "tau_curves",
    "tau_fits",
    "tau_plot",
]

#: Resolution of the PNG files (and of the figures embedded in the HTML report).
DPI = 110

_STYLE: dict[str, dict[str, Any]] = {
    "study": {"marker": "s", "color": "#222222", "ms": 5.5, "lw": 1.3, "dy": 0.0},
    "shrunken": {"marker": "o", "color": "#3b78b0", "ms": 4.5, "lw": 1.0, "dy": 0.28},
    "pooled": {"marker": "D", "color": "#a1282c", "ms": 7.5, "lw": 2.2, "dy": 0.0},
    "predictive": {"marker": "", "color": "#a1282c", "ms": 0.0, "lw": 1.2, "dy": 0.0},
}
_LEGEND = {
    "study": "study estimate (95% CI)",
    "shrunken": "shrunken estimate (95% CrI)",
    "pooled": "pooled estimate (95% CrI)",
    "predictive": "prediction interval (95%)",
}


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure drawn by the Agg canvas, without pyplot (no global state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes without metadata (reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _fmt(x: float, panel: str) -> str:
    if not math.isfinite(x):
        return "–"
    if panel in ("probability", "survival"):
        return f"{100 * x:.0f}%"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if panel == "months":
        return f"{x:.1f}"
    return f"{x:.2f}"


def _layout(rows: pd.DataFrame) -> tuple[list[tuple[str, list[tuple[float, str, bool]]]], dict]:
    """y positions (top to bottom) of each row, per panel: returns the panels with their
    tick list (y, text, is_header) and a mapping row index -> y."""
    ypos: dict[int, float] = {}
    panels = []
    multi = len(set(rows["group"])) > 1
    for panel, prow in rows.groupby("panel", sort=False):
        ticks: list[tuple[float, str, bool]] = []
        y = 0.0
        for group, grows in prow.groupby("group", sort=False):
            if multi:
                ticks.append((y, str(group), True))
                y -= 1.0
            slots: dict[str, float] = {}
            for idx, r in grows.iterrows():
                kind = r["kind"] if r["kind"] in ("pooled", "predictive") else "study"
                key = f"{kind}:{r['label']}"
                if key not in slots:
                    slots[key] = y
                    text = {"pooled": "Pooled", "predictive": "Prediction"}.get(r["kind"], "")
                    ticks.append((y, text or str(r["label"]), False))
                    y -= 1.0
                ypos[int(str(idx))] = slots[key]
            y -= 0.4
        panels.append((str(panel), ticks))
    return panels, ypos


def forest_plot(
    result: AnalysisResult, *, title: str | None = None, labels: Mapping[str, str] | None = None
) -> Figure:
    """The forest plot of an analysis, on the natural scale.

    Each study's own estimate with its 95% CI (squares), its shrunken estimate under the
    hierarchical model (circles), the pooled estimate with its 95% credible interval
    (diamond) and the 95% prediction interval of a new study's effect (dashed), one
    panel per natural scale (HR or OR on a log axis, months on a log axis, proportions).

    Parameters
    ----------
    result : AnalysisResult
        A result with status ``ok``.
    title : str, optional
        Default: the analysis title.
    labels : mapping, optional
        ``{study id: label}`` (:attr:`hccmeta.data.Evidence.study_labels`): studies are
        labelled 'Lee 2017' instead of ``lee2017``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return draw_forest(forest_rows(result, labels=labels), title or result.analysis.title)


def draw_forest(rows: pd.DataFrame, title: str) -> Figure:
    """Draw the rows of :func:`hccmeta.report.forest.forest_rows` (see :func:`forest_plot`)."""
    rows = rows.reset_index(drop=True)
    if rows.empty:
        fig = _figure((8.0, 1.2))
        fig.text(0.5, 0.5, "no eligible records", ha="center", va="center")
        return fig
    panels, ypos = _layout(rows)
    heights = [len(ticks) + 1.2 for _, ticks in panels]
    fig = _figure((8.6, 0.9 + 0.27 * sum(heights)))
    axes = fig.subplots(len(panels), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)
    scale_of = {spec[0]: (name, spec) for name, spec in SCALES.items()}
    seen: set[str] = set()
    for ax, (panel, ticks) in zip(axes[:, 0], panels, strict=True):
        prow = rows[rows["panel"] == panel]
        spec = scale_of.get(panel, (panel, (panel, panel, None, False, False, None)))[1]
        _, xlabel, _, _, log_axis, null = spec
        for idx, r in prow.iterrows():
            st = _STYLE[str(r["kind"])]
            y = ypos[int(str(idx))] - float(st["dy"])
            label = None if r["kind"] in seen else _LEGEND[str(r["kind"])]
            seen.add(str(r["kind"]))
            lo, hi, c = float(r["lower"]), float(r["upper"]), float(r["center"])
            if r["kind"] == "pooled":
                ax.fill(
                    [lo, c, hi, c],
                    [y, y + 0.32, y, y - 0.32],
                    color=st["color"],
                    label=label,
                    zorder=3,
                )
            else:
                ax.plot(
                    [lo, hi],
                    [y, y],
                    color=st["color"],
                    lw=st["lw"],
                    ls="--" if r["kind"] == "predictive" else "-",
                    zorder=2,
                    label=label if r["kind"] == "predictive" else None,
                )
                if st["marker"]:
                    ax.plot(
                        [c],
                        [y],
                        marker=st["marker"],
                        color=st["color"],
                        ms=st["ms"],
                        mfc="white" if r["kind"] == "shrunken" else st["color"],
                        ls="none",
                        zorder=3,
                        label=label,
                    )
            if r["kind"] in ("study", "pooled", "predictive"):
                text = f"{_fmt(c, panel)} ({_fmt(lo, panel)} to {_fmt(hi, panel)})"
                if r["kind"] == "predictive":
                    text = f"({_fmt(lo, panel)} to {_fmt(hi, panel)})"
                ax.text(
                    1.01,
                    y,
                    text,
                    transform=ax.get_yaxis_transform(),
                    va="center",
                    fontsize=8,
                    fontweight="bold" if r["kind"] == "pooled" else "normal",
                )
        ax.set_yticks([t[0] for t in ticks])
        ax.set_yticklabels(["" if t[2] else t[1] for t in ticks], fontsize=8.5)
        for y, text, header in ticks:
            if header:
                ax.annotate(
                    text,
                    xy=(0.015, y),
                    xycoords=("figure fraction", "data"),
                    ha="left",
                    va="center",
                    fontsize=8.5,
                    fontweight="bold",
                )
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(min(t[0] for t in ticks) - 0.8, max(t[0] for t in ticks) + 0.8)
        if log_axis:
            ax.set_xscale("log")
            _log_ticks(ax, prow)
        elif panel in ("probability", "survival"):
            from matplotlib.ticker import PercentFormatter

            ax.set_xlim(0.0, 1.0)
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
            xlabel = f"{xlabel} (%)"
        if null is not None:
            ax.axvline(null, color="#888888", lw=0.8, ls=":", zorder=1)
        ax.set_xlabel(xlabel, fontsize=9)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.grid(axis="x", color="#eeeeee", lw=0.6)
        ax.set_axisbelow(True)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(
        handles, labels, loc="lower center", ncol=4, fontsize=7.5, frameon=False, borderaxespad=0.2
    )
    fig.suptitle(title, fontsize=10, x=0.02, ha="left")
    fig.subplots_adjust(left=0.24, right=0.76, top=1 - 0.45 / fig.get_figheight(), hspace=0.6)
    fig.subplots_adjust(bottom=0.55 / fig.get_figheight() + 0.3 / fig.get_figheight())
    return fig


def _log_ticks(ax: Any, rows: pd.DataFrame) -> None:
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    values = rows[["lower", "upper", "center"]].to_numpy(dtype=float).ravel()
    values = values[np.isfinite(values) & (values > 0)]
    lo = min(float(values.min()), 0.9) if values.size else 0.1
    hi = max(float(values.max()), 1.1) if values.size else 10.0
    lo, hi = max(lo, 1e-3), min(hi, 1e3)
    ax.set_xlim(lo / 1.15, hi * 1.15)
    candidates = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]
    if hi / lo < 30:
        candidates = sorted(set(candidates) | {0.25, 0.3, 0.4, 0.7, 1.5, 3, 4, 7, 15, 30, 40})
    ticks = [t for t in candidates if lo / 1.15 <= t <= hi * 1.15]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=8)


def tau_fits(result: AnalysisResult) -> dict[str, Any]:
    """The normal-normal random-effects fits of a result (by role) that have a prior on
    tau: the fits :func:`tau_plot` draws."""
    out = {}
    for role, fit in result.fits.items():
        has_tau = getattr(fit, "prior_tau", None) is not None
        if has_tau and getattr(fit, "model", "") == "random":
            out[role] = fit
    return out


def _tau_posterior_density(fit: Any, grid: np.ndarray) -> np.ndarray:
    if fit.method == "exact":
        cdf = np.array([fit.prob_below(float(t), "tau") for t in grid])
        return np.clip(np.gradient(cdf, grid), 0.0, None)
    from scipy.stats import gaussian_kde

    draws = np.asarray(fit.posterior_draws()["tau"], dtype=float).ravel()
    kde = gaussian_kde(np.concatenate([draws, -draws]))  # reflected at tau = 0
    return np.asarray(2.0 * kde(grid))


def tau_curves(result: AnalysisResult) -> list[dict[str, Any]]:
    """Prior and posterior density of tau on a grid, for each normal-normal
    random-effects fit of the result (the data of :func:`tau_plot`)."""
    labels = {}
    if result.analysis.regimens:
        labels = {role: reg.label for role, reg in result.analysis.regimens.items()}
    out = []
    for role, fit in tau_fits(result).items():
        prior = fit.prior_tau
        post_hi = float(fit.summary().loc["tau", "ci_upper"])
        t_max = max(min(float(prior.ppf(0.99)), 3.0 * post_hi), 1.3 * post_hi, 0.05)
        grid = np.linspace(0.0, t_max, 241)[1:]
        out.append(
            {
                "title": labels.get(role, role) or "tau",
                "prior": prior_text(prior),
                "grid": grid,
                "prior_density": np.exp(prior.logpdf(grid)),
                "posterior_density": _tau_posterior_density(fit, grid),
            }
        )
    return out


def tau_plot(result: AnalysisResult) -> Figure | None:
    """Prior and posterior density of tau for each normal-normal random-effects fit of
    the result (None if it has none)."""
    curves = tau_curves(result)
    return draw_tau(curves) if curves else None


def draw_tau(curves: list[dict[str, Any]]) -> Figure:
    """Draw the curves of :func:`tau_curves`, one panel per fit."""
    n = len(curves)
    fig = _figure((min(3.6 * n, 9.0) + 0.6, 2.7))
    axes = fig.subplots(1, n, squeeze=False)
    for ax, c in zip(axes[0], curves, strict=True):
        grid, post_d = c["grid"], c["posterior_density"]
        ax.plot(grid, c["prior_density"], color="#888888", ls="--", lw=1.3,
                label=f"prior {c['prior']}")  # fmt: skip
        ax.plot(grid, post_d, color="#a1282c", lw=1.6, label="posterior")
        ax.fill_between(grid, post_d, color="#a1282c", alpha=0.12, lw=0)
        ax.set_xlim(0.0, float(grid[-1]))
        ax.set_ylim(0.0, None)
        ax.set_xlabel("tau (between-study SD, analysis scale)", fontsize=8.5)
        ax.set_yticks([])
        ax.set_title(c["title"], fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="upper right")
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig
