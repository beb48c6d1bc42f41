"""Runners of the analyses whose models are sampled with MCMC (PyMC + nutpie).

Each runner selects its effects, shapes them into the model's input table, fits the
model (one compiled structure per model shape; priors and data are ``pm.Data``) and
turns the posterior into estimate rows with the columns of
:data:`hccmeta.analyses.run.ESTIMATE_COLUMNS`. Imported by :mod:`hccmeta.analyses.run`
the first time such an analysis runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from hccmeta.analyses.bias import study_bias
from hccmeta.analyses.estimates import estimate_row, n_patients
from hccmeta.analyses.registry import Analysis, Selector
from hccmeta.analyses.run import JOINT_FIT, Variation, register_runner
from hccmeta.analyses.select import check_mixing
from hccmeta.analyses.take import selectors, subset_rows, take, take_roles
from hccmeta.effects.table import DerivedEffects
from hccmeta.errors import InputError

Runner = tuple[pd.DataFrame, list[dict[str, Any]], dict[str, Any], pd.DataFrame | None]

#: Standard error given to a masked row (``Variation.keep_structure``): its log-likelihood
#: is constant to within 1e-16 of the other terms, i.e. the row carries no information.
MASKED_SE = 1e8


def stats(x: np.ndarray) -> dict[str, float]:
    """mean, median, sd and the central 95% interval of draws."""
    x = np.asarray(x, dtype=float).ravel()
    return {
        "mean": float(np.mean(x)),
        "median": float(np.median(x)),
        "sd": float(np.std(x, ddof=1)),
        "ci_lower": float(np.quantile(x, 0.025)),
        "ci_upper": float(np.quantile(x, 0.975)),
    }


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def _benefit(analysis: Analysis, draws: np.ndarray) -> float:
    below = float(np.mean(np.asarray(draws) < 0.0))
    return below if analysis.benefit == "below" else 1.0 - below


# ------------------------------------------------------------------ prognostic factors
def run_prognostic(
    analysis: Analysis, derived: DerivedEffects, variation: Variation, seed: int
) -> Runner:
    """Pool every factor's log HRs jointly (:func:`hccmeta.models.prognostic.fit_prognostic`)."""
    from hccmeta.models.prognostic import fit_prognostic

    assert analysis.factors is not None
    # keep_structure: studies left out (or outside a subset) keep their rows with no
    # information, so that the model keeps the compiled structure of the full data
    masking = variation.keep_structure and bool(variation.exclude_studies or variation.subset)
    unmasked = replace(variation, exclude_studies=(), subset=None)
    roles = [(name, selectors(factor.select)) for name, factor in analysis.factors.items()]
    rows = take_roles(derived.effects, roles, unmasked if masking else variation)
    if rows.empty:
        return pd.DataFrame(), [], {}, None
    if masking:
        # what take_roles does after selecting: leave studies out, then take the subset
        kept = subset_rows(rows[~rows["study"].isin(variation.exclude_studies)], variation.subset)
        masked = ~rows["effect"].isin(set(kept["effect"]))
    else:
        masked = pd.Series(False, index=rows.index)
    if masked.all():
        return pd.DataFrame(), [], {}, None
    check_mixing(rows[~masked], analysis.mixes, analysis.name)
    data = pd.DataFrame(
        {
            "factor": rows["role"],
            "study": rows["study"],
            "yi": rows["yi"].astype(float),
            "sei": rows["sei"].astype(float).where(~masked, MASKED_SE),
            "adjusted": rows["analysis"] == "adjusted",
            "time_origin": rows["time_origin"].astype(str),
        }
    )
    rows = rows[~masked].reset_index(drop=True)
    kwargs: dict[str, Any] = {}
    if variation.prior_mu is not None:
        kwargs["prior_mu"] = variation.prior_mu
    if variation.prior_tau is not None:
        raise InputError(
            "the joint prognostic model has a hierarchical prior on the heterogeneities; "
            "vary prior_tau through the per-factor random-effects fits"
        )
    if variation.prior_tau_scale is not None:
        kwargs["prior_tau_scale"] = variation.prior_tau_scale
    fit = fit_prognostic(
        data,
        adjusted="pool" if "analysis" in analysis.mixes else "error",
        time_origin="pool" if "time_origin" in analysis.mixes else "error",
        seed=seed,
        settings=variation.settings,
        **kwargs,
    )
    estimates = []
    mu = fit.posterior["mu"]
    for name, factor in analysis.factors.items():
        sub = rows[rows["role"] == name]
        if sub.empty:
            continue
        x = mu.sel(factor=name).to_numpy().ravel()
        estimates.append(
            estimate_row(
                name,
                factor.label,
                "log_hr",
                stats(x),
                natural="log_hr",
                p_benefit=_benefit(analysis, x),
                k=len(sub),
                n_patients=n_patients(sub),
                benefit=analysis.benefit,
                basis=sub,
            )
        )
    return rows, estimates, {JOINT_FIT: fit}, None


