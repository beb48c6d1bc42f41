"""The likelihood terms of the multi-format survival model, written once for both the
PyMC graph (``xp`` = :class:`TensorOps`) and the posterior draws (``xp`` =
:class:`NumPyOps`), and the explicit covariance matrix of one study's statistics that the
joint terms are the conditionals of (:func:`statistic_covariance`).

The joint likelihood (``overlap="joint"``)
------------------------------------------
Every statistic of an arm is a functional of one Kaplan-Meier curve. Write
``W(t) = ln S_KM(t) - ln S(t)`` for the arm's curve ``S`` (the model's Weibull). As the
arm grows, ``W`` is a Gaussian process with independent increments and variance
(Greenwood)::

    V(t) = Var ln S_KM(t) = (1 / n) int_0^t h(u) / (S(u) G(u)) du = (exp(H(t)) - 1) / n

where the last form assumes no censoring before the times of the statistics (``G = 1``;
the effects layer makes the same assumption when it imputes the numbers at risk), so
that ``Cov(ln S_KM(s), ln S_KM(t)) = V(min(s, t))``; without censoring ``V(t) = (1 - S) /
(n S)``. The Kaplan-Meier median ``M_KM`` follows from the Bahadur representation of a
quantile, ``ln M_KM - ln M = (S_KM(M) - 1/2) / (f(M) M) + R = W(M) / (h(M) M) + R`` with
``h(M) M = k ln 2`` for the Weibull. The remainder ``R`` is not negligible in small arms
(Kiefer 1967: ``Var R / Var(linear part) = 4 sqrt(2/pi) sqrt(p (1 - p)) / sqrt(n) = 1.60 /
sqrt(n)`` at p = 1/2): the median's variance (its reported SE, ``sei^2``) is split into
a linear part ``v_lin = sei^2 / (1 + 1.60 / sqrt(n))`` that moves with ``W(M)`` and an
independent remainder ``sei^2 - v_lin``. (In 40 000 simulated exponential arms without
censoring, the correlation of ln M_KM with ln S_KM(M) is 0.78, 0.84, 0.90, 0.95 for n =
12, 22, 50, 200; this split gives 0.83, 0.86, 0.90, 0.95, the linear part alone 1; after
the median it matches too (0.72 vs 0.73 at 12 months, n = 12), but before it the
simulated correlation is higher (0.80 against 0.59 at 6 months, n = 12; 0.73 against 0.68
at n = 200), so in the smallest arms the model still counts part of that overlap twice --
``validation/survival/km_correlations.py``.) The reported SE is read as an exponential
curve's (the effects layer derives it so: ``1 / (d (ln 2)^2)``, and ``sqrt(v_lin n) = 1 /
ln 2`` without censoring); under the model's Weibull the linear part is ``W(M) / (k ln
2)``, so the loading is divided by k. The median's variance is ``sei^2 / min(k, 1)^2``:
the Weibull's asymptotic variance would be ``sei^2 / k^2``, smaller than reported where
k > 1, but in arms of a dozen patients the Kaplan-Meier median varies more than its
asymptotics say, and the exponential's SE covers part of that excess, so a median is
never made more precise than reported (the remainder takes what the linear part does
not: ``sei^2 / min(k, 1)^2 - v_lin / k^2``; ``overlap="none"`` and ``"families"`` keep
the reported SE). On simulated trials like the n=34 study this raised the coverage of
the log HR from 0.865 to 0.88 and of the arm-level quantities from 0.825-0.875 to
0.855-0.90 (``validation/survival/survival_coverage.md``). Hence::

    Cov(ln M_KM, ln S_KM(t)) = a V(min(M, t)),   a = sqrt(v_lin / V(M)) / k = sqrt(n v_lin) / k

With the loading fixed at k = 1, a curve of shape far from 1 conditions the median on
the landmarks as an exponential would: 3.6 months against S(6) = 0.64 was a typical
simulated median at k = 0.46, and the conditional variance shrinking to the remainder
where the fitted median meets a landmark made a barrier between two modes (one chain of
an SBC replication stuck in each). With it, a median whose fitted value is at a landmark
is expected where a Weibull of the model's shape through that landmark has its median.

A hazard ratio estimated from the two arms (Cox, or a log-rank/Peto statistic) is, to
first order, ``beta_hat - beta = I^-1 sum_i int (Z_i - Zbar(u)) dM_i(u)`` over the
counting-process martingales of all patients, with ``Zbar`` the (hazard-weighted) share
of the experimental arm in the risk set and ``I = 1 / se^2`` its information. Its
covariance with the log Kaplan-Meier curve of each arm is then (proportional hazards,
``H_1 = HR H_0``; no censoring before the statistics, so that ``Y_a = n_a S_a``)::

    Cov(beta_hat, ln S_KM,ref(t)) = + se^2 int_0^t Zbar h_0 du       = se^2 (H_0 - L(H_0))
    Cov(beta_hat, ln S_KM,exp(t)) = - se^2 int_0^t (1 - Zbar) h_1 du = - se^2 HR L(H_0)

with ``H_0 = H_0(t)`` the reference arm's cumulative hazard, ``L(H) = [softplus(c + B H)
- softplus(c)] / B``, ``c = ln(n_0 / (n_1 HR))``, ``B = HR - 1`` (``L(H) = H n_0 / N`` at
HR = 1). The information of complete follow-up, ``I_0 = n_1 n_0 / N`` at HR = 1, bounds
the information a comparison of the arms can carry (it is smaller at any other HR); where
the reported ``1 / se^2`` is smaller, censoring has thinned the arms, and the arms'
sizes are scaled by ``phi = (1 / se^2) / I_0`` in all these covariances (censoring
independent of time), which keeps the explained share of ``Var beta_hat`` below 1.

The likelihood is the joint density factorised as ``p(landmarks) p(medians | landmarks)
p(contrast | landmarks, medians)``: the landmarks as before (successive conditional
survivals, binomial or cloglog-normal: the exact joint density of the landmarks of a
curve without censoring), each median given its arm's landmarks (a Brownian bridge of
``W`` in ``V``-time between the landmarks around ``M``, plus the remainder), and the
contrast given everything both arms report (the regression of ``beta_hat`` on the
independent increments of ``W`` between landmarks and on the medians' innovations). All
of it is evaluated under the model's curves at every step of the sampler. Each
conditional is what the multivariate normal with the covariance of
:func:`statistic_covariance` gives (tests/test_survival_joint.py checks this to 1e-9).
The observed ``W`` at a landmark is ``ln S_KM + H`` where the landmark lies on or above
the model's curve, and its complementary log-log form ``H (ln H - ln(-ln S_KM))`` below
it (:func:`landmark_deviation`: equal to first order, but bounded where a landmark near
0 meets a curve far above it, where the linear form made spurious modes).

``overlap="families"`` and ``"none"`` switch the conditioning off (data ``joint = 0``):
every statistic enters on its own, weighted by ``1 / m`` (m kinds of statistic in the
study) or not at all; the three share one compiled model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = [
    "KIEFER",
    "NumPyOps",
    "TensorOps",
    "binomial_landmark_logp",
    "contrast_logp",
    "hazard_increment",
    "km_joint_terms",
    "landmark_deviation",
    "normal_logp",
    "statistic_covariance",
]

LN2 = math.log(2.0)
_LOG_LN2 = math.log(LN2)
#: Var(Bahadur remainder) / Var(linear part) of a sample median, times sqrt(n) (Kiefer
#: 1967: 4 sqrt(2 / pi) sqrt(p (1 - p)) at p = 1/2).
KIEFER = 4.0 * math.sqrt(2.0 / math.pi) * 0.5
#: Below this |HR - 1| the integral L of the contrast covariance is a Taylor series.
_SMALL_B = 1e-4
#: Smallest conditional variance of a contrast, as a share of se^2 (a numerical guard:
#: the bound above keeps it positive).
_MIN_SHARE = 1e-6
#: Largest cumulative hazard in the variances of ln S_KM.
_MAX_H = 30.0


class NumPyOps:
    """The few ``pytensor.tensor`` functions the term formulas use, in NumPy."""

    exp = staticmethod(np.exp)
    expm1 = staticmethod(np.expm1)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    where = staticmethod(np.where)
    sigmoid = staticmethod(expit)

    @staticmethod
    def softplus(x: np.ndarray) -> np.ndarray:
        """``log(1 + exp(x))``."""
        return np.logaddexp(0.0, x)

    @staticmethod
    def log1mexp(x: np.ndarray) -> np.ndarray:
        """``log(1 - exp(x))`` for ``x < 0``, as ``pytensor.tensor.log1mexp`` computes it."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x < -LN2, np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


