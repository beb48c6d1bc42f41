"""Cross-field checks of a validated study (what single-field types cannot express).

Each check yields :class:`Finding` objects: the location path in the file, the record
(or arm / characteristic) id and a message. The loader maps the path to a line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from hccmeta.data.schema import (
    ALL,
    Characteristic,
    Contrast,
    CorrelationRecord,
    CountRecord,
    Estimate,
    Interval,
    Study,
    SummaryRecord,
    SurvivalRecord,
)

#: How far a printed rate may differ from count / n: half a percentage point of
#: rounding plus a little for rates printed to one decimal of a percent.
RATE_ROUNDING = 0.0051

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem found by a cross-field check."""

    loc: Loc
    record: str | None
    field: str
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


def _interval(
    iv: Interval, est: float | None, loc: Loc, rid: str, *, positive: bool
) -> Iterator[Finding]:
    lo, hi = iv.lower, iv.upper
    if lo is None and hi is None:
        yield Finding(loc, rid, format_field(loc[-1:]), "an interval needs a lower or upper bound")
        return
    if lo is not None and hi is not None and not lo < hi:
        yield Finding(
            (*loc, "lower"),
            rid,
            "",
            f"interval bounds reversed or equal: lower {lo:g} >= upper {hi:g}",
        )
    if positive:
        for name, b in (("lower", lo), ("upper", hi)):
            if b is not None and b <= 0:
                yield Finding((*loc, name), rid, "", f"bound {b:g} must be > 0 for a ratio")
    if est is not None:
        if lo is not None and est < lo:
            yield Finding(
                loc, rid, "", f"the estimate {est:g} lies below its interval's lower bound {lo:g}"
            )
        if hi is not None and est > hi:
            yield Finding(
                loc, rid, "", f"the estimate {est:g} lies above its interval's upper bound {hi:g}"
            )
    if iv.kind == "range" and iv.level is not None:
        yield Finding((*loc, "level"), rid, "", "a range has no confidence level")


def _estimate(e: Estimate | None, loc: Loc, rid: str, *, positive: bool) -> Iterator[Finding]:
    if e is None:
        return
    if positive and e.value <= 0:
        yield Finding((*loc, "value"), rid, "", f"must be > 0 (got {e.value:g})")
    if e.ci is not None:
        yield from _interval(e.ci, e.value, (*loc, "ci"), rid, positive=positive)


def _arm_sizes(study: Study) -> dict[str, int | None]:
    sizes: dict[str, int | None] = {a.id: a.n for a in study.arms}
    sizes[ALL] = study.population_size
    return sizes


def _group_refs(
    groups: Sequence[SurvivalRecord | CountRecord | SummaryRecord | CorrelationRecord],
) -> None:  # pragma: no cover - typing helper only
    return None