# ------------------------------------------------------------------------ proportions
#: Fits reused within a process: the same model on the same data with the same seed and
#: settings (the two survival analyses share one fit; a proportions analysis's absolute
#: model does not change with its contrast's prior or bias variants). Last few only.
_FIT_CACHE: dict[str, Any] = {}
_FIT_CACHE_SIZE = 4


def _comparison_settings(
    analysis: Analysis,
    variation: Variation,
    rows: pd.DataFrame,
    *,
    mu_key: str,
    good: str,
    exposed: str,
) -> dict[str, Any]:
    """The keyword arguments a variation gives a model's comparison: its mu prior (under
    the model's name ``mu_key``), its tau prior and, with ``variation.bias``, each study's
    bias distribution (:func:`hccmeta.analyses.bias.study_bias`; the combined model is
    refused: it exists for random-effects pooling only)."""
    kwargs: dict[str, Any] = {}
    if variation.prior_mu is not None:
        kwargs[mu_key] = variation.prior_mu
    if variation.prior_tau is not None:
        kwargs["prior_tau"] = variation.prior_tau
    if variation.bias == "combined":
        raise InputError(
            f"{analysis.name}: the combined model of randomised and non-randomised "
            "evidence is available for random-effects pooling only"
        )
    if variation.bias is not None:
        kwargs["bias"] = study_bias(rows, good=good, exposed_role=exposed, variant=variation.bias)
    return kwargs


def _cached(key: str, fit: Callable[[], Any]) -> Any:
    """``fit()``, or the fit of the same ``key`` made before."""
    if key in _FIT_CACHE:
        _FIT_CACHE[key] = _FIT_CACHE.pop(key)  # most recently used last
        return _FIT_CACHE[key]
    result = fit()
    _FIT_CACHE[key] = result
    while len(_FIT_CACHE) > _FIT_CACHE_SIZE:
        _FIT_CACHE.pop(next(iter(_FIT_CACHE)))
    return result


def _regimen_rows(
    analysis: Analysis, rows: pd.DataFrame, fit: Any, present: list[str]
) -> list[dict[str, Any]]:
    """The absolute proportion of each regimen from :func:`fit_proportion`'s ``p``."""
    assert analysis.regimens is not None
    out = []
    for role in present:
        sub = rows[rows["role"] == role]
        x = _logit(fit.posterior["p"].sel(arm=role).to_numpy())
        out.append(
            estimate_row(
                role,
                analysis.regimens[role].label,
                "logit_p",
                stats(x),
                natural="logit_p",
                p_benefit=math.nan,
                k=int(sub["study"].nunique()),
                n_patients=float(sub["n_exposed"].sum()),
                basis=sub,
            )
        )
    return out


