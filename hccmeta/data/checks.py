"""Cross-field checks of a validated study (what single-field types cannot express).

:func:`check_study` returns :class:`Finding` objects: a location path in the file
(``("records", 3, "groups", 0, "events")``) and a message. The loader turns the path
into a line, the id of the record / arm / characteristic, and a field name.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from hccmeta.data.bias import design_class, iter_findings
from hccmeta.data.schema import (
    ALL,
    Characteristic,
    Contrast,
    CountGroup,
    CountRecord,
    Estimate,
    Interval,
    Record,
    Study,
    SummaryGroup,
    SummaryRecord,
    SurvivalGroup,
    SurvivalRecord,
)

#: How far a printed rate may differ from count / n: half a percentage point of
#: rounding (rates printed as whole percentages) plus a margin for float noise.
RATE_ROUNDING = 0.0051

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem found by a cross-field check: where it is and what is wrong."""

    loc: Loc
    message: str


def format_field(loc: Sequence[str | int]) -> str:
    """Render a location path as ``groups[0].median.value``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class _Checker:
    """Collects the findings of one study."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.sizes: dict[str, int | None] = {a.id: a.n for a in study.arms}
        self.sizes[ALL] = study.population_size
        self.arm_ids = list(dict.fromkeys(a.id for a in study.arms))
        self.out: list[Finding] = []

    def add(self, loc: Loc, message: str) -> None:
        self.out.append(Finding(loc, message))

    # ---- building blocks ----------------------------------------------------------
    def arm_ref(self, arm: str, loc: Loc) -> None:
        if arm != ALL and arm not in self.arm_ids:
            self.add(
                loc,
                f"unknown arm '{arm}' (the study's arms: {', '.join(self.arm_ids)}, or '{ALL}')",
            )

    def interval(self, iv: Interval, est: float | None, loc: Loc, *, positive: bool) -> None:
        lo, hi = iv.lower, iv.upper
        if lo is None and hi is None:
            self.add(loc, "an interval needs a lower or an upper bound")
            return
        if lo is not None and hi is not None and not lo < hi:
            self.add(
                (*loc, "lower"), f"interval bounds reversed or equal: lower {lo:g} >= upper {hi:g}"
            )
            return
        if positive:
            for name, b in (("lower", lo), ("upper", hi)):
                if b is not None and b <= 0:
                    self.add((*loc, name), f"bound {b:g} must be > 0 for a ratio or a time")
        if est is not None and lo is not None and est < lo:
            self.add(loc, f"the estimate {est:g} lies below its interval's lower bound {lo:g}")
        if est is not None and hi is not None and est > hi:
            self.add(loc, f"the estimate {est:g} lies above its interval's upper bound {hi:g}")
        if iv.kind == "range" and iv.level is not None:
            self.add((*loc, "level"), "a range has no confidence level")

    def estimate(self, e: Estimate | None, loc: Loc, *, positive: bool) -> None:
        if e is None:
            return
        if positive and e.value <= 0:
            self.add((*loc, "value"), f"must be > 0 (got {e.value:g})")
        if e.ci is not None:
            self.interval(e.ci, e.value, (*loc, "ci"), positive=positive)

    def rate(self, count: int, n: int, prop: float, loc: Loc) -> None:
        if abs(count / n - prop) > RATE_ROUNDING:
            self.add(loc, f"printed rate {prop:g} disagrees with {count}/{n} = {count / n:.4f}")

    def not_above(self, value: int | None, n: int | None, loc: Loc, what: str) -> None:
        if value is not None and n is not None and value > n:
            self.add(loc, f"{what} {value} exceeds n {n}")

    # ---- study parts ----------------------------------------------------------------
    def arms(self) -> None:
        seen: set[str] = set()
        for i, arm in enumerate(self.study.arms):
            if arm.id == ALL:
                self.add(("arms", i, "id"), f"arm id '{ALL}' is reserved for the whole study")
            if arm.id in seen:
                self.add(("arms", i, "id"), f"duplicate arm id '{arm.id}'")
            seen.add(arm.id)
        ns = [a.n for a in self.study.arms]
        pop = self.study.population_size
        if self.study.arms_partition_population and None not in ns and pop is not None:
            total = sum(n for n in ns if n is not None)
            if total != pop:
                self.add(
                    ("arms",),
                    f"arm sizes add up to {total}, not to the population size {pop} "
                    "(arms_partition_population is true)",
                )

    def characteristic(self, ch: Characteristic, base: Loc) -> None:
        for li, lev in enumerate(ch.levels):
            lloc: Loc = (*base, "levels", li)
            for key, count in (lev.counts or {}).items():
                self.arm_ref(key, (*lloc, "counts", key))
                n = self.sizes.get(key)
                if n is not None and count > n:
                    self.add(
                        (*lloc, "counts", key), f"count {count} exceeds the size {n} of arm '{key}'"
                    )
            for key, prop in (lev.proportions or {}).items():
                self.arm_ref(key, (*lloc, "proportions", key))
                printed = (lev.counts or {}).get(key)
                size = self.sizes.get(key)
                if printed is not None and size:
                    self.rate(printed, size, prop, (*lloc, "proportions", key))
        for stat in ("mean", "sd", "median"):
            for key in getattr(ch, stat) or {}:
                self.arm_ref(key, (*base, stat, key))
        if ch.levels_complete:
            keys = {k for lev in ch.levels for k in (lev.counts or {})}
            for key in sorted(keys):
                counts = [(lev.counts or {}).get(key) for lev in ch.levels]
                n = self.sizes.get(key)
                if None in counts or n is None:
                    continue
                total = sum(c for c in counts if c is not None)
                if total != n:
                    self.add(
                        (*base, "levels"),
                        f"counts of '{key}' add up to {total}, not to its size {n} "
                        "(levels_complete is true)",
                    )

    def group_n(self, g: SurvivalGroup | CountGroup | SummaryGroup, gloc: Loc) -> int | None:
        """The group's size: printed n, else the arm's n for a whole arm."""
        arm_n = self.sizes.get(g.arm)
        if g.n is not None and arm_n is not None:
            if g.subgroup is None and g.n != arm_n:
                self.add((*gloc, "n"), f"n {g.n} differs from the size {arm_n} of arm '{g.arm}'")
            if g.subgroup is not None and g.n > arm_n:
                self.add(
                    (*gloc, "n"), f"subgroup n {g.n} exceeds the size {arm_n} of arm '{g.arm}'"
                )
        if g.n is not None:
            return g.n
        return arm_n if g.subgroup is None else None

    def survival_group(self, g: SurvivalGroup, gloc: Loc, n: int | None) -> None:
        self.estimate(g.median, (*gloc, "median"), positive=True)
        self.not_above(g.events, n, (*gloc, "events"), "number of events")
        last: tuple[float, float] | None = None
        for li, lm in enumerate(g.landmarks):
            lloc: Loc = (*gloc, "landmarks", li)
            if lm.ci is not None:
                self.interval(lm.ci, lm.survival, (*lloc, "ci"), positive=False)
                for name, b in (("lower", lm.ci.lower), ("upper", lm.ci.upper)):
                    if b is not None and not 0 <= b <= 1:
                        hint = f" (write {b / 100:g})" if 1 < b <= 100 else ""
                        self.add(
                            (*lloc, "ci", name),
                            f"bound {b:g} of a survival proportion must be a fraction "
                            f"in [0, 1]{hint}",
                        )
            self.not_above(lm.n_at_risk, n, (*lloc, "n_at_risk"), "n at risk")
            if last is not None:
                if lm.time <= last[0]:
                    self.add((*lloc, "time"), "landmark times must increase")
                elif lm.survival > last[1]:
                    self.add(
                        (*lloc, "survival"),
                        f"survival {lm.survival:g} at {lm.time:g} months exceeds {last[1]:g} at "
                        f"{last[0]:g} months: survival cannot increase",
                    )
            last = (lm.time, lm.survival)

    def count_group(self, g: CountGroup, gloc: Loc, n: int | None) -> None:
        self.not_above(g.count, n, (*gloc, "count"), "count")
        if g.count is not None and n and g.proportion is not None and g.count <= n:
            self.rate(g.count, n, g.proportion, (*gloc, "proportion"))
        if g.categories is not None:
            total = sum(g.categories.values())
            if n is not None and total > n:
                self.add(
                    (*gloc, "categories"), f"category counts add up to {total}, more than n {n}"
                )
            for key, prop in (g.category_proportions or {}).items():
                if key not in g.categories:
                    self.add((*gloc, "category_proportions", key), f"no count for category '{key}'")
                elif n:
                    self.rate(g.categories[key], n, prop, (*gloc, "category_proportions", key))
        if g.count is None and g.proportion is None and g.categories is None:
            self.add(gloc, "a count group needs a count, a proportion or categories")

    def contrast(self, c: Contrast, gids: list[str], loc: Loc) -> None:
        for role in ("exposed", "reference"):
            gid = getattr(c, role)
            if gid not in gids:
                self.add(
                    (*loc, role), f"unknown group '{gid}' (the record's groups: {', '.join(gids)})"
                )
        if c.exposed == c.reference:
            self.add((*loc, "reference"), "a contrast compares two different groups")
        self.estimate(c.hr, (*loc, "hr"), positive=True)

    def partition(self, rec: Record, base: Loc) -> None:
        for arm in sorted({g.arm for g in rec.groups}):
            ns = [g.n for g in rec.groups if g.arm == arm]
            n = self.sizes.get(arm)
            if None in ns or n is None:
                continue
            total = sum(x for x in ns if x is not None)
            if total != n:
                self.add(
                    (*base, "groups"),
                    f"group sizes in '{arm}' add up to {total}, not to its size {n} "
                    "(groups_partition is true)",
                )

    def record(self, rec: Record, base: Loc) -> None:
        gids: list[str] = []
        for gi, g in enumerate(rec.groups):
            gloc: Loc = (*base, "groups", gi)
            if g.id in gids:
                self.add((*gloc, "id"), f"duplicate group id '{g.id}'")
            gids.append(g.id)
            self.arm_ref(g.arm, (*gloc, "arm"))
            if isinstance(g, SurvivalGroup):
                self.survival_group(g, gloc, self.group_n(g, gloc))
            elif isinstance(g, CountGroup):
                self.count_group(g, gloc, self.group_n(g, gloc))
            elif isinstance(g, SummaryGroup):
                self.group_n(g, gloc)
                self.estimate(g.median, (*gloc, "median"), positive=False)
                if g.range is not None:
                    self.interval(g.range, g.mean, (*gloc, "range"), positive=False)
        if isinstance(rec, SurvivalRecord | CountRecord):
            for k, c in enumerate(rec.contrasts):
                self.contrast(c, gids, (*base, "contrasts", k))
        if rec.groups_partition:
            self.partition(rec, base)

    def run(self) -> list[Finding]:
        self.arms()
        for i, ch in enumerate(self.study.characteristics):
            self.characteristic(ch, ("characteristics", i))
        for i, rec in enumerate(self.study.records):
            self.record(rec, ("records", i))
        if self.study.risk_of_bias is not None:
            groups = {r.id: [g.id for g in r.groups] for r in self.study.records}
            randomised = design_class(self.study.design) == "randomised"
            for loc, message in iter_findings(self.study.risk_of_bias, groups, randomised):
                self.add(loc, message)
        return self.out


