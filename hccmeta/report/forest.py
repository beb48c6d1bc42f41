"""The rows of a forest plot: study estimates, shrunken estimates, pooled estimates and
prediction intervals of an analysis result, on the natural scale.

:func:`forest_rows` turns an :class:`~hccmeta.analyses.run.AnalysisResult` into one tidy
table whatever model produced it (normal-normal fits per role, the joint prognostic
model, the binomial models, or any model whose estimates follow
:data:`~hccmeta.analyses.run.ESTIMATE_COLUMNS`). Numbers only; :mod:`hccmeta.report.plots`
draws them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hccmeta.analyses.run import JOINT_FIT, SINGLE_FIT

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.run import AnalysisResult

__all__ = ["FOREST_COLUMNS", "SCALES", "forest_rows", "to_natural"]

#: Columns of :func:`forest_rows`.
FOREST_COLUMNS = (
    "panel",
    "group",
    "label",
    "kind",
    "center",
    "lower",
    "upper",
)

_Z95 = 1.959963984540054


def _expit(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float))))


def _surv(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.exp(-np.exp(np.asarray(x, dtype=float))))


#: analysis scale -> (panel name, axis label, transform, decreasing, log axis, null value)
SCALES: dict[str, tuple[str, str, Callable[[np.ndarray], np.ndarray], bool, bool, float | None]] = {
    "log_hr": ("HR", "Hazard ratio (log scale)", np.exp, False, True, 1.0),
    "log_or": ("OR", "Odds ratio (log scale)", np.exp, False, True, 1.0),
    "log_rr": ("RR", "Risk ratio (log scale)", np.exp, False, True, 1.0),
    "log_median": ("months", "Median (months, log scale)", np.exp, False, True, None),
    "logit_p": ("probability", "Proportion", _expit, False, False, None),
    "cloglog_survival": ("survival", "Survival probability", _surv, True, False, None),
}


def to_natural(scale: str, center: float, lower: float, upper: float) -> tuple[float, ...]:
    """(center, lower, upper) on the natural scale of ``scale`` (bounds swapped for a
    decreasing transform); unchanged for a scale without one."""
    if scale not in SCALES:
        return center, lower, upper
    _, _, fn, decreasing, _, _ = SCALES[scale]
    c, lo, hi = (float(fn(np.asarray(v))) for v in (center, lower, upper))
    return (c, hi, lo) if decreasing else (c, lo, hi)


def _quantiles(x: np.ndarray) -> tuple[float, float, float]:
    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    lo, med, hi = np.quantile(x, [0.025, 0.5, 0.975])
    return float(med), float(lo), float(hi)


def _posterior(fit: Any) -> Any:
    tree = getattr(fit, "tree", None)
    if tree is None or "posterior" not in tree.children:
        return None
    return tree["posterior"].to_dataset()


def _row(panel: str, group: str, label: str, kind: str, c: float, lo: float, hi: float) -> dict:
    return {
        "panel": panel,
        "group": group,
        "label": label,
        "kind": kind,
        "center": c,
        "lower": lo,
        "upper": hi,
    }


def clopper_pearson(events: float, n: float) -> tuple[float, float, float]:
    """The proportion ``events / n`` with its exact (Clopper-Pearson) 95% interval."""
    from scipy.stats import beta

    lo = 0.0 if events <= 0 else float(beta.ppf(0.025, events, n - events + 1))
    hi = 1.0 if events >= n else float(beta.ppf(0.975, events + 1, n - events))
    return events / n, lo, hi


def _study_rows(effects: pd.DataFrame, scale: str, panel: str, group: str) -> list[dict]:
    """Each study's own estimate with its 95% CI; a proportion from counts is shown as
    events / n with its exact interval (no continuity correction, like the binomial
    model), anything else as yi +/- 1.96 sei on the natural scale."""
    out = []
    for _, e in effects.iterrows():
        events, n = e.get("events_exposed"), e.get("n_exposed")
        if scale == "logit_p" and pd.notna(events) and pd.notna(n) and float(n) > 0:
            c, lo, hi = clopper_pearson(float(events), float(n))
        else:
            y, s = float(e["yi"]), float(e["sei"])
            c, lo, hi = to_natural(scale, y, y - _Z95 * s, y + _Z95 * s)
        out.append(_row(panel, group, str(e["study"]), "study", c, lo, hi))
    return out


def _pool_fit_rows(fit: Any, scale: str, panel: str, group: str) -> list[dict]:
    """Shrunken theta_i and the prediction interval of a PoolResult."""
    table = fit.summary()
    out = []
    for study in fit.study:
        r = table.loc[f"theta[{study}]"]
        c, lo, hi = to_natural(scale, r["median"], r["ci_lower"], r["ci_upper"])
        out.append(_row(panel, group, str(study), "shrunken", c, lo, hi))
    if fit.model == "random":
        r = table.loc["theta_new"]
        c, lo, hi = to_natural(scale, r["median"], r["ci_lower"], r["ci_upper"])
        out.append(_row(panel, group, "Prediction", "predictive", c, lo, hi))
    return out


def _draw_rows(
    post: Any, var: str, sel: dict[str, str], scale: str, panel: str, group: str, *, natural: bool
) -> list[dict]:
    """Shrunken rows (one per study) of ``var`` in a posterior Dataset."""
    if post is None or var not in post.data_vars:
        return []
    da = post[var]
    for dim, value in sel.items():
        if dim not in da.dims or value not in set(da[dim].to_numpy().astype(str)):
            return []
        da = da.sel({dim: value})
    out = []
    if "study" in da.dims:
        for study in da["study"].to_numpy().astype(str):
            med, lo, hi = _quantiles(da.sel(study=study).to_numpy())
            if math.isnan(med):
                continue
            if not natural:
                med, lo, hi = to_natural(scale, med, lo, hi)
            out.append(_row(panel, group, str(study), "shrunken", med, lo, hi))
    else:
        med, lo, hi = _quantiles(da.to_numpy())
        if not math.isnan(med):
            if not natural:
                med, lo, hi = to_natural(scale, med, lo, hi)
            out.append(_row(panel, group, "Prediction", "predictive", med, lo, hi))
    return out


def _contrast_study_rows(effects: pd.DataFrame, contrast: tuple[str, str], group: str) -> list:
    """Observed log ORs of studies with both arms of a proportions contrast (0.5
    continuity correction where a cell is zero, as for display only)."""
    from hccmeta.effects import two_arm_counts

    out = []
    exp_role, ref_role = contrast
    for study, rows in effects.groupby("study", sort=False):
        a = rows[rows["role"] == exp_role]
        b = rows[rows["role"] == ref_role]
        if a.empty or b.empty:
            continue
        d = two_arm_counts(
            float(a["events_exposed"].iloc[0]),
            float(a["n_exposed"].iloc[0]),
            float(b["events_exposed"].iloc[0]),
            float(b["n_exposed"].iloc[0]),
            measure="log_or",
        )
        y, s = float(d.yi), float(d.sei)
        c, lo, hi = to_natural("log_or", y, y - _Z95 * s, y + _Z95 * s)
        out.append(_row("OR", group, str(study), "study", c, lo, hi))
    return out


def _survival_rows(
    result: AnalysisResult, estimand: str, scale: str, panel: str, group: str, post: Any
) -> list[dict]:
    """Rows of an estimand of the multi-format survival synthesis: the effects of its
    arm (medians, the landmark at its time) or of the contrast, the study curves of the
    Weibull model (median_study; S(t) = exp(-ln 2 (t / median_study)^k)) and the
    predictive draws."""
    effects = result.effects
    rows: list[dict] = []
    contrast = result.analysis.contrast or ("", "")
    arm = next((a for a in contrast if a and estimand.endswith(f"_{a}")), None)
    if estimand == "log_hr" or arm is None:
        sub = effects[(effects["role"] == "contrast") & (effects["measure"] == scale)]
        rows += _study_rows(sub, scale, panel, group)
        rows += _draw_rows(post, "log_hr_study", {}, scale, panel, group, natural=False)
        rows += _draw_rows(post, "log_hr_new", {}, scale, panel, group, natural=False)
        return rows
    sub = effects[(effects["role"] == arm) & (effects["measure"] == scale)]
    if estimand.startswith("median_"):
        rows += _study_rows(sub, scale, panel, group)
        rows += _draw_rows(post, "median_study", {"arm": arm}, scale, panel, group, natural=True)
        rows += _draw_rows(post, "median_new", {"arm": arm}, scale, panel, group, natural=True)
        return rows
    t = float(estimand.split("_")[1].rstrip("m"))
    rows += _study_rows(sub[sub["time"].astype(float) == t], scale, panel, group)
    if post is not None and {"median_study", "k"} <= set(post.data_vars):
        med = post["median_study"].sel(arm=arm)
        surv = np.exp(-np.log(2.0) * (t / med) ** post["k"])
        for study in med["study"].to_numpy().astype(str):
            c, lo, hi = _quantiles(surv.sel(study=study).to_numpy())
            if not math.isnan(c):
                rows.append(_row(panel, group, study, "shrunken", c, lo, hi))
    if post is not None and "survival_new" in post.data_vars:
        c, lo, hi = _quantiles(post["survival_new"].sel(arm=arm, time=t).to_numpy())
        rows.append(_row(panel, group, "Prediction", "predictive", c, lo, hi))
    return rows


def forest_rows(result: AnalysisResult, *, labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The rows of an analysis's forest plot, on the natural scale.

    Parameters
    ----------
    result : AnalysisResult
        A result with status ``ok``.
    labels : mapping, keyword-only, optional
        ``{study id: label}`` (:attr:`hccmeta.data.Evidence.study_labels`): the rows of a
        study are labelled 'Lee 2017' instead of ``lee2017``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FOREST_COLUMNS`: ``panel`` (the natural scale: HR, OR, months,
        probability, survival), ``group`` (the label of the estimand), ``label`` (a
        study's id, or its label from ``labels``; ``Pooled`` or ``Prediction``),
        ``kind`` (``study``: the study's own estimate with its 95% CI; ``shrunken``: its
        posterior under the hierarchical model; ``pooled``: the pooled estimate with its
        95% credible interval; ``predictive``: the 95% prediction interval of a new
        study's effect), and
        ``center``, ``lower``, ``upper``.
    """
    rows: list[dict] = []
    if result.status != "ok" or result.estimates.empty:
        return pd.DataFrame(columns=list(FOREST_COLUMNS))
    effects = result.effects
    fit_all = result.fits.get(JOINT_FIT)
    post = _posterior(fit_all) if fit_all is not None else None
    # a proportions analysis's regimens: from their own arms' model where it has one
    fit_arms = result.fits.get("regimens")
    post_arms = _posterior(fit_arms) if fit_arms is not None else post
    contrast = result.analysis.contrast
    for _, est in result.estimates.iterrows():
        estimand, scale = str(est["estimand"]), str(est["scale"])
        group = str(est["label"])
        panel = SCALES[scale][0] if scale in SCALES else scale
        role = "" if estimand == SINGLE_FIT else estimand  # the role column of the effects
        sub = effects[effects["role"].astype(str) == role] if "role" in effects else effects
        sub = sub[sub["measure"] == scale] if "measure" in sub else sub
        is_contrast = estimand == "log_or" and contrast is not None
        if result.analysis.model == "survival_multiformat":
            shrunk = _survival_rows(result, estimand, scale, panel, group, post)
            rows += [r for r in shrunk if r["kind"] in ("study", "shrunken")]
            rows.append(_pooled_row(est, panel, group))
            rows += [r for r in shrunk if r["kind"] == "predictive"]
            continue
        if is_contrast:
            assert contrast is not None
            rows += _contrast_study_rows(effects, contrast, group)
        else:
            rows += _study_rows(sub, scale, panel, group)
        fit = result.fits.get(role or SINGLE_FIT)
        if fit is not None and hasattr(fit, "study") and hasattr(fit, "summary"):
            shrunk = _pool_fit_rows(fit, scale, panel, group)
        elif is_contrast:
            shrunk = _draw_rows(post, "delta", {}, scale, panel, group, natural=False)
            shrunk += _draw_rows(post, "delta_new", {}, scale, panel, group, natural=False)
        elif post_arms is not None and "p_study" in post_arms.data_vars:
            sel = {"arm": estimand}
            shrunk = _draw_rows(post_arms, "p_study", sel, scale, panel, group, natural=True)
            shrunk += _draw_rows(post_arms, "p_new", sel, scale, panel, group, natural=True)
        else:
            sel = {"factor": estimand}
            shrunk = _draw_rows(post, "theta", sel, scale, panel, group, natural=False)
            shrunk += _draw_rows(post, "theta_new", sel, scale, panel, group, natural=False)
        rows += [r for r in shrunk if r["kind"] == "shrunken"]
        rows.append(_pooled_row(est, panel, group))
        rows += [r for r in shrunk if r["kind"] == "predictive"]
    if labels:
        for r in rows:
            if r["kind"] in ("study", "shrunken"):
                r["label"] = labels.get(r["label"], r["label"])
    return pd.DataFrame(rows, columns=list(FOREST_COLUMNS))


def _pooled_row(est: Any, panel: str, group: str) -> dict:
    if pd.notna(est["natural_median"]):
        c, lo, hi = (
            float(est["natural_median"]),
            float(est["natural_ci_lower"]),
            float(est["natural_ci_upper"]),
        )
    else:
        c, lo, hi = float(est["median"]), float(est["ci_lower"]), float(est["ci_upper"])
    return _row(panel, group, "Pooled", "pooled", c, lo, hi)
