"""Running a registered analysis: select its effects, fit its model, report its estimands.

:func:`run_analysis` is the one entry point; the sensitivity layer calls it with
variations (priors, a study left out, fixed effects, other derivation options, an
alternative contrast mapping, a subset of studies). The result is an
:class:`AnalysisResult` whose :meth:`~AnalysisResult.summary` has one row per estimand
with fixed columns (see :data:`ESTIMATE_COLUMNS`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from hccmeta import priors as pr
from hccmeta.analyses.bias import describe_bias, study_bias
from hccmeta.analyses.certainty import CERTAINTY_COLUMNS, estimate_type, rate_estimates
from hccmeta.analyses.dominance import DOMINANCE_COLUMNS, prior_dominance
from hccmeta.analyses.estimates import (
    ESTIMATE_COLUMNS,
    estimate_row,
    n_patients,
    natural_columns,
)
from hccmeta.analyses.registry import Analysis, Registry, load_registry
from hccmeta.analyses.select import check_mixing
from hccmeta.analyses.take import alternative_of, selectors, take, take_roles
from hccmeta.data import Evidence
from hccmeta.defaults import DEFAULT_SEED
from hccmeta.effects.table import DerivedEffects, DeriveOptions
from hccmeta.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from hccmeta.models.mcmc import SamplerSettings

__all__ = [
    "BIAS_ADJUSTED_KEYS",
    "CREDIBILITY_COLUMNS",
    "DOMINANCE_COLUMNS",
    "ESTIMATE_COLUMNS",
    "JOINT_FIT",
    "SINGLE_FIT",
    "SUBSETS",
    "AnalysisResult",
    "Variation",
    "default_priors",
    "natural_columns",
    "resolve_variation",
    "run_analysis",
]

#: Keys of the bias-adjusted estimate (``bias_adjusted_<key>`` columns).
BIAS_ADJUSTED_KEYS = (
    "median",
    "ci_lower",
    "ci_upper",
    "natural_median",
    "natural_ci_lower",
    "natural_ci_upper",
    "p_benefit",
)

#: Columns that follow :data:`ESTIMATE_COLUMNS` in ``AnalysisResult.estimates``: the
#: design behind the estimate, its certainty of evidence (GRADE, see
#: :mod:`hccmeta.analyses.certainty`) with the reasons, and where non-randomised evidence
#: contributes to a comparison of interventions, the bias-adjusted estimate.
CREDIBILITY_COLUMNS = (
    "design",
    "certainty",
    "certainty_reasons",
    *(f"bias_adjusted_{key}" for key in BIAS_ADJUSTED_KEYS),
)

#: Key in ``AnalysisResult.fits`` of the one fit of a random-effects analysis (its
#: estimand is ``effect``) and of the one fit of a joint model (prognostic factors,
#: proportions, multi-format survival) that answers every estimand at once. Analyses
#: with a fit per regimen key them by regimen.
SINGLE_FIT = "effect"
JOINT_FIT = "joint"

#: Study subsets a variation may restrict an analysis to (SPEC section 6).
SUBSETS: dict[str, str] = {
    "prospective_only": "prospective studies only",
    "adjusted_only": "adjusted (multivariable) hazard ratios only",
    "same_endpoint_origin": "the most common endpoint and time origin only",
    "full_text_only": "studies available as full text only",
    "direct_only": "studies that answer the question directly only (none declared indirect)",
}

#: Bias adjustments a variation may ask for (``Variation.bias``).
BIAS_CHOICES = ("default", "mean_0", "doubled_sd", "halved", "doubled", "combined")

_POOL_MEASURE = {"log_hr": "hr", "log_or": "or", "log_rr": "rr"}


def default_priors(measure: str) -> tuple[pr.Prior, pr.Prior]:
    """Default (mu, tau) priors of a random-effects fit on ``measure``.

    log HR / log OR / log RR: mu ~ Normal(0, 1), tau ~ HalfNormal(0.5) (SPEC section 4).
    log median (months): mu ~ Normal(ln 10, 1.5) — 95% of medians between 0.5 and 190
    months — and tau ~ HalfNormal(0.5). cloglog survival and logit proportions:
    mu ~ Normal(0, 2), tau ~ HalfNormal(1) (weakly informative on the probability scale).
    """
    if measure in _POOL_MEASURE:
        return pr.DEFAULT_MU, pr.DEFAULT_TAU
    if measure == "log_median":
        return pr.Normal(math.log(10.0), 1.5), pr.HalfNormal(0.5)
    return pr.Normal(0.0, 2.0), pr.HalfNormal(1.0)


@dataclass(frozen=True)
class Variation:
    """What a sensitivity variant changes relative to the primary analysis.

    Attributes
    ----------
    prior_mu, prior_tau : Prior, optional
        Replace the analysis's priors.
    effects_model : {"random", "fixed"}
        Random effects (default) or a common effect (tau = 0).
    exclude_studies : tuple of str
        Studies left out (leave-one-out).
    options : DeriveOptions, optional
        Other derivation options (conversion assumptions).
    alternative : str, optional
        Name of an alternative contrast mapping of the analysis.
    subset : str, optional
        One of :data:`SUBSETS`.
    method : {"exact", "mcmc"}
        Engine of normal-normal fits.
    prefer_univariate : bool
        Where a study reports the same comparison adjusted and univariate, take the
        univariate one (the default prefers adjusted).
    prior_tau_scale : Prior, optional
        The hyperprior of the common heterogeneity scale of the joint prognostic model
        (a LogNormal; :data:`hccmeta.models.prognostic.DEFAULT_TAU_SCALE` by default).
        Only the ``prognostic_joint`` model has one.
    settings : hccmeta.models.mcmc.SamplerSettings, optional
        Sampler settings of the MCMC models (default: each model's own); the exact
        engine ignores them.
    survival_shape : {"weibull", "exponential"}
        Shape of the latent survival curves of the multi-format synthesis (the
        exponential is the Weibull with shape 1).
    survival_overlap : {"joint", "families", "none"}
        How the multi-format synthesis counts statistics one study reports on the same
        patients (:func:`hccmeta.models.survival.fit_survival`'s ``overlap``): jointly
        (default), each kind weighted by 1/m, or as if independent.
    bias : str, optional
        Adjust every study's result in the comparison for bias: a variant of the
        default bias distributions set from its risk of bias (``"default"``,
        ``"mean_0"``, ``"doubled_sd"``, ``"halved"``, ``"doubled"``:
        :data:`hccmeta.priors.BIAS_VARIANTS`; see :mod:`hccmeta.analyses.bias`), or
        ``"combined"``: the model that learns the mean and SD of the bias of the
        non-randomised studies from the randomised ones
        (:func:`hccmeta.models.pool_combined`). Random-effects and proportions
        (odds-ratio) analyses only.
    keep_structure : bool
        Leave studies out (``exclude_studies``, ``subset``) by keeping their rows with
        no information (an SE of 1e8) instead of dropping them, so that an MCMC model
        keeps the compiled structure of the full data (no recompilation); estimands
        only those rows inform are not reported. The same posterior as dropping them,
        up to Monte Carlo error. Honoured by the joint prognostic model (whose
        structure depends on the number of rows and factors); ignored by the others.
    """

    prior_mu: pr.Prior | None = None
    prior_tau: pr.Prior | None = None
    effects_model: Literal["random", "fixed"] = "random"
    exclude_studies: tuple[str, ...] = ()
    options: DeriveOptions | None = None
    alternative: str | None = None
    subset: str | None = None
    method: Literal["exact", "mcmc"] = "exact"
    prefer_univariate: bool = False
    prior_tau_scale: pr.Prior | None = None
    settings: SamplerSettings | None = None
    keep_structure: bool = False
    survival_shape: Literal["weibull", "exponential"] = "weibull"
    survival_overlap: Literal["joint", "families", "none"] = "joint"
    bias: str | None = None

    def __post_init__(self) -> None:
        if self.subset is not None and self.subset not in SUBSETS:
            raise InputError(f"unknown subset {self.subset!r} (known: {', '.join(SUBSETS)})")
        if self.bias is not None and self.bias not in BIAS_CHOICES:
            raise InputError(
                f"unknown bias adjustment {self.bias!r} (known: {', '.join(BIAS_CHOICES)})"
            )


@dataclass
class AnalysisResult:
    """The result of one analysis (or of one sensitivity variant of it).

    Attributes
    ----------
    analysis : Analysis
        The definition that was run.
    status : {"ok", "no_eligible_records"}
        ``no_eligible_records`` when no derived effect matches the definition.
    message : str
        One line saying what was pooled (or why nothing was).
    effects : DataFrame
        The effects used, oriented as the question asks, with a ``role`` column (the
        regimen or factor they stand for; empty for a single estimand) and an
        ``orientation`` column: ``"as derived"``, or ``"reversed"`` where the analysis
        swapped exposed and reference of the derived contrast and negated ``yi`` (so
        ``yi``, ``exposed``, ``reference`` here are as the analysis pools them).
    estimates : DataFrame
        One row per estimand (columns :data:`ESTIMATE_COLUMNS`, then
        :data:`CREDIBILITY_COLUMNS` and :data:`DOMINANCE_COLUMNS`); ``benefit`` says which
        side of zero ``p_benefit`` is the probability of ("below": HR < 1);
        ``certainty`` is the GRADE certainty of evidence with its ``certainty_reasons``;
        where one study informs an estimate, its own estimate and the prior that
        dominates the pooled one (:mod:`hccmeta.analyses.dominance`).
    fits : dict
        The model fits by role (``PoolResult`` or ``PosteriorResult``).
    frequentist : DataFrame or None
        REML and DerSimonian-Laird estimates for comparison (normal-normal models).
    diagnostics : DataFrame
        One row per MCMC fit: role, ok, max_rhat, min_ess_bulk, min_ess_tail,
        n_divergent, retries, messages.
    variation : Variation
        What was varied (the default for the primary analysis).
    data_hash, seed
        Provenance of the numbers.
    certainty : DataFrame
        The certainty rating per estimand, domain by domain
        (:data:`hccmeta.analyses.certainty.CERTAINTY_COLUMNS`).
    basis : dict
        ``{estimand: [effect ids]}``: the effect rows behind each estimate.
    conditions : dict
        ``{study: [conditions of entry]}``: what the statistics of each contributing
        study are conditional on (``inclusion_conditions`` of its study file).
    conflicts : DataFrame
        (property) the conflict p-value of every statistic (Presanis et al. 2013).
    """

    analysis: Analysis
    status: Literal["ok", "no_eligible_records"]
    message: str
    effects: pd.DataFrame
    estimates: pd.DataFrame
    fits: dict[str, Any] = field(default_factory=dict)
    frequentist: pd.DataFrame | None = None
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    variation: Variation = field(default_factory=Variation)
    data_hash: str = ""
    seed: int = DEFAULT_SEED
    priors: dict[str, str] = field(default_factory=dict)
    certainty: pd.DataFrame = field(default_factory=pd.DataFrame)
    basis: dict[str, list[str]] = field(default_factory=dict)
    conditions: dict[str, list[str]] = field(default_factory=dict)
    _conflicts: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def conflicts(self) -> pd.DataFrame:
        """Cross-validated predictive conflict p-value of every statistic that enters the
        model (columns study, record, statistic, p, method; computed on first access):
        see :mod:`hccmeta.analyses.conflicts`."""
        if self._conflicts is None:
            from hccmeta.analyses.conflicts import conflict_table

            self._conflicts = conflict_table(self)
        return self._conflicts

    @property
    def name(self) -> str:
        """The analysis name."""
        return self.analysis.name

    @property
    def ok(self) -> bool:
        """True when every MCMC fit passed its diagnostics."""
        if self.diagnostics.empty:
            return True
        return bool(self.diagnostics["ok"].all())

    @property
    def k(self) -> int:
        """Number of studies behind the analysis."""
        return int(self.effects["study"].nunique()) if not self.effects.empty else 0

    def summary(self) -> pd.DataFrame:
        """The pooled estimates, one row per estimand (central 95% intervals)."""
        return self.estimates.copy()

    def estimate_records(self) -> list[dict[str, Any]]:
        """The estimates as JSON-ready objects: :data:`ESTIMATE_COLUMNS` plus ``design``,
        ``certainty``, ``certainty_reasons`` (a list) and ``bias_adjusted`` (an object
        with ``median``, ``ci_lower``, ``ci_upper``, ``natural_median``,
        ``natural_ci_lower``, ``natural_ci_upper`` and ``p_benefit``, or null where no
        bias-adjusted estimate applies), ``study_estimate`` (``estimate``, ``ci_lower``,
        ``ci_upper``: the one study's own estimate where k = 1, else null),
        ``dominant_prior`` and ``dominant_prior_text`` (:mod:`hccmeta.analyses.dominance`).
        Non-finite numbers become None."""

        def clean(value: Any) -> Any:
            if isinstance(value, float | np.floating):
                return float(value) if math.isfinite(value) else None
            if isinstance(value, np.integer):
                return int(value)
            return value

        out = []
        for row in self.estimates.to_dict(orient="records"):
            rec = {k: clean(row.get(k)) for k in ESTIMATE_COLUMNS}
            rec["design"] = row.get("design")
            rec["certainty"] = row.get("certainty")
            reasons = row.get("certainty_reasons")
            rec["certainty_reasons"] = list(reasons) if isinstance(reasons, tuple | list) else []
            adjusted = {key: clean(row.get(f"bias_adjusted_{key}")) for key in BIAS_ADJUSTED_KEYS}
            rec["bias_adjusted"] = adjusted if adjusted["median"] is not None else None
            own = {
                key: clean(row.get(f"study_{key}")) for key in ("estimate", "ci_lower", "ci_upper")
            }
            rec["study_estimate"] = own if own["estimate"] is not None else None
            rec["dominant_prior"] = row.get("dominant_prior")
            rec["dominant_prior_text"] = row.get("dominant_prior_text")
            out.append(rec)
        return out

    @property
    def primary_estimand(self) -> str | None:
        """The estimand the statement and sensitivity plot focus on."""
        if self.estimates.empty:
            return None
        wanted = self.analysis.primary_estimand
        if wanted is not None and wanted in set(self.estimates["estimand"]):
            return wanted
        return str(self.estimates["estimand"].iloc[0])

    @property
    def datatree(self) -> xr.DataTree:
        """The fits as one ``xarray.DataTree``: the single fit at the root, or a child per
        regimen; posterior, prior, observed data, log likelihood and sampling statistics,
        with the priors, data hashes, versions, diagnostics, the analysis name and the
        seed in the attributes (:func:`hccmeta.analyses.tree.result_tree`)."""
        from hccmeta.analyses.tree import result_tree

        if not self.fits:
            raise InputError(f"analysis {self.name!r} has no fit ({self.status})")
        return result_tree(self)

    def to_netcdf(self, path: str | os.PathLike[str]) -> str:
        """Write :attr:`datatree` to a netCDF file; returns the format written:
        ``"netcdf4"`` (with h5py: HDF5 groups, ``xarray.open_datatree``) or
        ``"netcdf3-flat"`` (without h5py: :func:`hccmeta.report.netcdf.read_posteriors`
        reads it back)."""
        from hccmeta.models.netcdf import write_tree

        return write_tree(self.datatree, path)

    def forest_plot(self, **kwargs: Any) -> Any:
        """A forest plot of the analysis (matplotlib Figure): the ``forest_plot``
        presenter (:func:`register_presenter`; :func:`hccmeta.report.plots.forest_plot`)."""
        return presenter("forest_plot")(self, **kwargs)

    def interpret(self) -> str:
        """A short statement in words that a clinician can read: the ``interpret``
        presenter (:func:`register_presenter`; :func:`hccmeta.report.interpret.interpret`)."""
        return str(presenter("interpret")(self))

    def __repr__(self) -> str:
        return f"AnalysisResult({self.name!r}, status={self.status!r}, k={self.k})"


#: Functions that present a result, by name, as ``"module:function"`` references: the
#: report layer provides them and ``hccmeta/__init__.py`` registers them, so that
#: :meth:`AnalysisResult.forest_plot` and :meth:`AnalysisResult.interpret` work without
#: this layer importing the report layer (imported only when first called).
_PRESENTERS: dict[str, str] = {}


def register_presenter(name: str, target: str) -> None:
    """Register the function that presents a result as ``name`` (``"forest_plot"``,
    ``"interpret"``): ``target`` is ``"package.module:function"``, imported on first use."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise InputError(f"presenter {name!r}: {target!r} is not 'module:function'")
    _PRESENTERS[name] = target


def presenter(name: str) -> Callable[..., Any]:
    """The registered presenter ``name`` (an InputError if none is registered)."""
    import importlib

    target = _PRESENTERS.get(name)
    if target is None:
        known = ", ".join(sorted(_PRESENTERS)) or "none"
        raise InputError(f"no presenter {name!r} is registered (registered: {known})")
    module, _, attr = target.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return fn


# ---------------------------------------------------------------------------------------
def resolve_variation(analysis: Analysis, variation: Variation) -> Variation:
    """The variation as the runners apply it: the ``direct_only`` subset leaves out the
    studies the registry declares indirect (in any element, for any estimand)."""
    if variation.subset != "direct_only":
        return variation
    indirect = sorted({d.study for d in analysis.directness if d.level > 0})
    keep = tuple(s for s in variation.exclude_studies if s not in indirect)
    return replace(variation, subset=None, exclude_studies=keep + tuple(indirect))


def _registry(evidence: Evidence, registry: Registry | None) -> Registry:
    return registry if registry is not None else load_registry(evidence.data_dir)


def _benefit(analysis: Analysis, p_below: float) -> float:
    return p_below if analysis.benefit == "below" else 1.0 - p_below


# ---------------------------------------------------------------------------------------
def _fit_normal(
    rows: pd.DataFrame,
    measure: str,
    analysis: Analysis,
    variation: Variation,
    seed: int,
) -> Any:
    from hccmeta.models.normal import pool

    mu0, tau0 = default_priors(measure)
    prior_mu = variation.prior_mu or (pr.parse(analysis.prior_mu) if analysis.prior_mu else mu0)
    prior_tau = variation.prior_tau or (
        pr.parse(analysis.prior_tau) if analysis.prior_tau else tau0
    )
    bias = None
    if variation.bias == "combined":
        from hccmeta.models import pool_combined

        return pool_combined(
            rows["yi"].to_numpy(float),
            rows["sei"].to_numpy(float),
            randomised=rows["randomised"].astype(bool).tolist(),
            study=rows["study"].astype(str).tolist(),
            measure=_POOL_MEASURE.get(measure, "generic"),
            prior_mu=prior_mu,
            prior_tau=prior_tau,
            seed=seed,
            settings=variation.settings,
        )
    if variation.bias is not None:
        good = "below" if measure == "log_hr" else analysis.benefit
        by_study = study_bias(rows, good=good, variant=variation.bias)
        bias = [by_study[str(s)] for s in rows["study"]]
    return pool(
        rows["yi"].to_numpy(float),
        rows["sei"].to_numpy(float),
        study=rows["study"].astype(str).tolist(),
        measure=_POOL_MEASURE.get(measure, "generic"),
        prior_mu=prior_mu,
        prior_tau=None if variation.effects_model == "fixed" else prior_tau,
        model=variation.effects_model,
        method=variation.method,
        seed=seed,
        bias=bias,
    )


def _normal_estimates(
    fit: Any, rows: pd.DataFrame, estimand: str, label: str, measure: str, analysis: Analysis
) -> list[dict[str, Any]]:
    s = fit.summary()
    mu = s.loc["mu"]
    p_below = float(fit.prob_below(0.0, var="mu")) if measure in _POOL_MEASURE else math.nan
    rows_out = [
        estimate_row(
            estimand,
            label,
            measure,
            mu,
            natural=measure,
            p_benefit=_benefit(analysis, p_below) if not math.isnan(p_below) else math.nan,
            k=len(rows),
            n_patients=n_patients(rows),
            benefit=analysis.benefit,
            basis=rows,
        )
    ]
    return rows_out


def _frequentist(rows: pd.DataFrame) -> pd.DataFrame | None:
    from hccmeta.models.frequentist import rma

    if len(rows) < 1:
        return None
    out = []
    for method in ("REML", "DL"):
        fit = rma(rows["yi"].to_numpy(float), sei=rows["sei"].to_numpy(float), method=method)
        out.append(fit.to_dict())
    return pd.DataFrame(out)


def _run_random_effects(
    analysis: Analysis, derived: DerivedEffects, variation: Variation, seed: int
) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any], pd.DataFrame | None]:
    selects = selectors(analysis.select)
    if variation.alternative is not None:
        alt = alternative_of(analysis, variation.alternative)
        selects = selectors(alt.select) or selects
    rows = take(derived.effects, selects, variation, what=analysis.name)
    if rows.empty:
        return rows, [], {}, None
    check_mixing(rows, analysis.mixes, analysis.name)
    rows = rows.assign(role="")
    fit = _fit_normal(rows, analysis.measure, analysis, variation, seed)
    est = _normal_estimates(fit, rows, "effect", analysis.estimand, analysis.measure, analysis)
    return rows, est, {SINGLE_FIT: fit}, _frequentist(rows)


def _run_per_regimen(
    analysis: Analysis, derived: DerivedEffects, variation: Variation, seed: int
) -> tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any], pd.DataFrame | None]:
    assert analysis.regimens is not None
    roles = [(role, selectors(reg.select)) for role, reg in analysis.regimens.items()]
    rows = take_roles(derived.effects, roles, variation)
    estimates: list[dict[str, Any]] = []
    fits: dict[str, Any] = {}
    if rows.empty:
        return rows, estimates, fits, None
    check_mixing(rows, analysis.mixes, analysis.name)
    for role, reg in analysis.regimens.items():
        part = rows[rows["role"] == role]
        if part.empty:
            continue
        fit = _fit_normal(part, analysis.measure, analysis, variation, seed)
        fits[role] = fit
        estimates += _normal_estimates(fit, part, role, reg.label, analysis.measure, analysis)
    return rows, estimates, fits, None