def check_study(study: Study) -> list[Finding]:
    """Run every cross-field check on one study; returns all findings (empty if clean)."""
    return _Checker(study).run()


# ---- consistency warnings -------------------------------------------------------------
#
# Statistics of the same arm that a source prints can contradict each other without any
# single field being invalid (a median of 25 months with 45% alive at 24 months). Such
# findings are warnings, not errors: the data are kept as printed, and ``hccmeta
# validate`` lists them (``--strict`` turns them into errors).


@dataclass(frozen=True, slots=True)
class Inconsistency:
    """A consistency finding: where (a location path in the file), what, and which check."""

    loc: Loc
    message: str
    check: str


@dataclass(frozen=True, slots=True)
class DataWarning:
    """A consistency warning located in a study file (what ``hccmeta validate`` prints).

    Attributes
    ----------
    file, line : str, int or None
        Where: the study file and the line of the statistic.
    record : str or None
        The record (or other unit) the statistic belongs to.
    message : str
        What does not fit, with the numbers.
    check : str
        Which check found it: ``median_vs_landmark``, ``follow_up_vs_landmarks``,
        ``rate_not_whole_fraction`` or ``p_not_reproduced``.
    study : str
        The study id.
    """

    file: str
    line: int | None
    record: str | None
    message: str
    check: str
    study: str = ""

    def format(self, *, level: str = "warning") -> str:
        """``FILE:LINE: warning: record ID: message`` (``level`` "error" under --strict)."""
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        rec = f"record {self.record}: " if self.record else ""
        return f"{where}: {level}: {rec}{self.message}"

    def __str__(self) -> str:
        return self.format()


