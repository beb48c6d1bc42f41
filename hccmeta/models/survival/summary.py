"""What the multi-format survival fit reports: the derived quantities (pooled and
predictive HR, per-regimen medians and survival, per-study curves), their estimands, the
log prior densities at the draws (for power-scaling sensitivity) and the observed data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from hccmeta import priors as pr
from hccmeta.models._hierarchy import conditional_mean, effects_from_draws
from hccmeta.models._results import Estimand
from hccmeta.models.survival.inputs import SurvivalInputs

__all__ = [
    "Draws",
    "derived_quantities",
    "draws_from",
    "log_prior",
    "observed_data",
    "options_dict",
    "prior_text",
    "term_labels",
]

_LN2 = math.log(2.0)


@dataclass(frozen=True)
class Draws:
    """The model's parameters at the draws: baselines ``eta`` (chain, draw, study), log
    HRs ``beta`` (bias-adjusted; chain, draw, hr_study), the biases ``bias`` (same shape,
    zeros without a bias model), the shape ``k`` and ``tau`` (chain, draw)."""

    eta: np.ndarray
    beta: np.ndarray
    bias: np.ndarray
    k: np.ndarray
    tau: np.ndarray

    @property
    def beta_observed(self) -> np.ndarray:
        """The log HR each study's statistics show (bias-adjusted log HR + bias)."""
        return self.beta + self.bias


def draws_from(
    post: xr.Dataset, inputs: SurvivalInputs, *, baseline: str, weibull: bool, bias: bool
) -> Draws:
    """The parameters of :class:`Draws` from the sampled posterior."""
    n_study, n_hr, n_excluded = len(inputs.studies), len(inputs.hr_studies), inputs.n_excluded
    tau = post["tau"].to_numpy()
    beta = effects_from_draws(post, "log_hr", tau, n_hr)
    if baseline == "random":
        eta = effects_from_draws(post, "eta", post["sigma_eta"].to_numpy(), n_study - n_excluded)
        if n_excluded:
            eta = np.concatenate([eta, post["eta_own"].to_numpy()], axis=-1)
    else:
        eta = post["eta"].to_numpy()
    k = np.exp(float(weibull) * post["log_k_raw"].to_numpy())
    b = (
        post["bias_log_hr"].transpose("chain", "draw", ...).to_numpy()
        if bias
        else np.zeros_like(beta)
    )
    return Draws(eta=eta, beta=beta, bias=b, k=k, tau=tau)


