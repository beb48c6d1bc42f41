"""Plain-text and Markdown renderings of estimate tables."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["fmt_interval", "fmt_number", "format_estimates"]


def fmt_number(x: float, digits: int = 2) -> str:
    """A number with ``digits`` significant decimals, or an en dash for NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}f}"


def fmt_interval(lo: float, hi: float, digits: int = 2) -> str:
    """``lo to hi`` for an interval."""
    return f"{fmt_number(lo, digits)} to {fmt_number(hi, digits)}"


def _natural(row: pd.Series) -> str:
    if row.get("natural_scale") in (None, "") or pd.isna(row.get("natural_scale")):
        return ""
    scale = str(row["natural_scale"])
    if scale == "probability":
        return (
            f"{100 * row['natural_median']:.0f}% "
            f"({100 * row['natural_ci_lower']:.0f}% to {100 * row['natural_ci_upper']:.0f}%)"
        )
    unit = " months" if scale == "months" else ""
    lead = f"{scale} " if scale not in ("months",) else ""
    return (
        f"{lead}{fmt_number(row['natural_median'])}{unit} "
        f"({fmt_interval(row['natural_ci_lower'], row['natural_ci_upper'])})"
    )


def format_estimates(estimates: pd.DataFrame) -> str:
    """A readable table of an analysis's estimates (one line per estimand)."""
    lines = []
    header = f"{'estimand':<28} {'scale':<16} {'median':>7} {'95% CrI':>18}  natural scale"
    lines.append(header)
    lines.append("-" * len(header))
    for _, row in estimates.iterrows():
        ci = fmt_interval(row["ci_lower"], row["ci_upper"])
        extra = _natural(row)
        if pd.notna(row.get("p_benefit")):
            side = "<" if row.get("benefit") == "below" else ">"
            scale = row.get("natural_scale")
            what = f"{scale} {side} 1" if scale in ("HR", "OR", "RR") else "benefit"
            extra += f"  P({what}) {row['p_benefit']:.3f}"
        extra += f"  k={int(row['k'])}"
        lines.append(
            f"{row['estimand']:<28} {row['scale']:<16} {fmt_number(row['median']):>7} "
            f"{ci:>18}  {extra}"
        )
    return "\n".join(lines)
