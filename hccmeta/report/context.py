"""The report context: what ``index.md`` and ``index.html`` show, as display strings.

:func:`build_context` turns a :class:`~hccmeta.report.collect.ReportData` into a plain
dictionary of strings and :class:`~hccmeta.report.render.Table` objects; the templates
only lay it out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from hccmeta.analyses.run import JOINT_FIT, SINGLE_FIT
from hccmeta.data.bias import TOOLS, design_class
from hccmeta.data.labels import relabel
from hccmeta.report.interpret import certainty_text, has_null, p_text, variant_range
from hccmeta.report.render import Table, slug
from hccmeta.report.tables import fmt_interval, fmt_number
from hccmeta.report.words import readable_priors, variant_text

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.run import AnalysisResult
    from hccmeta.report.collect import AnalysisSection, ReportData
    from hccmeta.report.methods import Methods

__all__ = ["build_context", "natural_text", "p_benefit_text"]

_RATIO = ("HR", "OR", "RR")
#: The variant groups of the sensitivity table, in words.
_GROUP_WORDS = {
    "primary": "primary",
    "prior_tau": "prior on the heterogeneity",
    "prior_mu": "prior on the pooled effect",
    "effects_model": "fixed vs random effects",
    "leave_one_out": "leave one study out",
    "conversion": "conversion assumptions",
    "subset": "study subsets",
    "alternative": "alternative contrast mappings",
    "power_scaling": "power-scaling",
    "bias": "bias adjustment",
}
#: A statistic whose cross-validated conflict p-value is below this is flagged.
CONFLICT_ALPHA = 0.05
_Z95 = 1.959963984540054


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def natural_text(row: Any) -> str:
    """An estimate with its 95% interval on its natural scale: ``HR 0.37 (0.20 to
    0.83)``, ``7.2 months (5.8 to 9.0)``, ``48% (13% to 85%)``; the analysis scale when
    it has no natural one."""
    scale = row.get("natural_scale")
    med, lo, hi = (
        row.get("natural_median"),
        row.get("natural_ci_lower"),
        row.get("natural_ci_upper"),
    )
    if _nan(scale) or not scale or _nan(med):
        if _nan(row.get("median")):
            return "–"
        ci = fmt_interval(float(row["ci_lower"]), float(row["ci_upper"]))
        return f"{fmt_number(float(row['median']))} ({ci}) [{row.get('scale', '')}]"
    med, lo, hi = float(med), float(lo), float(hi)
    if scale in _RATIO:
        return f"{scale} {fmt_number(med)} ({fmt_interval(lo, hi)})"
    if scale == "months":
        return f"{fmt_number(med, 1)} months ({fmt_interval(lo, hi, 1)})"
    if scale == "probability":
        return f"{100 * med:.0f}% ({100 * lo:.0f}% to {100 * hi:.0f}%)"
    return f"{fmt_number(med)} ({fmt_interval(lo, hi)}) {scale}"


def p_benefit_text(row: Any, benefit: str, column: str = "p_benefit") -> str:
    """``P(HR < 1) = 0.99`` (two digits), or an en dash when there is no probability of
    benefit."""
    p = row.get(column)
    if _nan(p):
        return "–"
    scale = row.get("natural_scale")
    named = row.get("benefit")
    side = str(named if isinstance(named, str) else benefit)
    return p_text(float(p), str(scale) if scale in _RATIO else "benefit", side)


def bias_adjusted_text(row: Any) -> str:
    """The bias-adjusted estimate on the natural scale, or an en dash where none applies."""
    if _nan(row.get("bias_adjusted_natural_median")):
        return "–"
    return natural_text(
        {
            "natural_scale": row.get("natural_scale"),
            "natural_median": row["bias_adjusted_natural_median"],
            "natural_ci_lower": row["bias_adjusted_natural_ci_lower"],
            "natural_ci_upper": row["bias_adjusted_natural_ci_upper"],
        }
    )


def _sentence(text: str) -> str:
    """``text`` with its first letter capitalised (statements start with a label)."""
    return text[:1].upper() + text[1:]


def _int(x: Any) -> str:
    return "–" if _nan(x) else f"{int(x)}"


# --------------------------------------------------------------------------- per analysis
def _records(data: ReportData, result: AnalysisResult) -> Table:
    """One row per eligible record: its label, every verbatim snippet with its location
    in the source, and the line of the study file that encodes it."""
    from hccmeta.report.collect import eligible_records

    t = Table(["Study", "Record", "Verbatim snippets (location in the source)", "Study file"])
    table = eligible_records(data.evidence, result)
    for (study, record), rows in table.groupby(["study", "record"], sort=False):
        first = rows.iloc[0]
        snippets = "\n".join(f"“{r['snippet']}” ({r['location']})" for _, r in rows.iterrows())
        where = f"{first['file']}:{first['line']}" if first["file"] else ""
        label = first["label"] if isinstance(first["label"], str) and first["label"] else ""
        name = data.evidence.study_labels.get(str(study), str(study))
        t.rows.append([name, f"{record}: {label}" if label else str(record), snippets, where])
    return t


def _effects(
    result: AnalysisResult, labels: Mapping[str, str]
) -> tuple[Table, list[tuple[str, str]]]:
    from hccmeta.effects import ASSUMPTIONS, METHODS
    from hccmeta.report.forest import to_natural

    t = Table(
        ["Study", "For", "Groups", "Estimate (95% CI)", "yi (SE)", "Method", "Assumptions",
         "Conflict p"],
        numeric={3, 4, 7},
    )  # fmt: skip
    conflicts = result.conflicts
    conflict_p = {f"{c['record']}/{c['statistic']}": float(c["p"]) for _, c in conflicts.iterrows()}
    single = set(result.effects["role"].astype(str)) <= {""}
    tags: list[str] = []
    roles, study_labels = _role_labels(result), labels
    for _, e in result.effects.iterrows():
        y, s = float(e["yi"]), float(e["sei"])
        c, lo, hi = to_natural(str(e["measure"]), y, y - _Z95 * s, y + _Z95 * s)
        nat = natural_text(
            {"natural_scale": _natural_name(str(e["measure"])), "natural_median": c,
             "natural_ci_lower": lo, "natural_ci_upper": hi, "median": y,
             "ci_lower": y - _Z95 * s, "ci_upper": y + _Z95 * s, "scale": e["measure"]}
        )  # fmt: skip
        groups = str(e.get("exposed_label") or "")
        if not _nan(e.get("reference_label")) and e.get("kind") == "contrast":
            groups += f" vs {e['reference_label']}"
        if not _nan(e.get("n_exposed")):
            n = _int(e["n_exposed"])
            if e.get("kind") == "contrast" and not _nan(e.get("n_reference")):
                n += f" vs {_int(e['n_reference'])}"
            if e.get("measure") == "logit_p" and not _nan(e.get("events_exposed")):
                n = f"{_int(e['events_exposed'])} of {n}"
            else:
                n = f"n = {n}"
            groups += f" ({n})"
        assumptions = [a for a in str(e.get("assumptions") or "").split(";") if a]
        tags += [a for a in assumptions if a not in tags]
        method = str(e["method"])
        p = conflict_p.get(str(e["effect"]), math.nan)
        flagged = math.isfinite(p) and p < CONFLICT_ALPHA
        t.rows.append(
            [
                study_labels.get(str(e["study"]), str(e["study"])),
                roles.get(str(e.get("role", "")), str(e.get("role", ""))),
                groups,
                nat,
                f"{y:.3f} ({s:.3f})",
                f"{METHODS.get(method, (0, method))[1]} [{method}]",
                ", ".join(assumptions) or "none",
                "–" if not math.isfinite(p) else f"{p:.2f}" + (" (conflict)" if flagged else ""),
            ]
        )
        t.classes.append("warn" if flagged else "")
    if single:  # one estimand: the "For" column would repeat it on every row
        t = Table(
            [c for c in t.columns if c != "For"],
            [r[:1] + r[2:] for r in t.rows],
            {2, 3, 6},
            classes=t.classes,
        )
    return t, [(tag, ASSUMPTIONS.get(tag, tag)) for tag in tags]


def _natural_name(measure: str) -> str | None:
    return {"log_hr": "HR", "log_or": "OR", "log_rr": "RR", "log_median": "months",
            "logit_p": "probability", "cloglog_survival": "probability"}.get(measure)  # fmt: skip


def _role_labels(result: AnalysisResult) -> dict[str, str]:
    a = result.analysis
    out = {"": a.estimand, SINGLE_FIT: "model", JOINT_FIT: "model"}
    if a.regimens:
        out.update({k: v.label for k, v in a.regimens.items()})
    if a.factors:
        out.update({k: v.label for k, v in a.factors.items()})
    return out


def _pooled(result: AnalysisResult) -> Table:
    from hccmeta.report.outputs import frequentist_columns

    freq = frequentist_columns(result)
    cols = ["Estimand", "Pooled (95% CrI)", "Analysis scale: median (95% CrI)", "P(benefit)",
            "Studies", "Patients"]  # fmt: skip
    methods = [m for m in ("reml", "dl") if f"{m}_estimate" in freq]
    cols += [f"{m.upper()} (95% CI), tau" for m in methods]
    t = Table(cols, numeric={4, 5})
    for _, est in result.estimates.iterrows():
        row = [
            str(est["label"]),
            natural_text(est),
            f"{fmt_number(est['median'])} ({fmt_interval(est['ci_lower'], est['ci_upper'])})",
            p_benefit_text(est, result.analysis.benefit),
            _int(est["k"]),
            _int(est["n_patients"]),
        ]
        for m in methods:
            if est["estimand"] != "effect":
                row.append("")
                continue
            from hccmeta.report.forest import to_natural

            c, lo, hi = to_natural(
                str(est["scale"]), freq[f"{m}_estimate"], freq[f"{m}_ci_lower"],
                freq[f"{m}_ci_upper"],
            )  # fmt: skip
            name = str(est["natural_scale"]) if est["natural_scale"] in _RATIO else ""
            tau = freq.get(f"{m}_tau", math.nan)
            row.append(
                f"{name} {fmt_number(c)} ({fmt_interval(lo, hi)}), tau {fmt_number(tau)}".strip()
            )
        t.rows.append(row)
    return t


def _diagnostics(result: AnalysisResult) -> Table:
    t = Table(
        [
            "Fit",
            "Engine",
            "max R-hat",
            "min bulk ESS",
            "min tail ESS",
            "Divergences",
            "Retries",
            "Verdict",
        ],
        numeric={2, 3, 4, 5, 6},
    )
    labels = _role_labels(result)
    diag = result.diagnostics.set_index("role") if not result.diagnostics.empty else None
    for role, fit in result.fits.items():
        name = labels.get(role, role)
        if getattr(fit, "method", "mcmc") == "exact":
            t.rows.append([name, "exact (numerical integration)", "–", "–", "–", "–", "–",
                           "no sampling to diagnose"])  # fmt: skip
            continue
        if diag is None or role not in diag.index:
            t.rows.append([name, "MCMC (nutpie)", "–", "–", "–", "–", "–", "not recorded"])
            continue
        d: Any = diag.loc[role]
        ok = bool(d["ok"])
        t.rows.append(
            [
                name,
                "MCMC (nutpie)",
                f"{float(d['max_rhat']):.3f}",
                f"{float(d['min_ess_bulk']):.0f}",
                f"{float(d['min_ess_tail']):.0f}",
                _int(d["n_divergent"]),
                _int(d["retries"]),
                "passed" if ok else f"FAILED: {d['messages']}",
            ]
        )
        if not ok:
            t.classes = t.classes + [""] * (len(t.rows) - 1 - len(t.classes)) + ["warn"]
    return t


def _changes(section: AnalysisSection) -> pd.DataFrame | None:
    """The sensitivity rows of the primary estimand (with the table's
    ``changes_conclusion`` and ``change_reason``)."""
    table, result = section.sensitivity, section.result
    est = result.primary_estimand
    if table is None or table.empty or est is None:
        return None
    return table[table["estimand"] == est]


def _sensitivity(section: AnalysisSection, labels: Mapping[str, str]) -> tuple[Table | None, str]:
    result = section.result
    rows = _changes(section)
    if rows is None:
        return None, ""
    t = Table(["Group", "What it changes", "Estimate (95% CrI)", "P(benefit)", "Studies",
               "Status", "Changes the conclusion"], numeric={4})  # fmt: skip
    for _, r in rows.iterrows():
        status = str(r["status"])
        if status != "ok" and not _nan(r.get("error")) and r.get("error"):
            status += f": {r['error']}"
        psense: Any = r.get("psense")
        estimate = natural_text(r) if r["status"] == "ok" else "–"
        if not _nan(psense):
            status += f"; psense {float(psense):.3f} ({r.get('psense_diagnosis') or '–'})"
        changed = bool(r["changes_conclusion"])
        t.rows.append(
            [
                _GROUP_WORDS.get(
                    str(r["variant_group"]), str(r["variant_group"]).replace("_", " ")
                ),
                variant_text(str(r["description"]), labels),
                estimate,
                p_benefit_text(r, result.analysis.benefit) if r["status"] == "ok" else "–",
                _int(r["k"]),
                status,
                f"yes: {r['change_reason']}" if changed else "",
            ]
        )
        t.classes.append("warn" if changed or r["status"] == "failed" else "")
    est = result.estimates
    label = str(est.loc[est["estimand"] == result.primary_estimand, "label"].iloc[0])
    note = (
        f"Rows for the primary estimand ({label}); sensitivity.csv has every estimand. "
        "A variant changes the conclusion when its 95% interval's relation to no effect "
        "changes (it starts or stops including it) or when its median lies outside the "
        "primary 95% interval; for an estimate without a no-effect value (a median, a "
        "proportion), when its median lies outside the primary 95% interval. How each "
        "variant was computed (refitted, or by importance reweighting of the primary draws, "
        "with its Pareto k) is in sensitivity.csv, where the variants have their names."
    )
    return t, note


def _certainty(result: AnalysisResult, labels: Mapping[str, str]) -> Table:
    """The certainty of evidence per estimand, domain by domain (GRADE)."""
    t = Table(
        ["Estimand", "Design", "Starts", "Risk of bias", "Inconsistency", "Indirectness",
         "Imprecision", "Publication bias", "Rated up", "Certainty", "Reasons"],
    )  # fmt: skip
    labels = dict(zip(result.estimates["estimand"], result.estimates["label"], strict=True))

    def levels(x: Any) -> str:
        return "–" if int(x) == 0 else f"{int(x):+d}"

    for _, c in result.certainty.iterrows():
        t.rows.append(
            [
                str(labels.get(c["estimand"], c["estimand"])),
                str(c["design"]).replace("_", "-"),
                str(c["start"]),
                levels(c["risk_of_bias"]),
                levels(c["inconsistency"]),
                levels(c["indirectness"]),
                levels(c["imprecision"]),
                levels(c["publication_bias"]),
                levels(c["rated_up"]),
                str(c["certainty"]).replace("_", " "),
                relabel("; ".join(c["certainty_reasons"]), labels),
            ]
        )
    return t


def _risk_of_bias(data: ReportData, result: AnalysisResult) -> Table | None:
    """The risk-of-bias assessments behind the analysis's records, domain by domain."""
    rob = data.evidence.risk_of_bias
    if rob.empty or result.effects.empty:
        return None
    from hccmeta.data.bias import DOMAINS, TOOLS, matches

    used: dict[str, set[str]] = {}
    for study, record in zip(result.effects["study"], result.effects["record"], strict=True):
        used.setdefault(str(study), set()).add(str(record))
    rows = rob.to_dict("records")  # plain rows: this runs for every section
    domains_of: dict[tuple[object, object], list[dict]] = {}
    for d in rows:
        if d["domain"] != "overall":
            domains_of.setdefault((d["study"], d["assessment"]), []).append(d)
    t = Table(["Study", "Assessment", "Tool", "Comparison", "Domains", "Overall", "Direction"])
    seen: set[tuple[str, str]] = set()
    for a in rows:
        if a["domain"] != "overall":
            continue
        key = (str(a["study"]), str(a["assessment"]))
        recs = used.get(str(a["study"]), set())
        patterns = str(a["records"]).split(";")
        if key in seen or not any(matches(p, r) for p in patterns for r in recs):
            continue
        seen.add(key)
        names = DOMAINS[str(a["tool"])]
        domains = "; ".join(
            f"{names.get(str(d['domain']), d['domain'])}: {str(d['judgement']).replace('_', ' ')}"
            f" ({d['reason']})"
            for d in domains_of.get((a["study"], a["assessment"]), [])
        )
        direction = str(a["direction"]).replace("_", " ")
        if a["direction"] == "favours_group" and isinstance(a["favours"], str):
            direction = f"favours {data.evidence.label('regimen', str(a['favours']))}"
        t.rows.append(
            [
                data.evidence.study_labels.get(str(a["study"]), str(a["study"])),
                str(a["assessment"]),
                TOOLS[str(a["tool"])],
                str(a["comparison"]),
                domains,
                f"{str(a['judgement']).replace('_', ' ')}: {a['reason']}",
                direction,
            ]
        )
    return t if t.rows else None


