"""Rank-normalised split R-hat, bulk ESS and tail ESS of many variables at once.

The convergence checks of every MCMC fit (:func:`hccmeta.models.mcmc.diagnose`) are those
of Vehtari et al. (2021) as arviz-stats computes them (``arviz_stats.rhat(method="rank")``,
``ess(method="bulk")``, ``ess(method="tail", prob=(0.05, 0.95))``). arviz-stats computes
them one variable at a time, with Python loops over the autocorrelations: 0.06-0.1 s per
fit here, 7 s of a report's 116 MCMC runs. This module computes the same numbers for all
variables together: the ranks, normal scores, chain means and variances, medians,
quantiles and FFT autocovariances as array operations over the variables, and only
Geyer's initial monotone sequence (a short loop over lags) per variable.

Every floating-point operation is the one arviz-stats performs, in the same order, so
the results are equal to the last bit (``tests/test_convergence.py`` compares them on
random, tied, nearly constant and real chains): reductions run over the same contiguous
rows of the same lengths (so NumPy's pairwise summation groups them alike), the
autocovariances come from the same real FFTs of the same rows, and the sums of the
autocorrelation sequence are taken per variable with the same slices. Arrays it does not
cover (a NaN or infinite value, fewer than 2 chains or 4 draws) go to arviz-stats itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["rank_diagnostics"]

FloatArray = NDArray[np.float64]

#: Blom's (1958) fractional offset of the normal scores of ranks.
_BLOM = 3.0 / 8.0


def rank_diagnostics(
    values: Any, tail_prob: tuple[float, float] = (0.05, 0.95)
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """R-hat, bulk ESS and tail ESS of every variable of ``values``.

    Parameters
    ----------
    values : array-like, shape (chain, draw, variable)
        The draws.
    tail_prob : (float, float)
        Quantiles of the tail ESS (the smaller of the two ESS is returned).

    Returns
    -------
    rhat, ess_bulk, ess_tail : numpy.ndarray, shape (variable,)
        Equal to ``arviz_stats.rhat(values, chain_axis=0, draw_axis=1)``, ``ess(...,
        method="bulk")`` and ``ess(..., method="tail", prob=tail_prob)``.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 3:
        raise ValueError(f"values must have shape (chain, draw, variable), got {arr.shape}")
    n_chain, n_draw, n_var = arr.shape
    if n_var == 0:
        empty = np.empty(0)
        return empty, empty.copy(), empty.copy()
    if n_chain < 2 or n_draw < 4 or not np.isfinite(arr).all():
        return _arviz(arr, tail_prob)
    # (variable, chain, draw), each variable's chains contiguous
    x = np.ascontiguousarray(np.moveaxis(arr, 2, 0))
    split = _split_chains(x)
    z = _z_scale(split)
    folded = np.abs(split - np.median(split.reshape(n_var, -1), axis=-1)[:, None, None])
    rhat_bulk = _rhat(z)
    rhat_tail = _rhat(_z_scale(folded))
    rhat = np.array(
        [max(b, t) for b, t in zip(rhat_bulk.tolist(), rhat_tail.tolist(), strict=True)]
    )
    ess_bulk = _ess(z)
    low, high = (
        _ess(_split_chains(x <= np.quantile(x.reshape(n_var, -1), p, axis=-1)[:, None, None]))
        for p in tail_prob
    )
    ess_tail = np.array([min(lo, hi) for lo, hi in zip(low.tolist(), high.tolist(), strict=True)])
    return rhat, ess_bulk, ess_tail


