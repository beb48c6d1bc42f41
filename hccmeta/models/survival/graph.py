"""The model graph of the multi-format survival synthesis: its data (term arrays padded to
bucket sizes, so that similar data sets share one compiled model), the PyMC model, and
the same log-likelihood evaluated on the posterior draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hccmeta import priors as pr
from hccmeta.effects.survival import cloglog_of_survival
from hccmeta.models._hierarchy import exchangeable_effects
from hccmeta.models.binomial import binomial_coefficient
from hccmeta.models.survival.inputs import SurvivalInputs
from hccmeta.models.survival.terms import (
    LN2,
    NumPyOps,
    TensorOps,
    binomial_landmark_logp,
    contrast_logp,
    hazard_increment,
    km_joint_terms,
    normal_logp,
)

__all__ = [
    "ModelSpec",
    "build_model",
    "initial_values",
    "log_likelihood",
    "model_values",
    "segment_table",
]

#: Values of the padding rows (weight 0): anything finite and in the support.
_PAD_VALUES = {
    "lm_se": 1.0,
    "ct_se": 1.0,
    "lm_n": 1.0,
    "seg_n": 1.0,
    "seg_med_se": 1.0,
    "seg_open": 1.0,
    "seg_log_hi": 1.0,
}
#: Prefixes of the padded term arrays (landmarks, contrasts, arm segments).
_TERM_PREFIXES = ("lm_", "ct_", "seg_")


@dataclass(frozen=True)
class ModelSpec:
    """The structural choices of one fit (what the compiled model depends on, besides
    the shapes of its data)."""

    baseline: str
    landmark_likelihood: str
    n_study: int
    n_hr: int
    n_excluded: int
    bias: bool


def segment_table(inputs: SurvivalInputs) -> pd.DataFrame:
    """One row per interval between successive landmarks of an arm (from 0, and an open
    one after the last), for every arm with a median or with landmarks in a study with a
    contrast: what the joint terms need (``hccmeta.models.survival.terms``)."""
    lm = inputs.landmarks_used
    med_of = {
        (s, a): i
        for i, (s, a) in enumerate(zip(inputs.medians["study"], inputs.medians["arm"], strict=True))
    }
    ct_of = {s: i for i, s in enumerate(inputs.contrasts_used["study"])}
    _, _, arm_hr = inputs.arm_structure()
    n_of = dict(
        zip(
            zip(inputs.arms["study"], inputs.arms["arm"], strict=True),
            inputs.arms["n"],
            strict=True,
        )
    )
    rows: list[dict[str, Any]] = []
    for j, (s, a) in enumerate(zip(inputs.arms["study"], inputs.arms["arm"], strict=True)):
        part = lm[(lm["study"] == s) & (lm["arm"] == a) & (lm["survival"] > 0)]
        has_med = (s, a) in med_of
        has_ct = s in ct_of
        if not has_med and (part.empty or not has_ct):
            continue
        phi = inputs.phi.get(s, 1.0) if has_ct else 1.0
        size = float(n_of[(s, a)]) * phi
        if has_ct:
            n1 = float(n_of[(s, inputs.experimental)])
            n0 = float(n_of[(s, inputs.reference)])
            ct_se = float(inputs.contrasts_used["sei"].iloc[ct_of[s]])
        times = [0.0, *part["time"].astype(float)]
        ln_s = [0.0, *np.log(part["survival"].astype(float))]
        for i in range(len(times)):
            is_open = i == len(times) - 1
            lo = times[i]
            log_lo = math.log(lo) if lo > 0 else 0.0
            rows.append(
                {
                    "study": s,
                    "arm": a,
                    "seg_arm": j,
                    "seg_hr": int(arm_hr[j]),
                    "seg_has_lo": float(lo > 0),
                    "seg_log_lo": log_lo,
                    "seg_open": float(is_open),
                    "seg_log_hi": log_lo + 1.0 if is_open else math.log(times[i + 1]),
                    "seg_ln_s_lo": ln_s[i],
                    "seg_ln_s_hi": 0.0 if is_open else ln_s[i + 1],
                    "seg_n": size,
                    "seg_has_med": float(has_med),
                    "seg_med": med_of.get((s, a), -1),
                    "seg_med_y": float(inputs.medians["yi"].iloc[med_of[(s, a)]])
                    if has_med
                    else 0.0,
                    "seg_med_se": float(inputs.medians["sei"].iloc[med_of[(s, a)]])
                    if has_med
                    else 1.0,
                    "seg_w": inputs.weights[s] if has_med else 0.0,
                    "seg_ct": ct_of.get(s, -1),
                    "seg_sign": (1.0 if a == inputs.reference else -1.0) if has_ct else 0.0,
                    "seg_se2": ct_se**2 if has_ct else 0.0,
                    "seg_log_ratio": math.log(n0 / n1) if has_ct else 0.0,
                }
            )
    columns = [
        "study", "arm", "seg_arm", "seg_hr", "seg_has_lo", "seg_log_lo", "seg_open",
        "seg_log_hi", "seg_ln_s_lo", "seg_ln_s_hi", "seg_n", "seg_has_med", "seg_med",
        "seg_med_y", "seg_med_se", "seg_w", "seg_ct", "seg_sign", "seg_se2", "seg_log_ratio",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _bucket(n: int) -> int:
    """Padded length of a term array: 8, 16, 32, ... (at least n)."""
    size = 8
    while size < n:
        size *= 2
    return size


def _pad(values: dict[str, Any], prefix: str) -> int:
    """Pad the arrays of one term type (keys starting with ``prefix``) in place with
    zero-weight rows; returns the padded length."""
    keys = [k for k in values if k.startswith(prefix)]
    n = len(values[keys[0]])
    size = _bucket(n)
    for key in keys:
        arr = np.asarray(values[key])
        fill = _PAD_VALUES.get(key, 0)
        values[key] = np.concatenate([arr, np.full(size - n, fill, dtype=arr.dtype)])
    return size


def model_values(
    inputs: SurvivalInputs,
    *,
    overlap: str,
    weibull: bool,
    landmark_likelihood: str,
    baseline: str,
    bias: list[pr.Normal | None] | None,
    priors: dict[str, pr.Prior],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The model's data (``pm.Data`` values, term arrays padded) and the segment table."""
    lm = inputs.landmarks_used
    ct = inputs.contrasts_used
    arm_study, arm_treat, arm_hr = inputs.arm_structure()
    segments = segment_table(inputs)
    ev = lm["events_term"].to_numpy(dtype=float)
    nn = lm["n_eff_term"].to_numpy(dtype=float)

    def weights(frame: pd.DataFrame) -> np.ndarray:
        return np.array([inputs.weights[st] for st in frame["study"]], dtype=float)

    values: dict[str, Any] = {
        "arm_study": arm_study,
        "arm_treat": arm_treat,
        "arm_hr": arm_hr,
        "lm_w": weights(lm),
        "lm_arm": inputs.arm_index(lm),
        "lm_log_t": np.log(lm["time"].to_numpy(dtype=float)),
        "lm_log_t_prev": np.log(np.maximum(lm["t_prev"].to_numpy(dtype=float), 1e-300)),
        "lm_has_prev": (lm["t_prev"].to_numpy(dtype=float) > 0).astype(float),
        "ct_w": weights(ct),
        "ct_hr": ct["study"].map(inputs.hr_index).to_numpy(dtype=np.int64),
        "ct_y": ct["yi"].to_numpy(dtype=float),
        "ct_se": ct["sei"].to_numpy(dtype=float),
        **{
            col: segments[col].to_numpy(
                dtype=np.int64 if col == "seg_arm" or col == "seg_hr" else float
            )
            for col in segments.columns
            if col.startswith("seg_") and col not in ("seg_med", "seg_ct")
        },
        "weibull": np.asarray(1.0 if weibull else 0.0),
        "joint": np.asarray(1.0 if overlap == "joint" else 0.0),
        **priors["mu_hr"].data("mu_hr"),
        **priors["tau"].data("tau"),
        **priors["log_shape"].data("log_k_raw"),
        **priors["log_median"].data("m_eta"),
    }
    if landmark_likelihood == "binomial":
        values["lm_events"] = ev
        values["lm_n"] = nn
        values["lm_coef"] = binomial_coefficient(ev, nn)
    else:
        values["lm_y"] = lm["y_cloglog"].to_numpy(dtype=float)
        values["lm_se"] = lm["se_cloglog"].to_numpy(dtype=float)
    if baseline == "random":
        values.update(priors["sigma_baseline"].data("sigma_eta"))
    if bias is not None:
        biased = [bias[i] for i in np.flatnonzero(inputs.has_exp)]
        values["bias_mean"] = np.array([0.0 if b is None else b.mean for b in biased])
        values["bias_sd"] = np.array([0.0 if b is None else b.sd for b in biased])
    # pad every term array to a bucket size with zero-weight rows, so that data sets of
    # similar size (leave-one-out, a term type more or less) share one compiled model
    sizes = {prefix: _pad(values, prefix) for prefix in _TERM_PREFIXES}
    to_ct = np.zeros((sizes["seg_"], sizes["ct_"]))
    for i, c in enumerate(segments["seg_ct"]):
        if c >= 0:
            to_ct[i, c] = 1.0
    values["seg_to_ct"] = to_ct
    return values, segments


