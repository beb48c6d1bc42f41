"""``hccmeta.pool``: random-effects (and fixed-effect) meta-analysis of (yi, sei).

The normal-normal hierarchical model ``y_i ~ N(theta_i, s_i^2)``,
``theta_i ~ N(mu, tau^2)``, optionally with an additive bias per study, ``y_i ~
N(theta_i + b_i, s_i^2)``, ``b_i ~ N(m_i, v_i^2)`` (``bias=``, e.g. from
:func:`hccmeta.priors.bias_prior`), with two engines that agree:

- ``method="exact"`` (default): numerical integration over tau with mu integrated
  analytically, as R's bayesmeta does (:mod:`hccmeta.models.normal_exact`); milliseconds;
- ``method="mcmc"``: PyMC, non-centred, sampled with nutpie, compiled once per model
  structure and refitted with new data and hyperparameters
  (:mod:`hccmeta.models.normal_mcmc`).

Inputs are checked first; every problem is an :class:`~hccmeta.errors.InputError` naming
the argument.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hccmeta.defaults import DEFAULT_SEED
from hccmeta.effects.base import effect_problem
from hccmeta.errors import HccmetaWarning, InputError
from hccmeta.models.result import PoolResult, check_ci_prob
from hccmeta.numeric import MAX_MAGNITUDE
from hccmeta.priors import (
    DEFAULT_MU,
    DEFAULT_TAU,
    HalfNormal,
    Normal,
    Prior,
    check_mu_prior,
    check_tau_prior,
    parse,
)

__all__ = ["MEASURES", "check_bias", "check_estimates", "pool", "scaled_priors"]

FloatArray = NDArray[np.float64]

#: Effect measures :func:`pool` accepts; hr, or and rr are analysed on the log scale.
MEASURES = ("hr", "or", "rr", "rd", "generic")
_METHODS = ("exact", "mcmc")
_MODELS = ("random", "fixed")


def as_vector(name: str, value: Any) -> FloatArray:
    """A 1-D float array with no NaN/inf; InputError naming ``name`` and the index."""
    if isinstance(value, str | bytes):
        raise InputError(f"{name} must be a sequence of numbers, got the string {value!r}")
    arr_obj = np.asarray(value, dtype=object)
    if arr_obj.ndim == 0:
        arr_obj = arr_obj.reshape(1)
    if arr_obj.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr_obj.shape}")
    out = np.empty(arr_obj.size)
    for i, cell in enumerate(arr_obj):
        if isinstance(cell, bool | np.bool_):
            raise InputError(f"{name}[{i}] = {cell!r} is not a number")
        try:
            out[i] = float(cell)
        except (TypeError, ValueError):
            raise InputError(f"{name}[{i}] = {cell!r} is not a number") from None
        if math.isnan(out[i]):
            raise InputError(f"{name}[{i}] is missing (NaN)")
        if math.isinf(out[i]):
            raise InputError(f"{name}[{i}] = {float(out[i])!r} is not finite")
    return out


def check_positive(name: str, arr: FloatArray, what: str) -> FloatArray:
    """``arr`` if every element is > 0; else an InputError naming ``name``, the index
    and ``what`` it is."""
    bad = np.flatnonzero(~(arr > 0))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{name}[{i}] = {arr[i]:g}: {what} must be > 0")
    return arr


def _from_frame(
    frame: pd.DataFrame, measure: str
) -> tuple[FloatArray, FloatArray, list[str] | None]:
    """(yi, sei, study) from a DataFrame in one of the four input shapes of
    ``hccmeta pool`` (yi,sei | yi,vi | estimate,ci_lower,ci_upper[,ci_level] |
    events_t,n_t,events_c,n_c); conversions and their checks are the effects layer's."""
    cols = {str(c).strip().lower(): c for c in frame.columns}
    if frame.shape[0] == 0:
        raise InputError("data: the DataFrame has no rows")
    study = [str(s) for s in frame[cols["study"]]] if "study" in cols else None

    def col(name: str) -> Any:
        return frame[cols[name]].to_numpy()

    if "yi" in cols and ("sei" in cols or "vi" in cols):
        yi = as_vector("data['yi']", col("yi"))
        if "sei" in cols:
            sei = check_positive(
                "data['sei']", as_vector("data['sei']", col("sei")), "a standard error"
            )
        else:
            vi = check_positive("data['vi']", as_vector("data['vi']", col("vi")), "a variance")
            sei = np.sqrt(vi)
        return yi, sei, study
    if {"estimate", "ci_lower", "ci_upper"} <= cols.keys():
        from hccmeta.effects import from_ci

        ratio = measure in ("hr", "or", "rr")
        level = col("ci_level") if "ci_level" in cols else None
        try:
            d = from_ci(
                as_vector("data['estimate']", col("estimate")),
                as_vector("data['ci_lower']", col("ci_lower")),
                as_vector("data['ci_upper']", col("ci_upper")),
                level=level,
                log=ratio,
            )
        except InputError as exc:
            raise InputError(f"data (estimate, ci_lower, ci_upper, ci_level): {exc}") from None
        return np.asarray(d.yi, float), np.asarray(d.sei, float), study
    if {"events_t", "n_t", "events_c", "n_c"} <= cols.keys():
        from hccmeta.effects import two_arm_counts

        count_measure: Literal["log_or", "log_rr", "rd"] | None = {
            "or": "log_or",
            "rr": "log_rr",
            "rd": "rd",
        }.get(measure)  # type: ignore[assignment]
        if count_measure is None:
            raise InputError(
                f"data: columns events_t, n_t, events_c, n_c give an or, rr or rd, not "
                f"measure {measure!r}"
            )
        try:
            d = two_arm_counts(
                col("events_t"), col("n_t"), col("events_c"), col("n_c"), measure=count_measure
            )
        except InputError as exc:
            raise InputError(f"data (events_t, n_t, events_c, n_c): {exc}") from None
        return np.asarray(d.yi, float), np.asarray(d.sei, float), study
    missing = "'sei' or 'vi'" if "yi" in cols else "'yi' and 'sei'"
    raise InputError(
        f"data: missing column(s) {missing}; a DataFrame needs columns yi,sei | yi,vi | "
        "estimate,ci_lower,ci_upper[,ci_level] | events_t,n_t,events_c,n_c "
        f"(and optionally study); columns found: {', '.join(map(str, frame.columns))}"
    )