def check_study(study: Study) -> list[Finding]:
    """Run every cross-field check on one study; returns all findings (empty if clean)."""
    out: list[Finding] = []
    sizes = _arm_sizes(study)
    arm_ids = [a.id for a in study.arms]

    # arms
    seen: set[str] = set()
    for i, arm in enumerate(study.arms):
        loc: Loc = ("arms", i, "id")
        if arm.id == ALL:
            out.append(Finding(loc, arm.id, "id", f"arm id '{ALL}' is reserved for the whole study"))
        if arm.id in seen:
            out.append(Finding(loc, arm.id, "id", f"duplicate arm id '{arm.id}'"))
        seen.add(arm.id)
    if study.arms_partition_population:
        ns = [a.n for a in study.arms]
        if None not in ns and study.population_size is not None:
            total = sum(n for n in ns if n is not None)
            if total != study.population_size:
                out.append(
                    Finding(
                        ("arms",),
                        None,
                        "arms",
                        f"arm sizes add up to {total}, not to the population size "
                        f"{study.population_size} (arms_partition_population is true)",
                    )
                )

    def arm_ref(arm: str, loc: Loc, rid: str) -> None:
        if arm != ALL and arm not in arm_ids:
            out.append(
                Finding(
                    loc,
                    rid,
                    format_field(loc[2:]),
                    f"unknown arm '{arm}' (the study's arms: {', '.join(arm_ids)}, or '{ALL}')",
                )
            )

    # characteristics
    for ci, ch in enumerate(study.characteristics):
        base: Loc = ("characteristics", ci)
        for li, lev in enumerate(ch.levels):
            for key in lev.counts or {}:
                arm_ref(key, (*base, "levels", li, "counts", key), ch.id)
            for key in lev.proportions or {}:
                arm_ref(key, (*base, "levels", li, "proportions", key), ch.id)
            for key, prop in (lev.proportions or {}).items():
                count = (lev.counts or {}).get(key)
                n = sizes.get(key)
                if count is not None and n:
                    _rate(out, count, n, prop, (*base, "levels", li, "proportions", key), ch.id)
            for key, count in (lev.counts or {}).items():
                n = sizes.get(key)
                if n is not None and count > n:
                    out.append(
                        Finding(
                            (*base, "levels", li, "counts", key),
                            ch.id,
                            format_field(("levels", li, "counts", key)),
                            f"count {count} exceeds the size {n} of arm '{key}'",
                        )
                    )
        for stat in ("mean", "sd", "median"):
            for key in getattr(ch, stat) or {}:
                arm_ref(key, (*base, stat, key), ch.id)
        if ch.levels_complete:
            _levels_add_up(out, ch, base, sizes)

    # records
    for ri, rec in enumerate(study.records):
        base = ("records", ri)
        rid = rec.id
        gids: list[str] = []
        for gi, g in enumerate(rec.groups):
            gloc: Loc = (*base, "groups", gi)
            if g.id in gids:
                out.append(Finding((*gloc, "id"), rid, f"groups[{gi}].id", f"duplicate group id '{g.id}'"))
            gids.append(g.id)
            arm_ref(g.arm, (*gloc, "arm"), rid)
            n = g.n if g.n is not None else (sizes.get(g.arm) if g.subgroup is None else None)
            if g.n is not None and g.subgroup is None and g.arm in sizes:
                arm_n = sizes[g.arm]
                if arm_n is not None and g.n != arm_n:
                    out.append(
                        Finding(
                            (*gloc, "n"),
                            rid,
                            f"groups[{gi}].n",
                            f"n {g.n} differs from the size {arm_n} of arm '{g.arm}'",
                        )
                    )
            if g.n is not None and g.subgroup is not None:
                arm_n = sizes.get(g.arm)
                if arm_n is not None and g.n > arm_n:
                    out.append(
                        Finding(
                            (*gloc, "n"),
                            rid,
                            f"groups[{gi}].n",
                            f"subgroup n {g.n} exceeds the size {arm_n} of arm '{g.arm}'",
                        )
                    )
            _check_group(out, rec, g, gloc, rid, n)
        if isinstance(rec, SurvivalRecord | CountRecord):
            for k, c in enumerate(rec.contrasts):
                _check_contrast(out, c, gids, (*base, "contrasts", k), rid)
        if rec.groups_partition:
            _partition(out, rec, base, sizes)
    return out


def _rate(out: list[Finding], count: int, n: int, prop: float, loc: Loc, rid: str) -> None:
    if abs(count / n - prop) > RATE_ROUNDING:
        out.append(
            Finding(
                loc,
                rid,
                format_field(loc[2:]),
                f"printed rate {prop:g} disagrees with {count}/{n} = {count / n:.4f}",
            )
        )


def _levels_add_up(
    out: list[Finding], ch: Characteristic, base: Loc, sizes: dict[str, int | None]
) -> None:
    keys = {k for lev in ch.levels for k in (lev.counts or {})}
    for key in sorted(keys):
        counts = [(lev.counts or {}).get(key) for lev in ch.levels]
        n = sizes.get(key)
        if None in counts or n is None:
            continue
        total = sum(c for c in counts if c is not None)
        if total != n:
            out.append(
                Finding(
                    (*base, "levels"),
                    ch.id,
                    "levels",
                    f"counts of '{key}' add up to {total}, not to its size {n} "
                    "(levels_complete is true)",
                )
            )