def _directness(result: AnalysisResult, labels: Mapping[str, str]) -> Table | None:
    a = result.analysis
    studies = sorted(set(result.effects["study"].astype(str))) if not result.effects.empty else []
    if not studies:
        return None
    t = Table(["Study", "Estimands", "Population", "Intervention", "Comparator", "Outcome",
               "Time origin", "Why"])  # fmt: skip
    for study in studies:
        declared = [d for d in a.directness if d.study == study]
        if not declared:
            t.rows.append([labels.get(study, study), "all", *["not declared"] * 5,
                           "not declared in the registry: taken as direct"])  # fmt: skip
            continue
        for d in declared:
            t.rows.append(
                [
                    labels.get(study, study),
                    ", ".join(d.estimands) if d.estimands else "all",
                    *(getattr(d, e).replace("_", " ") for e in (
                        "population", "intervention", "comparator", "outcome", "time_origin")),
                    d.reason,
                ]
            )  # fmt: skip
    return t


def _section(data: ReportData, section: AnalysisSection, figures: Mapping[str, str]) -> dict:
    result = section.result
    a = result.analysis
    out: dict[str, Any] = {
        "name": section.name,
        "anchor": slug(section.name),
        "title": a.title,
        "question": a.question,
        "estimand": a.estimand,
        "model": a.model.replace("_", " "),
        "status": result.status,
        "message": result.message,
        "reason": relabel(result.message.split(": ", 1)[-1], data.evidence.study_labels),
        "mapping": list(a.mapping),
        "mixes": ", ".join(m.replace("_", " ") for m in a.mixes),
        "statement": _sentence(section.statement),
        "figures": {
            k: figures.get(f"{section.name}_{k}") for k in ("forest", "tau", "sensitivity")
        },
        "diagnostics_failed": not result.ok,
    }
    if result.status != "ok":
        for key in ("records", "effects", "pooled", "certainty", "risk_of_bias", "directness",
                    "diagnostics", "sensitivity"):  # fmt: skip
            out[key] = None
        out.update(n_records=0, assumptions=[], sensitivity_note="")
        return out
    labels = data.evidence.study_labels
    effects, assumptions = _effects(result, labels)
    sens, note = _sensitivity(section, labels)
    records = _records(data, result)
    out.update(
        n_records=len(records.rows),
        records=records,
        effects=effects,
        assumptions=assumptions,
        pooled=_pooled(result),
        certainty=_certainty(result, labels),
        risk_of_bias=_risk_of_bias(data, result),
        directness=_directness(result, labels),
        diagnostics=_diagnostics(result),
        sensitivity=sens,
        sensitivity_note=note,
    )
    return out