_RUNNERS: dict[str, Callable[..., Any]] = {
    "random_effects": _run_random_effects,
    "per_regimen": _run_per_regimen,
}


def register_runner(kind: str, runner: Callable[..., Any]) -> None:
    """Register the runner of a model kind (used by the modules of the MCMC models)."""
    _RUNNERS[kind] = runner


def _diagnostics(fits: Mapping[str, Any]) -> pd.DataFrame:
    out = []
    for role, fit in fits.items():
        diag = getattr(fit, "diagnostics", None)
        if diag is None:
            continue
        out.append(
            {
                "role": role,
                "ok": bool(diag.ok),
                "max_rhat": diag.max_rhat,
                "min_ess_bulk": diag.min_ess_bulk,
                "min_ess_tail": diag.min_ess_tail,
                "n_divergent": diag.n_divergent,
                "retries": diag.retries,
                "messages": "; ".join(diag.messages),
            }
        )
    return pd.DataFrame(out)


def run_analysis(
    analysis: str | Analysis,
    evidence: Evidence,
    *,
    derived: DerivedEffects | None = None,
    variation: Variation | None = None,
    registry: Registry | None = None,
    seed: int = DEFAULT_SEED,
    rate: bool = True,
) -> AnalysisResult:
    """Run one registered analysis on the evidence.

    Parameters
    ----------
    analysis : str or Analysis
        The name of a registered analysis (``hccmeta analyses`` lists them) or a
        definition.
    evidence : Evidence
        The validated study data (:func:`hccmeta.load_studies`).
    derived : DerivedEffects, optional
        Effects derived beforehand (default: derived now with ``variation.options``).
    variation : Variation, optional
        What a sensitivity variant changes (default: nothing).
    registry : Registry, optional
        The registry (default: ``analyses.yaml`` of the evidence's data directory).
    seed : int, keyword-only
        Seed of every sampler and of the exact engine's posterior draws.
    rate : bool, keyword-only
        Rate the certainty of the estimates, fit the bias-adjusted model where the
        analysis calls for it, and check prior dominance (the default). False gives the
        estimates alone, with those columns empty: what a sensitivity variant's row
        takes (:data:`hccmeta.sensitivity.table.ESTIMATE_FIELDS`).

    Returns
    -------
    AnalysisResult
    """
    from hccmeta.effects import derive_effects

    variation = variation or Variation()
    definition = (
        analysis if isinstance(analysis, Analysis) else _registry(evidence, registry).get(analysis)
    )
    _check_supported(definition, variation)
    if derived is None or (variation.options is not None and derived.options != variation.options):
        derived = derive_effects(evidence, **(variation.options or DeriveOptions()).as_dict())
    runner = _RUNNERS.get(definition.model)
    if runner is None:
        _load_model_runners()
        runner = _RUNNERS[definition.model]
    rows, estimates, fits, freq = runner(
        definition, derived, resolve_variation(definition, variation), seed
    )
    basis = {str(e["estimand"]): list(e.get("effect_ids", [])) for e in estimates}
    bias_note: str | None = None
    certainty = pd.DataFrame(columns=list(CERTAINTY_COLUMNS))
    if rows.empty or not estimates:
        status: Literal["ok", "no_eligible_records"] = "no_eligible_records"
        message = f"no eligible records for {definition.name}: " + _why_empty(
            definition, variation, evidence, derived
        )
        est = pd.DataFrame(columns=[*ESTIMATE_COLUMNS, *CREDIBILITY_COLUMNS, *DOMINANCE_COLUMNS])
    else:
        status = "ok"
        est = pd.DataFrame(estimates, columns=list(ESTIMATE_COLUMNS))
        if rate:
            certainty = rate_estimates(definition, est, rows, basis, evidence)
            est = _with_credibility(est, certainty)
        else:
            est = est.reindex(columns=[*ESTIMATE_COLUMNS, *CREDIBILITY_COLUMNS])
        if rate and _wants_bias_adjustment(definition, est, variation):
            adjusted = run_analysis(
                definition,
                evidence,
                derived=derived,
                variation=replace(variation, bias="default"),
                registry=registry,
                seed=seed,
            )
            est = _fill_bias_adjusted(est, adjusted.estimates)
            if "bias" in adjusted.priors:
                bias_note = adjusted.priors["bias"]
        message = (
            f"{definition.name}: {rows['study'].nunique()} studies, "
            f"{len(rows)} effects, {len(est)} estimands"
        )
    priors = _fit_priors(fits)
    if status == "ok" and rate:
        est = prior_dominance(definition, est, rows, basis, priors)
    elif status == "ok":
        est = est.reindex(columns=[*est.columns, *DOMINANCE_COLUMNS])
    if variation.bias is not None and variation.bias != "combined" and not rows.empty:
        good = _good_side(definition)
        exposed = definition.contrast[0] if definition.contrast else None
        by_study = study_bias(rows, good=good, exposed_role=exposed, variant=variation.bias)
        priors["bias"] = describe_bias(by_study, rows)
    elif bias_note is not None:
        priors["bias"] = bias_note
    return AnalysisResult(
        analysis=definition,
        status=status,
        message=message,
        effects=rows,
        estimates=est,
        fits=fits,
        frequentist=freq,
        diagnostics=_diagnostics(fits),
        variation=variation,
        data_hash=evidence.data_hash,
        seed=seed,
        priors=priors,
        certainty=certainty,
        basis=basis,
        conditions={
            str(sid): [c.condition for c in evidence.study(str(sid)).inclusion_conditions]
            for sid in dict.fromkeys(rows["study"].astype(str) if not rows.empty else [])
            if evidence.study(str(sid)).inclusion_conditions
        },
    )


