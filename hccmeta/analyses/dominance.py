"""Where one study informs an estimate, its own estimate next to the pooled one, and the
prior that dominates the pooled one.

With one study (k = 1) nothing in the data says how much studies differ, so the prior
of the between-study SD (tau) sets how far a typical or new study may lie from the one
observed -- the pooled interval is then much wider than the study's own -- and with a
sparse study (a zero cell, few events) the prior of the pooled mean (mu) can pull the
estimate away from what the study observed. :func:`prior_dominance` adds to each
estimate row the study's own estimate (``study_estimate``, ``study_ci_lower``,
``study_ci_upper``: on the natural scale of the row, or the analysis scale where there
is none) and names the dominant prior (``dominant_prior``: ``"tau"``, ``"mu"``, ``"mu
and tau"`` or None; ``dominant_prior_text``: that prior as the fit states it) by two
rules on the analysis scale, with ``y`` and ``se`` the study's estimate and SE:

- **tau** when the pooled 95% interval is more than :data:`WIDTH_RATIO` (1.5) times as
  wide as the study's own ``y +- 1.96 se``;
- **mu** when the pooled median lies more than :data:`SHIFT_SE` (0.5) study SEs from
  ``y``.

The study's own estimate: the effect row's ``yi`` and ``sei`` (a contrast, a median, a
landmark survival); for a proportion ``e / n`` with its exact (Clopper-Pearson) 95%
interval, compared on the logit scale as ``logit((e + 1/2) / (n + 1))`` with SE
``sqrt(1 / (e + 1/2) + 1 / (n - e + 1/2))``; for an odds ratio of two arms the
observed log OR (1/2 added to every cell when one is 0) and its Woolf SE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from hccmeta.analyses.estimates import NATURAL
from hccmeta.analyses.registry import Analysis
from hccmeta.effects.base import z_two_sided

__all__ = ["DOMINANCE_COLUMNS", "SHIFT_SE", "WIDTH_RATIO", "prior_dominance", "study_estimate"]

#: Columns :func:`prior_dominance` adds to the estimates.
DOMINANCE_COLUMNS = (
    "study_estimate",
    "study_ci_lower",
    "study_ci_upper",
    "dominant_prior",
    "dominant_prior_text",
)
#: A pooled interval this many times as wide as the study's own: tau dominates.
WIDTH_RATIO = 1.5
#: A pooled median this many study SEs from the study's estimate: mu dominates.
SHIFT_SE = 0.5
_Z = float(z_two_sided(0.05))


def _proportion(events: float, n: float) -> tuple[float, float, float, float, float]:
    """(p, exact lower, exact upper, logit y, its SE) of ``events / n``."""
    from scipy import stats  # only here: slow to import

    lo = 0.0 if events <= 0 else float(stats.beta.ppf(0.025, events, n - events + 1))
    hi = 1.0 if events >= n else float(stats.beta.ppf(0.975, events + 1, n - events))
    y = math.log((events + 0.5) / (n - events + 0.5))
    se = math.sqrt(1.0 / (events + 0.5) + 1.0 / (n - events + 0.5))
    return events / n, lo, hi, y, se


def _natural(scale: str, y: float, se: float) -> tuple[float, float, float]:
    lo, hi = y - _Z * se, y + _Z * se
    if scale not in NATURAL:
        return y, lo, hi
    _, fn, decreasing = NATURAL[scale]
    est, a, b = (float(fn(np.asarray(v))) for v in (y, lo, hi))
    return (est, b, a) if decreasing else (est, a, b)


def study_estimate(
    row: Mapping[str, Any], basis: pd.DataFrame
) -> tuple[float, float, float, float, float] | None:
    """The one study's own estimate behind an estimate row: ``(estimate, ci_lower,
    ci_upper)`` on the row's natural scale (the analysis scale where it has none) and
    ``(y, se)`` on the analysis scale; None where it cannot be read off the effects."""
    scale = str(row["scale"])
    estimand = str(row["estimand"])
    if basis.empty:
        return None
    if scale == "logit_p":
        rows = basis[basis["kind"] == "group"]
        if len(rows) != 1:
            return None
        e, n = float(rows["events_exposed"].iloc[0]), float(rows["n_exposed"].iloc[0])
        if not (math.isfinite(e) and math.isfinite(n) and n > 0):
            return None
        p, lo, hi, y, se = _proportion(e, n)
        return p, lo, hi, y, se
    if scale == "log_or" and "role" in basis and basis["kind"].eq("group").all():
        if len(basis) != 2:
            return None
        cells = []
        for _, r in basis.iterrows():
            e, n = float(r["events_exposed"]), float(r["n_exposed"])
            cells.append((e, n - e))
        exp_first = basis["role"].iloc[0] == row.get("_exposed_role")
        (a, b), (c, d) = cells if exp_first else cells[::-1]
        if min(a, b, c, d) == 0:
            a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
        y = math.log(a * d / (b * c))
        se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        return (*_natural(scale, y, se), y, se)
    rows = basis[basis["measure"] == scale] if "measure" in basis else basis
    if scale == "log_hr":
        rows = rows[rows["kind"] == "contrast"]
    if scale == "cloglog_survival" and estimand.startswith("survival_"):
        time = float(estimand.split("_")[1].removesuffix("m"))
        rows = rows[rows["time"].astype(float) == time]
    if len(rows) != 1:
        return None
    y, se = float(rows["yi"].iloc[0]), float(rows["sei"].iloc[0])
    if not (math.isfinite(y) and math.isfinite(se) and se > 0):
        return None
    return (*_natural(scale, y, se), y, se)


def _prior_texts(
    analysis: Analysis, row: Mapping[str, Any], priors: Mapping[str, str]
) -> dict[str, list[str]]:
    """The priors of the pooled mean (``mu``) and of the between-study SD (``tau``)
    behind an estimate row, as the fit states them (keys of ``priors``: the parameter,
    prefixed by the fit's role where it has one)."""
    estimand, model = str(row["estimand"]), analysis.model
    if model == "per_regimen":
        keys = {"mu": [f"{estimand}.mu"], "tau": [f"{estimand}.tau"]}
    elif model == "proportions" and estimand != "log_or":
        prefix = "regimens." if "regimens.mu" in priors else ""
        keys = {"mu": [f"{prefix}mu"], "tau": [f"{prefix}tau"]}
    elif model == "proportions":
        keys = {"mu": ["d"], "tau": ["tau"]}
    elif model == "survival_multiformat" and estimand != "log_hr":
        # a regimen's median or survival: the baselines' mean and SD (m_eta, sigma_eta),
        # and for the experimental regimen the log HR's too
        exposed = analysis.contrast[0] if analysis.contrast else None
        shifted = exposed is not None and estimand.endswith(f"_{exposed}")
        keys = {
            "mu": ["baseline", *(["mu_hr"] if shifted else [])],
            "tau": ["baseline", *(["tau"] if shifted else [])],
        }
    elif model == "survival_multiformat":
        keys = {"mu": ["mu_hr"], "tau": ["tau"]}
    else:
        keys = {"mu": ["mu"], "tau": ["tau"]}

    def text(key: str) -> str:
        value = priors.get(key, "")
        name = key.rsplit(".", 1)[-1]
        return value if not value or "~" in value else f"{name} ~ {value}"

    return {name: [t for key in ks if (t := text(key))] for name, ks in keys.items()}


def prior_dominance(
    analysis: Analysis,
    estimates: pd.DataFrame,
    effects: pd.DataFrame,
    basis: Mapping[str, list[str]],
    priors: Mapping[str, str],
) -> pd.DataFrame:
    """``estimates`` with :data:`DOMINANCE_COLUMNS` (see the module docstring): filled
    for the rows that one study informs (k = 1), NaN / None elsewhere."""
    out = estimates.copy()
    for col in DOMINANCE_COLUMNS[:3]:
        out[col] = math.nan
    out["dominant_prior"] = None
    out["dominant_prior_text"] = None
    if out.empty or effects.empty:
        return out
    by_id = effects.drop_duplicates("effect").set_index("effect", drop=False)
    for i, row in out.iterrows():
        if int(row["k"]) != 1:
            continue
        ids = [e for e in basis.get(str(row["estimand"]), []) if e in by_id.index]
        rec = dict(row)
        rec["_exposed_role"] = analysis.contrast[0] if analysis.contrast else None
        own = study_estimate(rec, by_id.loc[ids].reset_index(drop=True))
        if own is None:
            continue
        est, lo, hi, y, se = own
        out.loc[i, ["study_estimate", "study_ci_lower", "study_ci_upper"]] = [est, lo, hi]
        wide = (float(row["ci_upper"]) - float(row["ci_lower"])) > WIDTH_RATIO * 2 * _Z * se
        shifted = abs(float(row["median"]) - y) > SHIFT_SE * se
        which = [name for name, flag in (("mu", shifted), ("tau", wide)) if flag]
        if which:
            texts = _prior_texts(analysis, rec, priors)
            out.loc[i, "dominant_prior"] = " and ".join(which)
            out.loc[i, "dominant_prior_text"] = "; ".join(
                dict.fromkeys(t for name in which for t in texts[name])
            )
    return out
