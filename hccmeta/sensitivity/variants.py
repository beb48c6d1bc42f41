"""What a sensitivity variant is, and what every planner of variants is given.

A :class:`Variant` names one change to an analysis (a :class:`~hccmeta.analyses.Variation`)
with its group and a description in words. The planners -- one module per kind of
variant (:mod:`~hccmeta.sensitivity.priors`, :mod:`~hccmeta.sensitivity.fixed`,
:mod:`~hccmeta.sensitivity.loo`, :mod:`~hccmeta.sensitivity.conversions`,
:mod:`~hccmeta.sensitivity.subsets`, :mod:`~hccmeta.sensitivity.alternatives`) -- each
take a :class:`PlanContext` (the analysis, its primary result, the derived effects) and
return the variants that apply to it; a variant that cannot apply (leave-one-out of a
single study, a Turner prior on a log median) is not planned.

:func:`fingerprint` is what a variant feeds the model: the derived effects the analysis
selects under the variant, with their numbers. A conversion or subset variant whose
fingerprint equals the primary's changes nothing and is skipped (listed under
``skipped`` with the reason); two variants with equal fingerprints and model settings are
fitted once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from hccmeta import priors as pr
from hccmeta.analyses.registry import Analysis, Selector
from hccmeta.analyses.run import AnalysisResult, Variation, default_priors, resolve_variation
from hccmeta.analyses.select import criteria_mask
from hccmeta.analyses.take import alternative_of, selectors, subset_rows, take_roles
from hccmeta.effects.table import DerivedEffects
from hccmeta.errors import InputError

__all__ = [
    "EXACT_MODELS",
    "PlanContext",
    "Variant",
    "all_selectors",
    "data_key",
    "effects_signature",
    "fingerprint",
    "measures",
    "model_settings",
    "selection_key",
]

#: Model kinds fitted by the exact engine of the normal-normal model (milliseconds).
EXACT_MODELS = frozenset({"random_effects", "per_regimen"})

#: Columns of the derived effects that each model sees (the fingerprint of a variant).
_MODEL_COLUMNS: dict[str, tuple[str, ...]] = {
    "random_effects": ("study", "yi", "sei"),
    "per_regimen": ("study", "yi", "sei"),
    "prognostic_joint": ("study", "yi", "sei", "analysis", "time_origin"),
    "proportions": ("study", "events_exposed", "n_exposed"),
}
#: Columns compared as text in the fingerprints (the others as numbers).
_TEXT_COLUMNS = frozenset(
    {"effect", "study", "measure", "method", "analysis", "time_origin", "primary"}
)
_ALL_COLUMNS = (
    "effect",
    "study",
    "measure",
    "time",
    "yi",
    "sei",
    "method",
    "events_exposed",
    "n_exposed",
    "events_reference",
    "n_reference",
)


@dataclass(frozen=True)
class Variant:
    """One sensitivity variant of an analysis.

    Attributes
    ----------
    name : str
        Short identifier, unique within the analysis (e.g. ``tau_halfcauchy_0.5``).
    group : str
        One of :data:`hccmeta.sensitivity.table.GROUPS`.
    description : str
        What the variant changes, in words.
    variation : Variation
        The change, as :func:`hccmeta.analyses.run_analysis` takes it.
    prior_change : bool
        A change of priors only: for an MCMC model it may be served by importance
        reweighting of the primary posterior (see :mod:`hccmeta.sensitivity.reweight`).
    is_primary_prior : bool
        The grid's row of the primary analysis's own prior (equal to the primary).
    """

    name: str
    group: str
    description: str
    variation: Variation = field(default_factory=Variation)
    prior_change: bool = False
    is_primary_prior: bool = False


@dataclass
class PlanContext:
    """What the planners see.

    Attributes
    ----------
    analysis : Analysis
        The definition.
    primary : AnalysisResult
        Its primary result (status ``ok``).
    derived : DerivedEffects
        The effects derived with the default options.
    derive : callable
        ``derive(options)``: the effects derived with other options (cached).
    study_labels : dict
        Study id -> label ('Lee 2017'; :attr:`hccmeta.data.Evidence.study_labels`), for
        descriptions.
    """

    analysis: Analysis
    primary: AnalysisResult
    derived: DerivedEffects
    derive: Callable[[Any], DerivedEffects]
    study_labels: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The model kind of the analysis."""
        return self.analysis.model

    @property
    def exact(self) -> bool:
        """Whether the analysis is fitted by the exact engine."""
        return self.kind in EXACT_MODELS

    @property
    def fit_model(self) -> str:
        """Name of the fitted model: ``normal``, ``prognostic``, ``binomial.contrast``,
        ``binomial.proportion``, ``survival``, ..."""
        if self.exact:
            return "normal"
        fit = next(iter(self.primary.fits.values()), None)
        return str(getattr(fit, "model", self.kind))

    @property
    def studies(self) -> list[str]:
        """Studies of the primary analysis, in order of appearance."""
        if self.primary.effects.empty:
            return []
        return list(dict.fromkeys(self.primary.effects["study"].astype(str)))

    @property
    def estimands(self) -> list[str]:
        """Estimands of the primary analysis."""
        return [str(e) for e in self.primary.estimates["estimand"]]

    def primary_priors(self) -> tuple[pr.Prior | None, pr.Prior | None]:
        """The (mu, tau) priors the primary analysis used for what the prior grid varies
        (for the joint prognostic model: mu_f and the heterogeneity scale's hyperprior)."""
        a = self.analysis
        if self.exact:
            mu0, tau0 = default_priors(a.measure)
            return (
                pr.parse(a.prior_mu) if a.prior_mu else mu0,
                pr.parse(a.prior_tau) if a.prior_tau else tau0,
            )
        from hccmeta.sensitivity.draws import fit_priors

        fit = next(iter(self.primary.fits.values()))
        found = fit_priors(fit)
        model = self.fit_model
        if model == "prognostic":
            return found.get("mu"), found.get("tau_scale")
        if model == "binomial.contrast":
            return found.get("d"), found.get("tau")
        if model == "survival":
            return found.get("mu_hr"), found.get("tau")
        return found.get("mu"), found.get("tau")