def run_proportions(
    analysis: Analysis, derived: DerivedEffects, variation: Variation, seed: int
) -> Runner:
    """The absolute proportion of each regimen from its own arms and the log OR of the
    contrast.

    The absolute rates come from a baseline model in the NICE DSU TSD 5 sense: each
    regimen's arms pooled on their own (:func:`hccmeta.models.binomial.fit_proportion`,
    regimens unlinked, its default priors), so that a regimen observed in one study is
    that study's rate with the heterogeneity prior's uncertainty -- not the reference
    regimen's rate shifted by the contrast, which would borrow the other regimen's arms
    (fit key ``"regimens"``). The log OR comes from the contrast model
    (:func:`hccmeta.models.binomial.fit_contrast`, key ``""``), whose priors and bias the
    variation sets. Arms that differ in a property the analysis does not declare under
    ``mixes`` (response criteria, ...) are refused for both. Without a comparative
    study the absolute model alone is fitted (key ``""``, with the variation's tau prior).
    """
    from hccmeta.models.binomial import fit_contrast, fit_proportion

    assert analysis.regimens is not None
    roles = [(role, selectors(reg.select)) for role, reg in analysis.regimens.items()]
    rows = take_roles(derived.effects, roles, variation)
    if rows.empty:
        return pd.DataFrame(), [], {}, None
    check_mixing(rows, analysis.mixes, analysis.name)
    missing = rows["events_exposed"].isna() | rows["n_exposed"].isna()
    if missing.any():
        raise InputError(
            "proportions need events and n: " + ", ".join(rows.loc[missing, "effect"].astype(str))
        )
    data = pd.DataFrame(
        {
            "study": rows["study"].astype(str),
            "arm": rows["role"].astype(str),
            "events": rows["events_exposed"].astype(float),
            "n": rows["n_exposed"].astype(float),
        }
    )
    present = list(dict.fromkeys(data["arm"]))
    contrast = analysis.contrast
    fits: dict[str, Any] = {}
    comparative = bool((data.groupby("study")["arm"].nunique() >= 2).any())
    if not (contrast is not None and all(r in present for r in contrast) and comparative):
        kwargs: dict[str, Any] = {}
        if variation.prior_tau is not None:
            kwargs["prior_tau"] = variation.prior_tau
        fit = fit_proportion(data, seed=seed, settings=variation.settings, **kwargs)
        fits[JOINT_FIT] = fit
        return rows, _regimen_rows(analysis, rows, fit, present), fits, None
    key = repr(("proportion", data.to_numpy().tolist(), seed, repr(variation.settings)))
    regimens = _cached(key, lambda: fit_proportion(data, seed=seed, settings=variation.settings))
    estimates = _regimen_rows(analysis, rows, regimens, present)
    kwargs = _comparison_settings(
        analysis, variation, rows, mu_key="prior_d", good=analysis.benefit, exposed=contrast[0]
    )
    fit = fit_contrast(
        data, reference=contrast[1], seed=seed, settings=variation.settings, **kwargs
    )
    fits[JOINT_FIT] = fit
    fits["regimens"] = regimens
    d = fit.posterior["d"].to_numpy().ravel()
    arms_per_study = data.groupby("study")["arm"].nunique()
    both = rows[rows["study"].isin(arms_per_study[arms_per_study > 1].index)]
    labels = analysis.regimens
    estimates.append(
        estimate_row(
            "log_or",
            f"Odds ratio, {labels[contrast[0]].label} vs {labels[contrast[1]].label}",
            "log_or",
            stats(d),
            natural="log_or",
            p_benefit=_benefit(analysis, d),
            benefit=analysis.benefit,
            k=int(both["study"].nunique()),
            n_patients=float(both["n_exposed"].sum()),
            basis=both,
        )
    )
    return rows, estimates, fits, None


# ------------------------------------------------------- multi-format survival synthesis
def _family(select: Selector, measure: str) -> Selector:
    return select.model_copy(update={"measure": measure})


def _contrast_selector(exposed: Selector, reference: Selector) -> Selector:
    return exposed.model_copy(
        update={
            "kind": "contrast",
            "measure": "log_hr",
            "reference_regimen": reference.exposed_regimen,
            "exposed_arm": None,
            "time": None,
        }
    )