def printed_tolerance(value: float) -> float:
    """Half a unit of the last printed digit of a fraction (at least 2 decimals: 0.9 is
    a printed 90%, so +-0.005), plus float noise."""
    text = repr(float(value))
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 2
    return 0.5 * 10.0 ** -max(decimals, 2) + 1e-12


def _time_tolerance(value: float) -> float:
    """Half a unit of the last printed digit of a time in months (25 -> 0.5, 16.5 -> 0.05)."""
    text = repr(float(value))
    decimals = len(text.split(".")[1].rstrip("0")) if "." in text and "e" not in text else 0
    return 0.5 * 10.0**-decimals


def whole_fraction(prop: float, n: int) -> bool:
    """Whether some whole count k of n rounds to the printed rate ``prop``."""
    tol = printed_tolerance(prop)
    k = round(prop * n)
    return any(0 <= j <= n and abs(j / n - prop) <= tol for j in (k - 1, k, k + 1))


_Key = tuple[str, str, str, str | None, str | None]


def _survival_points(study: Study) -> dict[_Key, list[tuple[float, float, Loc, str, str]]]:
    """Per (endpoint, time origin, arm, subgroup variable, level): every printed point of
    the survival curve as (time, S, location, record id, kind), where a median M is the
    point (M, 0.5)."""
    out: dict[_Key, list[tuple[float, float, Loc, str, str]]] = {}
    for i, rec in enumerate(study.records):
        if not isinstance(rec, SurvivalRecord):
            continue
        for gi, g in enumerate(rec.groups):
            sub = g.subgroup
            key: _Key = (
                rec.endpoint,
                rec.time_origin,
                g.arm,
                sub.variable if sub else None,
                sub.level if sub else None,
            )
            base: Loc = ("records", i, "groups", gi)
            pts = out.setdefault(key, [])
            if g.median is not None:
                pts.append((g.median.value, 0.5, (*base, "median", "value"), rec.id, "median"))
            for li, lm in enumerate(g.landmarks):
                loc: Loc = (*base, "landmarks", li, "survival")
                pts.append((lm.time, lm.survival, loc, rec.id, "landmark"))
    return out