# ------------------------------------------------------------------------------ overview
def _robustness(section: AnalysisSection) -> str:
    """How many sensitivity variants change the conclusion about the primary estimand
    (the sensitivity table's ``changes_conclusion``); for a median or a proportion, also
    the range of the variants' medians."""
    rows = _changes(section)
    if rows is None:
        return "–"
    rows = rows[rows["variant"] != "primary"]
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return "no variant ran"
    n = int(ok["changes_conclusion"].astype(bool).sum())
    failed = int((rows["status"] == "failed").sum())
    text = f"{n} of {len(ok)} change it" if n else f"none of {len(ok)} changes it"
    if not has_null(ok.iloc[0]):  # the rows carry the estimand's side of benefit
        text += f" (medians {variant_range(ok)})"
    return text + (f"; {failed} failed" if failed else "")


def _overview(data: ReportData) -> Table:
    t = Table(
        ["Analysis", "Primary estimate (95% CrI)", "Design", "Certainty",
         "Allowing for bias (95% CrI)", "P(benefit)", "Studies", "Patients",
         "Sensitivity variants"],
        numeric={6, 7},
    )  # fmt: skip
    for s in data.sections:
        r = s.result
        if r.status != "ok":
            t.rows.append([r.analysis.title, "no eligible records", "–", "–", "–", "–", "0", "–",
                           "–"])  # fmt: skip
            continue
        est: Any = r.estimates.set_index("estimand").loc[r.primary_estimand]
        rating = r.certainty.set_index("estimand")
        rated: Any = rating.loc[r.primary_estimand] if r.primary_estimand in rating.index else None
        t.rows.append([f"{r.analysis.title}: {est['label']}", natural_text(est),
                       str(est["design"]).replace("_", "-"),
                       certainty_text(est, rated, short=True),
                       bias_adjusted_text(est), p_benefit_text(est, r.analysis.benefit),
                       _int(est["k"]), _int(est["n_patients"]), _robustness(s)])  # fmt: skip
    return t


