"""Plain-text and Markdown renderings of estimate tables."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["fmt_interval", "fmt_number", "format_estimates", "natural_estimate"]


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


def natural_estimate(row: pd.Series | dict) -> str:
    """The estimate on its natural scale with its 95% interval, as the CLI tables print
    it: 'HR 0.37 (0.20 to 0.83)', '8.9 months (7.1 to 11)', '7% (2% to 34%)'; the
    analysis scale where there is no natural one."""
    scale = row.get("natural_scale")
    if scale in (None, "") or (isinstance(scale, float) and math.isnan(scale)):
        return (
            f"{fmt_number(row['median'])} ({fmt_interval(row['ci_lower'], row['ci_upper'])}) "
            f"on the {row.get('scale') or 'analysis'} scale"
        )
    scale = str(scale)
    med, lo, hi = row["natural_median"], row["natural_ci_lower"], row["natural_ci_upper"]
    if scale == "probability":
        return f"{100 * med:.0f}% ({100 * lo:.0f}% to {100 * hi:.0f}%)"
    if scale == "months":
        return f"{fmt_number(med, 1)} months ({fmt_interval(lo, hi, 1)})"
    return f"{scale} {fmt_number(med)} ({fmt_interval(lo, hi)})"


def _benefit(row: pd.Series) -> str:
    p = row.get("p_benefit")
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    side = "<" if row.get("benefit") == "below" else ">"
    scale = row.get("natural_scale")
    what = f"{scale} {side} 1" if scale in ("HR", "OR", "RR") else f"{side} 0"
    return f"{p:.2f} ({what})"


def format_estimates(estimates: pd.DataFrame) -> str:
    """A readable table of an analysis's estimates: one line per estimand, with a
    header over every column (the natural scale first: proportions in percent)."""
    head = ["estimand", "estimate (95% CrI)", "P(benefit)", "k", "patients",
            "analysis scale: median (95% CrI)"]  # fmt: skip
    rows = []
    for _, row in estimates.iterrows():
        n = row.get("n_patients")
        analysis = (
            f"{row['scale']} {fmt_number(row['median'])} "
            f"({fmt_interval(row['ci_lower'], row['ci_upper'])})"
        )
        rows.append(
            [
                str(row["estimand"]),
                natural_estimate(row),
                _benefit(row),
                str(int(row["k"])),
                "–" if n is None or (isinstance(n, float) and math.isnan(n)) else f"{n:.0f}",
                analysis,
            ]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    numeric = {3, 4}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)