def _fit_priors(fits: Mapping[str, Any]) -> dict[str, str]:
    """The priors of every fit in words, keyed ``<role>.<parameter>`` (the parameter
    alone for the analysis's own fit, :data:`SINGLE_FIT` or :data:`JOINT_FIT`)."""
    priors: dict[str, str] = {}
    for role, fit in fits.items():
        fit_priors = getattr(fit, "priors", None)
        if fit_priors is None:  # a PoolResult: mu and tau
            tau = fit.prior_tau
            fit_priors = {"mu": fit.prior_mu, "tau": tau if tau is not None else "0 (fixed)"}
        for key, value in fit_priors.items():
            single = role in ("", SINGLE_FIT, JOINT_FIT)
            priors[key if single else f"{role}.{key}"] = str(value)
    return priors


def _good_side(definition: Analysis) -> str:
    """Which side of zero favours the exposed group in the comparison a bias adjusts:
    below for a hazard ratio (the survival synthesis's comparison, whatever it reports),
    else the analysis's ``benefit``."""
    if definition.measure == "log_hr" or definition.model == "survival_multiformat":
        return "below"
    return definition.benefit


#: Model kinds that can adjust a comparison for bias (``Variation.bias``).
BIAS_MODELS = {"random_effects", "proportions", "survival_multiformat"}