def _data_checks(data: ReportData) -> tuple[list[str], list[str]]:
    """The consistency warnings of the reported statistics (``hccmeta validate``) and
    the studies' inclusion conditions that their statistics are conditional on."""
    from hccmeta.effects.consistency import consistency_warnings

    warnings = [
        f"{w.file}:{w.line}: {w.message}" if w.line is not None else f"{w.file}: {w.message}"
        for w in consistency_warnings(data.evidence, data.derived)
    ]
    labels = data.evidence.study_labels
    conditions = [
        f"{labels.get(str(c['study']), c['study'])}: {c['condition']} — "
        f"{' '.join(str(c['applies_to']).split())} "
        f'({c["location"]}: "{c["snippet"]}")'
        for _, c in data.evidence.inclusion_conditions.iterrows()
    ]
    return warnings, conditions


def _evidence_base(data: ReportData) -> str:
    """What the evidence base is, and which questions have no randomised evidence."""
    ev = data.evidence
    randomised = [
        ev.study_labels[s.id]
        for s in ev.studies
        if design_class(s.design, ev.vocabulary) == "randomised"
    ]
    none = [
        s.result.analysis.title
        for s in data.sections
        if s.result.status == "ok"
        and not (s.result.estimates["design"].isin(["randomised", "mixed"])).any()
    ]
    empty = [s.result.analysis.title for s in data.sections if s.result.status != "ok"]
    text = (
        f"The evidence base is the {len(ev.studies)} studies encoded in {ev.data_dir.name}/, "
        "not the result of a systematic search: other studies of these questions exist, "
        "publication and selection of studies cannot be assessed, and every estimate "
        "describes these studies only. "
    )
    if not randomised:
        text += "None of the studies is randomised. "
    else:
        text += f"Randomised: {', '.join(randomised)}. "
    if none:
        text += (
            "No randomised evidence informs: " + "; ".join(none) + ". Their comparisons are "
            "associations observed in non-randomised studies, not treatment effects. "
        )
    if empty:
        text += "No eligible records: " + "; ".join(empty) + "."
    return text.strip()