def _median_vs_landmarks(study: Study) -> list[Inconsistency]:
    out = []
    for key, pts in _survival_points(study).items():
        medians = [p for p in pts if p[4] == "median"]
        marks = [p for p in pts if p[4] == "landmark"]
        for m, _, _, m_rec, _ in medians:
            tm = _time_tolerance(m)
            for t, s, loc, rec, _ in marks:
                ts = printed_tolerance(s)
                where = f" (record {m_rec})" if m_rec != rec else ""
                group = f"arm {key[2]}" + (f", {key[3]} = {key[4]}" if key[3] else "")
                if t < m - tm and s < 0.5 - ts:
                    out.append(
                        Inconsistency(
                            loc,
                            f"{key[0]} from {key[1]}, {group}: S({t:g}) = {s:g} is below 0.5 "
                            f"but the median is {m:g} months{where}: a Kaplan-Meier median "
                            f"is the first time S <= 0.5, so it cannot exceed {t:g}",
                            "median_vs_landmark",
                        )
                    )
                elif t > m + tm and s > 0.5 + ts:
                    out.append(
                        Inconsistency(
                            loc,
                            f"{key[0]} from {key[1]}, {group}: S({t:g}) = {s:g} is above 0.5 "
                            f"but the median is {m:g} months{where}: survival cannot be "
                            "above one half after the median",
                            "median_vs_landmark",
                        )
                    )
    return out


def _survival_at(points: list[tuple[float, float]], t: float) -> tuple[float, str] | None:
    """S(t) from printed points (time, S), log-linear (constant hazard) between the
    points that bracket t (from S(0) = 1 before the first); None after the last point."""
    pts = sorted([(0.0, 1.0), *points])
    for (t0, s0), (t1, s1) in itertools.pairwise(pts):
        if t0 <= t <= t1 and t1 > t0 and s0 > 0 and s1 > 0:
            frac = (t - t0) / (t1 - t0)
            how = f"log-linear between {t0:g} and {t1:g} months"
            return float(s0 * (s1 / s0) ** frac), how
    return None


