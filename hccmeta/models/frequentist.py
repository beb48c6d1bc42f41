"""Frequentist random-effects estimates for comparison: REML, DerSimonian-Laird, fixed.

:func:`rma` follows metafor's ``rma()`` (Viechtbauer 2010) and is validated against it
(``validation/metafor/run_rma.R`` -> ``tests/data/metafor_rma_reference.json``):

- ``method="DL"``: ``tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w))``;
- ``method="REML"``: the restricted maximum-likelihood estimate of tau^2 on [0, inf),
  found by Fisher scoring as metafor does (step halving keeps it >= 0), polished to
  machine precision;
- ``method="FE"``: tau^2 = 0 (metafor's "EE"/"FE");
- ``test="z"`` (default) uses normal quantiles; ``test="knha"`` the Knapp-Hartung
  adjustment (variance ``sum w (y - mu)^2 / ((k - 1) sum w)`` and t quantiles with
  k - 1 degrees of freedom), as ``rma(..., test="knha")``;
- heterogeneity: Q (with its chi-square p-value), ``I^2 = 100 tau^2 / (tau^2 + s^2)``
  and ``H^2 = (tau^2 + s^2) / s^2``, with the "typical" within-study variance
  ``s^2 = (k - 1) sum w / ((sum w)^2 - sum w^2)`` (Higgins & Thompson 2002); for the
  fixed-effect model, as metafor, ``I^2 = max(0, 100 (Q - (k - 1)) / Q)`` and
  ``H^2 = Q / (k - 1)``;
- the prediction interval ``mu +- q sqrt(se^2 + tau^2)`` (metafor's ``predict``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hccmeta.errors import InputError

__all__ = ["FrequentistResult", "rma"]

FloatArray = NDArray[np.float64]
Method = Literal["REML", "DL", "FE"]


@dataclass(frozen=True)
class FrequentistResult:
    """A frequentist meta-analysis in metafor's vocabulary.

    Attributes
    ----------
    method, test : str
        Estimator of tau^2 and the test/interval type ("z" or "knha").
    k : int
        Number of studies.
    estimate, se : float
        Pooled estimate of mu and its standard error.
    ci_lower, ci_upper : float
        Confidence interval of mu at ``level``.
    pi_lower, pi_upper : float
        Prediction interval for the effect in a new study.
    tau2, tau : float
        Between-study variance and sd.
    i2, h2 : float
        I^2 (percent, as metafor reports it) and H^2.
    q, q_p : float
        Cochran's Q and its p-value (chi-square, k - 1 df; NaN for k = 1).
    level : float
        Level of the intervals (a fraction).
    """

    method: str
    test: str
    k: int
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    pi_lower: float
    pi_upper: float
    tau2: float
    tau: float
    i2: float
    h2: float
    q: float
    q_p: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form."""
        return asdict(self)

    def keys(self) -> list[str]:
        """Field names: with :meth:`__getitem__`, ``{**result}`` gives :meth:`to_dict`."""
        return list(self.to_dict())

    def __getitem__(self, name: str) -> Any:
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def summary(self) -> pd.DataFrame:
        """Rows mu, tau, theta_new with the columns of the Bayesian summaries (``mean,
        median, sd, ci_lower, ci_upper``): mean and median are the point estimate; for
        theta_new the interval is the prediction interval and sd is
        ``sqrt(se^2 + tau^2)``; tau has no standard error or interval here (NaN)."""
        rows = {
            "mu": [self.estimate, self.estimate, self.se, self.ci_lower, self.ci_upper],
            "tau": [self.tau, self.tau, math.nan, math.nan, math.nan],
            "theta_new": [
                self.estimate,
                self.estimate,
                math.sqrt(self.se**2 + self.tau2),
                self.pi_lower,
                self.pi_upper,
            ],
        }
        return pd.DataFrame.from_dict(
            rows, orient="index", columns=["mean", "median", "sd", "ci_lower", "ci_upper"]
        ).rename_axis("variable")


def _reml_ll(tau2: float, y: FloatArray, v: FloatArray) -> float:
    w = 1.0 / (v + tau2)
    mu = float((w * y).sum() / w.sum())
    return float(-0.5 * (np.log(v + tau2).sum() + math.log(w.sum()) + (w * (y - mu) ** 2).sum()))


def _reml_tau2(y: FloatArray, v: FloatArray, start: float) -> float:
    """REML estimate of tau^2 >= 0: Fisher scoring with step halving (metafor's
    algorithm), iterated to convergence in double precision."""
    tau2 = float(max(start, 0.0))
    for _ in range(1000):
        w = 1.0 / (v + tau2)
        sw = w.sum()
        P_diag_w = w - w * w / sw  # diag of P
        mu = (w * y).sum() / sw
        r = w * (y - mu)  # P y
        # tr(P), y'PPy, tr(PP) with P = W - w w' / sw
        tr_p = P_diag_w.sum()
        ypp_y = (r * r).sum()
        tr_pp = (w * w).sum() - 2 * (w**3).sum() / sw + ((w * w).sum() / sw) ** 2
        step = float((ypp_y - tr_p) / tr_pp)
        new = tau2 + step
        while new < 0:
            step /= 2.0
            new = tau2 + step
            if abs(step) < 1e-300:
                new = 0.0
                break
        if abs(new - tau2) <= 1e-14 * max(1.0, tau2):
            tau2 = new
            break
        tau2 = new
    # at the boundary the score may still point below 0: compare with tau2 = 0
    if tau2 > 0 and _reml_ll(0.0, y, v) >= _reml_ll(tau2, y, v):
        return 0.0
    return tau2