def _studies(data: ReportData) -> Table:
    t = Table(["Study", "Id", "Citation", "Design", "Setting", "Patients", "Source",
               "Provenance", "Risk of bias"], numeric={5})  # fmt: skip
    rob = data.evidence.risk_of_bias
    overall = rob[rob["domain"] == "overall"]
    for _, s in data.evidence.studies_table.iterrows():
        mine = overall[overall["study"] == s["study"]]
        judged = (
            "; ".join(
                f"{a['comparison']}: {str(a['judgement']).replace('_', ' ')} "
                f"({TOOLS[str(a['tool'])]})"
                for _, a in mine.iterrows()
            )
            if not mine.empty
            else "not assessed"
        )
        t.rows.append([str(s["label"]), str(s["study"]), str(s["citation"]), str(s["design_label"]),
                       str(s["setting_label"]), _int(s["population_size"]),
                       str(s["source_kind"]).replace("_", " "),
                       _PROVENANCE.get(str(s["provenance"]), str(s["provenance"])),
                       judged])  # fmt: skip
    return t


#: The provenance column of the studies table (Evidence.studies_table["provenance"]).
_PROVENANCE = {
    "verified": "snippets verified against the source text",
    "unverified": "UNVERIFIED: source text not available",
    "not checked": "not checked in this run (no source texts given)",
}


