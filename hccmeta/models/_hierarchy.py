"""Exchangeable random effects with their mean integrated out: the parameterisation the
hierarchical models use where one or two studies inform a level.

For effects ``x_i ~ Normal(m, s^2)``, ``i = 1..K``, with ``m ~ Normal(m0, sd0^2)``, the mean
``m`` is integrated out analytically, ``x ~ MVN(m0 1, s^2 I + sd0^2 1 1')``, and the
effects are sampled as their average (centred: the data inform it directly) plus
non-centred sum-zero deviations. With one study there is then no funnel and no ridge at
all (the non-centred ``x = m + s z`` has a ridge along ``m + s z = const`` when one study
pins ``x``; the centred form has a funnel as ``s -> 0`` when two studies agree); ``m`` is
drawn afterwards from its exact conditional posterior (:func:`conditional_mean`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["conditional_mean", "effects_from_draws", "exchangeable_effects", "helmert"]


def helmert(size: int) -> np.ndarray:
    """An orthonormal basis (size x size-1) of the vectors that sum to zero."""
    basis = np.zeros((size, max(size - 1, 0)))
    for j in range(1, size):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -float(j)
        basis[:, j - 1] /= math.sqrt(j * (j + 1))
    return basis


def exchangeable_effects(name: str, m0: Any, scale: Any, sd0: Any, size: int, init: float) -> Any:
    """``size`` exchangeable effects ``x_i ~ Normal(m, scale^2)``, ``m ~ Normal(m0, sd0^2)``
    with ``m`` integrated out, as PyMC variables: the effects' mean ``<name>_bar ~
    Normal(m0, scale^2 / size + sd0^2)`` centred (the data inform it well) and their
    deviations from it non-centred, ``scale * H z`` with ``H`` orthonormal and sum-zero
    (:func:`helmert`) and ``<name>_dev = z ~ Normal(0, 1)`` -- jointly exactly
    ``MVN(m0 1, scale^2 I + sd0^2 1 1')``. One study has no deviation (and no funnel);
    two or more have the non-centred deviations that small heterogeneities need."""
    import pymc as pm
    import pytensor.tensor as pt

    bar = pm.Normal(f"{name}_bar", mu=m0, sigma=pt.sqrt(scale**2 / size + sd0**2), initval=init)
    if size == 1:
        return pt.reshape(bar, (1,))
    z = pm.Normal(f"{name}_dev", 0.0, 1.0, shape=size - 1)
    return bar + scale * pt.dot(pt.as_tensor(helmert(size)), z)


def effects_from_draws(post: xr.Dataset, name: str, scale: np.ndarray, size: int) -> np.ndarray:
    """The effects of :func:`exchangeable_effects` from the posterior draws."""
    bar = post[f"{name}_bar"].to_numpy()[..., None]
    if size == 1:
        return bar
    z = post[f"{name}_dev"].to_numpy()
    return bar + scale[..., None] * np.einsum("kj,cdj->cdk", helmert(size), z)


def conditional_mean(
    x: np.ndarray, m0: float, a: np.ndarray, b: float, rng: np.random.Generator
) -> np.ndarray:
    """One draw per posterior draw of the mean ``m`` of exchangeable effects ``x`` (last
    axis) given ``x`` and their variance ``a``, under ``m ~ Normal(m0, b)``:
    ``Normal((m0 a + b sum x) / (a + K b), a b / (a + K b))``."""
    size = x.shape[-1]
    c = a + size * b
    mean = (m0 * a + b * x.sum(axis=-1)) / c
    sd = np.sqrt(a * b / c)
    return mean + sd * rng.standard_normal(mean.shape)
