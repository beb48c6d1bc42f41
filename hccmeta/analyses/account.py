"""The evidence account: every record of the study data is used, or listed with why not.

A record is *used* when an effect derived from it enters at least one default analysis.
Otherwise its reason is, in this order: what the derivation layer says it could not
derive (no standard error, descriptive, ...), a reason the registry states for a kind
of record it deliberately leaves out (``not_analysed`` in ``analyses.yaml``), or that
its effects are derived but no analysis selects them.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from hccmeta.analyses.registry import Registry
from hccmeta.analyses.run import AnalysisResult
from hccmeta.data import Evidence
from hccmeta.data.bias import TOOLS
from hccmeta.effects.table import DerivedEffects

__all__ = ["ACCOUNT_COLUMNS", "evidence_account"]

ACCOUNT_COLUMNS = (
    "study",
    "record",
    "kind",
    "status",
    "analyses",
    "reason",
    "risk_of_bias",
    "directness",
    "file",
    "line",
    "location",
)


def _matches(effects: pd.DataFrame, match: dict[str, list[str]]) -> set[str]:
    sel = pd.Series(True, index=effects.index)
    for col, values in match.items():
        sel &= effects[col].astype(str).isin([str(v) for v in values])
    return set(effects.loc[sel, "record"])


def _judgements(evidence: Evidence) -> dict[str, str]:
    """Per record: every risk-of-bias assessment that covers it, as 'assessment (tool
    judgement)'."""
    out: dict[str, list[str]] = {}
    for study, rec in evidence.records():
        if study.risk_of_bias is None:
            continue
        for a in study.risk_of_bias.assessments:
            if a.covers(rec.id):
                out.setdefault(rec.id, []).append(
                    f"{a.id} ({TOOLS[a.tool]} {a.overall.replace('_', ' ')})"
                )
    return {rid: "; ".join(v) for rid, v in out.items()}


def evidence_account(
    evidence: Evidence,
    derived: DerivedEffects,
    results: Iterable[AnalysisResult],
    registry: Registry,
) -> pd.DataFrame:
    """One row per record and baseline characteristic: used (by which analyses) or why not.

    Parameters
    ----------
    evidence : Evidence
        The study data.
    derived : DerivedEffects
        The effects derived from it (their ``underivable`` table gives reasons).
    results : iterable of AnalysisResult
        The primary results of the default analyses.
    registry : Registry
        The registry (its ``not_analysed`` entries give reasons).
    """
    used: dict[str, list[str]] = {}
    directness: dict[str, list[str]] = {}
    results = list(results)
    for res in results:
        if res.effects.empty:
            continue
        for sid in dict.fromkeys(res.effects["study"].astype(str)):
            declared = [x for x in res.analysis.directness if x.study == sid]
            if not declared:
                words = "not declared (taken as direct)"
            else:
                words = "; ".join(
                    ("indirect in " + ", ".join(e.replace("_", " ") for e in x.indirect))
                    if x.indirect
                    else "direct"
                    for x in declared
                )
            for recs in res.effects.loc[res.effects["study"] == sid, "records"].astype(str):
                for rid in filter(None, recs.split(";")):
                    text = f"{res.name}: {words}"
                    if text not in directness.setdefault(rid, []):
                        directness[rid].append(text)
    for res in results:
        if res.effects.empty:
            continue
        for recs in res.effects["records"].astype(str):
            for rid in filter(None, recs.split(";")):
                used.setdefault(rid, [])
                if res.name not in used[rid]:
                    used[rid].append(res.name)
    underivable = derived.underivable.groupby("record")["reason"].apply(
        lambda r: "; ".join(dict.fromkeys(r))
    )
    stated: dict[str, str] = {}
    for entry in registry.not_analysed:
        for rid in _matches(derived.effects, entry.match):
            stated.setdefault(rid, entry.reason)
    derived_records = set(derived.effects["record"])
    judged = _judgements(evidence)
    rows = []

    def add(study: str, rid: str, kind: str, location: str) -> None:
        loc = evidence.locations.get(rid)
        if rid in used:
            status, analyses, reason = "used", ", ".join(used[rid]), ""
        else:
            status, analyses = "not used", ""
            if rid in stated:
                reason = stated[rid]
            elif rid in derived_records:
                reason = "effects derived, but no default analysis selects them" + (
                    f" (not derivable: {underivable[rid]})" if rid in underivable else ""
                )
            elif rid in underivable:
                reason = str(underivable[rid])
            else:
                reason = "no effect derived and no reason recorded"
        rows.append(
            {
                "study": study,
                "record": rid,
                "kind": kind,
                "status": status,
                "analyses": analyses,
                "reason": reason,
                "risk_of_bias": judged.get(rid, "not assessed" if status == "used" else ""),
                "directness": " | ".join(directness.get(rid, [])),
                "file": loc.file if loc else None,
                "line": loc.line if loc else None,
                "location": location,
            }
        )

    for study, rec in evidence.records():
        add(study.id, rec.id, "record", "; ".join(p.location for p in rec.provenance))
    for study, ch in evidence.characteristics():
        add(study.id, ch.id, "characteristic", "; ".join(p.location for p in ch.provenance))
    return pd.DataFrame(rows, columns=list(ACCOUNT_COLUMNS))