def data_key(variation: Variation) -> tuple[Any, ...]:
    """The parts of a variation that change which effects the model sees."""
    return (
        variation.options,
        variation.exclude_studies,
        variation.subset,
        variation.prefer_univariate,
        variation.alternative,
    )


def model_settings(variation: Variation) -> tuple[str, ...]:
    """The parts of a variation that change the model but not its data."""
    return (
        repr(variation.prior_mu),
        repr(variation.prior_tau),
        repr(variation.prior_tau_scale),
        variation.effects_model,
        variation.survival_shape,
        variation.survival_overlap,
        variation.method,
        repr(variation.settings),
        str(variation.bias),
    )


def _selector_groups(analysis: Analysis, variation: Variation) -> list[tuple[str, list[Selector]]]:
    """The selectors of each role (regimen, factor; ``""`` for a single estimand), as the
    runners take them."""
    if analysis.model == "random_effects":
        selects = selectors(analysis.select)
        if variation.alternative is not None:
            alt = alternative_of(analysis, variation.alternative)
            selects = selectors(alt.select) or selects
        return [("", selects)]
    if analysis.model == "prognostic_joint":
        assert analysis.factors is not None
        return [(name, [f.select]) for name, f in analysis.factors.items()]
    assert analysis.regimens is not None
    groups = []
    for role, reg in analysis.regimens.items():
        sels = selectors(reg.select)
        if analysis.model == "survival_multiformat":
            # the multi-format synthesis takes every survival statistic of the arms
            sels = [
                s.model_copy(update={"measure": m, "time": None})
                for s in sels
                for m in ("log_median", "cloglog_survival")
            ]
        groups.append((role, sels))
    return groups


def selection_key(analysis: Analysis, variation: Variation) -> tuple[Any, ...]:
    """What the selection of a fingerprint depends on: two analyses with equal keys
    select the same effects (e.g. the two analyses of the survival synthesis)."""
    groups = [
        (role, [s.model_dump_json() for s in sels])
        for role, sels in _selector_groups(analysis, variation)
    ]
    return (analysis.model, repr(groups), repr(analysis.mixes), data_key(variation))


def all_selectors(analysis: Analysis) -> list[Selector]:
    """Every selector the analysis or one of its variants takes effects with: those of
    its roles (for the multi-format survival synthesis, of every survival statistic of
    the arms) and those of its alternative contrasts. Variants leave studies out, take
    subsets or prefer other derivations of the same effects, none selects more."""
    out = [sel for _, sels in _selector_groups(analysis, Variation()) for sel in sels]
    for alt in analysis.alternatives:
        out.extend(selectors(alt.select))
    return out


def measures(analysis: Analysis) -> set[str]:
    """The measures of the derived effects the analysis can take."""
    out = {sel.measure for sel in all_selectors(analysis)}
    if analysis.model == "survival_multiformat":
        out |= {"log_median", "cloglog_survival", "log_hr"}
    return out