def _account(data: ReportData) -> tuple[Table, str]:
    from hccmeta.report.outputs import account_table

    acc = account_table(data)
    t = Table(["Study", "Record", "Kind", "Status", "Analyses, or why not", "Risk of bias",
               "Directness", "Study file"])  # fmt: skip
    for _, r in acc.iterrows():
        used = r["status"] == "used"
        study = data.evidence.study_labels.get(str(r["study"]), str(r["study"]))
        t.rows.append([study, str(r["record"]), str(r["kind"]), str(r["status"]),
                       str(r["analyses"] if used else r["reason"]), str(r["risk_of_bias"] or ""),
                       str(r["directness"] or ""),
                       f"{r['file']}:{r['line']}" if r["file"] else ""])  # fmt: skip
        t.classes.append("" if used else "muted")
    n_used = int((acc["status"] == "used").sum())
    records = acc[acc["kind"] == "record"]
    summary = (
        f"{len(acc)} entries ({len(records)} outcome records, {len(acc) - len(records)} "
        f"baseline characteristics): {n_used} used by at least one analysis, "
        f"{len(acc) - n_used} not used, each with its reason."
    )
    return t, summary


def _methods(m: Methods, titles: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, Any]:
    priors = Table(["Analysis", "Parameter", "Prior"])
    for _, r in m.priors.iterrows():
        name = str(r["analysis"])
        priors.rows.append(
            [
                titles.get(name, name),
                str(r["parameter"]),
                relabel(readable_priors(str(r["prior"])), labels),
            ]
        )
    return {"paragraphs": m.paragraphs, "priors": priors, "references": m.references}


