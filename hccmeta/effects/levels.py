"""Hazard ratios against a merged reference level, from one model's contrasts.

A multivariable Cox model with a categorical factor reports each level's log HR against
one base level b (Terashima et al. 2016, Table 3: Child-Pugh B vs A(5), 2.999; A(6) vs
A(5), 2.328). A question about "B vs class A" needs B against the merged level
R = {A(5), A(6)}. With the sizes ``n_l`` of the levels of R, weights ``w_l = n_l / sum n``
and ``beta_b = 0``:

*Estimate.* The hazard of the merged level, relative to b, is taken as the size-weighted
mean of its levels' hazards, ``H = sum_l w_l exp(beta_l)`` (the hazard of the mixture at
baseline, under proportional hazards within each level), so::

    ln HR(E vs R) = beta_E - ln H

*Variance* (delta method). With ``c_j = w_j exp(beta_j) / H`` for the levels j != b of R::

    Var = Var(beta_E) + sum_jk c_j c_k Cov(beta_j, beta_k) - 2 sum_j c_j Cov(beta_E, beta_j)

The covariances of the contrasts of one model are not printed. ``covariance=
"shared_reference"`` (default) takes them from the structure of contrasts against a common
base level: each ``beta_l = eta_l - eta_b`` is a difference of independent level
estimates whose variances are proportional to ``1 / n_l`` (the same share of events in
every level: floating absolute risks, Easton et al. 1991), which gives the correlation::

    rho_lm = (1 / n_b) / sqrt((1 / n_l + 1 / n_b) (1 / n_m + 1 / n_b))

and ``Cov(beta_l, beta_m) = rho_lm SE_l SE_m`` with the printed SEs. ``covariance="zero"``
sets them to zero, which (the correlations being positive) gives the larger variance.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from hccmeta.effects.base import Derived, as_float, check_count
from hccmeta.errors import InputError

__all__ = ["ReferenceCovariance", "log_hr_merged_reference", "shared_reference_correlation"]

ReferenceCovariance = Literal["shared_reference", "zero"]


def shared_reference_correlation(n_base: float, n_a: float, n_b: float) -> float:
    """Correlation of two log HRs against one base level of ``n_base`` patients, for levels
    of ``n_a`` and ``n_b`` patients, when level estimates have variances ``∝ 1 / n``."""
    vb = 1.0 / n_base
    return float(vb / np.sqrt((1.0 / n_a + vb) * (1.0 / n_b + vb)))


def log_hr_merged_reference(
    log_hr_exposed: float,
    se_exposed: float,
    log_hr_levels: ArrayLike,
    se_levels: ArrayLike,
    n_base: int,
    n_levels: ArrayLike,
    *,
    n_exposed: int | None = None,
    covariance: ReferenceCovariance = "shared_reference",
) -> Derived:
    """Log HR of level E against the merged level {b, j_1, ..., j_m}.

    Parameters
    ----------
    log_hr_exposed, se_exposed : float
        ``beta_E`` (E vs the base level b) and its SE.
    log_hr_levels, se_levels : array_like
        ``beta_j`` and SEs of the other levels j of the merged level, each against b.
    n_base : int
        Patients at the base level b.
    n_levels : array_like of int
        Patients at each level j (same order as ``log_hr_levels``).
    n_exposed : int, optional
        Patients at level E; required for ``covariance="shared_reference"`` (the
        correlation of ``beta_E`` with each ``beta_j``).
    covariance : {"shared_reference", "zero"}
        How the unprinted covariances of the contrasts are taken (module docstring).

    Returns
    -------
    Derived
        measure ``log_hr``, method ``recombined_reference``, flagged
        ``recombined_reference`` and ``reference_covariance_shared`` (or
        ``reference_covariance_zero``).
    """
    b_e = float(as_float("log_hr_exposed", log_hr_exposed))
    s_e = float(as_float("se_exposed", se_exposed))
    beta = np.atleast_1d(as_float("log_hr_levels", log_hr_levels))
    se = np.atleast_1d(as_float("se_levels", se_levels))
    sizes = np.atleast_1d(check_count("n_levels", n_levels, positive=True))
    nb = float(check_count("n_base", n_base, positive=True))
    if not (beta.shape == se.shape == sizes.shape) or beta.size == 0:
        raise InputError(
            "log_hr_levels, se_levels and n_levels must have one entry per merged level "
            f"(got {beta.size}, {se.size}, {sizes.size})"
        )
    if s_e <= 0 or (se <= 0).any():
        raise InputError("standard errors must be > 0")
    if covariance not in ("shared_reference", "zero"):
        raise InputError(f"covariance = {covariance!r}: must be 'shared_reference' or 'zero'")
    if covariance == "shared_reference" and n_exposed is None:
        raise InputError("covariance='shared_reference' needs n_exposed")
    w = np.concatenate([[nb], sizes]) / (nb + sizes.sum())
    rel = np.concatenate([[1.0], np.exp(beta)])
    h = float(w @ rel)
    y = b_e - np.log(h)
    c = w[1:] * rel[1:] / h
    if covariance == "zero":
        cov_jj = np.diag(se**2)
        cov_ej = np.zeros(beta.size)
    else:
        ne = float(check_count("n_exposed", float(n_exposed or 0), positive=True))
        m = beta.size
        cov_jj = np.empty((m, m))
        for i in range(m):
            for k in range(m):
                rho = 1.0 if i == k else shared_reference_correlation(nb, sizes[i], sizes[k])
                cov_jj[i, k] = rho * se[i] * se[k]
        cov_ej = np.array(
            [shared_reference_correlation(nb, ne, sizes[j]) * s_e * se[j] for j in range(m)]
        )
    var = s_e**2 + float(c @ cov_jj @ c) - 2.0 * float(c @ cov_ej)
    flags = {
        "recombined_reference": np.asarray(True),
        "reference_covariance_shared": np.asarray(covariance == "shared_reference"),
        "reference_covariance_zero": np.asarray(covariance == "zero"),
    }
    return Derived(
        measure="log_hr",
        method="recombined_reference",
        yi=np.asarray(y, dtype=float),
        sei=np.asarray(np.sqrt(var), dtype=float),
        flags=flags,
    )