def _two_digits(x: float) -> float:
    """``x`` rounded to two significant digits."""
    return float(f"{x:.2g}")


def scaled_priors(
    yi: FloatArray, sei: FloatArray, *, fixed: bool = False
) -> tuple[Normal, HalfNormal, str]:
    """Priors scaled to the data, for a generic measure (months, rates, scores, ...) that
    the log-ratio defaults (mu ~ Normal(0, 1), tau ~ HalfNormal(0.5)) do not fit.

    The rule: ``s = max|yi| + max sei`` (the largest distance from 0 the data reach, plus
    one standard error); ``mu ~ Normal(0, 2.5 s)`` (weakly informative: every estimate
    lies within 0.4 prior SDs of 0, so the prior hardly pulls mu towards 0) and
    ``tau ~ HalfNormal(s / 2)`` (between-study SDs up to about the size of the
    estimates). Both scales are rounded to two significant digits.

    Returns
    -------
    (Normal, HalfNormal, str)
        The priors and a one-line note saying so (for a warning).
    """
    scale = _two_digits(float(np.max(np.abs(yi)) + np.max(sei)))
    if 2.5 * scale > MAX_MAGNITUDE:
        raise InputError(
            f"estimates and standard errors this large (s = max|yi| + max sei = {scale:g}) "
            f"leave no room for priors scaled to the data (their scales would exceed "
            f"{MAX_MAGNITUDE:g}); rescale the data or give priors (--prior-mu, --prior-tau; "
            "prior_mu, prior_tau)"
        )
    mu, tau = Normal(0.0, _two_digits(2.5 * scale)), HalfNormal(_two_digits(scale / 2))
    chosen = f"mu ~ Normal(0, {mu.sd:g})" + ("" if fixed else f", tau ~ HalfNormal({tau.scale:g})")
    note = (
        f"measure 'generic' has no default priors (those of log ratios do not fit it): "
        f"priors scaled to the data (s = max|yi| + max sei = {scale:g}): {chosen}; "
        "give priors (--prior-mu, --prior-tau; prior_mu, prior_tau) to choose them"
    )
    return mu, tau, note


def study_labels(study: Sequence[Any] | None, k: int) -> list[str]:
    """``k`` study labels: ``study`` stripped (an InputError for a wrong count or an empty
    or repeated label), or 1..k."""
    if study is None:
        return [str(i + 1) for i in range(k)]
    labels = [str(s).strip() for s in (study.tolist() if hasattr(study, "tolist") else study)]
    if len(labels) != k:
        raise InputError(f"study has {len(labels)} labels for {k} studies")
    for i, label in enumerate(labels):
        if not label or label.lower() == "nan":
            raise InputError(f"study[{i}] is empty")
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label in seen:
            raise InputError(f"study[{i}] = {label!r} repeats study[{seen[label]}]")
        seen[label] = i
    return labels