def _arm_log_medians(inputs: SurvivalInputs) -> dict[tuple[str, str], float]:
    """A crude log median of every arm with data: its reported median, else the
    exponential through its landmark nearest S = 1/2 (``ln t + ln ln 2 - ln(-ln S)``)."""
    out: dict[tuple[str, str], float] = {}
    lm = inputs.landmarks
    if len(lm):
        inner = lm[(lm["survival"] > 0.0) & (lm["survival"] < 1.0)]
        for (study, arm), rows in inner.groupby(["study", "arm"], sort=False):
            row = rows.iloc[int(np.argmin(np.abs(rows["survival"].to_numpy() - 0.5)))]
            log_h = float(cloglog_of_survival(float(row["survival"])))
            out[(str(study), str(arm))] = math.log(float(row["time"]) * LN2) - log_h
    for study, arm, y in zip(inputs.medians["study"], inputs.medians["arm"],
                             inputs.medians["yi"], strict=True):  # fmt: skip
        out[(study, arm)] = float(y)
    return out


def initial_values(inputs: SurvivalInputs, spec: ModelSpec) -> dict[str, Any]:
    """Where the sampler starts: the baselines at the arms' crude log medians (the
    reference arm's, else the experimental arm's plus the study's reported log HR), the
    mean log HR at the reported ones' mean (every chain there; the other parameters
    keep their compiled starts, jittered per chain, and so do the shape and, where no
    arm reports a statistic, the baselines: a parameter the data do not inform, started
    at its prior's centre, has the zero gradient nutpie refuses). The
    compiled default, the priors' centres, can lie far from the data: a start of
    median 7 months against arms that die within a month left one chain of an SBC
    replication in a spurious mode of the joint likelihood (R-hat 1.83).
    """
    crude = _arm_log_medians(inputs)
    ct = inputs.contrasts_used
    reported = dict(zip(ct["study"], ct["yi"].astype(float), strict=True))
    log_hr = float(np.mean(list(reported.values()))) if reported else None
    eta: list[float | None] = []
    for study in inputs.studies:
        ref, exp = crude.get((study, inputs.reference)), crude.get((study, inputs.experimental))
        if ref is not None:
            eta.append(ref)
        elif exp is not None:
            eta.append(exp + reported.get(study, log_hr or 0.0))
        else:
            eta.append(None)
    n_shared = spec.n_study - spec.n_excluded
    known = [e for e in eta[:n_shared] if e is not None]
    init: dict[str, Any] = {}
    if log_hr is not None:
        init["log_hr_bar"] = log_hr
    if not known:  # no arm statistic: the baselines keep their (jittered) compiled start
        return init
    centre = float(np.mean(known))
    values = np.array([centre if e is None else e for e in eta])
    if spec.baseline == "random":
        init["eta_bar"] = centre
        if spec.n_excluded:
            init["eta_own"] = values[n_shared:]
    else:
        init["eta"] = values
    return init