def run_survival(
    analysis: Analysis, derived: DerivedEffects, variation: Variation, seed: int
) -> Runner:
    """The multi-format Weibull synthesis (:func:`hccmeta.models.survival.fit_survival`):
    every arm's median, its landmark survival and the arms' contrast enter at once, by
    their joint likelihood; with ``variation.bias`` each study's log HR carries its bias
    distribution (:func:`hccmeta.analyses.bias.study_bias`). A contrast of a study without
    arm-level statistics of both arms is left out."""
    from hccmeta.models.survival import fit_survival

    assert analysis.regimens is not None and analysis.contrast is not None
    exp_role, ref_role = analysis.contrast
    roles: list[tuple[str, list[Selector]]] = [
        (role, [_family(sel, measure)])
        for role, reg in analysis.regimens.items()
        for sel in selectors(reg.select)
        for measure in ("log_median", "cloglog_survival")
    ]
    exp_sel = selectors(analysis.regimens[exp_role].select)[0]
    ref_sel = selectors(analysis.regimens[ref_role].select)[0]
    roles.append(("contrast", [_contrast_selector(exp_sel, ref_sel)]))
    rows = take_roles(derived.effects, roles, variation)
    if rows.empty:
        return pd.DataFrame(), [], {}, None
    # a contrast enters the latent curves of its study's two arms: a study that reports
    # a hazard ratio but no arm-level statistic of both arms (medians, landmarks) has no
    # curves for it to act on, and is left out (its HR enters the random-effects
    # analyses of hazard ratios)
    arm_level = rows[rows["kind"] == "group"].groupby("study")["role"].agg(set)
    with_arms = {s for s, r in arm_level.items() if {exp_role, ref_role} <= r}
    rows = rows[(rows["role"] != "contrast") | rows["study"].isin(with_arms)]
    rows = rows.reset_index(drop=True)
    if rows.empty:
        return pd.DataFrame(), [], {}, None
    contrast_rows = rows[rows["role"] == "contrast"]
    check_mixing(rows, analysis.mixes, analysis.name)
    groups = rows[rows["kind"] == "group"]
    arms = (
        groups.drop_duplicates(["study", "role"])
        .loc[:, ["study", "role", "n_exposed"]]
        .rename(columns={"role": "arm", "n_exposed": "n"})
        .reset_index(drop=True)
    )
    arms["n"] = pd.to_numeric(arms["n"], errors="coerce")
    if ref_role not in set(arms["arm"]) or exp_role not in set(arms["arm"]):
        raise InputError(
            f"{analysis.name}: the survival synthesis needs arms of both regimens "
            f"({exp_role}, {ref_role})"
        )
    med = groups[groups["measure"] == "log_median"]
    lmk = groups[groups["measure"] == "cloglog_survival"]
    medians = pd.DataFrame(
        {"study": med["study"], "arm": med["role"], "yi": med["yi"], "sei": med["sei"]}
    )
    landmarks = pd.DataFrame(
        {
            "study": lmk["study"],
            "arm": lmk["role"],
            "time": lmk["time"].astype(float),
            "survival": np.exp(-np.exp(lmk["yi"].astype(float))),
            "sei": lmk["sei"].astype(float),
        }
    )
    contrasts = (
        pd.DataFrame(
            {
                "study": contrast_rows["study"],
                "yi": contrast_rows["yi"],
                "sei": contrast_rows["sei"],
                "kind": np.where(
                    contrast_rows["method"] == "ratio_ci", "hr", contrast_rows["method"]
                ),
            }
        )
        if not contrast_rows.empty
        else None
    )
    # the comparison is a hazard ratio, whatever the analysis reports: below is better
    kwargs = _comparison_settings(
        analysis, variation, rows, mu_key="prior_mu_hr", good="below", exposed=exp_role
    )
    weibull = variation.survival_shape == "weibull"
    times = tuple(analysis.landmarks or (6.0, 12.0, 24.0))
    key = repr((arms.to_numpy().tolist(), medians.to_numpy().tolist(),
                landmarks.to_numpy().tolist(),
                None if contrasts is None else contrasts.to_numpy().tolist(),
                sorted((k, repr(v)) for k, v in kwargs.items()), times, seed, weibull,
                variation.survival_overlap, repr(variation.settings)))  # fmt: skip
    fit = _cached(
        key,
        lambda: fit_survival(
            arms,
            reference=ref_role,
            medians=medians,
            landmarks=landmarks,
            contrasts=contrasts,
            times=times,
            seed=seed,
            weibull=weibull,
            overlap=variation.survival_overlap,
            settings=variation.settings,
            **kwargs,
        ),
    )
    post = fit.posterior
    estimates: list[dict[str, Any]] = []
    for role, reg in analysis.regimens.items():
        sub = groups[groups["role"] == role]
        common: dict[str, Any] = {
            "p_benefit": math.nan,
            "k": int(sub["study"].nunique()),
            "n_patients": float(sub.drop_duplicates("study")["n_exposed"].sum()),
            "basis": sub,
        }
        if analysis.measure == "log_median":
            x = np.log(post["median"].sel(arm=role).to_numpy())
            label = f"Median OS, {reg.label}"
            estimates.append(
                estimate_row(
                    f"median_{role}", label, "log_median", stats(x), natural="log_median", **common
                )
            )
            continue
        for t in times:
            sv = post["survival"].sel(arm=role, time=t).to_numpy()
            x = np.log(-np.log(np.clip(sv, 1e-12, 1 - 1e-12)))
            estimates.append(
                estimate_row(
                    f"survival_{t:g}m_{role}",
                    f"Survival at {t:g} months, {reg.label}",
                    "cloglog_survival",
                    stats(x),
                    natural="cloglog_survival",
                    **common,
                )
            )
    both = groups.groupby("study")["role"].nunique()
    comparative = groups[groups["study"].isin(both[both > 1].index)]
    x = post["mu_hr"].to_numpy().ravel()
    labels = analysis.regimens
    estimates.append(
        estimate_row(
            "log_hr",
            f"Hazard ratio, {labels[exp_role].label} vs {labels[ref_role].label}",
            "log_hr",
            stats(x),
            natural="log_hr",
            p_benefit=float(np.mean(x < 0.0)),
            benefit="below",
            k=int(comparative["study"].nunique()),
            n_patients=float(comparative.drop_duplicates(["study", "role"])["n_exposed"].sum()),
            basis=pd.concat(
                [comparative, contrast_rows[contrast_rows["study"].isin(comparative["study"])]]
            ),
        )
    )
    return rows, estimates, {JOINT_FIT: fit}, None


def select_effects_variation(
    derived: DerivedEffects, select: Selector, variation: Variation
) -> pd.DataFrame:
    """The rows a selector takes under a variation (one per study)."""
    return take(derived.effects, [select], variation)


register_runner("prognostic_joint", run_prognostic)
register_runner("proportions", run_proportions)
register_runner("survival_multiformat", run_survival)