def check_estimates(
    yi: ArrayLike, sei: ArrayLike, study: Sequence[Any] | None
) -> tuple[FloatArray, FloatArray, list[str]]:
    """Check estimates, standard errors and study labels as :func:`pool` does: 1-D, finite,
    SE > 0, equal lengths, at least one study, unique labels (default ``"1", "2", ...``).
    Every problem is an :class:`InputError` naming the argument and the index."""
    y = as_vector("yi", yi)
    s = check_positive("sei", as_vector("sei", sei), "a standard error")
    if s.size != y.size:
        raise InputError(f"yi has {y.size} values but sei has {s.size}")
    if y.size == 0:
        raise InputError("yi is empty: pooling needs at least one study")
    return y, s, study_labels(study, y.size)


def check_bias(
    bias: Any, k: int, *, argument: str = "bias"
) -> tuple[tuple[Normal | None, ...], FloatArray, FloatArray]:
    """Check a per-study bias argument: a sequence of ``k`` entries, each a
    :class:`~hccmeta.priors.Normal` (or a SPEC string such as ``"normal:0.3:0.3"``) or
    None (no bias term). Returns the entries and the arrays of means and sds (0 and 0 for
    None); every problem is an :class:`InputError` naming ``argument`` and the index."""
    if isinstance(bias, str | bytes | Normal) or not isinstance(bias, Sequence | np.ndarray):
        raise InputError(
            f"{argument} must be a sequence with one bias distribution (Normal) or None per "
            f"study, got {bias!r}"
        )
    entries = list(bias)
    if len(entries) != k:
        raise InputError(f"{argument} has {len(entries)} entries for {k} studies")
    out: list[Normal | None] = []
    for i, entry in enumerate(entries):
        if entry is None:
            out.append(None)
            continue
        if isinstance(entry, str):
            entry = parse(entry, argument=f"{argument}[{i}]")
        if not isinstance(entry, Normal):
            raise InputError(
                f"{argument}[{i}] = {entry!r}: a bias distribution must be a Normal(mean, sd) "
                "on the analysis scale (or None for no bias term)"
            )
        out.append(entry)
    mean = np.array([0.0 if b is None else b.mean for b in out])
    sd = np.array([0.0 if b is None else b.sd for b in out])
    return tuple(out), mean, sd