def _follow_up(study: Study) -> list[Inconsistency]:
    """Median follow-up F against the survival curve and the deaths of the same arm.

    F is taken as the median observation time of all patients (to death or last
    contact). Then half the patients were observed beyond F, all of them alive at F:
    ``S(F) >= 1/2``; and half were observed for at most F, i.e. died by F (at most
    ``1 - S(F)``) or were censored (at most the share alive at the end, ``(n - D) / n``
    with D deaths printed): ``1 - S(F) + (n - D) / n >= 1/2``.
    """
    out = []
    points = _survival_points(study)
    sizes: dict[str, int | None] = {a.id: a.n for a in study.arms}
    sizes[ALL] = study.population_size
    deaths: dict[tuple[str, str], int] = {}
    for rec in study.records:
        if isinstance(rec, SurvivalRecord) and rec.endpoint == "os":
            for g in rec.groups:
                if g.subgroup is None and g.events is not None:
                    deaths.setdefault((rec.time_origin, g.arm), g.events)
                    deaths.setdefault(("*", g.arm), g.events)
    for i, rec in enumerate(study.records):
        if not (isinstance(rec, SummaryRecord) and rec.quantity.startswith("follow_up")):
            continue
        if rec.time_origin is None or rec.unit != "months":
            continue
        for gi, sg in enumerate(rec.groups):
            if sg.median is None or sg.subgroup is not None:
                continue
            f = sg.median.value
            pts = points.get(("os", rec.time_origin, sg.arm, None, None), [])
            found = _survival_at([(t, s) for t, s, *_ in pts], f)
            if found is None:
                continue
            s_f, how = found
            loc: Loc = ("records", i, "groups", gi, "median", "value")
            if s_f < 0.5 - 0.005:
                out.append(
                    Inconsistency(
                        loc,
                        f"median follow-up {f:g} months, but S({f:g}) = {s_f:.2f} ({how}) "
                        "< 0.5: fewer than half the patients can have been observed beyond "
                        f"{f:g} months",
                        "follow_up_vs_landmarks",
                    )
                )
                continue
            d = deaths.get((rec.time_origin, sg.arm), deaths.get(("*", sg.arm)))
            n = sg.n if sg.n is not None else sizes.get(sg.arm)
            if d is None or not n or d > n:
                continue
            bound = (1.0 - s_f) + (n - d) / n
            if bound < 0.5 - 0.005:
                out.append(
                    Inconsistency(
                        loc,
                        f"median follow-up {f:g} months: half the {n} patients were observed "
                        f"for at most {f:g} months, but at most {1 - s_f:.0%} died by then "
                        f"(S({f:g}) = {s_f:.2f}, {how}) and at most {(n - d) / n:.0%} were "
                        f"censored at all ({n - d} of {n} alive at the end): together "
                        f"{bound:.0%} < 50%",
                        "follow_up_vs_landmarks",
                    )
                )
    return out


def _rates(study: Study) -> list[Inconsistency]:
    """Printed rates without a count that no whole number of patients gives."""
    out = []
    sizes: dict[str, int | None] = {a.id: a.n for a in study.arms}
    sizes[ALL] = study.population_size

    def check(prop: float, n: int | None, loc: Loc, what: str) -> None:
        if n and not whole_fraction(prop, n):
            out.append(
                Inconsistency(
                    loc,
                    f"{what} {prop:g} is not a whole number of patients out of n = {n} "
                    f"(no k/{n} rounds to it; the nearest are {math.floor(prop * n)}/{n} = "
                    f"{math.floor(prop * n) / n:.3f} and {math.ceil(prop * n)}/{n} = "
                    f"{math.ceil(prop * n) / n:.3f})",
                    "rate_not_whole_fraction",
                )
            )

    for i, rec in enumerate(study.records):
        if not isinstance(rec, CountRecord):
            continue
        for gi, g in enumerate(rec.groups):
            n = g.n if g.n is not None else (sizes.get(g.arm) if g.subgroup is None else None)
            base: Loc = ("records", i, "groups", gi)
            if g.proportion is not None and g.count is None:
                check(g.proportion, n, (*base, "proportion"), "printed rate")
            for key, prop in (g.category_proportions or {}).items():
                if key not in (g.categories or {}):
                    check(prop, n, (*base, "category_proportions", key), f"rate of {key}")
    for ci, ch in enumerate(study.characteristics):
        for li, lev in enumerate(ch.levels):
            for key, prop in (lev.proportions or {}).items():
                if (lev.counts or {}).get(key) is None:
                    loc: Loc = ("characteristics", ci, "levels", li, "proportions", key)
                    check(prop, sizes.get(key), loc, f"printed share of '{lev.level}'")
    return out


def consistency_findings(study: Study) -> list[Inconsistency]:
    """Every consistency warning of one study (empty if its statistics agree).

    Checks: a median above a landmark time with S < 0.5, or below one with S > 0.5
    (same endpoint, time origin, arm and subgroup, across records; printed rounding
    allowed); a median follow-up that the survival curve and the deaths cannot produce
    (:func:`_follow_up`); printed rates, without a count, that are no whole fraction of n.
    The p-values that a derived effect cannot reproduce are checked by the effects
    layer (:func:`hccmeta.effects.consistency.p_value_warnings`).
    """
    return [*_median_vs_landmarks(study), *_follow_up(study), *_rates(study)]