class TensorOps:
    """The same functions from ``pytensor.tensor`` (imported when first used)."""

    def __getattr__(self, name: str) -> Any:
        import pytensor.tensor as pt

        return pt.switch if name == "where" else getattr(pt, name)


def normal_logp(xp: Any, y: Any, mu: Any, sigma: Any) -> Any:
    """Normal log density, element-wise."""
    return -0.5 * ((y - mu) / sigma) ** 2 - xp.log(sigma) - 0.5 * math.log(2.0 * math.pi)


def hazard_increment(
    xp: Any, k: Any, log_t: Any, log_t_prev: Any, has_prev: Any, log_m: Any
) -> Any:
    """Increment of the Weibull cumulative hazard ``H(t) = ln 2 (t / M)^k`` over
    ``[t_prev, t]`` (``H(t_prev) = 0`` where ``has_prev`` is 0), at least 1e-12."""
    h = xp.exp(_LOG_LN2 + k * (log_t - log_m))
    h_prev = has_prev * xp.exp(_LOG_LN2 + k * (log_t_prev - log_m))
    return xp.maximum(h - h_prev, 1e-12)


def binomial_landmark_logp(xp: Any, coef: Any, events: Any, n: Any, dh: Any) -> Any:
    """Binomial log density of ``events`` deaths of ``n`` with P(death in the interval)
    ``1 - exp(-dh)`` (``coef``: the log binomial coefficient)."""
    return coef + events * xp.log1mexp(-dh) - (n - events) * dh