_FILES = (
    ("index.html", "this report, self-contained (figures embedded)"),
    ("index.md", "the same report in Markdown (figures linked from figures/)"),
    ("pooled_estimates.csv", "one row per analysis and estimand"),
    ("sensitivity.csv", "every variant of every analysis and estimand"),
    (
        "effects.csv",
        "every derived effect: one row per analysis that uses it, oriented as "
        "that analysis pools it (column orientation), and one row per unused effect",
    ),
    ("evidence_account.csv", "every record: used by which analyses, or why not"),
    ("posteriors/<analysis>.nc", "the posterior draws of each analysis (netCDF)"),
    ("figures/<analysis>_<kind>.png", "forest plots, tau prior vs posterior, sensitivity plots"),
    ("provenance.json", "data hash, seed, package versions"),
)


def build_context(data: ReportData, figures: Mapping[str, str], methods: Methods,
                  *, netcdf_format: str) -> dict[str, Any]:  # fmt: skip
    """The context of the report templates.

    Parameters
    ----------
    data : ReportData
        What was run.
    figures : mapping
        ``{"<analysis>_<kind>": "figures/<file>.png"}`` for every figure written.
    methods : Methods
        The generated methods section.
    netcdf_format : str
        How the posteriors were written (``netcdf4`` or ``netcdf3-flat``).
    """
    account, account_summary = _account(data)
    data_warnings, conditions = _data_checks(data)
    ev = data.evidence
    files = Table(["File", "What"], [[f, w] for f, w in _FILES])
    from importlib import resources

    how_to_read = (resources.files("hccmeta.report") / "templates" / "how_to_read.txt").read_text(
        "utf-8"
    )
    return {
        "how_to_read": how_to_read.strip(),
        "title": "Sorafenib with or without TACE in hepatocellular carcinoma: "
        "Bayesian meta-analyses",
        "data_hash": ev.data_hash,
        "data_dir": ev.data_dir.name,
        "seed": data.seed,
        "n_studies": len(ev.studies),
        "n_records": ev.n_records,
        "n_analyses": len(data.sections),
        "n_with_records": sum(1 for s in data.sections if s.result.status == "ok"),
        "n_variants": data.n_variants,
        "sensitivity_run": data.sensitivity is not None,
        "overview": _overview(data),
        "evidence_base": _evidence_base(data),
        "data_warnings": data_warnings,
        "inclusion_conditions": conditions,
        "statements": [
            (s.result.analysis.title, slug(s.name), _sentence(s.statement)) for s in data.sections
        ],
        "studies": _studies(data),
        "sections": [_section(data, s, figures) for s in data.sections],
        "account": account,
        "account_summary": account_summary,
        "methods": _methods(
            methods, {s.name: s.result.analysis.title for s in data.sections}, ev.study_labels
        ),
        "files": files,
        "netcdf_format": netcdf_format,
    }
