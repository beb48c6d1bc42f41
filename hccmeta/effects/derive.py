"""derive_effects: every effect derivable from the loaded study data, and why not the rest.

Driven by the schema, never by record ids: each survival record's contrasts (reported
HR with CI or p; two medians with events, log-rank p, or total events and group sizes)
and groups (medians with CI or events; landmark survival), each count record's groups
(count / n, a printed rate over n, response categories) and contrasts (reported, or
implied between two arms of different regimens). Summaries, correlations and baseline
characteristics are descriptive and listed as such.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np
import pandas as pd

from hccmeta.data.bias import annotate_risk_of_bias
from hccmeta.data.evidence import Evidence
from hccmeta.data.schema import (
    Contrast,
    CorrelationRecord,
    CountGroup,
    CountRecord,
    PValue,
    Study,
    SummaryRecord,
    SurvivalGroup,
    SurvivalRecord,
    month_index,
    months_between,
)
from hccmeta.effects.base import Derived
from hccmeta.effects.counts import logit_proportion, two_arm_counts
from hccmeta.effects.groups import Events, GroupInfo, exposure_order, group_info, resolve_events
from hccmeta.effects.ratios import log_ratio_from_ci, log_ratio_from_p
from hccmeta.effects.survival import (
    cloglog_survival_from_ci,
    cloglog_survival_from_follow_up,
    cloglog_survival_from_n,
    cloglog_survival_from_n_at_risk,
    log_hr_from_logrank,
    log_hr_from_medians_events,
    log_hr_from_medians_p,
    log_median_from_ci,
    log_median_from_events,
    min_log_hr_se,
    min_log_hr_se_subgroups,
    n_at_risk_under_accrual,
)
from hccmeta.effects.table import (
    EFFECT_COLUMNS,
    UNDERIVABLE_COLUMNS,
    DerivedEffects,
    DeriveOptions,
    PBoundOption,
    PChoice,
    mark_primary,
)
from hccmeta.errors import InputError
from hccmeta.scoped import Scoped

__all__ = ["DeriveStore", "derive_effects", "derive_store", "rate_tolerance"]

#: Tests whose p-value can stand for the Wald/log-rank statistic of a survival contrast.
SURVIVAL_TESTS = frozenset({"log_rank", "cox_wald", "not_stated"})

_Sig = tuple[str, str | None, str | None]


#: The rows of one study's derivation: effects, records not derivable, characteristics.
StudyRows = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


class DeriveStore(Protocol):
    """Where :func:`derive_effects` keeps each study's derivation (see
    :func:`derive_store`); a store never raises: a failure to read is a miss."""

    def get_derived(self, key: str) -> StudyRows | None:
        """The rows derived under ``key``, or None."""

    def put_derived(self, key: str, rows: StudyRows) -> None:
        """Keep ``rows`` under ``key``."""


_STORE: Scoped[DeriveStore | None] = Scoped(None)


def derive_store(store: DeriveStore | None) -> AbstractContextManager[None]:
    """Within the block, :func:`derive_effects` reuses, through ``store``, each study's
    rows derived before from the same study (its whole record, by content), vocabulary
    and options: a study's effects depend on nothing else (the store adds the code
    version). The sensitivity analyses derive the effects again under a dozen
    conversion options; ``hccmeta report`` keeps the rows in its result cache, so that
    after one study is edited only that study is derived again. The table is assembled
    (preferred derivations, risk of bias) from the rows as ever."""
    return _STORE.using(store)


def _study_key(study: Study, vocabulary: str, options: DeriveOptions) -> str:
    """What one study's rows depend on: the study, the vocabulary (its JSON), the
    options."""
    h = hashlib.sha256()
    for part in ("derive 1", study.model_dump_json(), vocabulary, repr(options)):
        data = part.encode("utf-8", "surrogatepass")
        h.update(f"{len(data)}:".encode() + data)
    return h.hexdigest()


def derive_effects(
    evidence: Evidence,
    *,
    median_variance: str = "km",
    km_median_factor: float | None = None,
    p_bound: PBoundOption = "bound",
    p_choice: PChoice = "record",
    weibull_shape: float = 1.0,
    impute_events: bool = True,
    impute_n_at_risk: bool = True,
    censoring_from_follow_up: bool = True,
    count_from_rate: bool = True,
    continuity_correction: float = 0.5,
    se_floor: bool = True,
    subgroup_share_min: float = 0.1,
) -> DerivedEffects:
    """Derive every effect of the study data, and list what cannot be derived.

    Parameters
    ----------
    evidence : Evidence
        The loaded study data (:func:`hccmeta.load_studies`).
    median_variance, km_median_factor, p_bound, p_choice, weibull_shape,
    impute_events, impute_n_at_risk, censoring_from_follow_up, count_from_rate,
    continuity_correction, se_floor, subgroup_share_min
        See :class:`hccmeta.effects.table.DeriveOptions`.

    Returns
    -------
    DerivedEffects
        ``.effects`` (one row per derived effect, the preferred derivation of each
        estimand marked ``primary``) and ``.underivable`` (record, what, reason).
    """
    options = DeriveOptions(
        median_variance=median_variance,  # type: ignore[arg-type]
        km_median_factor=km_median_factor
        if km_median_factor is not None
        else DeriveOptions.km_median_factor,
        p_bound=p_bound,
        p_choice=p_choice,
        weibull_shape=weibull_shape,
        impute_events=impute_events,
        impute_n_at_risk=impute_n_at_risk,
        censoring_from_follow_up=censoring_from_follow_up,
        count_from_rate=count_from_rate,
        continuity_correction=continuity_correction,
        se_floor=se_floor,
        subgroup_share_min=subgroup_share_min,
    )
    return _Deriver(evidence, options).run()


def rate_tolerance(rate: float) -> float:
    """Half a unit of the last printed digit of a rate (at least 2 decimals: 0.9 is 90%).

    A rate stored as 0.499 (printed 49.9%) matches count / n within 0.0005; one stored as
    0.09 (printed 9%) within 0.005.
    """
    text = repr(float(rate))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 2
    return 0.5 * 10.0 ** -max(decimals, 2) + 1e-12


def _sig(info: GroupInfo) -> _Sig:
    return (info.arm, info.variable, info.level)


class _Deriver:
    def __init__(self, evidence: Evidence, options: DeriveOptions) -> None:
        self.ev = evidence
        self.opt = options
        self.rows: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.p_index: dict[tuple[Any, ...], list[tuple[PValue, str]]] = {}
        self.medians_at: dict[tuple[Any, ...], str] = {}
        # (study, endpoint) -> {arm or 'all': (events, record id)}: whole populations
        # whose events a record prints
        self.population_events: dict[tuple[str, str], dict[str, tuple[int, str]]] = {}

    # ---- bookkeeping -------------------------------------------------------------------
    def run(self) -> DerivedEffects:
        self._index_p_values()
        self._index_population_events()
        store = _STORE.get()
        vocab = self.ev.vocabulary
        vocabulary = vocab.model_dump_json() if store is not None and vocab is not None else ""
        characteristics: list[dict[str, Any]] = []
        for study in self.ev.studies:
            key = _study_key(study, vocabulary, self.opt) if store is not None else ""
            hit = store.get_derived(key) if store is not None else None
            if hit is not None:
                self.rows += hit[0]
                self.skipped += hit[1]
                characteristics += hit[2]
                continue
            rows, skipped = len(self.rows), len(self.skipped)
            self._study(study)
            chars = [
                self.skip_row(
                    study,
                    ch.id,
                    "record",
                    f"baseline characteristic ({ch.variable}): a study-level covariate, "
                    "descriptive, not an effect",
                )
                for ch in study.characteristics
            ]
            characteristics += chars
            if store is not None:
                store.put_derived(key, (self.rows[rows:], self.skipped[skipped:], chars))
        self.skipped += characteristics
        effects = _text_as_objects(pd.DataFrame(self.rows, columns=list(EFFECT_COLUMNS)))
        effects = annotate_risk_of_bias(effects, self.ev.studies, self.ev.vocabulary)
        effects["primary"] = mark_primary(effects).astype(bool)
        for col in ("yi", "sei", "vi", "time", "p"):
            effects[col] = effects[col].astype(float)
        for col in ("n_exposed", "n_reference", "events_exposed", "events_reference"):
            effects[col] = effects[col].astype("Int64")
        effects = effects.copy()  # the object columns consolidated into one block again
        under = pd.DataFrame(self.skipped, columns=list(UNDERIVABLE_COLUMNS))
        return DerivedEffects(effects, under, self.opt, self.ev.data_hash)

    def _study(self, study: Study) -> None:
        """Derive the effects of one study's records (rows and skips appended)."""
        for record in study.records:
            if isinstance(record, SurvivalRecord):
                self._survival(study, record)
            elif isinstance(record, CountRecord):
                self._counts(study, record)
            elif isinstance(record, SummaryRecord):
                self.skip(
                    study,
                    record.id,
                    "record",
                    f"descriptive summary of {record.quantity} ({record.unit}), not an effect",
                )
            elif isinstance(record, CorrelationRecord):
                self.skip(
                    study,
                    record.id,
                    "record",
                    f"correlation of {record.x} with {record.y}: descriptive, not an effect",
                )

    def design_flags(self, design: str) -> tuple[bool, bool]:
        """(randomised, prospective) of a design: the vocabulary's flags (without a
        vocabulary: the design is 'randomised'; it is randomised or 'prospective_*')."""
        vocab = self.ev.vocabulary
        if vocab is not None:
            return vocab.is_randomised(design), vocab.is_prospective(design)
        return design == "randomised", design == "randomised" or design.startswith("prosp")

    @staticmethod
    def skip_row(study: Study, record: str, what: str, reason: str) -> dict[str, Any]:
        return {"study": study.id, "record": record, "what": what, "reason": reason}

    def skip(self, study: Study, record: str, what: str, reason: str) -> None:
        self.skipped.append(self.skip_row(study, record, what, reason))

    def add(
        self,
        study: Study,
        record: SurvivalRecord | CountRecord,
        d: Derived,
        exposed: GroupInfo,
        reference: GroupInfo | None,
        *,
        detail: str = "",
        extra_tags: tuple[str, ...] = (),
        records: tuple[str, ...] = (),
        **context: Any,
    ) -> None:
        tags = sorted(
            set(d.assumptions())
            | set(extra_tags)
            | ({"conditional_on_inclusion"} if study.inclusion_conditions else set())
        )
        comparison = exposed.id if reference is None else f"{exposed.id}~{reference.id}"
        yi, sei = float(d.yi), float(d.sei)
        if not (math.isfinite(yi) and math.isfinite(sei) and sei > 0):
            part = "group" if reference is None else "contrast"
            self.skip(
                study,
                record.id,
                f"{part} {comparison.replace('~', ' vs ')}: {d.measure} by {d.method}",
                f"the derivation gives yi = {yi:g}, SE = {sei:g} (p = 1, or a zero cell "
                "without continuity correction): no usable estimate",
            )
            return
        eid = "/".join(p for p in (record.id, comparison, d.measure, d.method, detail) if p)
        base, k = eid, 2
        while any(r["effect"] == eid for r in self.rows):
            eid, k = f"{base}#{k}", k + 1
        variable = exposed.variable
        if reference is not None and reference.variable not in (None, variable):
            variable = f"{variable}/{reference.variable}"
        row: dict[str, Any] = {
            "effect": eid,
            "study": study.id,
            "record": record.id,
            "records": ";".join(dict.fromkeys((record.id, *records))),
            "kind": "group" if reference is None else "contrast",
            "measure": d.measure,
            "yi": yi,
            "sei": sei,
            "vi": sei * sei,
            "method": d.method,
            "assumptions": ";".join(tags),
            "primary": False,
            "type": record.type,
            "endpoint": record.endpoint,
            "event": getattr(record, "event", None),
            "grade": getattr(record, "grade", None),
            "criteria": getattr(record, "criteria", None),
            "time_origin": getattr(record, "time_origin", None),
            "time": getattr(record, "assessed_at", None),
            "analysis": record.analysis,
            "adjusted_for": ";".join(record.adjusted_for) if record.adjusted_for else None,
            "exposed": exposed.id,
            "reference": reference.id if reference else None,
            "exposed_arm": exposed.arm,
            "reference_arm": reference.arm if reference else None,
            "exposed_regimen": exposed.regimen,
            "reference_regimen": reference.regimen if reference else None,
            "subgroup_variable": variable,
            "exposed_level": exposed.level,
            "reference_level": reference.level if reference else None,
            "exposed_label": exposed.label,
            "reference_label": reference.label if reference else None,
            "n_exposed": exposed.n,
            "n_reference": reference.n if reference else None,
            "events_exposed": None,
            "events_reference": None,
            "contrast_source": None if reference is None else "reported",
            "p": None,
            "p_relation": None,
            "p_test": None,
            "design": study.design,
            "randomised": self.design_flags(study.design)[0],
            "prospective": self.design_flags(study.design)[1],
            "setting": study.setting,
            "source_kind": study.source_kind,
        }
        row.update(context)
        self.rows.append(row)

    # ---- p-values of the same comparison in several records -----------------------------
    def _comparison_key(
        self, study: Study, record: SurvivalRecord, e: GroupInfo, r: GroupInfo
    ) -> tuple[Any, ...]:
        pair = tuple(sorted((_sig(e), _sig(r)), key=str))
        return (study.id, record.endpoint, record.time_origin, record.analysis, pair)

    def _index_p_values(self) -> None:
        for study, record in self.ev.records():
            if not isinstance(record, SurvivalRecord):
                continue
            groups = {g.id: group_info(study, g) for g in record.groups}
            by_id = {g.id: g for g in record.groups}
            for c in record.contrasts:
                key = self._comparison_key(study, record, groups[c.exposed], groups[c.reference])
                if c.p is not None and c.hr is None:
                    self.p_index.setdefault(key, []).append((c.p, record.id))
                if by_id[c.exposed].median and by_id[c.reference].median:
                    self.medians_at.setdefault(key, record.id)

    def _index_population_events(self) -> None:
        for study, record in self.ev.records():
            if not isinstance(record, SurvivalRecord):
                continue
            found = self.population_events.setdefault((study.id, record.endpoint), {})
            for g in record.groups:
                if g.subgroup is None and g.events is not None and g.arm not in found:
                    found[g.arm] = (g.events, record.id)

    def _choose_p(
        self, key: tuple[Any, ...], own: PValue | None, record_id: str
    ) -> tuple[PValue, str] | None:
        cands = self.p_index.get(key, [])
        if own is not None and self.opt.p_choice == "record" and own.test == "not_stated":
            named = [(p, r) for p, r in cands if r != record_id and p.test == "log_rank"]
            if named:
                return named[0]
        if own is not None and (self.opt.p_choice == "record" or len(cands) <= 1):
            return own, record_id
        if not cands:
            return None
        if self.opt.p_choice == "largest":
            return max(cands, key=lambda pr: pr[0].value)
        if self.opt.p_choice == "smallest":
            return min(cands, key=lambda pr: pr[0].value)
        return cands[0]

    def _p_usable(self, p: PValue) -> str | None:
        """Why a p-value cannot be used for a survival contrast (None if it can)."""
        if p.test not in SURVIVAL_TESTS:
            return f"the p-value comes from a {p.test} test, not a survival comparison"
        if p.relation != "=" and self.opt.p_bound == "exclude":
            return (
                f"the p-value is printed as a bound (p {p.relation} {p.value:g}) and "
                "p_bound='exclude'"
            )
        return None

    def _floor(
        self, d: Derived, e: GroupInfo, r: GroupInfo, events: int | None
    ) -> tuple[Derived, tuple[str, ...]]:
        """Raise an SE below what the group sizes (and events) allow; see se_floor.

        With both sizes known: :func:`min_log_hr_se` (with the events D where known:
        ``N / sqrt(D n_e n_r)``). With two subgroups of one arm of known size N:
        :func:`min_log_hr_se_subgroups`, which takes the least favourable split allowed
        by ``subgroup_share_min`` where neither size is printed (flagged
        ``se_floor_split_assumed``).
        """
        if not self.opt.se_floor:
            return d, ()
        assumed = False
        if e.n and r.n:
            ev = events if events is not None and 0 < events <= e.n + r.n else None
            lowest = float(min_log_hr_se(e.n, r.n, ev))
        elif (
            e.arm == r.arm
            and e.parent_n
            and e.variable is not None
            and e.variable == r.variable
            and e.level != r.level
        ):
            lowest, assumed = min_log_hr_se_subgroups(
                e.parent_n,
                n_exp=e.n,
                n_ref=r.n,
                events=events,
                share_min=self.opt.subgroup_share_min,
            )
            if not math.isfinite(lowest):
                return d, ()
        else:
            return d, ()
        if float(d.sei) >= lowest:
            return d, ()
        tags = ("se_floor", "se_floor_split_assumed") if assumed else ("se_floor",)
        return Derived(d.measure, d.method, d.yi, np.asarray(lowest), d.flags), tags

    def _p_args(self, p: PValue) -> dict[str, Any]:
        rule = "bound" if self.opt.p_bound == "exclude" else self.opt.p_bound
        return {"relation": p.relation, "p_bound": rule}

    # ---- survival records ------------------------------------------------------------
    def _survival(self, study: Study, rec: SurvivalRecord) -> None:
        infos = {g.id: group_info(study, g) for g in rec.groups}
        groups = {g.id: g for g in rec.groups}
        events, totals, sources = resolve_events(
            study,
            rec,
            impute=self.opt.impute_events,
            population_events=self.population_events.get((study.id, rec.endpoint)),
        )
        for c in rec.contrasts:
            self._survival_contrast(study, rec, c, infos, groups, events, totals, sources)
        if rec.p_overall is not None:
            self.skip(
                study,
                rec.id,
                "p_overall",
                f"p = {rec.p_overall.value:g} ({rec.p_overall.test}) across "
                f"{len(rec.groups)} groups: no pairwise contrast, not an effect",
            )
        if (
            len(rec.groups) == 1
            and rec.groups[0].events is not None
            and rec.groups[0].median is None
            and not rec.groups[0].landmarks
            and not rec.contrasts
        ):
            g = rec.groups[0]
            self.skip(
                study,
                rec.id,
                f"group {g.id}: events",
                f"{g.events} events without a median or landmark: no effect of its own; "
                "the population's events for the records whose groups partition it",
            )
        if len(rec.groups) >= 2 and not rec.contrasts and rec.p_overall is None:
            self.skip(
                study,
                rec.id,
                "comparison of groups",
                f"no p-value, HR or CI for any comparison of the {len(rec.groups)} groups",
            )
        for g in rec.groups:
            self._survival_group(study, rec, g, infos[g.id], events.get(g.id))

    def _event_tags(self, *evs: Events) -> tuple[str, ...]:
        tags = []
        if any(e.how == "imputed" for e in evs):
            tags.append("imputed_events")
        if any(e.how == "difference" for e in evs):
            tags.append("events_by_difference")
        if any(e.source is not None for e in evs):
            tags.append("events_from_other_record")
        return tuple(tags)

    @staticmethod
    def _event_records(*evs: Events) -> tuple[str, ...]:
        return tuple(e.source for e in evs if e.source is not None)

    def _survival_contrast(
        self,
        study: Study,
        rec: SurvivalRecord,
        c: Contrast,
        infos: dict[str, GroupInfo],
        groups: dict[str, SurvivalGroup],
        events: dict[str, Events],
        totals: dict[frozenset[str], int],
        sources: dict[frozenset[str], str],
    ) -> None:
        e, r = infos[c.exposed], infos[c.reference]
        what = f"contrast {c.exposed} vs {c.reference}"
        made = 0
        reasons: list[str] = []
        ctx: dict[str, Any] = {}

        def p_ctx(p: PValue) -> dict[str, Any]:
            return {"p": p.value, "p_relation": p.relation, "p_test": p.test}

        def p_tags(p: PValue) -> tuple[str, ...]:
            return ("p_test_not_stated",) if p.test == "not_stated" else ()

        if c.hr is not None:
            hr = c.hr
            ci = hr.ci
            if ci is not None and ci.kind == "ci":
                d = log_ratio_from_ci(
                    hr.value,
                    np.nan if ci.lower is None else ci.lower,
                    np.nan if ci.upper is None else ci.upper,
                    level=ci.level,
                )
                self.add(study, rec, d, e, r, **ctx)
                made += 1
            if c.p is not None:
                why = self._p_usable(c.p)
                if hr.value == 1:
                    why = "HR = 1 with a p-value gives no SE"
                if why and made:
                    self.skip(study, rec.id, f"{what}: p", why)
                elif why:
                    reasons.append(why)
                else:
                    d = log_ratio_from_p(hr.value, c.p.value, **self._p_args(c.p))
                    d, floor = self._floor(d, e, r, None)
                    self.add(study, rec, d, e, r, extra_tags=p_tags(c.p) + floor, **p_ctx(c.p))
                    made += 1
            if not made and not reasons:
                reasons.append(f"HR {hr.value:g} printed without a CI or p-value: no SE")
            if not made:
                self.skip(study, rec.id, what, "; ".join(reasons))
            return

        ge, gr = groups[c.exposed], groups[c.reference]
        me = ge.median.value if ge.median else None
        mr = gr.median.value if gr.median else None
        key = self._comparison_key(study, rec, e, r)
        if me is None or mr is None:
            missing = [g.id for g, m in ((ge, me), (gr, mr)) if m is None]
            reason = (
                "no HR, and no median for "
                + ", ".join(missing)
                + ": a two-sided p-value alone gives no estimate (or direction)"
            )
            other = self.medians_at.get(key)
            if other and other != rec.id:
                reason += (
                    f"; the medians of this comparison are in {other}, which uses this "
                    "p-value under p_choice='largest' or 'smallest'"
                )
            self.skip(study, rec.id, what, reason)
            return
        if me == mr:
            self.skip(study, rec.id, what, f"equal medians ({me:g}): ln HR = 0 has no SE")
            return
        shape = self.opt.weibull_shape
        ev_e, ev_r = events.get(c.exposed), events.get(c.reference)
        ev_ctx: dict[str, Any] = {
            "events_exposed": ev_e.count if ev_e else None,
            "events_reference": ev_r.count if ev_r else None,
        }
        if ev_e and ev_r and ev_e.count > 0 and ev_r.count > 0:
            d = log_hr_from_medians_events(
                me,
                mr,
                ev_e.count,
                ev_r.count,
                shape=shape,
                variance=self.opt.median_variance,
                km_factor=self.opt.km_median_factor,
            )
            self.add(
                study,
                rec,
                d,
                e,
                r,
                extra_tags=self._event_tags(ev_e, ev_r),
                records=self._event_records(ev_e, ev_r),
                **ev_ctx,
            )
            made += 1
        chosen = self._choose_p(key, c.p, rec.id)
        if chosen is None:
            reasons.append("no p-value, HR or events per group for the two medians")
        else:
            p, p_rec = chosen
            why = self._p_usable(p)
            if why:
                reasons.append(why)
            else:
                tags = p_tags(p) + (("p_from_other_record",) if p_rec != rec.id else ())
                pair = frozenset((c.exposed, c.reference))
                total = totals.get(pair)
                ev_tags: tuple[str, ...] = ()
                ev_recs: tuple[str, ...] = ()
                if total is not None and pair in sources:
                    ev_tags, ev_recs = ("events_from_other_record",), (sources[pair],)
                if total is None and ev_e and ev_r:
                    total = ev_e.count + ev_r.count
                    ev_tags = self._event_tags(ev_e, ev_r)
                    ev_recs = self._event_records(ev_e, ev_r)
                d = log_hr_from_medians_p(me, mr, p.value, **self._p_args(p), shape=shape)
                known = total if "imputed_events" not in ev_tags else None
                d, floor = self._floor(d, e, r, known)
                floor_tags = floor + (ev_tags if floor and known is not None else ())
                self.add(
                    study,
                    rec,
                    d,
                    e,
                    r,
                    extra_tags=tags + floor_tags,
                    records=(p_rec, *(ev_recs if floor and known is not None else ())),
                    **p_ctx(p),
                )
                made += 1
                if total and e.n and r.n and total <= e.n + r.n:
                    d = log_hr_from_logrank(
                        p.value,
                        total,
                        e.n,
                        r.n,
                        direction=1.0 if mr > me else -1.0,
                        **self._p_args(p),
                    )
                    tags = (*tags, *ev_tags, "direction_from_medians")
                    self.add(
                        study,
                        rec,
                        d,
                        e,
                        r,
                        extra_tags=tags,
                        records=(p_rec, *ev_recs),
                        **p_ctx(p),
                        **ev_ctx,
                    )
                    made += 1
        if not made:
            self.skip(study, rec.id, what, "; ".join(reasons))

    def _n_at_risk_from_follow_up(
        self, study: Study, g: SurvivalGroup, n: int | None
    ) -> dict[float, float]:
        """The effective number at risk at each landmark of the group under the censoring
        the study's entry period and end of follow-up imply (empty where they are not
        printed, the option is off, or the landmarks are not a survival curve)."""
        enr = study.enrolment
        if not (self.opt.impute_n_at_risk and self.opt.censoring_from_follow_up and n):
            return {}
        if enr is None or enr.start is None or enr.end is None or enr.follow_up_end is None:
            return {}
        pts = sorted((lm.time, lm.survival) for lm in g.landmarks if 0 < lm.survival <= 1)
        times = np.array([t for t, _ in pts], dtype=float)
        surv = np.array([s for _, s in pts], dtype=float)
        if not pts or np.any(np.diff(times) <= 0) or np.any(np.diff(surv) > 0):
            return {}
        accrual = months_between(enr.start, enr.end)
        min_follow_up = float(
            month_index(enr.follow_up_end, end=True) - month_index(enr.end, end=True)
        )
        n_eff = n_at_risk_under_accrual(
            n, times, surv, accrual=accrual, min_follow_up=min_follow_up
        )
        return {float(t): float(x) for t, x in zip(times, n_eff, strict=True) if np.isfinite(x)}

    def _survival_group(
        self,
        study: Study,
        rec: SurvivalRecord,
        g: SurvivalGroup,
        info: GroupInfo,
        ev: Events | None,
    ) -> None:
        if g.median is not None:
            made = 0
            ci = g.median.ci
            if ci is not None and ci.kind == "ci":
                d = log_median_from_ci(
                    g.median.value,
                    np.nan if ci.lower is None else ci.lower,
                    np.nan if ci.upper is None else ci.upper,
                    level=ci.level,
                )
                self.add(study, rec, d, info, None)
                made += 1
            if ev is not None and ev.count > 0:
                d = log_median_from_events(
                    g.median.value,
                    ev.count,
                    variance=self.opt.median_variance,
                    km_factor=self.opt.km_median_factor,
                    shape=self.opt.weibull_shape,
                )
                self.add(
                    study,
                    rec,
                    d,
                    info,
                    None,
                    extra_tags=self._event_tags(ev),
                    records=self._event_records(ev),
                    events_exposed=ev.count,
                )
                made += 1
            if not made:
                n = f"n = {info.n}" if info.n is not None else "no group size"
                extra = " (its interval is a range, not a CI)" if ci and ci.kind == "range" else ""
                self.skip(
                    study,
                    rec.id,
                    f"group {g.id}: median",
                    f"median {g.median.value:g} without a CI or events ({n}){extra}: no "
                    "standard error",
                )
        n_follow = self._n_at_risk_from_follow_up(study, g, info.n)
        for lm in g.landmarks:
            what = f"group {g.id}: survival at {lm.time:g} months"
            if not 0 < lm.survival < 1:
                self.skip(study, rec.id, what, f"S = {lm.survival:g}: ln(-ln S) is undefined")
                continue
            ci = lm.ci
            if ci is not None and ci.kind == "ci" and ci.lower and ci.upper and ci.upper < 1:
                d = cloglog_survival_from_ci(lm.survival, ci.lower, ci.upper, level=ci.level)
            elif lm.n_at_risk:
                d = cloglog_survival_from_n_at_risk(lm.survival, lm.n_at_risk)
            elif lm.time in n_follow:  # only filled with impute_n_at_risk and a size
                d = cloglog_survival_from_follow_up(lm.survival, n_follow[lm.time])
            elif self.opt.impute_n_at_risk and info.n:
                d = cloglog_survival_from_n(lm.survival, info.n)
            else:
                why = "no group size" if not info.n else "impute_n_at_risk is off"
                self.skip(
                    study, rec.id, what, f"no CI or number at risk, and {why}: no standard error"
                )
                continue
            self.add(study, rec, d, info, None, detail=f"t{lm.time:g}", time=lm.time)

    # ---- count records ---------------------------------------------------------------
    def _counts(self, study: Study, rec: CountRecord) -> None:
        infos = {g.id: group_info(study, g) for g in rec.groups}
        # outcome -> group id -> (count, n, tags)
        outcomes: dict[tuple[str, str | None], dict[str, tuple[int, int, tuple[str, ...]]]] = {}
        for g in rec.groups:
            for outcome, value in self._group_counts(study, rec, g, infos[g.id]).items():
                outcomes.setdefault(outcome, {})[g.id] = value
        for (endpoint, event), by_group in outcomes.items():
            ctx: dict[str, Any] = {"endpoint": endpoint, "event": event}
            for gid, (x, n, tags) in by_group.items():
                d = logit_proportion(x, n, add=self.opt.continuity_correction)
                detail = endpoint if endpoint != rec.endpoint else ""
                self.add(
                    study,
                    rec,
                    d,
                    infos[gid],
                    None,
                    detail=detail,
                    extra_tags=tags,
                    events_exposed=x,
                    n_exposed=n,
                    **ctx,
                )
        pairs: list[tuple[str, str, str]] = [
            (c.exposed, c.reference, "reported") for c in rec.contrasts
        ]
        if not pairs:
            vocab = self.ev.vocabulary
            ranks = vocab.exposure_ranks() if vocab is not None else None
            arms = [i for i in infos.values() if i.whole_arm]
            for i, a in enumerate(arms):
                for b in arms[i + 1 :]:
                    oa, ob = exposure_order(a.regimen, ranks), exposure_order(b.regimen, ranks)
                    if a.regimen != b.regimen and oa >= 0 and ob >= 0:
                        hi, lo = (a, b) if oa > ob else (b, a)
                        pairs.append((hi.id, lo.id, "implied"))
        for ex, ref, source in pairs:
            made = 0
            for (endpoint, event), by_group in outcomes.items():
                if ex not in by_group or ref not in by_group:
                    continue
                (x1, n1, t1), (x0, n0, t0) = by_group[ex], by_group[ref]
                for measure in ("log_or", "log_rr", "rd"):
                    d = two_arm_counts(
                        x1,
                        n1,
                        x0,
                        n0,
                        measure=measure,
                        add=self.opt.continuity_correction,
                    )
                    detail = endpoint if endpoint != rec.endpoint else ""
                    self.add(
                        study,
                        rec,
                        d,
                        infos[ex],
                        infos[ref],
                        detail=detail,
                        extra_tags=tuple(sorted(set(t1) | set(t0))),
                        endpoint=endpoint,
                        event=event,
                        contrast_source=source,
                        events_exposed=x1,
                        events_reference=x0,
                        n_exposed=n1,
                        n_reference=n0,
                    )
                    made += 1
            if not made and source == "reported":
                self.skip(
                    study,
                    rec.id,
                    f"contrast {ex} vs {ref}",
                    "counts and group sizes are not known for both groups",
                )

    def _group_counts(
        self, study: Study, rec: CountRecord, g: CountGroup, info: GroupInfo
    ) -> dict[tuple[str, str | None], tuple[int, int, tuple[str, ...]]]:
        out: dict[tuple[str, str | None], tuple[int, int, tuple[str, ...]]] = {}
        n = info.n
        what = f"group {g.id}"
        if g.count is not None:
            if n:
                out[(rec.endpoint, rec.event)] = (g.count, n, ())
            else:
                self.skip(study, rec.id, what, f"count {g.count} without a group size")
        elif g.proportion is not None:
            if not n:
                self.skip(study, rec.id, what, f"rate {g.proportion:g} without a group size")
            elif not self.opt.count_from_rate:
                self.skip(
                    study, rec.id, what, f"rate {g.proportion:g} only; count_from_rate is off"
                )
            else:
                tol = rate_tolerance(g.proportion)
                k = round(g.proportion * n)
                ok = [
                    j for j in (k - 1, k, k + 1) if 0 <= j <= n and abs(j / n - g.proportion) <= tol
                ]
                if len(ok) == 1:
                    out[(rec.endpoint, rec.event)] = (ok[0], n, ("count_from_rate",))
                else:
                    self.skip(
                        study,
                        rec.id,
                        f"{what}: rate",
                        f"rate {g.proportion:g} of n = {n}: "
                        + ("no whole count rounds to it" if not ok else "ambiguous count")
                        + f" (within {tol:g}, the rounding of a rate printed to that precision)",
                    )
        if g.categories:
            cats = g.categories
            total = sum(cats.values())
            size = n if n else total
            if rec.endpoint == "tumour_response" and {"CR", "PR"} <= set(cats):
                tags = ("response_from_categories",)
                if total > size:
                    raise InputError(f"record {rec.id}, group {g.id}: categories exceed n")
                out[("objective_response", None)] = (cats["CR"] + cats["PR"], size, tags)
                if "SD" in cats:
                    out[("disease_control", None)] = (
                        cats["CR"] + cats["PR"] + cats["SD"],
                        size,
                        tags,
                    )
            else:
                self.skip(
                    study,
                    rec.id,
                    f"group {g.id}: categories",
                    "category counts (" + ", ".join(cats) + ") without an outcome definition: "
                    "descriptive, not an effect",
                )
        if not out and g.count is None and g.proportion is None and not g.categories:
            self.skip(study, rec.id, what, "no count, rate or categories")
        return out


def _text_as_objects(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its text columns as NumPy object arrays (missing values NaN).

    pandas 3 keeps each text column as its own Arrow array; selecting rows then takes
    every column separately (about 4.5 ms for the 234 x 50 effects table of the seeds).
    Object columns, consolidated into one block, select the same rows in about 0.5 ms,
    and the analyses select rows tens of thousands of times in a report. Values, missing
    values and comparisons are unchanged."""
    return pd.DataFrame(
        {
            col: pd.Series(
                values.to_numpy(dtype=object, na_value=np.nan), index=df.index, dtype=object
            )
            if isinstance(values.dtype, pd.StringDtype)
            else values
            for col, values in df.items()
        },
        index=df.index,
    )