def _arviz(
    arr: FloatArray, tail_prob: tuple[float, float]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    import arviz_stats as azs

    kw: dict[str, Any] = {"chain_axis": 0, "draw_axis": 1}
    return (
        np.asarray(azs.rhat(arr, **kw), dtype=float),
        np.asarray(azs.ess(arr, method="bulk", **kw), dtype=float),
        np.asarray(azs.ess(arr, method="tail", prob=tail_prob, **kw), dtype=float),
    )


def _split_chains(x: NDArray[Any]) -> NDArray[Any]:
    """Each chain's first and last halves as two chains: (variable, 2 chain, draw // 2)."""
    half = x.shape[2] // 2
    return np.concatenate((x[:, :, :half], x[:, :, x.shape[2] - half :]), axis=1)


def _z_scale(y: FloatArray) -> FloatArray:
    """Normal scores of the ranks of each variable's draws (all chains together)."""
    from scipy import stats

    n_var = y.shape[0]
    rank = stats.rankdata(y.reshape(n_var, -1), method="average", axis=-1)
    size = rank.shape[1]
    scores = stats.norm.ppf((rank - _BLOM) / (size - 2 * _BLOM + 1))
    return np.asarray(scores, dtype=float).reshape(y.shape)


def _rhat(z: FloatArray) -> FloatArray:
    """Split R-hat of each variable of ``z`` (variable, chain, draw)."""
    n_samples = z.shape[2]
    chain_mean = np.mean(z, axis=2)
    chain_var = np.var(z, axis=2, ddof=1)
    between = n_samples * np.var(chain_mean, axis=1, ddof=1)
    within = np.mean(chain_var, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a stuck chain: NaN, a failure
        out: FloatArray = np.sqrt((between / within + n_samples - 1) / n_samples)
    return out


def _ess(values: NDArray[Any]) -> FloatArray:
    """ESS of each variable of ``values`` (variable, chain, draw): autocorrelations by
    FFT, Geyer's initial positive and monotone sequences (arviz-stats' ``_ess``)."""
    from scipy.fftpack import next_fast_len

    y = np.asarray(values, dtype=float)
    n_var, n_chain, n_draw = y.shape
    constant = (y.max(axis=(1, 2)) - y.min(axis=(1, 2))) < np.finfo(float).resolution
    m = next_fast_len(2 * n_draw)
    chain_mean = y.mean(axis=2)
    spectrum = np.fft.rfft(y - chain_mean[:, :, None], n=m, axis=2)
    spectrum *= np.conjugate(spectrum)
    acov = np.fft.irfft(spectrum, n=m, axis=2)[:, :, :n_draw]
    acov /= n_draw
    # the mean over chains at each lag, over a contiguous row as for one variable
    lag_mean = np.ascontiguousarray(acov.transpose(0, 2, 1)).mean(axis=2)
    mean_var = lag_mean[:, 0] * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + np.var(chain_mean, axis=1, ddof=1)
    size = n_chain * n_draw
    out = np.empty(n_var)
    for i in range(n_var):
        if constant[i]:
            out[i] = size
            continue
        out[i] = _geyer(lag_mean[i].tolist(), float(mean_var[i]), float(var_plus[i]), size)
    return out


def _geyer(lag_mean: list[float], mean_var: float, var_plus: float, size: int) -> float:
    """ESS from the chains' mean autocovariance at each lag (arviz-stats' ``_ess``)."""
    n_draw = len(lag_mean)
    rho = np.zeros(n_draw)
    rho_even = 1.0
    rho[0] = rho_even
    rho_odd = 1.0 - (mean_var - lag_mean[1]) / var_plus
    rho[1] = rho_odd
    # Geyer's initial positive sequence
    t = 1
    while t < (n_draw - 3) and (rho_even + rho_odd) > 0.0:
        rho_even = 1.0 - (mean_var - lag_mean[t + 1]) / var_plus
        rho_odd = 1.0 - (mean_var - lag_mean[t + 2]) / var_plus
        if (rho_even + rho_odd) >= 0:
            rho[t + 1] = rho_even
            rho[t + 2] = rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    # Geyer's initial monotone sequence
    t = 1
    while t <= max_t - 2:
        if (rho[t + 1] + rho[t + 2]) > (rho[t - 1] + rho[t]):
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1 / np.log10(size))
    if np.isnan(rho).any():
        return math.nan
    return float(size / tau)