def _integral_l(xp: Any, h0: Any, c: Any, b: Any) -> Any:
    """``L(H) = int_0^H sigmoid(c + B x) dx = [softplus(c + B H) - softplus(c)] / B``
    (a Taylor series in B near 0, so that neither value nor gradient is 0/0)."""
    small = abs(b) < _SMALL_B
    b_safe = xp.where(small, _SMALL_B, b)
    exact = (xp.softplus(c + b_safe * h0) - xp.softplus(c)) / b_safe
    s = xp.sigmoid(c)
    v = s * (1.0 - s)
    taylor = s * h0 + v * b * h0**2 / 2.0 + v * (1.0 - 2.0 * s) * b**2 * h0**3 / 6.0
    return xp.where(small, taylor, exact)


def landmark_deviation(xp: Any, ln_s: Any, h: Any) -> Any:
    """The observed ``W(t)`` the joint terms condition on, from a landmark's ``ln S_KM(t)``
    and the model's ``H(t)``: ``W = ln S_KM + H`` where the curve lies below the
    landmark (``W >= 0``, at most ``H``), and ``H ln(H / -ln S_KM)`` where it lies above
    (the same to first order, and continuous with its slope at ``W = 0``).

    Where the model's curve is far above a landmark near 0 (S_KM = 0.02 at a model
    S of 0.8), ``ln S_KM + H`` is -3.7 and the linear Bahadur and regression terms turn
    it into a median or HR far outside anything the data allow, pulling the curve
    further away: a spurious mode that held one chain of two SBC replications (R-hat
    1.83). The second form is the deviation on the complementary log-log scale, ``ln H
    - ln(-ln S_KM)``, times ``H``: a median conditioned on it is where a Weibull of the
    model's shape through the landmark has its median, which stays in range.
    """
    w = ln_s + h
    safe_h = xp.maximum(h, 1e-300)
    cloglog = safe_h * (xp.log(safe_h) - xp.log(xp.maximum(-ln_s, 1e-300)))
    return xp.where(w < 0.0, cloglog, w)


def contrast_covariance(
    xp: Any, h_arm: Any, *, sign: Any, se2: Any, beta: Any, log_ratio: Any
) -> Any:
    """``Cov(beta_hat, ln S_KM(t))`` of an arm at its cumulative hazard ``h_arm = H(t)``:
    ``sign`` +1 for the reference arm, -1 for the experimental arm (0: no contrast,
    with ``se2`` 0); ``beta`` the study's log HR, ``log_ratio`` ``ln(n_0 / n_1)``."""
    hr = xp.exp(beta)
    ref = sign > 0
    h0 = xp.where(ref, h_arm, h_arm / hr)
    big_l = _integral_l(xp, h0, log_ratio - beta, hr - 1.0)
    return se2 * xp.where(ref, h0 - big_l, -hr * big_l)