def rma(
    yi: ArrayLike,
    *,
    sei: ArrayLike | None = None,
    vi: ArrayLike | None = None,
    method: Method = "REML",
    test: Literal["z", "knha"] = "z",
    level: float = 0.95,
) -> FrequentistResult:
    """Random-effects (or fixed-effect) meta-analysis as metafor's ``rma()``.

    Parameters
    ----------
    yi : array_like
        Estimates on the analysis scale.
    sei : array_like, keyword-only
        Standard errors; or give ``vi``. Both are keyword-only: metafor's ``rma(yi, vi)``
        takes variances second, :func:`hccmeta.pool` standard errors, so a positional
        second argument would be ambiguous.
    vi : array_like, keyword-only
        Sampling variances.
    method : {"REML", "DL", "FE"}
        Estimator of tau^2 (FE: tau^2 = 0).
    test : {"z", "knha"}
        Normal-quantile intervals, or the Knapp-Hartung adjustment.
    level : float
        Confidence level of the intervals, a fraction (0.95).

    Returns
    -------
    FrequentistResult
    """
    from scipy import stats

    from hccmeta.models.normal import as_vector, check_positive

    if method not in ("REML", "DL", "FE"):
        raise InputError(f"method must be 'REML', 'DL' or 'FE', got {method!r}")
    if test not in ("z", "knha"):
        raise InputError(f"test must be 'z' or 'knha', got {test!r}")
    if not isinstance(level, int | float) or not 0 < level < 1:
        hint = " (give a fraction, e.g. 0.95)" if isinstance(level, int | float) else ""
        raise InputError(f"level must lie in (0, 1), got {level!r}{hint}")
    y = as_vector("yi", yi)
    if (sei is None) == (vi is None):
        raise InputError("give exactly one of sei and vi")
    if sei is not None:
        v = check_positive("sei", as_vector("sei", sei), "a standard error") ** 2
    else:
        v = check_positive("vi", as_vector("vi", vi), "a variance")
    if v.size != y.size:
        raise InputError(f"yi has {y.size} values but the standard errors {v.size}")
    k = y.size
    if k == 0:
        raise InputError("yi is empty")

    w0 = 1.0 / v
    sw0 = w0.sum()
    mu_fe = (w0 * y).sum() / sw0
    q = float((w0 * (y - mu_fe) ** 2).sum())
    c = sw0 - (w0 * w0).sum() / sw0
    if method == "FE" or k == 1:
        tau2 = 0.0
    else:
        tau2_dl = max(0.0, (q - (k - 1)) / c)
        tau2 = tau2_dl if method == "DL" else _reml_tau2(y, v, tau2_dl)
    w = 1.0 / (v + tau2)
    sw = w.sum()
    mu = float((w * y).sum() / sw)
    if test == "knha":
        if k < 2:
            raise InputError("test='knha' needs at least 2 studies")
        s2w = float((w * (y - mu) ** 2).sum() / (k - 1))
        var = s2w / sw
        crit = float(stats.t.ppf((1 + level) / 2, k - 1))
    else:
        var = 1.0 / sw
        crit = float(stats.norm.ppf((1 + level) / 2))
    se = math.sqrt(var)
    if k == 1:
        i2, h2 = 0.0, 1.0
    elif method == "FE":
        # metafor's I^2 and H^2 of a fixed-effect model come from Q
        i2 = max(0.0, 100.0 * (q - (k - 1)) / q) if q > 0 else 0.0
        h2 = q / (k - 1)
    else:
        s2 = (k - 1) * sw0 / (sw0**2 - (w0 * w0).sum())
        i2 = 100.0 * tau2 / (tau2 + s2)
        h2 = (tau2 + s2) / s2
    q_p = float(stats.chi2.sf(q, k - 1)) if k > 1 else math.nan
    pi_half = crit * math.sqrt(var + tau2)
    return FrequentistResult(
        method=method,
        test=test,
        k=int(k),
        estimate=mu,
        se=se,
        ci_lower=mu - crit * se,
        ci_upper=mu + crit * se,
        pi_lower=mu - pi_half,
        pi_upper=mu + pi_half,
        tau2=float(tau2),
        tau=math.sqrt(tau2),
        i2=float(i2),
        h2=float(h2),
        q=q,
        q_p=q_p,
        level=float(level),
    )