def effects_signature(analysis: Analysis, derived: DerivedEffects) -> tuple[Any, ...]:
    """The derived effects (with their numbers and preference) the analysis could take:
    if two derivations agree on it, the analysis sees the same data.

    These are the preferred derivations (``primary``) that pass the criteria of one of
    the analysis's selectors that do not depend on how effects are derived
    (:func:`hccmeta.analyses.select.criteria_mask`): every row a selection can take
    under any derivation is among them, and a row that is preferred under one
    derivation and not the other is in one signature only. For the multi-format
    survival synthesis (which also takes every survival effect of the selected
    studies), every effect of the measures the analysis can take. Where a selector
    recombines levels, the contrasts of the variable that the recombined contrasts are
    built from (:func:`hccmeta.analyses.levels.combine_levels`) are included too."""
    eff = derived.effects
    cols = [*_ALL_COLUMNS, "primary", "analysis", "time_origin"]
    if analysis.model == "survival_multiformat":
        return _rows_key(eff[eff["measure"].isin(sorted(measures(analysis)))], cols)
    keep = np.zeros(len(eff), dtype=bool)
    log_hr = np.asarray((eff["kind"] == "contrast") & (eff["measure"] == "log_hr"), dtype=bool)
    for sel in all_selectors(analysis):
        keep |= criteria_mask(eff, sel)
        for m in sel.levels:
            if m.combine:  # the sources of the recombined contrasts
                keep |= log_hr & np.asarray(eff["subgroup_variable"] == m.variable, dtype=bool)
    keep &= np.asarray(eff["primary"].astype(bool), dtype=bool)
    return _rows_key(eff[keep], cols)


def fingerprint(
    analysis: Analysis,
    derived: DerivedEffects,
    variation: Variation,
    *,
    primary: AnalysisResult | None = None,
) -> tuple[Any, ...] | None:
    """The derived effects (and their numbers) the analysis's model sees under
    ``variation``, per role; None when the selection itself fails (the fit will say why).

    With the ``primary`` result, a variation that only leaves studies out or takes a
    subset is read off the primary's effects (what the runners do after selecting),
    without selecting again. For the multi-format survival synthesis, which also takes
    the arms' hazard ratios and every landmark, every survival effect of the selected
    studies is included, so that a change to any of them counts as a change.
    """
    variation = resolve_variation(analysis, variation)
    cols = _MODEL_COLUMNS.get(analysis.model, _ALL_COLUMNS)
    only_rows = replace(variation, exclude_studies=(), subset=None, settings=None) == replace(
        Variation(), keep_structure=variation.keep_structure
    )
    if primary is not None and only_rows and analysis.model in _MODEL_COLUMNS:
        parts = []
        eff = primary.effects
        if not eff.empty:
            # as the runners do: leave studies out, then one subset over every role
            eff = subset_rows(eff[~eff["study"].isin(variation.exclude_studies)], variation.subset)
        for role in dict.fromkeys(eff["role"].astype(str)) if not eff.empty else []:
            rows = eff[eff["role"].astype(str) == role]
            if not rows.empty:
                parts.append((role, _rows_key(rows, cols)))
        return tuple(sorted(parts, key=repr))
    parts = []
    studies: set[str] = set()
    try:
        groups = list(_selector_groups(analysis, variation))
        if analysis.model == "survival_multiformat":  # one role entry per statistic family
            groups = [(role, [sel]) for role, selects in groups for sel in selects]
        taken = take_roles(derived.effects, groups, variation)
        if not taken.empty:
            for role in dict.fromkeys(taken["role"].astype(str)):
                rows = taken[taken["role"].astype(str) == role]
                studies |= set(rows["study"].astype(str))
                parts.append((role, _rows_key(rows, cols)))
    except InputError:
        return None
    if analysis.model == "survival_multiformat" and studies:
        eff = derived.effects
        extra = eff[
            eff["primary"].astype(bool)
            & eff["study"].astype(str).isin(studies)
            & (eff["type"] == "survival")
            & ~eff["study"].astype(str).isin(variation.exclude_studies)
        ]
        parts.append(("survival", _rows_key(extra, cols)))
    return tuple(sorted(parts, key=repr))


def _rows_key(rows: pd.DataFrame, columns: Sequence[str]) -> tuple[int, ...]:
    """An order-free key of the rows' values in ``columns``: a sorted 64-bit hash of each
    row's values as exact text (numbers as floats, so that 12 and 12.0 agree, and
    anything not a number as NaN; missing text as ``None``)."""
    cols = [c for c in columns if c in rows.columns]
    if rows.empty or not cols:
        return ()
    values: list[list[Any]] = []
    for c in cols:
        col = rows[c]
        if c in _TEXT_COLUMNS:
            values.append(["None" if pd.isna(v) else str(v) for v in col.tolist()])
        elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            values.append(col.to_numpy(dtype=float, na_value=np.nan).tolist())
        else:
            values.append(pd.to_numeric(col, errors="coerce").astype(float).tolist())
    return tuple(
        sorted(
            int.from_bytes(hashlib.blake2b(repr(row).encode(), digest_size=8).digest(), "little")
            for row in zip(*values, strict=True)
        )
    )


def unique_names(variants: Sequence[Variant]) -> None:
    """Raise if two variants share a name (a planner bug)."""
    seen: set[str] = set()
    for v in variants:
        if v.name in seen:
            raise InputError(f"two sensitivity variants are called {v.name!r}")
        seen.add(v.name)
