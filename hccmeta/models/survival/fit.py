""":func:`fit_survival`: check the inputs, build and sample the model, summarise the
draws (the model itself: :mod:`hccmeta.models.survival`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from hccmeta import priors as pr
from hccmeta.defaults import DEFAULT_SEED
from hccmeta.errors import InputError
from hccmeta.models import mcmc
from hccmeta.models._results import (
    PosteriorResult,
    data_hash,
    make_tree,
    settings_attrs,
    versions,
)
from hccmeta.models.binomial import study_bias_entries
from hccmeta.models.survival.graph import (
    ModelSpec,
    build_model,
    initial_values,
    log_likelihood,
    model_values,
)
from hccmeta.models.survival.inputs import prepare_inputs
from hccmeta.models.survival.summary import (
    derived_quantities,
    draws_from,
    log_prior,
    observed_data,
    options_dict,
    prior_text,
    term_labels,
)

__all__ = [
    "DEFAULT_LOG_MEDIAN",
    "DEFAULT_LOG_SHAPE",
    "DEFAULT_SIGMA_BASELINE",
    "fit_survival",
]

#: Prior of the (mean) log median of the reference regimen, months: 95% within 0.8-84.
DEFAULT_LOG_MEDIAN = pr.Normal(math.log(8.0), 1.2)
#: Prior of the between-study SD of the baseline log median (1 SD = a factor 1.65).
DEFAULT_SIGMA_BASELINE = pr.HalfNormal(0.5)
#: Prior of the log Weibull shape: 95% of k within 0.37-2.7.
DEFAULT_LOG_SHAPE = pr.Normal(0.0, 0.5)


def fit_survival(
    arms: pd.DataFrame,
    *,
    reference: str,
    medians: pd.DataFrame | None = None,
    landmarks: pd.DataFrame | None = None,
    contrasts: pd.DataFrame | None = None,
    weibull: bool = True,
    baseline: Literal["random", "fixed"] = "random",
    landmark_likelihood: Literal["binomial", "cloglog"] = "binomial",
    landmark_terms: Literal["conditional", "marginal"] = "conditional",
    single_arm_experimental: Literal["exclude", "arm_based"] = "arm_based",
    overlap: Literal["joint", "families", "none"] = "joint",
    bias: Mapping[str, pr.Normal | None] | Sequence[pr.Normal | None] | None = None,
    times: Sequence[float] = (6.0, 12.0, 24.0),
    prior_mu_hr: pr.Prior = pr.DEFAULT_MU,
    prior_tau: pr.Prior = pr.DEFAULT_TAU,
    prior_log_median: pr.Normal = DEFAULT_LOG_MEDIAN,
    prior_sigma_baseline: pr.Prior = DEFAULT_SIGMA_BASELINE,
    prior_log_shape: pr.Normal = DEFAULT_LOG_SHAPE,
    seed: int = DEFAULT_SEED,
    settings: mcmc.SamplerSettings | None = None,
) -> PosteriorResult:
    """Fit the multi-format survival model (see :mod:`hccmeta.models.survival`).

    Parameters
    ----------
    arms : pandas.DataFrame
        One row per study arm: ``study``, ``arm`` (the regimen; two distinct values
        overall, one of them ``reference``), optional ``n`` (the arm's size; where it is
        missing, the size its first landmark or its median's SE implies). A study has at
        most one arm per regimen.
    reference : str, keyword-only
        The reference regimen; hazard ratios are experimental vs reference.
    medians : pandas.DataFrame, keyword-only
        ``study``, ``arm``, ``yi`` (ln median, months), ``sei``.
    landmarks : pandas.DataFrame, keyword-only
        ``study``, ``arm``, ``time`` (months), ``survival``, and per row ``n_eff`` or
        ``sei`` (SE of ``ln(-ln S)``); see
        :func:`~hccmeta.models.survival.landmark_likelihood_terms`.
    contrasts : pandas.DataFrame, keyword-only
        ``study``, ``yi`` (ln HR, experimental vs reference), ``sei``, optional ``kind``
        (``"hr"`` for an HR with CI; anything else, e.g. ``"logrank_p"``, for p-based
        rows, which an HR of the same study supersedes).
    weibull : bool, keyword-only
        False fixes the shape at k = 1 (exponential). A data switch: both variants share
        one compiled model.
    baseline : {"random", "fixed"}, keyword-only
        Exchangeable study baselines (default; needed for the per-regimen estimands) or
        independent ones (the contrast then rests on within-study comparisons only).
    landmark_likelihood : {"binomial", "cloglog"}, keyword-only
        Binomial with effective sample size, or normal on ``ln(-ln S)``.
    landmark_terms : {"conditional", "marginal"}, keyword-only
        Landmarks as successive conditional survivals (default) or each on its own (not
        with ``overlap="joint"``).
    single_arm_experimental : {"arm_based", "exclude"}, keyword-only
        A study with only an experimental arm: its baseline exchangeable with the others
        (default; ``ln M = eta_i - beta_i / k``, so it informs the experimental regimen's
        pooled median and, through the baselines, ``mu_hr`` -- the arm-based assumption)
        or its own (``"exclude"``: it then informs only the shape k).
    overlap : {"joint", "families", "none"}, keyword-only
        How the statistics of one study enter: their joint likelihood under the model's
        curves (default; :mod:`hccmeta.models.survival.terms`), each on its own with the
        study's terms weighted by 1 / (number of kinds of statistic it reports)
        (``"families"``, a composite likelihood), or each on its own at full weight
        (``"none"``). One compiled model for all three.
    bias : mapping or sequence, keyword-only, optional
        An additive bias on each study's log HR: a :class:`~hccmeta.priors.Normal` or
        None (no bias term) per study, as a mapping from study to distribution or a
        sequence in the order of the studies' first appearance in ``arms``
        (:func:`hccmeta.priors.bias_prior` gives defaults for a risk-of-bias judgement).
        A study's arms and contrast then show ``beta_i + b_i``, ``b_i = m_i + v_i w_i``,
        ``w_i ~ Normal(0, 1)``, so that ``beta_i``, ``mu_hr`` and the per-regimen
        estimands are bias-adjusted; the estimand ``bias`` is each study's bias.
    times : sequence of float, keyword-only
        Landmark times (months) of the survival estimands.
    prior_mu_hr, prior_tau, prior_log_median, prior_sigma_baseline, prior_log_shape : Prior
        Priors (defaults in :mod:`hccmeta.models.survival`).
    seed : int, keyword-only
        Seed of the sampler and of the predictive draws.
    settings : SamplerSettings, keyword-only
        Sampler settings (default 4 chains x 1000 draws, target acceptance 0.9).

    Returns
    -------
    PosteriorResult
        Estimands as in :mod:`hccmeta.models.survival`; ``result.inputs["terms"]``
        lists every likelihood term with ``used`` and ``note`` columns,
        ``result.inputs["segments"]`` the arms' intervals of the joint terms.
    """
    inputs = prepare_inputs(
        arms,
        reference=reference,
        medians=medians,
        landmarks=landmarks,
        contrasts=contrasts,
        landmark_likelihood=landmark_likelihood,
        landmark_terms=landmark_terms,
        single_arm_experimental=single_arm_experimental,
        overlap=overlap,
    )
    if baseline not in ("random", "fixed"):
        raise InputError(f"baseline must be one of ('random', 'fixed'), got {baseline!r}")
    time_grid = np.asarray(times, dtype=float)
    if time_grid.ndim != 1 or time_grid.size == 0 or not np.all(time_grid > 0):
        raise InputError(f"times must be positive numbers, got {times!r}")
    prior_mu_hr = pr.check_mu_prior(prior_mu_hr, argument="prior_mu_hr")
    prior_tau = pr.check_tau_prior(prior_tau, argument="prior_tau")
    prior_sigma_baseline = pr.check_tau_prior(prior_sigma_baseline, argument="prior_sigma_baseline")
    for name, p in (
        ("prior_log_median", prior_log_median),
        ("prior_log_shape", prior_log_shape),
        ("prior_mu_hr", prior_mu_hr),
    ):
        if not isinstance(p, pr.Normal):
            what = " (mu_hr is integrated analytically)" if name == "prior_mu_hr" else ""
            raise InputError(f"{name} must be a priors.Normal{what}, got {p!r}")
    settings = settings if settings is not None else mcmc.SamplerSettings(target_accept=0.9)
    bias_entries = study_bias_entries(bias, inputs.studies, inputs.has_exp, what="log hazard ratio")
    priors: dict[str, pr.Prior] = {
        "mu_hr": prior_mu_hr,
        "tau": prior_tau,
        "log_median": prior_log_median,
        "sigma_baseline": prior_sigma_baseline,
        "log_shape": prior_log_shape,
    }
    values, segments = model_values(
        inputs,
        overlap=overlap,
        weibull=weibull,
        landmark_likelihood=landmark_likelihood,
        baseline=baseline,
        bias=bias_entries,
        priors=priors,
    )
    spec = ModelSpec(
        baseline=baseline,
        landmark_likelihood=landmark_likelihood,
        n_study=len(inputs.studies),
        n_hr=len(inputs.hr_studies),
        n_excluded=inputs.n_excluded,
        bias=bias_entries is not None,
    )
    key = (
        "survival",
        spec,
        prior_mu_hr.family,
        prior_tau.family,
        prior_sigma_baseline.family,
    )
    coords = {"study": inputs.studies, "hr_study": inputs.hr_studies}

    def build() -> Any:
        return build_model(
            values, spec, studies=inputs.studies, hr_studies=inputs.hr_studies, priors=priors
        )

    trace, diagnostics = mcmc.sample(
        key,
        build,
        values,
        seed=seed,
        settings=settings,
        coords=coords,
        init=initial_values(inputs, spec),
    )

    post = trace["posterior"].to_dataset()
    draws = draws_from(post, inputs, baseline=baseline, weibull=weibull, bias=spec.bias)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 31_337]))
    derived, estimands = derived_quantities(
        draws, post, inputs, baseline=baseline, times=time_grid, priors=priors, rng=rng
    )
    labels = term_labels(inputs, landmark_terms)
    loglik = log_likelihood(
        values,
        segments,
        labels=labels,
        eta=draws.eta,
        beta=draws.beta_observed,
        k=draws.k,
        landmark_likelihood=landmark_likelihood,
    )
    loglik.attrs["description"] = (
        "each likelihood term's log density times its study's overlap weight "
        "(options.study_weights); with overlap='joint' a median's density given its "
        "arm's landmarks and a contrast's given both arms' statistics; the sum over all "
        "terms is the model's log-likelihood"
    )
    logprior = log_prior(
        draws, post, derived, inputs, baseline=baseline, weibull=weibull, priors=priors
    )
    text = prior_text(
        priors, weibull=weibull, baseline=baseline, bias=bias_entries, studies=inputs.studies
    )
    options = options_dict(
        inputs,
        weibull=weibull,
        baseline=baseline,
        landmark_likelihood=landmark_likelihood,
        landmark_terms=landmark_terms,
        overlap=overlap,
        single_arm_experimental=single_arm_experimental,
        times=[float(t) for t in time_grid],
    )
    hashed: list[pd.DataFrame | Mapping[str, Any]] = [
        inputs.arms.drop(columns="n_source"),
        inputs.medians,
        inputs.landmarks_input,
        inputs.contrasts.drop(columns=["used", "note"]),
        {k: v for k, v in options.items() if k not in ("arm_sizes", "thinning")},
    ]
    if bias_entries is not None:
        hashed.append({s: repr(b) for s, b in zip(inputs.studies, bias_entries, strict=True)})
    attrs = {
        "model": "survival",
        "priors": text,
        "data_hash": data_hash(*hashed),
        "versions": versions(),
        "seed": int(seed),
        "options": options,
        **settings_attrs(settings, diagnostics),
    }
    if bias_entries is not None:
        attrs["bias"] = {
            s: (repr(b) if b is not None else "none")
            for s, b in zip(inputs.studies, bias_entries, strict=True)
        }
    tree = make_tree(
        trace,
        derived=derived,
        observed=observed_data(inputs),
        attrs=attrs,
        drop=(
            "log_hr_bar", "log_hr_dev", "eta_bar", "eta_dev", "eta_own", "log_k_raw",
            "w_bias", "bias_log_hr",
        ),
        extra_groups={"log_likelihood": loglik, "log_prior": logprior},
    )  # fmt: skip
    return PosteriorResult(
        model="survival",
        tree=tree,
        diagnostics=diagnostics,
        priors=text,
        estimands=tuple(estimands),
        inputs={
            "arms": inputs.arms,
            "terms": inputs.terms_table(),
            "segments": segments,
        },
    )