def _wants_bias_adjustment(definition: Analysis, est: pd.DataFrame, variation: Variation) -> bool:
    """A primary result (no other variation) of a model that can adjust for bias, with a
    comparison of interventions that non-randomised evidence informs."""
    if definition.model not in BIAS_MODELS:
        return False
    if replace(variation, settings=None, method="exact") != Variation():
        return False
    return any(
        estimate_type(definition, row) == "intervention" and row["design"] != "randomised"
        for _, row in est.iterrows()
    )


def _fill_bias_adjusted(est: pd.DataFrame, adjusted: pd.DataFrame) -> pd.DataFrame:
    """The bias-adjusted columns of the comparisons, from the adjusted fit's rows."""
    out = est.copy()
    by = adjusted.set_index("estimand")
    for i, row in out.iterrows():
        if not isinstance(row["benefit"], str) or row["estimand"] not in by.index:
            continue
        a = by.loc[row["estimand"]]
        for key in BIAS_ADJUSTED_KEYS:
            out.loc[i, f"bias_adjusted_{key}"] = float(a[key])
    return out


def _with_credibility(est: pd.DataFrame, certainty: pd.DataFrame) -> pd.DataFrame:
    """The estimates with :data:`CREDIBILITY_COLUMNS` (bias-adjusted columns empty until
    a bias-adjusted fit fills them)."""
    rated = certainty.set_index("estimand")
    out = est.copy()
    out["design"] = out["estimand"].map(rated["design"])
    out["certainty"] = out["estimand"].map(rated["certainty"])
    out["certainty_reasons"] = out["estimand"].map(rated["certainty_reasons"])
    for col in CREDIBILITY_COLUMNS[3:]:
        out[col] = math.nan
    return out[[*ESTIMATE_COLUMNS, *CREDIBILITY_COLUMNS]]