def pool(
    yi: ArrayLike | pd.DataFrame,
    sei: ArrayLike | None = None,
    *,
    vi: ArrayLike | None = None,
    study: Sequence[Any] | None = None,
    measure: str = "generic",
    prior_mu: Prior | str | None = None,
    prior_tau: Prior | str | None = None,
    model: Literal["random", "fixed"] = "random",
    method: Literal["exact", "mcmc"] = "exact",
    ci_prob: float = 0.95,
    seed: int = DEFAULT_SEED,
    settings: Any = None,
    bias: Sequence[Normal | None] | None = None,
) -> PoolResult:
    """Random-effects meta-analysis: the normal-normal hierarchical model.

    Parameters
    ----------
    yi : array_like or pandas.DataFrame
        Estimates on the analysis scale (log for ratio measures); or a DataFrame with
        columns ``yi, sei`` | ``yi, vi`` | ``estimate, ci_lower, ci_upper[, ci_level]``
        (ratios on their natural scale) | ``events_t, n_t, events_c, n_c`` (or, rr, rd),
        and optionally ``study``.
    sei : array_like, optional
        Standard errors (> 0). Give ``sei`` or ``vi``, not both.
    vi : array_like, keyword-only, optional
        Sampling variances (> 0), instead of ``sei``.
    study : sequence, keyword-only, optional
        Study labels (unique); default ``"1", "2", ...``.
    measure : {"hr", "or", "rr", "rd", "generic"}
        The effect measure; for hr, or and rr, ``summary(scale="ratio")`` back-transforms
        with exp.
    prior_mu : Prior or str, optional
        Prior for mu: :class:`~hccmeta.priors.Normal` or
        :class:`~hccmeta.priors.Uniform` (or a SPEC string such as ``"normal:0:1"``);
        default ``Normal(0, 1)`` for log ratios (hr, or, rr) and risk differences; for
        ``generic`` the data-scaled prior of :func:`scaled_priors`, with a
        :class:`~hccmeta.errors.HccmetaWarning` saying so.
    prior_tau : Prior or str, optional
        Prior for tau (support within [0, inf)); default ``HalfNormal(0.5)`` (for
        ``generic``: :func:`scaled_priors`). Must be None for ``model="fixed"``.
    model : {"random", "fixed"}
        ``"fixed"``: the fixed-effect model (tau = 0).
    method : {"exact", "mcmc"}
        The engine.
    ci_prob : float
        Probability of the central intervals of :meth:`PoolResult.summary` (a fraction).
    seed : int
        Seed of the sampler (mcmc) and of the exact posterior draws (exact); default
        :data:`hccmeta.defaults.DEFAULT_SEED`.
    settings : hccmeta.models.mcmc.SamplerSettings, optional
        MCMC settings (draws, tune, chains, target_accept, retries, thresholds).
    bias : sequence of (Normal or None), keyword-only, optional
        One additive bias distribution per study on the analysis scale (None: no bias
        term, e.g. a randomised study at low risk of bias): ``y_i ~ N(theta_i + b_i,
        s_i^2)``, ``b_i ~ Normal(m_i, v_i^2)``; :func:`hccmeta.priors.bias_prior` gives
        the documented defaults for a risk-of-bias judgement. The exact engine integrates
        the bias out (``y_i - m_i``, ``s_i^2 + v_i^2``: still exact); the MCMC engine
        samples an explicit ``b_i``. The ``theta[<study>]`` rows are then bias-corrected
        study effects, each biased study gets a row ``bias[<study>]``, and the result
        records the distributions (:attr:`PoolResult.bias`, DataTree attribute
        ``bias``). Every entry None gives exactly the unadjusted model.

    Returns
    -------
    PoolResult

    Raises
    ------
    InputError
        Naming the argument: NaN or non-numeric values, SE or variance <= 0, values
        outside the bounds of :mod:`hccmeta.numeric` (estimates at most 1e12 in absolute
        value, standard errors in [1e-12, 1e12]), lengths
        that differ, missing DataFrame columns, a CI probability given in percent,
        priors that do not fit their parameter, unknown measure, model or method.
    """
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    if method not in _METHODS:
        raise InputError(f"method must be 'exact' or 'mcmc', got {method!r}")
    if model not in _MODELS:
        raise InputError(f"model must be 'random' or 'fixed', got {model!r}")
    ci = check_ci_prob(ci_prob)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")

    if isinstance(yi, pd.DataFrame):
        if sei is not None or vi is not None:
            raise InputError("give either a DataFrame or yi with sei/vi, not both")
        y, s, frame_study = _from_frame(yi, measure)
        if study is None:
            study = frame_study
    else:
        if sei is None and vi is None:
            raise InputError("give sei (standard errors) or vi (variances) with yi")
        if sei is not None and vi is not None:
            raise InputError("give sei or vi, not both")
        y = as_vector("yi", yi)
        if sei is not None:
            s = check_positive("sei", as_vector("sei", sei), "a standard error")
            sname = "sei"
        else:
            s = np.sqrt(check_positive("vi", as_vector("vi", vi), "a variance"))
            sname = "vi"
        if s.size != y.size:
            raise InputError(f"yi has {y.size} values but {sname} has {s.size}")
    if y.size == 0:
        raise InputError("yi is empty: pooling needs at least one study")
    labels = study_labels(study, y.size)
    if bias is not None:
        bias_entries, bias_mean, bias_sd = check_bias(bias, y.size)
    for i in range(y.size):
        problem = effect_problem(float(y[i]), float(s[i]))
        if problem is not None:
            raise InputError(f"{problem[0]}[{i}] (study {labels[i]!r}): {problem[1]}")

    mu_prior = check_mu_prior(prior_mu if prior_mu is not None else DEFAULT_MU)
    if model == "fixed":
        if prior_tau is not None:
            raise InputError("prior_tau must be None for model='fixed' (tau = 0)")
        tau_prior: Prior | None = None
    else:
        tau_prior = check_tau_prior(prior_tau if prior_tau is not None else DEFAULT_TAU)
    note = None
    if measure == "generic" and (prior_mu is None or (prior_tau is None and model == "random")):
        mu_scaled, tau_scaled, note = scaled_priors(y, s, fixed=model == "fixed")
        if prior_mu is None:
            mu_prior = mu_scaled
        if prior_tau is None and model == "random":
            tau_prior = tau_scaled
        warnings.warn(note, HccmetaWarning, stacklevel=2)

    common: dict[str, Any] = {
        "prior_note": note,
        "model": model,
        "measure": measure,
        "study": labels,
        "yi": y,
        "sei": s,
        "prior_mu": mu_prior,
        "prior_tau": tau_prior,
        "seed": int(seed),
        "ci_prob": ci,
    }
    arrays: dict[str, FloatArray] = {}
    if bias is not None:
        common["bias"] = bias_entries
        arrays = {"bias_mean": bias_mean, "bias_sd": bias_sd}
    if method == "exact":
        from hccmeta.models.normal_exact import fit_exact

        return PoolResult(
            method="exact", exact=fit_exact(y, s, mu_prior, tau_prior, **arrays), **common
        )

    from hccmeta.models.mcmc import SamplerSettings
    from hccmeta.models.normal_mcmc import fit_mcmc

    if settings is not None and not isinstance(settings, SamplerSettings):
        raise InputError(f"settings must be a SamplerSettings, got {settings!r}")
    draws, stats, diagnostics = fit_mcmc(
        y, s, labels, mu_prior, tau_prior, seed=int(seed), settings=settings, **arrays
    )
    return PoolResult(
        method="mcmc", draws=draws, sample_stats=stats, diagnostics=diagnostics, **common
    )