def derived_quantities(
    draws: Draws,
    post: xr.Dataset,
    inputs: SurvivalInputs,
    *,
    baseline: str,
    times: np.ndarray,
    priors: dict[str, pr.Prior],
    rng: np.random.Generator,
) -> tuple[dict[str, xr.DataArray], list[Estimand]]:
    """The estimands on their natural scales (see the package docstring) and their list."""
    studies, arm_labels = inputs.studies, inputs.arm_labels
    s_of = inputs.study_index
    prior_mu_hr = priors["mu_hr"]
    assert isinstance(prior_mu_hr, pr.Normal)
    eta, beta, k, tau = draws.eta, draws.beta, draws.k, draws.tau
    chains, n_draws = tau.shape
    cd = ("chain", "draw")
    mu_hr = conditional_mean(beta, prior_mu_hr.mean, tau**2, prior_mu_hr.sd**2, rng)
    log_hr_new = mu_hr + tau * rng.standard_normal(mu_hr.shape)
    beta_full = np.full((chains, n_draws, len(studies)), np.nan)
    beta_full[..., inputs.has_exp] = beta
    observed_full = np.full_like(beta_full, np.nan)
    observed_full[..., inputs.has_exp] = draws.beta_observed
    med_study = np.full((chains, n_draws, len(studies), 2), np.nan)
    for s, a in zip(inputs.arms["study"], inputs.arms["arm"], strict=True):
        i = s_of[s]
        shifted = a == inputs.experimental and s not in inputs.excluded
        shift = observed_full[..., i] / k if shifted else 0.0
        med_study[..., i, arm_labels.index(a)] = np.exp(eta[..., i] - shift)
    derived: dict[str, xr.DataArray] = {
        "eta": xr.DataArray(eta, dims=(*cd, "study"), coords={"study": studies}),
        "mu_hr": xr.DataArray(mu_hr, dims=cd),
        "hr": xr.DataArray(np.exp(mu_hr), dims=cd),
        "k": xr.DataArray(k, dims=cd),
        "log_hr_new": xr.DataArray(log_hr_new, dims=cd),
        "hr_new": xr.DataArray(np.exp(log_hr_new), dims=cd),
        "log_hr_study": xr.DataArray(beta_full, dims=(*cd, "study"), coords={"study": studies}),
        "median_study": xr.DataArray(
            med_study, dims=(*cd, "study", "arm"), coords={"study": studies, "arm": arm_labels}
        ),
    }
    estimands = [
        Estimand("mu_hr", "log", "pooled log HR, experimental vs reference"),
        Estimand("hr", "ratio", "pooled HR, exp(mu_hr)"),
        Estimand("tau", "sd", "between-study SD of the log HR"),
        Estimand("log_hr_new", "log", "predictive log HR in a new study"),
        Estimand("hr_new", "ratio", "predictive HR in a new study"),
    ]
    shape = [Estimand("k", "shape", "Weibull shape (1: exponential)")]
    if baseline == "random":
        prior_log_median = priors["log_median"]
        assert isinstance(prior_log_median, pr.Normal)
        sigma_eta = post["sigma_eta"].to_numpy()
        m_eta = conditional_mean(
            eta[..., : len(studies) - inputs.n_excluded],
            prior_log_median.mean,
            sigma_eta**2,
            prior_log_median.sd**2,
            rng,
        )
        derived["m_eta"] = xr.DataArray(m_eta, dims=cd)
        eta_new = m_eta + sigma_eta * rng.standard_normal(m_eta.shape)
        log_med = np.stack([m_eta, m_eta - mu_hr / k], axis=-1)
        log_med_new = np.stack([eta_new, eta_new - log_hr_new / k], axis=-1)
        coords_a = {"arm": arm_labels}
        coords_at = {"arm": arm_labels, "time": times}

        def surv(lm: np.ndarray) -> np.ndarray:
            return np.exp(-_LN2 * (times / np.exp(lm[..., None])) ** k[..., None, None])

        derived.update(
            median=xr.DataArray(np.exp(log_med), dims=(*cd, "arm"), coords=coords_a),
            median_new=xr.DataArray(np.exp(log_med_new), dims=(*cd, "arm"), coords=coords_a),
            survival=xr.DataArray(surv(log_med), dims=(*cd, "arm", "time"), coords=coords_at),
            survival_new=xr.DataArray(
                surv(log_med_new), dims=(*cd, "arm", "time"), coords=coords_at
            ),
        )
        estimands += [
            Estimand("median", "months", "median survival per regimen (typical study)"),
            Estimand("median_new", "months", "predictive median survival per regimen"),
            Estimand("survival", "probability", "survival at each time per regimen"),
            Estimand("survival_new", "probability", "predictive survival at each time"),
            *shape,
            Estimand("m_eta", "log", "mean log median of the reference regimen"),
            Estimand("sigma_eta", "sd", "between-study SD of the baseline log median"),
        ]
    else:
        estimands += shape
    estimands += [
        Estimand("log_hr_study", "log", "each study's log HR (bias-adjusted)"),
        Estimand("median_study", "months", "each study arm's fitted median"),
    ]
    if draws.bias.any():
        bias_full = np.full_like(beta_full, np.nan)
        bias_full[..., inputs.has_exp] = draws.bias
        derived["bias"] = xr.DataArray(bias_full, dims=(*cd, "study"), coords={"study": studies})
        estimands.append(Estimand("bias", "log", "each study's additive bias on its log HR"))
    return derived, estimands


def log_prior(
    draws: Draws,
    post: xr.Dataset,
    derived: dict[str, xr.DataArray],
    inputs: SurvivalInputs,
    *,
    baseline: str,
    weibull: bool,
    priors: dict[str, pr.Prior],
) -> xr.Dataset:
    """The top-level priors at the draws, as the other models' power-scaling scales
    them: ``mu_hr`` and ``m_eta`` (integrated out when sampling, drawn from their exact
    conditionals, so that the draws are joint posterior draws), ``tau``, ``sigma_eta``,
    ``ln k`` (Weibull only: with k = 1 ln k is not in the model) and the baselines with
    a prior of their own."""
    cd = ("chain", "draw")
    out = xr.Dataset(
        {
            "mu_hr": xr.DataArray(priors["mu_hr"].logpdf(derived["mu_hr"].to_numpy()), dims=cd),
            "tau": xr.DataArray(priors["tau"].logpdf(draws.tau), dims=cd),
        }
    )
    if weibull:
        out["log_k"] = xr.DataArray(
            priors["log_shape"].logpdf(post["log_k_raw"].to_numpy()), dims=cd
        )
    if baseline == "random":
        out["m_eta"] = xr.DataArray(
            priors["log_median"].logpdf(derived["m_eta"].to_numpy()), dims=cd
        )
        out["sigma_eta"] = xr.DataArray(
            priors["sigma_baseline"].logpdf(post["sigma_eta"].to_numpy()), dims=cd
        )
    studies = inputs.studies
    own = studies if baseline == "fixed" else studies[len(studies) - inputs.n_excluded :]
    if own:
        out["eta"] = xr.DataArray(
            priors["log_median"].logpdf(draws.eta[..., len(studies) - len(own) :]),
            dims=(*cd, "study"),
            coords={"study": own},
        )
    out.attrs["description"] = (
        "log prior densities of the top-level parameters at the draws (ln k: the density "
        "of ln k); the hierarchical terms (log_hr_study | mu_hr, tau; eta | m_eta, "
        "sigma_eta) and the bias terms are in neither group"
    )
    return out


