"""Saying in words what an analysis selects, and why it found nothing.

The "no eligible records" message of an analysis is generated from the data: what its
selectors ask for (with the vocabulary's labels), how many studies the data hold, the
effects that miss by one criterion, and the studies that have arms of the compared
regimens but no derivable effect — so the text stays true when a study is added.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hccmeta.analyses.registry import Selector
from hccmeta.data import Evidence
from hccmeta.effects.table import DerivedEffects

__all__ = ["describe_selector", "explain_empty"]

_MEASURES = {
    "log_hr": "hazard ratio",
    "log_or": "odds ratio",
    "log_rr": "risk ratio",
    "rd": "risk difference",
    "logit_p": "proportion",
    "log_median": "median",
    "cloglog_survival": "survival proportion",
}

#: Criteria checked one at a time for near misses: (label, effects column, selector field).
_CRITERIA = (
    ("endpoint", "endpoint", "endpoint"),
    ("time origin", "time_origin", "time_origin"),
    ("event", "event", "event"),
    ("grade", "grade", "grade"),
    ("criteria", "criteria", "criteria"),
    ("analysis", "analysis", "analysis"),
    ("design", "design", "design"),
    ("setting", "setting", "setting"),
    ("landmark time", "time", "time"),
)


def _labels(ev: Evidence, section: str, terms: Sequence[str] | None) -> str:
    return " or ".join(ev.label(section, t) for t in terms or [])


def describe_selector(sel: Selector, evidence: Evidence) -> str:
    """What ``sel`` asks for, in words (vocabulary labels), e.g. 'a hazard ratio of OS,
    Sorafenib + TACE vs TACE alone'."""
    what = _MEASURES.get(sel.measure, sel.measure)
    text = f"a {what}"
    if sel.endpoint:
        text += f" of {_labels(evidence, 'endpoint', sel.endpoint)}"
    if sel.event:
        text += f" ({' or '.join(sel.event)})"
    if sel.time_origin:
        text += f" from {_labels(evidence, 'time_origin', sel.time_origin)}"
    if sel.subgroup_variable:
        var = _labels(evidence, "subgroup_variable", sel.subgroup_variable)
        levels = " or ".join(sel.exposed_level or [])
        ref = " or ".join(sel.reference_level or [])
        text += f" by {var}" + (f" ({levels} vs {ref})" if levels and ref else "")
    if sel.kind == "contrast" and (sel.exposed_regimen or sel.reference_regimen):
        exp = _labels(evidence, "regimen", sel.exposed_regimen) or "any regimen"
        ref = _labels(evidence, "regimen", sel.reference_regimen) or "any regimen"
        text += f", {exp} vs {ref}"
    elif sel.exposed_regimen:
        text += f" under {_labels(evidence, 'regimen', sel.exposed_regimen)}"
    if sel.records:
        text += f" (records {', '.join(sel.records)})"
    return text


def _isin(series: pd.Series, values: Sequence[object] | None) -> np.ndarray:
    if values is None:
        return np.ones(len(series), dtype=bool)
    return np.array(series.isin(list(values)), dtype=bool)


def _near_misses(effects: pd.DataFrame, sel: Selector) -> list[str]:
    """Studies whose effects match every criterion of ``sel`` but one: 'study (endpoint
    TTP)'."""
    df = effects[effects["primary"].astype(bool)]
    if df.empty:
        return []
    base = np.asarray(df["kind"] == sel.kind) & np.asarray(df["measure"] == sel.measure)
    if sel.whole_arms:
        base &= np.asarray(df["subgroup_variable"].isna())
    base &= _isin(df["subgroup_variable"], sel.subgroup_variable)
    base &= _isin(df["study"], sel.studies) & _isin(df["record"], sel.records)

    def side(e: str, r: str) -> np.ndarray:
        m = _isin(df[f"{e}_regimen"], sel.exposed_regimen)
        m &= _isin(df[f"{e}_level"], sel.exposed_level)
        if sel.kind == "contrast":
            m &= _isin(df[f"{r}_regimen"], sel.reference_regimen)
            m &= _isin(df[f"{r}_level"], sel.reference_level)
        return m

    base &= side("exposed", "reference") | (
        side("reference", "exposed") if sel.kind == "contrast" else False
    )
    masks = {label: _isin(df[col], getattr(sel, fld)) for label, col, fld in _CRITERIA}
    out: list[str] = []
    for label, col, _ in _CRITERIA:
        others = base.copy()
        for other, m in masks.items():
            if other != label:
                others &= m
        miss = df[others & ~masks[label]]
        for study, rows in miss.groupby("study", sort=True):
            values = ", ".join(sorted({str(v) for v in rows[col]}))
            out.append(f"{study} ({label} {values})")
    return list(dict.fromkeys(out))


def _regimen_studies(
    evidence: Evidence, derived: DerivedEffects, sel: Selector, exclude: set[str]
) -> list[str]:
    """Studies with arms of the exposed and the reference regimens of a contrast
    selector, and why no effect of theirs matches."""
    if sel.kind != "contrast" or not sel.exposed_regimen or not sel.reference_regimen:
        return []
    out = []
    for s in evidence.studies:
        regimens = {a.regimen for a in s.arms}
        if s.id in exclude or not (
            regimens & set(sel.exposed_regimen) and regimens & set(sel.reference_regimen)
        ):
            continue
        und = derived.underivable
        why = und[(und["study"] == s.id) & und["what"].astype(str).str.startswith("comparison")]
        if why.empty:
            out.append(f"{s.id} has arms of both regimens, but none of its effects matches")
            continue
        reasons = []
        for _, row in why.iterrows():
            _, rec = evidence.record(str(row["record"]))
            endpoint = evidence.label("endpoint", getattr(rec, "endpoint", None))
            reasons.append(f"{row['record']}, {endpoint}: {row['reason']}")
        out.append(
            f"{s.id} has arms of both regimens, but no effect could be derived from its "
            f"comparison ({'; '.join(reasons)})"
        )
    return out


def explain_empty(
    selectors: Sequence[Selector], evidence: Evidence, derived: DerivedEffects
) -> str:
    """Why no effect matches ``selectors``, generated from the data (one line)."""
    n = len(evidence.studies)
    wanted = "; or ".join(describe_selector(s, evidence) for s in selectors) or "any effect"
    text = f"none of the {n} stud{'ies' if n != 1 else 'y'} in the data gives {wanted}"
    near: list[str] = []
    for sel in selectors:
        near += _near_misses(derived.effects, sel)
    if near:
        text += "; closest: " + ", ".join(dict.fromkeys(near))
    found = {s.split(" ", 1)[0] for s in near}
    extra: list[str] = []
    for sel in selectors:
        extra += _regimen_studies(evidence, derived, sel, found)
    if extra:
        text += "; " + "; ".join(dict.fromkeys(extra))
    return text
