"""The exact engine of the combined model: 2-D quadrature over (tau, sigma_b).

The model of :func:`hccmeta.models.pool_combined` (``kind="bias"``)::

    theta_i ~ N(mu, tau^2)
    randomised:      y_i ~ N(theta_i, s_i^2)
    non-randomised:  y_i ~ N(theta_i + b_i, s_i^2),  b_i ~ N(mu_b, sigma_b^2)

Given the two variance parameters, ``y_i ~ N(mu + r_i mu_b, s_i^2 + tau^2 + r_i sigma_b^2)``
(``r_i = 1`` for a non-randomised study) is a Gaussian linear model in ``beta = (mu,
mu_b)``; with Normal priors on mu and mu_b, ``beta | tau, sigma_b, y`` is bivariate normal
and the marginal likelihood ``p(y | tau, sigma_b)`` has a closed form. The engine:

- integrates ``p(tau, sigma_b | y)`` on ``(log tau, log sigma_b)`` with a tensor product of
  composite Gauss-Legendre panels (uniform panels plus panels at approximate marginal
  quantiles, on the box where the density is within 40 nats of its maximum), as
  :mod:`hccmeta.models.normal_exact` does in one dimension; nodes of weight below 1e-14
  are dropped from the mixtures;
- represents mu, mu_b, theta_new, each theta_i (the bias-corrected study effects) and each
  b_i as mixtures over the nodes of normals (each is linear in beta plus independent
  normal noise given the variance parameters): exact moments, CDFs and quantiles;
- computes the marginal CDFs of tau and sigma_b by partial-panel integration along one
  axis, summing over the nodes of the other.

Without non-randomised studies the likelihood does not involve mu_b or sigma_b, whose
posteriors are their priors, and mu, tau, theta are those of the plain random-effects
model (up to the quadrature error, about 1e-9; the tests allow 1e-6).
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import special

from hccmeta.models.normal_exact import NormalMixture
from hccmeta.priors import Normal, Prior

__all__ = ["CombinedExactPosterior"]

FloatArray = NDArray[np.float64]

#: Gauss-Legendre nodes per panel, panels per axis: uniform, and at approximate marginal
#: quantiles spaced as normal scores from -4.5 to 4.5 (so that the tails get panels of
#: their own). With these settings the quantiles of mu, tau and sigma_b agree to 1e-9 with
#: a grid of 48 + 48 panels of 10 nodes without pruning, and without non-randomised
#: studies the posterior of sigma_b reproduces its prior to 1e-9.
_GL_NODES = 6
_UNIFORM_PANELS = 12
_QUANTILE_PANELS = 16
#: Coarse grid points per axis used to find the box and the quantile panels.
_COARSE = 160
#: The box keeps log-density values within this many nats of the maximum.
_LOG_DENSITY_CUT = 40.0
#: Mixture components (nodes) with a smaller weight are dropped (their total is < 1e-10).
_PRUNE = 1e-14
_LOG_2PI = math.log(2.0 * math.pi)

_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_NODES)
_GL_X01 = (_GL_X + 1.0) / 2.0
_GL_W01 = _GL_W / 2.0


class CombinedExactPosterior:
    """The posterior of the combined model by 2-D quadrature over (tau, sigma_b).

    Parameters
    ----------
    y, s : array
        Estimates and standard errors.
    nrs : array of bool
        True for a non-randomised study (one with a bias term).
    prior_mu, prior_mu_b : Normal
        Priors of mu (the randomised-level effect) and of the mean bias mu_b.
    prior_tau, prior_sigma_b : Prior on [0, inf)
        Priors of the between-study SD and of the between-study SD of the bias.
    """

    scale_names: tuple[str, ...] = ("tau", "sigma_b")

    def __init__(
        self,
        y: FloatArray,
        s: FloatArray,
        nrs: NDArray[np.bool_],
        prior_mu: Normal,
        prior_tau: Prior,
        prior_mu_b: Normal,
        prior_sigma_b: Prior,
    ) -> None:
        self.y = np.asarray(y, dtype=float)
        self.s = np.asarray(s, dtype=float)
        self.s2 = self.s**2
        self.r = np.asarray(nrs, dtype=bool).astype(float)
        self.nrs_index = np.flatnonzero(self.r > 0)
        self.priors = (prior_tau, prior_sigma_b)
        self.beta0 = np.array([prior_mu.mean, prior_mu_b.mean])
        self.prec0 = np.array([1.0 / prior_mu.sd**2, 1.0 / prior_mu_b.sd**2])
        self._build_grid()

    # -- the conjugate part ----------------------------------------------------------------

    def _conditional(
        self, tau: FloatArray, sb: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """At each (tau, sigma_b): log p(y | tau, sigma_b), the posterior mean M (N, 2)
        and covariance C (N, 2, 2) of (mu, mu_b)."""
        var = self.s2[None, :] + (tau * tau)[:, None] + (sb * sb)[:, None] * self.r[None, :]
        w = 1.0 / var
        wr = w * self.r[None, :]
        p11 = w.sum(axis=1) + self.prec0[0]
        p12 = wr.sum(axis=1)
        p22 = p12 + self.prec0[1]
        h1 = w @ self.y + self.prec0[0] * self.beta0[0]
        h2 = wr @ self.y + self.prec0[1] * self.beta0[1]
        det = p11 * p22 - p12 * p12
        c11, c12, c22 = p22 / det, -p12 / det, p11 / det
        m1 = c11 * h1 + c12 * h2
        m2 = c12 * h1 + c22 * h2
        quad = (
            w @ (self.y * self.y)
            + (self.prec0 * self.beta0 * self.beta0).sum()
            - (h1 * m1 + h2 * m2)
        )
        log_marginal = (
            -0.5 * self.y.size * _LOG_2PI
            + 0.5 * np.log(w).sum(axis=1)
            + 0.5 * np.log(self.prec0).sum()
            - 0.5 * np.log(det)
            - 0.5 * quad
        )
        M = np.stack([m1, m2], axis=1)
        C = np.stack([np.stack([c11, c12], axis=1), np.stack([c12, c22], axis=1)], axis=1)
        return log_marginal, M, C

    def _log_density(self, x: FloatArray, u: FloatArray) -> FloatArray:
        """Unnormalised log density of (x, u) = (log tau, log sigma_b), broadcast."""
        return self._log_density_full(x, u)[0]

    def _log_density_full(
        self, x: FloatArray, u: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """:meth:`_log_density` and the conditional mean and covariance of (mu, mu_b)
        at the flattened points."""
        x, u = np.broadcast_arrays(np.asarray(x, float), np.asarray(u, float))
        shape = x.shape
        xf, uf = x.ravel(), u.ravel()
        tau, sb = np.exp(xf), np.exp(uf)
        log_marginal, M, C = self._conditional(tau, sb)
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = self.priors[0].logpdf(tau) + xf + self.priors[1].logpdf(sb) + uf + log_marginal
        return np.where(np.isnan(lp), -np.inf, lp).reshape(shape), M, C

    # -- the grid --------------------------------------------------------------------------

    def _axis_range(self, axis: int) -> tuple[float, float]:
        prior = self.priors[axis]
        if axis == 0:
            spread = float(np.std(self.y)) if self.y.size > 1 else 0.0
            ref = max(float(self.s.max()), spread, float(prior.ppf(0.5)))
        else:
            ref = float(prior.ppf(0.5))
        lo_support = math.log(prior.lower) if prior.lower > 0 else -math.inf
        hi_support = math.log(prior.upper) if math.isfinite(prior.upper) else math.inf
        return max(math.log(ref) - 25.0, lo_support), min(math.log(ref) + 20.0, hi_support)

    def _build_grid(self) -> None:
        ranges = [self._axis_range(0), self._axis_range(1)]
        coarse = [np.linspace(lo, hi, _COARSE) for lo, hi in ranges]
        lg = self._log_density(coarse[0][:, None], coarse[1][None, :])
        top = float(np.max(lg))
        if not np.isfinite(top):
            raise FloatingPointError("the posterior of (tau, sigma_b) is zero on the grid")
        # keep the box where the density, or the density times tau^2 or sigma_b^2
        # (second moments of heavy tails), is within the cut of its maximum
        keep = lg > top - _LOG_DENSITY_CUT
        for axis in (0, 1):
            grid = coarse[axis][:, None] if axis == 0 else coarse[axis][None, :]
            lg2 = lg + 2.0 * grid
            keep |= lg2 > np.max(lg2) - _LOG_DENSITY_CUT
        self.edges: list[FloatArray] = []
        nodes: list[FloatArray] = []
        weights: list[FloatArray] = []
        dens = np.exp(lg - top)
        for axis in (0, 1):
            c = coarse[axis]
            inside_any = keep.any(axis=1 - axis)
            idx = np.flatnonzero(inside_any)
            step = c[1] - c[0]
            lo = max(c[idx[0]] - step, ranges[axis][0])
            hi = min(c[idx[-1]] + step, ranges[axis][1])
            marginal = dens.sum(axis=1 - axis)
            inside = (c >= lo) & (c <= hi)
            cx, cg = c[inside], marginal[inside]
            uniform = np.linspace(lo, hi, _UNIFORM_PANELS + 1)
            if cx.size > 2 and cg.sum() > 0:
                cdf = np.concatenate([[0.0], np.cumsum(0.5 * (cg[1:] + cg[:-1]) * np.diff(cx))])
                cdf /= cdf[-1]
                probs = special.ndtr(np.linspace(-4.5, 4.5, _QUANTILE_PANELS - 1))
                qedges = np.interp(probs, cdf, cx)
            else:
                qedges = np.array([])
            edges = np.unique(np.concatenate([uniform, qedges]))
            edges = edges[np.concatenate([[True], np.diff(edges) > 1e-9 * (hi - lo)])]
            edges[-1] = hi
            widths = np.diff(edges)
            self.edges.append(edges)
            nodes.append((edges[:-1, None] + widths[:, None] * _GL_X01[None, :]).ravel())
            weights.append((widths[:, None] * _GL_W01[None, :]).ravel())
        self.x, self.u = nodes
        self.wx, self.wu = weights
        lg_nodes, M, C = self._log_density_full(self.x[:, None], self.u[None, :])
        self._shift = float(np.max(lg_nodes))
        w2 = self.wx[:, None] * self.wu[None, :] * np.exp(lg_nodes - self._shift)
        self._norm = float(w2.sum())
        self.p2 = w2 / self._norm  # (Nx, Nu)
        self.log_evidence = self._shift + math.log(self._norm)
        self._panel_cum = [
            np.concatenate([[0.0], np.cumsum(self.p2.sum(axis=1).reshape(-1, _GL_NODES).sum(1))]),
            np.concatenate([[0.0], np.cumsum(self.p2.sum(axis=0).reshape(-1, _GL_NODES).sum(1))]),
        ]
        # the nodes that carry weight, flattened: the components of the mixtures
        xi, ui = np.nonzero(self.p2 > _PRUNE)
        self.p = self.p2[xi, ui] / self.p2[xi, ui].sum()
        self.tau = np.exp(self.x[xi])
        self.sigma_b = np.exp(self.u[ui])
        flat = xi * self.u.size + ui
        self.M, self.C = M[flat], C[flat]

    def marginal(self, name: str) -> NormalMixture:
        """The one-row mixture of ``"mu"`` or ``"mu_b"`` (cheaper than :attr:`mixture`
        when only one of them is wanted)."""
        j = {"mu": 0, "mu_b": 1}[name]
        return NormalMixture(self.p, self.M[None, :, j], np.sqrt(self.C[None, :, j, j]))

    # -- the variance parameters -----------------------------------------------------------

    def _axis_density(self, axis: int, z: FloatArray) -> FloatArray:
        """Normalised marginal density of log tau (axis 0) or log sigma_b (axis 1) at z."""
        z = np.asarray(z, dtype=float)
        if axis == 0:
            lg = self._log_density(z[:, None], self.u[None, :])
            return np.asarray(np.exp(lg - self._shift) @ self.wu / self._norm, dtype=float)
        lg = self._log_density(self.x[:, None], z[None, :])
        return np.asarray(self.wx @ np.exp(lg - self._shift) / self._norm, dtype=float)

    def _axis_cdf(self, axis: int, z: FloatArray) -> FloatArray:
        """P(log scale <= z) along ``axis`` (partial-panel Gauss-Legendre)."""
        edges = self.edges[axis]
        z = np.clip(np.asarray(z, dtype=float), edges[0], edges[-1])
        panel = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, edges.size - 2)
        start = edges[panel]
        width = z - start
        sub = start[:, None] + width[:, None] * _GL_X01[None, :]
        dens = self._axis_density(axis, sub.ravel()).reshape(sub.shape)
        part = (dens * _GL_W01[None, :]).sum(1) * width
        return np.asarray(self._panel_cum[axis][panel] + part, dtype=float)

    def _axis(self, name: str) -> int:
        if name not in self.scale_names:
            raise KeyError(name)
        return self.scale_names.index(name)

    def scale_cdf(self, name: str, t: FloatArray) -> FloatArray:
        """Posterior CDF of ``"tau"`` or ``"sigma_b"``."""
        axis = self._axis(name)
        t = np.atleast_1d(np.asarray(t, dtype=float))
        out = np.zeros(t.shape)
        pos = t > 0
        out[pos] = self._axis_cdf(axis, np.log(t[pos]))
        return out

    def scale_quantile(self, name: str, probs: FloatArray) -> FloatArray:
        """Posterior quantiles of ``"tau"`` or ``"sigma_b"`` (safeguarded Newton on the
        log scale within the panel that holds each quantile)."""
        axis = self._axis(name)
        probs = np.atleast_1d(np.asarray(probs, dtype=float))
        edges, cum = self.edges[axis], self._panel_cum[axis]
        panel = np.clip(np.searchsorted(cum, probs) - 1, 0, edges.size - 2)
        lo, hi = edges[panel].copy(), edges[panel + 1].copy()
        frac = np.clip((probs - cum[panel]) / np.maximum(cum[panel + 1] - cum[panel], 1e-300), 0, 1)
        z = lo + frac * (hi - lo)
        width = float(edges[-1] - edges[0])
        for _ in range(60):
            f = self._axis_cdf(axis, z) - probs
            lo = np.where(f < 0, z, lo)
            hi = np.where(f > 0, z, hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = z - f / self._axis_density(axis, z)
            converged = np.abs(f) <= 1e-14
            bad = ~np.isfinite(newton) | (newton < lo) | (newton > hi)
            z_new = np.where(converged, z, np.where(bad, 0.5 * (lo + hi), newton))
            done = converged | (np.abs(z_new - z) <= 1e-13 * width)
            z = z_new
            if np.all(done):
                break
        return np.exp(z)

    def scale_mean_sd(self, name: str) -> tuple[float, float]:
        """Posterior mean and sd of ``"tau"`` or ``"sigma_b"``."""
        values = np.exp(self.x) if self._axis(name) == 0 else np.exp(self.u)
        marginal = self.p2.sum(axis=1) if self._axis(name) == 0 else self.p2.sum(axis=0)
        m = float(values @ marginal)
        v = float((values**2) @ marginal) - m * m
        return m, math.sqrt(max(v, 0.0))

    # -- mixtures --------------------------------------------------------------------------

    @cached_property
    def mixture(self) -> NormalMixture:
        """Rows: mu, theta_new, theta_1..theta_k, mu_b, then b_i for the non-randomised
        studies (:attr:`nrs_index`)."""
        t2 = self.tau**2
        sb2 = self.sigma_b**2
        n = t2.size
        y, s2, r = self.y[:, None], self.s2[:, None], self.r[:, None]
        # theta_i: prior N(mu, tau^2); y_i - r_i mu_b ~ N(theta_i, s_i^2 + r_i sigma_b^2)
        se2 = s2 + r * sb2[None, :]
        c = se2 / (se2 + t2[None, :])
        th_A, th_a1, th_a2 = (1.0 - c) * y, c, -(1.0 - c) * r
        th_d = np.sqrt(se2 * t2[None, :] / (se2 + t2[None, :]))
        rows_A = [np.zeros(n), np.zeros(n), *th_A, np.zeros(n)]
        rows_a1 = [np.ones(n), np.ones(n), *th_a1, np.zeros(n)]
        rows_a2 = [np.zeros(n), np.zeros(n), *th_a2, np.ones(n)]
        rows_d = [np.zeros(n), np.sqrt(t2), *th_d, np.zeros(n)]
        # b_i: prior N(mu_b, sigma_b^2); y_i - mu ~ N(b_i, s_i^2 + tau^2)
        for i in self.nrs_index:
            st2 = self.s2[i] + t2
            g = st2 / (st2 + sb2)
            rows_A.append((1.0 - g) * self.y[i])
            rows_a1.append(-(1.0 - g))
            rows_a2.append(g)
            rows_d.append(np.sqrt(st2 * sb2 / (st2 + sb2)))
        A, a1, a2, d = (np.vstack(rows) for rows in (rows_A, rows_a1, rows_a2, rows_d))
        M, C = self.M, self.C
        mean = A + a1 * M[:, 0] + a2 * M[:, 1]
        var = a1 * a1 * C[:, 0, 0] + 2.0 * a1 * a2 * C[:, 0, 1] + a2 * a2 * C[:, 1, 1] + d * d
        return NormalMixture(self.p, mean, np.sqrt(np.maximum(var, 0.0)))

    # -- exact draws -----------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, FloatArray]:
        """``n`` posterior draws: log tau by inverting its marginal CDF (interpolated
        between exactly computed values), log sigma_b from its conditional given tau (a
        CDF interpolated on the grid of the sigma_b axis), then (mu, mu_b), theta_i, b_i
        and theta_new from their conditional normal distributions."""
        grid = np.sort(np.concatenate([self.edges[0], self.x]))
        cdf = np.maximum.accumulate(self._axis_cdf(0, grid))
        x = np.interp(rng.uniform(size=n), cdf / cdf[-1], grid)
        ugrid = np.sort(np.concatenate([self.edges[1], self.u]))
        lg = self._log_density(x[:, None], ugrid[None, :])
        dens = np.exp(lg - lg.max(axis=1, keepdims=True))
        ccdf = np.concatenate(
            [np.zeros((n, 1)), np.cumsum(0.5 * (dens[:, 1:] + dens[:, :-1]) * np.diff(ugrid), 1)],
            axis=1,
        )
        ccdf /= ccdf[:, -1:]
        target = rng.uniform(size=n)
        u = np.array([np.interp(target[j], ccdf[j], ugrid) for j in range(n)])
        tau, sb = np.exp(x), np.exp(u)
        _, M, C = self._conditional(tau, sb)
        chol11 = np.sqrt(C[:, 0, 0])
        chol21 = C[:, 0, 1] / chol11
        chol22 = np.sqrt(np.maximum(C[:, 1, 1] - chol21**2, 0.0))
        z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
        mu = M[:, 0] + chol11 * z1
        mu_b = M[:, 1] + chol21 * z1 + chol22 * z2
        t2, sb2 = (tau * tau)[:, None], (sb * sb)[:, None]
        r = self.r[None, :]
        # theta_i | mu, mu_b, tau, sigma_b, y
        se2 = self.s2[None, :] + r * sb2
        prec = 1.0 / se2 + 1.0 / t2
        mean = ((self.y[None, :] - r * mu_b[:, None]) / se2 + mu[:, None] / t2) / prec
        theta = mean + np.sqrt(1.0 / prec) * rng.standard_normal((n, self.y.size))
        # b_i | theta_i, mu_b, sigma_b, y: prior N(mu_b, sigma_b^2), y_i - theta_i ~ N(b_i, s_i^2)
        gain = sb2 / (sb2 + self.s2[None, :])
        b_mean = mu_b[:, None] + gain * (self.y[None, :] - theta - mu_b[:, None])
        noise = np.sqrt(gain * self.s2[None, :]) * rng.standard_normal(theta.shape)
        bias = np.where(r > 0, b_mean + noise, 0.0)
        theta_new = mu + tau * rng.standard_normal(n)
        return {
            "mu": mu,
            "tau": tau,
            "theta": theta,
            "theta_new": theta_new,
            "mu_b": mu_b,
            "sigma_b": sb,
            "bias": bias,
        }