def _check_group(out: list[Finding], rec: object, g: object, gloc: Loc, rid: str, n: int | None) -> None:
    field = lambda *parts: format_field((*gloc[2:], *parts))  # noqa: E731
    if isinstance(rec, SurvivalRecord):
        from hccmeta.data.schema import SurvivalGroup

        assert isinstance(g, SurvivalGroup)
        for f in _estimate(g.median, (*gloc, "median"), rid, positive=True):
            out.append(Finding(f.loc, rid, format_field(f.loc[2:]), f.message))
        if g.events is not None and n is not None and g.events > n:
            out.append(Finding((*gloc, "events"), rid, field("events"), f"events {g.events} exceed n {n}"))
        last = None
        for li, lm in enumerate(g.landmarks):
            lloc = (*gloc, "landmarks", li)
            if lm.ci is not None:
                for f in _interval(lm.ci, lm.survival, (*lloc, "ci"), rid, positive=False):
                    out.append(Finding(f.loc, rid, format_field(f.loc[2:]), f.message))
                for name, b in (("lower", lm.ci.lower), ("upper", lm.ci.upper)):
                    if b is not None and not 0 <= b <= 1:
                        out.append(
                            Finding(
                                (*lloc, "ci", name),
                                rid,
                                field("landmarks", li, "ci", name),
                                f"bound {b:g} of a survival proportion must be a fraction in [0, 1]"
                                + (f" (write {b / 100:g})" if 1 < b <= 100 else ""),
                            )
                        )
            if lm.n_at_risk is not None and n is not None and lm.n_at_risk > n:
                out.append(
                    Finding((*lloc, "n_at_risk"), rid, field("landmarks", li, "n_at_risk"),
                            f"n at risk {lm.n_at_risk} exceeds n {n}")
                )
            if last is not None:
                if lm.time <= last[0]:
                    out.append(Finding((*lloc, "time"), rid, field("landmarks", li, "time"),
                                       "landmark times must increase"))
                elif lm.survival > last[1]:
                    out.append(
                        Finding((*lloc, "survival"), rid, field("landmarks", li, "survival"),
                                f"survival {lm.survival:g} at {lm.time:g} months exceeds "
                                f"{last[1]:g} at {last[0]:g} months: survival cannot increase")
                    )
            last = (lm.time, lm.survival)
    elif isinstance(rec, CountRecord):
        from hccmeta.data.schema import CountGroup

        assert isinstance(g, CountGroup)
        if g.count is not None and n is not None and g.count > n:
            out.append(Finding((*gloc, "count"), rid, field("count"), f"count {g.count} exceeds n {n}"))
        if g.count is not None and n and g.proportion is not None:
            _rate(out, g.count, n, g.proportion, (*gloc, "proportion"), rid)
        if g.categories is not None:
            total = sum(g.categories.values())
            if n is not None and total > n:
                out.append(Finding((*gloc, "categories"), rid, field("categories"),
                                   f"category counts add up to {total}, more than n {n}"))
            if n and g.category_proportions:
                for key, prop in g.category_proportions.items():
                    if key not in g.categories:
                        out.append(Finding((*gloc, "category_proportions", key), rid,
                                           field("category_proportions", key),
                                           f"no count for category '{key}'"))
                    else:
                        _rate(out, g.categories[key], n, prop,
                              (*gloc, "category_proportions", key), rid)
        if g.count is None and g.proportion is None and g.categories is None:
            out.append(Finding(gloc, rid, field(), "a count group needs count, proportion or categories"))
    elif isinstance(rec, SummaryRecord):
        from hccmeta.data.schema import SummaryGroup

        assert isinstance(g, SummaryGroup)
        for f in _estimate(g.median, (*gloc, "median"), rid, positive=False):
            out.append(Finding(f.loc, rid, format_field(f.loc[2:]), f.message))


def _check_contrast(out: list[Finding], c: Contrast, gids: list[str], loc: Loc, rid: str) -> None:
    for role in ("exposed", "reference"):
        gid = getattr(c, role)
        if gid not in gids:
            out.append(Finding((*loc, role), rid, format_field((*loc[2:], role)),
                               f"unknown group '{gid}' (the record's groups: {', '.join(gids)})"))
    if c.exposed == c.reference:
        out.append(Finding((*loc, "reference"), rid, format_field((*loc[2:], "reference")),
                           "a contrast compares two different groups"))
    if c.hr is not None:
        for f in _estimate(c.hr, (*loc, "hr"), rid, positive=True):
            out.append(Finding(f.loc, rid, format_field(f.loc[2:]), f.message))


def _partition(out: list[Finding], rec: object, base: Loc, sizes: dict[str, int | None]) -> None:
    groups = getattr(rec, "groups")  # noqa: B009
    arms = {g.arm for g in groups}
    for arm in sorted(arms):
        members = [g for g in groups if g.arm == arm]
        ns = [g.n for g in members]
        n = sizes.get(arm)
        if None in ns or n is None:
            continue
        total = sum(x for x in ns if x is not None)
        if total != n:
            rid = getattr(rec, "id")  # noqa: B009
            out.append(Finding((*base, "groups"), rid, "groups",
                               f"group sizes in '{arm}' add up to {total}, not to its size {n} "
                               "(groups_partition is true)"))