def _log_m(xp: Any, d: dict[str, Any], eta: Any, beta: Any, k: Any) -> Any:
    """Log median of every arm: ``eta[study] - treat beta[hr] / k``."""
    return eta[..., d["arm_study"]] - d["arm_treat"] * beta[..., d["arm_hr"]] / k


def _potentials(
    xp: Any, d: dict[str, Any], *, eta: Any, beta: Any, k: Any, landmark_likelihood: str
) -> dict[str, Any]:
    """Each term's weighted log density: ``landmark`` per landmark term, ``median`` per
    segment, ``contrast`` per contrast (padding rows 0). ``k`` broadcasts against the
    last axis (a scalar in the graph, ``(chain, draw, 1)`` on the draws)."""
    log_m = _log_m(xp, d, eta, beta, k)
    dh = hazard_increment(
        xp, k, d["lm_log_t"], d["lm_log_t_prev"], d["lm_has_prev"], log_m[..., d["lm_arm"]]
    )
    if landmark_likelihood == "binomial":
        lm = binomial_landmark_logp(xp, d["lm_coef"], d["lm_events"], d["lm_n"], dh)
    else:
        lm = normal_logp(xp, d["lm_y"], xp.log(dh), d["lm_se"])
    med, shift, reduction = km_joint_terms(
        xp, d, log_m[..., d["seg_arm"]], k, beta[..., d["seg_hr"]]
    )
    ct = contrast_logp(
        xp, d["ct_y"], beta[..., d["ct_hr"]], d["ct_se"], shift @ d["seg_to_ct"],
        reduction @ d["seg_to_ct"],
    )  # fmt: skip
    return {"landmark": d["lm_w"] * lm, "median": d["seg_w"] * med, "contrast": d["ct_w"] * ct}


