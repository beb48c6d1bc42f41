"""Conflict diagnostics: is one study's statistic surprising given the other studies?

For the normal-normal model ``y_i ~ N(theta_i, s_i^2)``, ``theta_i ~ N(mu, tau^2)``, the
cross-validated posterior-predictive conflict p-value of study i (Presanis et al. 2013,
Stat Sci 28(3):376-397; Marshall & Spiegelhalter 2007) compares ``y_i`` with the
predictive distribution of a new study's estimate given the *other* studies::

    y_rep ~ theta_new + s_i Z,    theta_new | y_(-i) ~ mixture over tau of N(M(tau), V(tau) + tau^2)

and takes the two-sided tail probability ``p_i = 2 min(F(y_i), 1 - F(y_i))``, where F is
the predictive CDF (exact: the mixture CDF of :mod:`hccmeta.models.normal_exact`). A small
``p_i`` says that study i does not fit what the others predict, beyond the heterogeneity
the model allows. With one study there is nothing to predict from: ``p`` is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from hccmeta.errors import InputError
from hccmeta.models.normal_exact import ExactPosterior
from hccmeta.priors import Prior

__all__ = ["loo_conflict_p"]


def loo_conflict_p(
    yi: ArrayLike,
    sei: ArrayLike,
    *,
    prior_mu: Prior,
    prior_tau: Prior | None,
    study: Sequence[str] | None = None,
) -> np.ndarray:
    """Leave-one-study-out predictive conflict p-value of every row.

    Parameters
    ----------
    yi, sei : array_like
        Estimates and standard errors (one row per statistic).
    prior_mu, prior_tau : Prior
        The priors of the normal-normal model (``prior_tau=None``: fixed effect, tau = 0).
    study : sequence of str, optional
        Study of each row: all rows of a study are left out together (default: each row
        is its own study).

    Returns
    -------
    ndarray
        Two-sided p of each row; NaN where no other study is left to predict from.
    """
    y = np.asarray(yi, dtype=float).ravel()
    s = np.asarray(sei, dtype=float).ravel()
    if y.shape != s.shape:
        raise InputError(f"yi and sei differ in length ({y.size} vs {s.size})")
    if not (np.isfinite(y).all() and np.isfinite(s).all() and (s > 0).all()):
        raise InputError("yi must be finite and sei finite and > 0")
    labels = list(study) if study is not None else [str(i) for i in range(y.size)]
    if len(labels) != y.size:
        raise InputError(f"study has {len(labels)} labels for {y.size} rows")
    lab = np.asarray(labels, dtype=object)
    out = np.full(y.size, math.nan)
    for name in dict.fromkeys(labels):
        mine = lab == name
        if mine.all():
            continue
        post = ExactPosterior(y[~mine], s[~mine], prior_mu, prior_tau)
        for i in np.flatnonzero(mine):
            f = post.predictive_cdf(y[i], s[i])
            out[i] = min(1.0, 2.0 * min(f, 1.0 - f))
    return out
