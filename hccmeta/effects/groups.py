"""Who a record's groups are: arm, regimen, size, and the populations they partition.

Sizes are resolved as the data model defines them: a group's printed ``n``; else, for a
whole arm, the arm's ``n``; else, for the whole study (``arm: all``), the population
size, but only where the arms partition the population (otherwise "the whole study"
includes patients outside the arms analysed, e.g. Tamai et al.'s 113 patients who
underwent a first TACE, and is no denominator).

Events are resolved per group: as printed; else, where a group of the same record
holds the events of a population that the record's groups partition (``arm: all`` with
the arms partitioning the population; or an arm with ``groups_partition`` subgroups),
by difference when only one group lacks them, or (with ``impute_events``) split in
proportion to the group sizes. Where the record prints no such total, the events of the
population printed in another record of the study with the same endpoint are used
(:func:`resolve_events`, ``population_events``; flagged ``events_from_other_record``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hccmeta.data.schema import ALL, CountGroup, Study, SurvivalGroup, SurvivalRecord

__all__ = ["GroupInfo", "exposure_order", "group_info", "resolve_events"]

#: Regimens from least to most treatment: in a comparison hccmeta makes itself (two arms
#: of a count record), the arm that comes later is the exposed one.
EXPOSURE_ORDER: tuple[str, ...] = (
    "tace",
    "sorafenib",
    "sorafenib_then_none",
    "sorafenib_then_systemic",
    "sorafenib_then_intrahepatic",
    "sorafenib_tace",
)


def exposure_order(regimen: str | None) -> int:
    """Position of a regimen in :data:`EXPOSURE_ORDER` (-1 if unknown)."""
    return EXPOSURE_ORDER.index(regimen) if regimen in EXPOSURE_ORDER else -1


@dataclass(frozen=True)
class GroupInfo:
    """A record's group with what the analyses need to know about it.

    ``n`` is the group's size where known; ``parent_n`` the size of the arm (or whole
    study) it belongs to, which bounds the sizes of its subgroups.
    """

    id: str
    arm: str
    regimen: str | None
    variable: str | None
    level: str | None
    label: str
    n: int | None
    whole_arm: bool
    parent_n: int | None = None


def group_info(study: Study, g: SurvivalGroup | CountGroup) -> GroupInfo:
    """Arm, regimen, subgroup, label and size of group ``g`` of ``study``."""
    arms = {a.id: a for a in study.arms}
    sub = g.subgroup
    if g.arm == ALL:
        regimens = {a.regimen for a in study.arms}
        regimen = regimens.pop() if len(regimens) == 1 else None
        arm_label = "all patients"
        partition = study.arms_partition_population or len(study.arms) == 1
        arm_n = study.population_size if partition else None
    else:
        arm = arms[g.arm]
        regimen, arm_label, arm_n = arm.regimen, arm.label, arm.n
    n = g.n if g.n is not None else (arm_n if sub is None else None)
    label = (sub.label or sub.level) if sub is not None else arm_label
    return GroupInfo(
        id=g.id,
        arm=g.arm,
        regimen=regimen,
        variable=sub.variable if sub else None,
        level=sub.level if sub else None,
        label=label,
        n=n,
        whole_arm=sub is None and g.arm != ALL,
        parent_n=arm_n,
    )


@dataclass(frozen=True)
class Events:
    """Events of one group as used: the count and how it was obtained."""

    count: int
    how: str  # "printed", "difference", "imputed" or "other_record"
    source: str | None = None  # the record that printed the total, if not this one


def _partition_members(
    study: Study, record: SurvivalRecord, union: SurvivalGroup
) -> list[SurvivalGroup] | None:
    """The groups of ``record`` that partition ``union``'s population, if they do."""
    others = [g for g in record.groups if g.id != union.id]
    if union.subgroup is not None:
        return None
    if union.arm == ALL:
        whole_arms = [g for g in others if g.subgroup is None and g.arm != ALL]
        arm_ids = [a.id for a in study.arms]
        if (
            study.arms_partition_population
            and len(arm_ids) > 1
            and sorted(g.arm for g in whole_arms) == sorted(arm_ids)
        ):
            return whole_arms
    subs = [g for g in others if g.subgroup is not None and g.arm == union.arm]
    variables = {g.subgroup.variable for g in subs if g.subgroup is not None}
    if record.groups_partition and len(subs) >= 2 and len(variables) == 1:
        return subs
    return None