def km_joint_terms(
    xp: Any, d: Mapping[str, Any], log_m: Any, k: Any, beta: Any
) -> tuple[Any, Any, Any]:
    """The joint terms of the arms' segments (see the module docstring).

    Parameters
    ----------
    xp : NumPyOps or TensorOps
    d : mapping
        The segment data (``seg_*``: one row per interval between an arm's landmarks,
        from 0 to the last one and an open one after it; see
        :func:`hccmeta.models.survival.graph.segment_table`) and ``joint`` (1: the joint
        likelihood, 0: every statistic on its own).
    log_m, k, beta : tensors
        Per segment: the arm's log median, the Weibull shape and the study's log HR (as
        observed, bias included).

    Returns
    -------
    median_logp : tensor
        Per segment, the log density of the arm's median given its landmarks where the
        median lies in the segment (0 elsewhere; unweighted).
    shift, reduction : tensor
        Per segment, its part of ``E[beta_hat | arm statistics] - beta`` and of the
        variance ``Var beta_hat - Var[beta_hat | arm statistics]``; summed over a study's
        segments they give the contrast's conditional mean and variance.
    """
    closed = 1.0 - d["seg_open"]
    n = d["seg_n"]
    h_lo = d["seg_has_lo"] * xp.exp(_LOG_LN2 + k * (d["seg_log_lo"] - log_m))
    h_hi = xp.exp(_LOG_LN2 + k * (d["seg_log_hi"] - log_m))
    # (H capped at 30, S = 1e-13: no finite sample reaches it, and exp stays finite)
    v_lo = xp.expm1(xp.minimum(h_lo, _MAX_H)) / n
    v_hi = xp.expm1(xp.minimum(h_hi, _MAX_H)) / n
    v_m = 1.0 / n
    dv = xp.maximum(v_hi - v_lo, 1e-12)
    w_lo = landmark_deviation(xp, d["seg_ln_s_lo"], h_lo)  # observed W at the segment's ends
    w_hi = landmark_deviation(xp, d["seg_ln_s_hi"], h_hi)
    cov = {
        "sign": d["seg_sign"],
        "se2": d["seg_se2"],
        "beta": beta,
        "log_ratio": d["seg_log_ratio"],
    }
    g_lo = contrast_covariance(xp, h_lo, **cov)
    g_hi = contrast_covariance(xp, h_hi, **cov)
    g_m = contrast_covariance(xp, LN2 + 0.0 * h_lo, **cov)
    dg = g_hi - g_lo
    # the contrast regressed on the landmark increments
    shift = closed * dg / dv * (w_hi - w_lo)
    reduction = closed * dg**2 / dv
    # the median given the landmarks: W(M) is a Brownian bridge (in V-time) between the
    # segment's ends, or W(lo) plus an increment in the open segment after the last one
    inside = (h_lo < LN2) * (d["seg_open"] + closed * (h_hi >= LN2)) * d["seg_has_med"]
    lam = closed * xp.minimum(xp.maximum((v_m - v_lo) / dv, 0.0), 1.0)
    bridge_mean = w_lo + lam * (w_hi - w_lo)
    bridge_var = xp.maximum(v_m - v_lo, 0.0) * (1.0 - lam)
    se2_med = d["seg_med_se"] ** 2
    v_lin = se2_med / (1.0 + KIEFER / xp.sqrt(n))
    # the loading of ln M_KM on W(M) under the model's curve, 1 / (k ln 2): the reported
    # SE is read as the exponential's (sqrt(v_lin n) = 1 / ln 2 there), so the loading
    # is divided by k; the variance is divided by min(k, 1)^2 (never below reported)
    a = xp.sqrt(v_lin * n) / k
    joint = d["joint"]
    resid = d["seg_med_y"] - log_m - joint * a * bridge_mean
    var = (
        joint * (a**2 * bridge_var + se2_med / xp.minimum(k, 1.0) ** 2 - v_lin / k**2)
        + (1.0 - joint) * se2_med
    )
    median_logp = inside * normal_logp(xp, resid, 0.0, xp.sqrt(var))
    # the contrast regressed on the median's innovation given the landmarks
    c_m = (g_m - g_lo) - lam * dg
    shift = joint * (shift + inside * a * c_m * resid / var)
    reduction = joint * (reduction + inside * a**2 * c_m**2 / var)
    return median_logp, shift, reduction