def _why_empty(
    definition: Analysis, variation: Variation, evidence: Evidence, derived: DerivedEffects
) -> str:
    """Why an analysis (or variant) has no eligible records, generated from the data."""
    from hccmeta.analyses.explain import explain_empty

    selects = selectors(definition.select)
    if variation.alternative is not None:
        selects = selectors(alternative_of(definition, variation.alternative).select) or selects
    for reg in (definition.regimens or {}).values():
        selects += selectors(reg.select)
    for factor in (definition.factors or {}).values():
        selects += selectors(factor.select)
    if variation.exclude_studies or variation.subset is not None:
        unvaried = replace(variation, exclude_studies=(), subset=None)
        found = [s for s in selects if not take(derived.effects, [s], unvaried).empty]
        if found:
            left = ", ".join(variation.exclude_studies)
            what = [f"leaving out {left}"] if left else []
            what += [SUBSETS[variation.subset]] if variation.subset is not None else []
            return f"no effect remains with {' and '.join(what)}"
    return explain_empty(selects, evidence, derived)


#: Model kinds whose runners honour ``Variation.effects_model == "fixed"``, an
#: ``alternative`` mapping and ``prior_tau_scale``; any other kind raises rather than
#: silently returning the unvaried fit.
FIXED_EFFECT_MODELS = {"random_effects", "per_regimen"}
ALTERNATIVE_MODELS = {"random_effects"}
TAU_SCALE_MODELS = {"prognostic_joint"}
SHAPE_MODELS = {"survival_multiformat"}


