"""Cross-field checks of a validated study (what single-field types cannot express).

:func:`check_study` returns :class:`Finding` objects: a location path in the file
(``("records", 3, "groups", 0, "events")``) and a message. The loader turns the path
into a line, the id of the record / arm / characteristic, and a field name.
"""

from __future__ import annotations

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