def build_model(
    values: dict[str, Any],
    spec: ModelSpec,
    *,
    studies: list[str],
    hr_studies: list[str],
    priors: dict[str, pr.Prior],
) -> Any:
    """The PyMC model (log HRs and baselines with their means integrated out, see
    :mod:`hccmeta.models._hierarchy`; the likelihood terms as three potentials)."""
    import pymc as pm
    import pytensor.tensor as pt

    n_study, n_hr, n_excluded = spec.n_study, spec.n_hr, spec.n_excluded
    log_median, mu_hr = priors["log_median"], priors["mu_hr"]
    assert isinstance(log_median, pr.Normal) and isinstance(mu_hr, pr.Normal)
    init_eta, init_log_hr = float(log_median.mean), float(mu_hr.mean)
    with pm.Model(coords={"study": studies, "hr_study": hr_studies}) as model:
        d: dict[str, Any] = {
            name: pm.Data(name, value)
            for name, value in values.items()
            if name.split("_")[0] in ("arm", "lm", "ct", "seg") or name == "joint"
        }
        flag = pm.Data("weibull", values["weibull"])
        # log HRs: mean centred, deviations non-centred, mu_hr integrated out
        tau = priors["tau"].to_pymc("tau")
        mu0, sd0 = pm.Data("mu_hr_mean", 0.0), pm.Data("mu_hr_sd", 1.0)
        beta = exchangeable_effects("log_hr", mu0, tau, sd0, n_hr, init_log_hr)
        if spec.bias:
            bm = pm.Data("bias_mean", values["bias_mean"], dims="hr_study")
            bs = pm.Data("bias_sd", values["bias_sd"], dims="hr_study")
            w = pm.Normal("w_bias", 0.0, 1.0, dims="hr_study")
            # what the study's arms and contrast show: the bias-adjusted log HR + the bias
            beta = beta + pm.Deterministic("bias_log_hr", bm + bs * w, dims="hr_study")
        # baselines: likewise (random), or independent (fixed)
        m0, s0 = pm.Data("m_eta_mean", 0.0), pm.Data("m_eta_sd", 1.0)
        if spec.baseline == "random":
            sigma_eta = priors["sigma_baseline"].to_pymc("sigma_eta")
            eta = exchangeable_effects("eta", m0, sigma_eta, s0, n_study - n_excluded, init_eta)
            if n_excluded:
                own = pm.Normal(
                    "eta_own",
                    mu=m0,
                    sigma=s0,
                    shape=n_excluded,
                    initval=np.full(n_excluded, init_eta),
                )
                eta = pt.concatenate([eta, own])
        else:
            eta = pm.Normal(
                "eta", mu=m0, sigma=s0, dims="study", initval=np.full(n_study, init_eta)
            )
        k = pt.exp(flag * priors["log_shape"].to_pymc("log_k_raw"))
        terms = _potentials(
            TensorOps(), d, eta=eta, beta=beta, k=k, landmark_likelihood=spec.landmark_likelihood
        )
        pm.Potential("lm", terms["landmark"].sum())
        pm.Potential("med", terms["median"].sum())
        pm.Potential("ct", terms["contrast"].sum())
    return model


def log_likelihood(
    values: dict[str, Any],
    segments: pd.DataFrame,
    *,
    labels: dict[str, list[str]],
    eta: np.ndarray,
    beta: np.ndarray,
    k: np.ndarray,
    landmark_likelihood: str,
) -> xr.Dataset:
    """The pointwise log-likelihood at the draws: one variable per term family
    (``median``, ``landmark``, ``contrast``; families without terms left out), each
    term's weighted log density, so that the sum over all terms is the model's
    log-likelihood -- the sum of its ``med``, ``lm`` and ``ct`` potentials. With the
    joint likelihood a median's term is its density given its arm's landmarks, and a
    contrast's given both arms' statistics.

    ``values`` are the model's (padded) data; ``labels`` name the real terms of each
    family, which come first in the padded arrays; ``eta`` (chain, draw, study),
    ``beta`` (chain, draw, hr_study; as observed, bias included) and ``k`` (chain,
    draw) the draws.
    """
    d = {key: np.asarray(val) for key, val in values.items()}
    terms = _potentials(
        NumPyOps, d, eta=eta, beta=beta, k=k[..., None], landmark_likelihood=landmark_likelihood
    )
    # a median's term: the one segment of its arm that holds its median
    per_segment = terms["median"][..., : len(segments)]
    n_med = len(labels["median"])
    med = np.zeros((*per_segment.shape[:-1], n_med))
    for i, m in enumerate(segments["seg_med"]):
        if m >= 0:
            med[..., m] += per_segment[..., i]
    out: dict[str, xr.DataArray] = {}
    cd = ("chain", "draw")
    for family, value in (
        ("median", med),
        ("landmark", terms["landmark"]),
        ("contrast", terms["contrast"]),
    ):
        n = len(labels[family])
        if n:
            dim = f"{family}_term"
            out[family] = xr.DataArray(
                value[..., :n], dims=(*cd, dim), coords={dim: labels[family]}
            )
    return xr.Dataset(out)