def _check_supported(definition: Analysis, variation: Variation) -> None:
    kind = definition.model
    if variation.effects_model == "fixed" and kind not in FIXED_EFFECT_MODELS:
        raise InputError(
            f"analysis {definition.name!r}: the {kind} model has no fixed-effect variant"
        )
    if variation.alternative is not None and kind not in ALTERNATIVE_MODELS:
        raise InputError(
            f"analysis {definition.name!r}: alternative mappings are not supported by the "
            f"{kind} model"
        )
    if variation.survival_shape != "weibull" and kind not in SHAPE_MODELS:
        raise InputError(
            f"analysis {definition.name!r}: the {kind} model has no latent survival shape"
        )
    if variation.survival_overlap != "joint" and kind not in SHAPE_MODELS:
        raise InputError(
            f"analysis {definition.name!r}: the {kind} model has no multi-format survival "
            "likelihood"
        )
    if variation.bias is not None and kind not in BIAS_MODELS:
        raise InputError(f"analysis {definition.name!r}: the {kind} model has no bias adjustment")
    if variation.prior_tau_scale is not None and kind not in TAU_SCALE_MODELS:
        raise InputError(
            f"analysis {definition.name!r}: the {kind} model has no heterogeneity scale "
            "hyperprior (prior_tau_scale)"
        )


def _load_model_runners() -> None:
    """Import the modules that register the MCMC model runners."""
    from hccmeta.analyses import mcmc_runners  # noqa: F401


def replace_variation(variation: Variation, **changes: Any) -> Variation:
    """A copy of ``variation`` with ``changes`` (dataclasses.replace, re-validated)."""
    return replace(variation, **changes)


def selected(result: AnalysisResult) -> Sequence[str]:
    """The record ids behind an analysis result."""
    if result.effects.empty:
        return []
    ids: list[str] = []
    for recs in result.effects["records"].astype(str):
        ids += [r for r in recs.split(";") if r]
    return sorted(set(ids))