def contrast_logp(xp: Any, y: Any, beta: Any, se: Any, shift: Any, reduction: Any) -> Any:
    """Log density of a contrast ``y`` (log HR, SE ``se``) given its arms' statistics:
    mean ``beta + shift``, variance ``se^2 - reduction`` (at least 1e-6 se^2)."""
    var = xp.maximum(se**2 - reduction, _MIN_SHARE * se**2)
    return normal_logp(xp, y, beta + shift, xp.sqrt(var))


# --------------------------------------------------------------------------------------
# the explicit covariance (what the joint terms are the conditionals of)


def statistic_covariance(
    *,
    log_median_ref: float,
    log_hr: float,
    shape: float,
    n: Mapping[str, float],
    times: Mapping[str, Sequence[float]] | None = None,
    median_se: Mapping[str, float] | None = None,
    contrast_se: float | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The asymptotic mean and covariance of one two-arm study's statistics under the
    model's curves (see the module docstring): per arm (``"ref"``, then ``"exp"``) its
    log Kaplan-Meier median (if ``median_se`` has the arm) and its log Kaplan-Meier
    survival at ``times[arm]``, then the log HR estimate (if ``contrast_se``).

    Parameters
    ----------
    log_median_ref : float
        ``ln M`` of the reference arm (months).
    log_hr : float
        The study's log HR, experimental vs reference (``ln M_exp = ln M_ref - log_hr /
        shape``).
    shape : float
        Weibull shape k.
    n : mapping
        Each arm's (effective) size, keys ``"ref"`` and ``"exp"``.
    times : mapping, optional
        Landmark times per arm.
    median_se : mapping, optional
        The SE of each reported log median (the arms without a median left out).
    contrast_se : float, optional
        The SE of the log HR estimate.

    Returns
    -------
    labels : list of str
        ``"ref median"``, ``"ref S(6)"``, ..., ``"log HR"``.
    mean : numpy.ndarray
        ``ln M``, ``ln S(t) = -H(t)`` and the log HR.
    cov : numpy.ndarray
        The covariance matrix.
    """
    times = times or {}
    median_se = median_se or {}
    log_m = {"ref": log_median_ref, "exp": log_median_ref - log_hr / shape}
    ratio = math.log(n["ref"] / n["exp"])

    def cum_hazard(arm: str, t: float) -> float:
        return LN2 * math.exp(shape * (math.log(t) - log_m[arm]))

    def g(arm: str, h: float) -> float:
        if contrast_se is None:
            return 0.0
        sign = 1.0 if arm == "ref" else -1.0
        return float(
            contrast_covariance(
                NumPyOps, np.float64(h), sign=sign, se2=contrast_se**2, beta=log_hr, log_ratio=ratio
            )
        )

    # each statistic: (label, arm, mean, H at its time, loading on W, own extra variance)
    stats: list[tuple[str, str, float, float, float, float]] = []
    for arm in ("ref", "exp"):
        size = n[arm]
        if arm in median_se:
            se2 = median_se[arm] ** 2
            v_lin = se2 / (1.0 + KIEFER / math.sqrt(size))
            loading = math.sqrt(v_lin * size) / shape
            extra = se2 / min(shape, 1.0) ** 2 - v_lin / shape**2
            stats.append((f"{arm} median", arm, log_m[arm], LN2, loading, extra))
        for t in sorted(times.get(arm, ())):
            h = cum_hazard(arm, t)
            stats.append((f"{arm} S({t:g})", arm, -h, h, 1.0, 0.0))
    labels = [s[0] for s in stats]
    mean = [s[2] for s in stats]
    size_of = {arm: n[arm] for arm in ("ref", "exp")}
    dim = len(stats) + (contrast_se is not None)
    cov = np.zeros((dim, dim))
    for i, (_, arm_i, _, h_i, a_i, extra_i) in enumerate(stats):
        for j, (_, arm_j, _, h_j, a_j, _) in enumerate(stats):
            if arm_i == arm_j:
                cov[i, j] = a_i * a_j * math.expm1(min(h_i, h_j)) / size_of[arm_i]
        cov[i, i] += extra_i
        if contrast_se is not None:
            cov[i, -1] = cov[-1, i] = a_i * g(arm_i, h_i)
    if contrast_se is not None:
        labels.append("log HR")
        mean.append(log_hr)
        cov[-1, -1] = contrast_se**2
    return labels, np.asarray(mean), cov