def _partition_of_record(study: Study, record: SurvivalRecord) -> tuple[str, list[SurvivalGroup]]:
    """The population (an arm, or ``all``) that the record's groups partition without a
    group of its own, and the groups: subgroups of one variable of one arm with
    ``groups_partition``, or whole arms that partition the study population."""
    groups = list(record.groups)
    if len(groups) < 2:
        return "", []
    arms = {g.arm for g in groups}
    subs = [g.subgroup for g in groups]
    if len(arms) == 1 and all(sub is not None for sub in subs):
        variables = {sub.variable for sub in subs if sub is not None}
        if record.groups_partition and len(variables) == 1:
            return groups[0].arm, groups
        return "", []
    arm_ids = sorted(a.id for a in study.arms)
    if (
        all(sub is None and g.arm != ALL for g, sub in zip(groups, subs, strict=True))
        and study.arms_partition_population
        and len(arm_ids) > 1
        and sorted(g.arm for g in groups) == arm_ids
    ):
        return ALL, groups
    return "", []


def resolve_events(
    study: Study,
    record: SurvivalRecord,
    *,
    impute: bool,
    population_events: Mapping[str, tuple[int, str]] | None = None,
) -> tuple[dict[str, Events], dict[frozenset[str], int], dict[frozenset[str], str]]:
    """Events per group of a survival record, and totals of partitioned populations.

    Parameters
    ----------
    population_events : mapping, optional
        ``{arm id or 'all': (events, record id)}``: events of whole populations printed
        in *other* records of the study with the same endpoint (e.g. "sixteen patients
        were alive" of 79). Used where the record's groups partition that population
        and the record itself prints no total; the deaths at the time of analysis are
        the same events whatever the time origin.

    Returns
    -------
    events : dict
        ``{group id: Events}`` for every group whose events are printed, follow by
        difference, or (with ``impute``) are imputed.
    totals : dict
        ``{frozenset of member group ids: total events}`` for each population whose
        events are printed and that the record's groups partition.
    sources : dict
        ``{frozenset of member group ids: record id}`` for the totals taken from
        another record (``population_events``).
    """
    events: dict[str, Events] = {
        g.id: Events(g.events, "printed") for g in record.groups if g.events is not None
    }
    totals: dict[frozenset[str], int] = {}
    sources: dict[frozenset[str], str] = {}
    unions: list[tuple[int, list[SurvivalGroup], str | None]] = []
    for union in record.groups:
        members = _partition_members(study, record, union)
        if not members:
            continue
        if union.events is not None:
            unions.append((union.events, members, None))
        elif population_events and union.subgroup is None and union.arm in population_events:
            total, origin = population_events[union.arm]
            events[union.id] = Events(total, "other_record", origin)
            unions.append((total, members, origin))
    if not unions and population_events:
        arm, members = _partition_of_record(study, record)
        if members and arm in population_events:
            total, origin = population_events[arm]
            unions.append((total, members, origin))
    for total, members, source in unions:
        key = frozenset(m.id for m in members)
        totals[key] = total
        if source is not None:
            sources[key] = source
        missing = [m for m in members if m.id not in events]
        if not missing:
            continue
        rest = total - sum(events[m.id].count for m in members if m.id in events)
        if len(missing) == 1:
            if rest >= 0:
                events[missing[0].id] = Events(rest, "difference", source)
            continue
        if not impute:
            continue
        sizes = [group_info(study, m).n for m in missing]
        if any(n is None or n == 0 for n in sizes) or rest < 0:
            continue
        shares = _largest_remainder(rest, [float(n) for n in sizes if n is not None])
        for m, share in zip(missing, shares, strict=True):
            events[m.id] = Events(share, "imputed", source)
    return events, totals, sources


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into whole numbers proportional to ``weights``."""
    raw = [total * w / sum(weights) for w in weights]
    out = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out