def term_labels(inputs: SurvivalInputs, landmark_terms: str) -> dict[str, list[str]]:
    """Labels of the likelihood terms of each family, in the order of the model's arrays."""
    lm, med, ct = inputs.landmarks_used, inputs.medians, inputs.contrasts_used
    if landmark_terms == "conditional":
        lm_labels = [
            f"{s}, {a}, {tp:g}-{t:g} months"
            for s, a, tp, t in zip(lm["study"], lm["arm"], lm["t_prev"], lm["time"], strict=True)
        ]
    else:
        lm_labels = [
            f"{s}, {a}, {t:g} months"
            for s, a, t in zip(lm["study"], lm["arm"], lm["time"], strict=True)
        ]
    return {
        "median": [f"{s}, {a}" for s, a in zip(med["study"], med["arm"], strict=True)],
        "landmark": lm_labels,
        "contrast": [f"{s}, {c}" for s, c in zip(ct["study"], ct["kind"], strict=True)],
    }


def prior_text(
    priors: dict[str, pr.Prior],
    *,
    weibull: bool,
    baseline: str,
    bias: list[pr.Normal | None] | None,
    studies: list[str],
) -> dict[str, str]:
    """The priors in words (the result's ``priors``)."""
    out = {
        "mu_hr": f"mu_hr ~ {priors['mu_hr']}",
        "tau": f"tau ~ {priors['tau']}",
        "shape": f"ln k ~ {priors['log_shape']}" if weibull else "k = 1 (exponential)",
    }
    if baseline == "random":
        out["baseline"] = (
            f"eta_i ~ Normal(m_eta, sigma_eta^2); m_eta ~ {priors['log_median']}; "
            f"sigma_eta ~ {priors['sigma_baseline']}"
        )
    else:
        out["baseline"] = f"eta_i ~ {priors['log_median']} (fixed baselines)"
    if bias is not None:
        out["bias"] = (
            "; ".join(f"b[{s}] ~ {b}" for s, b in zip(studies, bias, strict=True) if b is not None)
            or "no study has a bias term"
        )
    return out


def observed_data(inputs: SurvivalInputs) -> xr.Dataset:
    """The statistics the likelihood saw, by study, arm and time (``observed_data``)."""
    med, lm, ct = inputs.medians, inputs.landmarks, inputs.contrasts
    studies, arm_labels = inputs.studies, inputs.arm_labels
    s_of = {s: i for i, s in enumerate(studies)}
    a_of = {a: i for i, a in enumerate(arm_labels)}
    out: dict[str, xr.DataArray] = {}
    sa = {"study": studies, "arm": arm_labels}
    for name, col in (("median_yi", "yi"), ("median_sei", "sei")):
        m = np.full((len(studies), 2), np.nan)
        for s, a, v in zip(med["study"], med["arm"], med[col], strict=True):
            m[s_of[s], a_of[a]] = v
        out[name] = xr.DataArray(m, dims=("study", "arm"), coords=sa)
    times = sorted(set(lm["time"])) if len(lm) else []
    for name, col in (
        ("landmark_survival", "survival"),
        ("landmark_n_eff", "n_eff_term"),
        ("landmark_events", "events_term"),
    ):
        m = np.full((len(studies), 2, len(times)), np.nan)
        for s, a, t, v in zip(lm["study"], lm["arm"], lm["time"], lm[col], strict=True):
            m[s_of[s], a_of[a], times.index(t)] = v
        out[name] = xr.DataArray(
            m, dims=("study", "arm", "time"), coords={**sa, "time": np.asarray(times, float)}
        )
    for name, col in (("contrast_yi", "yi"), ("contrast_sei", "sei")):
        v = np.full(len(studies), np.nan)
        used = ct[ct["used"]] if len(ct) else ct
        for s, x in zip(used["study"], used[col], strict=True):
            v[s_of[s]] = x
        out[name] = xr.DataArray(v, dims=("study",), coords={"study": studies})
    n_arm = np.full((len(studies), 2), np.nan)
    for s, a, x in zip(inputs.arms["study"], inputs.arms["arm"], inputs.arms["n"], strict=True):
        n_arm[s_of[s], a_of[a]] = x
    out["arm_n"] = xr.DataArray(n_arm, dims=("study", "arm"), coords=sa)
    return xr.Dataset(out)


def options_dict(inputs: SurvivalInputs, **options: Any) -> dict[str, Any]:
    """The fit's options as recorded in its attributes."""
    return {
        "reference": inputs.reference,
        "experimental": inputs.experimental,
        **options,
        "study_weights": inputs.weights,
        "arm_sizes": {
            f"{s}, {a}": (None if not np.isfinite(n) else round(float(n), 3), src)
            for s, a, n, src in zip(
                inputs.arms["study"],
                inputs.arms["arm"],
                inputs.arms["n"],
                inputs.arms["n_source"],
                strict=True,
            )
        },
        "thinning": {s: round(float(p), 4) for s, p in inputs.phi.items()},
    }
