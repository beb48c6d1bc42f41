"""The exact engine of the normal-normal model: numerical integration over tau.

The model is ``y_i ~ N(theta_i, s_i^2)``, ``theta_i ~ N(mu, tau^2)``. As in R's bayesmeta
(Röver 2020, J Stat Softw 93(6)), mu and the theta_i are integrated analytically given
tau, and the one-dimensional marginal posterior of tau is integrated numerically:

- given tau, ``y_i ~ N(mu, s_i^2 + tau^2)`` and the conditional posterior of mu is normal
  under a Normal prior on mu (truncated normal under a Uniform prior), which gives the
  marginal likelihood ``p(y | tau)`` in closed form;
- ``p(tau | y) ∝ p(tau) p(y | tau)`` is integrated on ``x = log(tau)`` with composite
  Gauss-Legendre panels over the range where the density is not negligible (the
  integrand decays exponentially in x at both ends, and panel edges fall on the bounds
  of a bounded prior's support);
- mu, theta_i and theta_new are mixtures over the quadrature nodes of (truncated)
  normals: ``theta_i | tau, y ~ (1 - c_i) y_i + c_i mu + d_i Z`` with
  ``c_i = s_i^2 / (s_i^2 + tau^2)`` and ``d_i^2 = s_i^2 tau^2 / (s_i^2 + tau^2)``;
  ``theta_new | tau, y ~ mu + tau Z``. Means and variances are exact sums; quantiles
  invert the mixture CDF (safeguarded Newton); tail probabilities evaluate it.

The fixed-effect model (tau = 0) is the same computation with a single node at tau = 0.
Exact posterior draws (:meth:`ExactPosterior.sample`) invert the CDF of tau and then draw
mu, theta_i and theta_new from their conditional normals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import special

from hccmeta.priors import Normal, Prior, Uniform

__all__ = ["ExactPosterior", "NormalMixture", "fit_exact"]

FloatArray = NDArray[np.float64]

#: Gauss-Legendre nodes per panel of the tau quadrature.
_GL_NODES = 8
#: Panels spaced uniformly in log(tau), and panels spaced by posterior probability.
_UNIFORM_PANELS = 32
_QUANTILE_PANELS = 32
#: The tau range keeps log-density values within this many nats of the maximum.
_LOG_DENSITY_CUT = 40.0
_LOG_2PI = math.log(2.0 * math.pi)

_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_NODES)
_GL_X01 = (_GL_X + 1.0) / 2.0
_GL_W01 = _GL_W / 2.0


def _log_diff_ndtr(a: FloatArray, b: FloatArray) -> FloatArray:
    """``log(Phi(b) - Phi(a))`` for ``a < b``, stable in both tails."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    upper = a > 0  # both in the upper tail: use symmetry
    lo = np.where(upper, -b, a)
    hi = np.where(upper, -a, b)
    log_hi = special.log_ndtr(hi)
    log_lo = special.log_ndtr(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = log_hi + np.log1p(-np.exp(log_lo - log_hi))
    return np.asarray(out, dtype=float)


def _bvn_cdf(h: FloatArray, k: FloatArray, rho: FloatArray) -> FloatArray:
    """Standard bivariate normal CDF ``P(X <= h, Y <= k)`` with correlation ``rho``
    (Owen 1956, via Owen's T function); ``k`` may be +-inf, ``|rho| < 1``."""
    h, k, rho = np.broadcast_arrays(
        np.asarray(h, float), np.asarray(k, float), np.asarray(rho, float)
    )
    out = np.empty(h.shape)
    kinf_hi = np.isposinf(k)
    kinf_lo = np.isneginf(k)
    out[kinf_hi] = special.ndtr(h[kinf_hi])
    out[kinf_lo] = 0.0
    m = ~(kinf_hi | kinf_lo)
    hh = np.where(h[m] == 0.0, 1e-300, h[m])
    kk = np.where(k[m] == 0.0, 1e-300, k[m])
    r = rho[m]
    q = np.sqrt(1.0 - r * r)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        t1 = special.owens_t(hh, (kk - r * hh) / (hh * q))
        t2 = special.owens_t(kk, (hh - r * kk) / (kk * q))
    beta = np.where(hh * kk > 0, 0.0, 0.5)
    out[m] = 0.5 * special.ndtr(hh) + 0.5 * special.ndtr(kk) - t1 - t2 - beta
    return np.clip(out, 0.0, 1.0)


@dataclass(frozen=True)
class _Conditional:
    """Conditional posterior of mu given tau at the nodes: N(M, V), truncated to the
    standardised interval [alpha, beta] when the prior on mu is Uniform."""

    M: FloatArray
    V: FloatArray
    alpha: FloatArray | None
    beta: FloatArray | None
    log_marginal: FloatArray  # log p(y | tau)


def _conditional(y: FloatArray, s2: FloatArray, tau: FloatArray, prior_mu: Prior) -> _Conditional:
    """Conditional posterior of mu given each tau and the marginal likelihood p(y | tau)."""
    w = 1.0 / (s2[None, :] + (tau * tau)[:, None])  # (N, k)
    k = y.size
    base = 0.5 * np.log(w).sum(axis=1) - 0.5 * k * _LOG_2PI
    sw = w.sum(axis=1)
    if isinstance(prior_mu, Normal):
        prec0 = 1.0 / prior_mu.sd**2
        P = sw + prec0
        M = (w @ y + prior_mu.mean * prec0) / P
        quad = (w * (y[None, :] - M[:, None]) ** 2).sum(axis=1) + prec0 * (prior_mu.mean - M) ** 2
        log_marginal = base - 0.5 * np.log(P * prior_mu.sd**2) - 0.5 * quad
        return _Conditional(M, 1.0 / P, None, None, log_marginal)
    if isinstance(prior_mu, Uniform):
        ybar = (w @ y) / sw
        V = 1.0 / sw
        sv = np.sqrt(V)
        alpha = (prior_mu.low - ybar) / sv
        beta = (prior_mu.high - ybar) / sv
        quad = (w * (y[None, :] - ybar[:, None]) ** 2).sum(axis=1)
        log_marginal = (
            base
            - 0.5 * quad
            + 0.5 * (_LOG_2PI - np.log(sw))
            - math.log(prior_mu.high - prior_mu.low)
            + _log_diff_ndtr(alpha, beta)
        )
        return _Conditional(ybar, V, alpha, beta, log_marginal)
    raise TypeError(f"no exact conditional for a {prior_mu!r} prior on mu")  # pragma: no cover


class NormalMixture:
    """Rows of quantities, each a mixture over quadrature nodes (columns, weights ``p``)
    of normal distributions with means ``mean_c`` and sds ``sd_c`` (rows x nodes):
    exact moments, CDF, density and quantiles. The posterior of every quantity of the
    normal-normal models that is normal given the variance parameters has this form.
    """

    def __init__(self, p: FloatArray, mean_c: FloatArray, sd_c: FloatArray) -> None:
        self.p = np.asarray(p, dtype=float)
        self.mean_c = np.asarray(mean_c, dtype=float)
        self.sd_c = np.asarray(sd_c, dtype=float)

    @property
    def n_rows(self) -> int:
        """Number of rows (quantities)."""
        return int(self.mean_c.shape[0])

    # moments ----------------------------------------------------------------------------

    def mean(self) -> FloatArray:
        return np.asarray(self.mean_c @ self.p, dtype=float)

    def sd(self) -> FloatArray:
        m = self.mean()
        second = (self.sd_c**2 + self.mean_c**2) @ self.p
        return np.sqrt(np.maximum(second - m * m, 0.0))

    def exp_moments(self) -> tuple[FloatArray, FloatArray]:
        """``E[exp(X)]`` and ``sd(exp(X))`` of each row (ratio scale)."""
        m1 = np.exp(self.mean_c + 0.5 * self.sd_c**2) @ self.p
        m2 = np.exp(2.0 * self.mean_c + 2.0 * self.sd_c**2) @ self.p
        return m1, np.sqrt(np.maximum(m2 - m1 * m1, 0.0))

    # distribution -----------------------------------------------------------------------

    def cdf(self, x: FloatArray) -> FloatArray:
        """CDF of each row at ``x`` of shape (rows, P)."""
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (x[:, :, None] - self.mean_c[:, None, :]) / self.sd_c[:, None, :]
        # a component with sd 0 is a point mass: its CDF steps at its mean
        z = np.where(np.isnan(z), 0.0, z)
        return np.asarray(special.ndtr(z) @ self.p, dtype=float)

    def pdf(self, x: FloatArray) -> FloatArray:
        """Density of each row at ``x`` of shape (rows, P)."""
        x = np.asarray(x, dtype=float)
        z = (x[:, :, None] - self.mean_c[:, None, :]) / self.sd_c[:, None, :]
        dens = np.exp(-0.5 * z * z - 0.5 * _LOG_2PI) / self.sd_c[:, None, :]
        return np.asarray(dens @ self.p, dtype=float)

    def quantile(self, probs: FloatArray) -> FloatArray:
        """Quantiles (rows, len(probs)) by safeguarded Newton on the mixture CDF."""
        probs = np.asarray(probs, dtype=float)
        target = np.broadcast_to(probs[None, :], (self.n_rows, probs.size))
        mean, sd = self.mean(), self.sd()
        lo_c = self.mean_c - 40.0 * self.sd_c
        hi_c = self.mean_c + 40.0 * self.sd_c
        lo = np.broadcast_to(lo_c.min(axis=1)[:, None], target.shape).copy()
        hi = np.broadcast_to(hi_c.max(axis=1)[:, None], target.shape).copy()
        zq = special.ndtri(np.clip(target, 1e-300, 1 - 1e-16))
        x = np.clip(mean[:, None] + sd[:, None] * zq, lo, hi)
        scale = np.maximum(sd[:, None], 1e-300)
        for _ in range(100):
            f = self.cdf(x) - target
            lo = np.where(f < 0, x, lo)
            hi = np.where(f > 0, x, hi)
            dens = self.pdf(x)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = f / dens
            newton = x - step
            converged = np.abs(f) <= 1e-14
            bad = ~np.isfinite(newton) | (newton < lo) | (newton > hi)
            x_new = np.where(converged, x, np.where(bad, 0.5 * (lo + hi), newton))
            done = converged | (np.abs(x_new - x) <= 1e-12 * scale)
            x = x_new
            if np.all(done):
                break
        return x


class _Mixture(NormalMixture):
    """Quantities ``A + c mu + d Z`` (rows) mixed over tau nodes (columns) with weights
    ``p``, where ``mu | tau`` is the (possibly truncated) normal :class:`_Conditional`."""

    def __init__(
        self, p: FloatArray, A: FloatArray, c: FloatArray, d: FloatArray, cond: _Conditional
    ) -> None:
        self.p, self.A, self.c, self.d, self.cond = p, A, c, d, cond
        self.truncated = cond.alpha is not None
        sv = np.sqrt(cond.V)
        if not self.truncated:
            self.mean_c = A + c * cond.M
            self.sd_c = np.sqrt(c * c * cond.V + d * d)
        else:
            assert cond.alpha is not None and cond.beta is not None
            a, b = cond.alpha, cond.beta
            logz = _log_diff_ndtr(a, b)
            # moments of the standardised truncated normal
            pa, pb = (
                np.exp(-0.5 * a * a - 0.5 * _LOG_2PI - logz),
                np.exp(-0.5 * b * b - 0.5 * _LOG_2PI - logz),
            )
            ta = np.where(np.isfinite(a), a * pa, 0.0)
            tb = np.where(np.isfinite(b), b * pb, 0.0)
            mu_std = pa - pb
            var_std = 1.0 + ta - tb - mu_std**2
            mu_mean = cond.M + sv * mu_std
            mu_var = cond.V * np.maximum(var_std, 0.0)
            self.mean_c = A + c * mu_mean
            self.sd_c = np.sqrt(c * c * mu_var + d * d)
            self._logz = logz
            self._sv = sv

    # moments (mean and sd: the base class's) ----------------------------------------------

    def exp_moments(self) -> tuple[FloatArray, FloatArray]:
        """``E[exp(X)]`` and ``sd(exp(X))`` of each row (ratio scale)."""
        if not self.truncated:
            return super().exp_moments()
        else:
            cond = self.cond
            assert cond.alpha is not None and cond.beta is not None

            def mgf(t: FloatArray) -> FloatArray:
                # E[exp(t (A + c mu + d Z))] with mu truncated normal
                ct = self.c * t
                sv = self._sv
                log_mu = (
                    cond.M * ct
                    + 0.5 * cond.V * ct * ct
                    + _log_diff_ndtr(cond.alpha - sv * ct, cond.beta - sv * ct)  # type: ignore[operator]
                    - self._logz
                )
                return np.asarray(np.exp(self.A * t + 0.5 * (self.d * t) ** 2 + log_mu), float)

            m1 = mgf(np.array(1.0)) @ self.p
            m2 = mgf(np.array(2.0)) @ self.p
        return m1, np.sqrt(np.maximum(m2 - m1 * m1, 0.0))

    # distribution -----------------------------------------------------------------------

    def cdf(self, x: FloatArray) -> FloatArray:
        """CDF of each row at ``x`` of shape (rows, P)."""
        x = np.asarray(x, dtype=float)
        if not self.truncated:
            return super().cdf(x)
        cond = self.cond
        assert cond.alpha is not None and cond.beta is not None
        A, c, d = self.A[:, None, :], self.c[:, None, :], self.d[:, None, :]
        M, sv = cond.M[None, None, :], self._sv[None, None, :]
        a, b = cond.alpha[None, None, :], cond.beta[None, None, :]
        z = np.exp(self._logz)[None, None, :]
        xx = x[:, :, None]
        sd_w = np.sqrt(c * c * cond.V[None, None, :] + d * d)
        degenerate = d <= 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            # d = 0: X = A + c mu, mu truncated normal
            u = ((xx - A) / c - M) / sv
            tn = (special.ndtr(np.clip(u, a, b)) - special.ndtr(a)) / z
            w = (xx - A - c * M) / sd_w
            rho = np.minimum(c * sv / sd_w, 1.0 - 1e-15)
            rho_b = np.broadcast_to(rho, w.shape)
            joint = _bvn_cdf(w, np.broadcast_to(b, w.shape), rho_b) - _bvn_cdf(
                w, np.broadcast_to(a, w.shape), rho_b
            )
        comp = np.where(degenerate, tn, joint / z)
        return np.asarray(np.clip(comp, 0.0, 1.0) @ self.p, dtype=float)

    def pdf(self, x: FloatArray) -> FloatArray:
        """Density of each row at ``x`` of shape (rows, P)."""
        x = np.asarray(x, dtype=float)
        if not self.truncated:
            return super().pdf(x)
        cond = self.cond
        assert cond.alpha is not None and cond.beta is not None
        A, c, d = self.A[:, None, :], self.c[:, None, :], self.d[:, None, :]
        M, sv = cond.M[None, None, :], self._sv[None, None, :]
        a, b = cond.alpha[None, None, :], cond.beta[None, None, :]
        z = np.exp(self._logz)[None, None, :]
        xx = x[:, :, None]
        sd_w = np.sqrt(c * c * cond.V[None, None, :] + d * d)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = ((xx - A) / c - M) / sv
            inside = (u >= a) & (u <= b)
            tn = np.where(inside, np.exp(-0.5 * u * u - 0.5 * _LOG_2PI) / (sv * c * z), 0.0)
            w = (xx - A - c * M) / sd_w
            rho = np.minimum(c * sv / sd_w, 1.0 - 1e-15)
            q = np.sqrt(1.0 - rho * rho)
            cond_p = special.ndtr((b - rho * w) / q) - special.ndtr((a - rho * w) / q)
            joint = np.exp(-0.5 * w * w - 0.5 * _LOG_2PI) / sd_w * cond_p / z
        comp = np.where(d <= 0.0, tn, joint)
        return np.asarray(np.nan_to_num(comp) @ self.p, dtype=float)


class ExactPosterior:
    """The posterior of the normal-normal model by numerical integration over tau.

    With an additive bias ``y_i ~ N(theta_i + b_i, s_i^2)``, ``b_i ~ N(m_i, v_i^2)``, the
    bias integrates out analytically: ``y_i - m_i ~ N(theta_i, s_i^2 + v_i^2)``, so the
    engine runs on the shifted estimates and inflated variances and stays exact. The
    posterior of each ``b_i`` given (mu, tau) is normal as well, ``b_i | mu, tau, y ~
    N(m_i + v_i^2 (y_i - m_i - mu) / T_i, v_i^2 (tau^2 + s_i^2) / T_i)`` with ``T_i =
    tau^2 + s_i^2 + v_i^2``: one more row of the mixture per study with a bias term.

    Parameters
    ----------
    y, s : array
        Estimates and standard errors (k >= 1).
    prior_mu : Normal or Uniform
    prior_tau : Prior on [0, inf), or ``None`` for the fixed-effect model (tau = 0).
    bias_mean, bias_sd : array, keyword-only, optional
        ``m_i`` and ``v_i >= 0`` of each study's bias (``v_i = 0``, ``m_i = 0``: no bias
        term); default none.
    """

    #: Variance parameters with a quadrature-based marginal (see :meth:`scale_cdf`).
    scale_names: tuple[str, ...] = ("tau",)

    def __init__(
        self,
        y: FloatArray,
        s: FloatArray,
        prior_mu: Prior,
        prior_tau: Prior | None,
        *,
        bias_mean: FloatArray | None = None,
        bias_sd: FloatArray | None = None,
    ):
        self.y_obs = np.asarray(y, dtype=float)
        self.s_obs = np.asarray(s, dtype=float)
        k = self.y_obs.size
        self.bias_mean = np.zeros(k) if bias_mean is None else np.asarray(bias_mean, float)
        self.bias_sd = np.zeros(k) if bias_sd is None else np.asarray(bias_sd, float)
        #: Studies with a bias term (a row ``b_i`` in the mixture, after the theta_i).
        self.bias_index = np.flatnonzero(self.bias_sd > 0)
        #: Whether the model has bias terms (draws then include ``bias``).
        self.has_bias = bias_mean is not None or bias_sd is not None
        if not self.has_bias:
            self.y, self.s = self.y_obs, self.s_obs
        else:
            self.y = self.y_obs - self.bias_mean
            self.s = np.sqrt(self.s_obs**2 + self.bias_sd**2)
        self.s2 = self.s**2
        self.prior_mu = prior_mu
        self.prior_tau = prior_tau
        self.fixed = prior_tau is None
        if prior_tau is None:
            self.edges = np.array([])
            self.tau = np.zeros(1)
            self.p = np.ones(1)
            self.cond = _conditional(self.y, self.s2, self.tau, prior_mu)
            self.log_evidence = float(self.cond.log_marginal[0])
        else:
            self._build_grid(prior_tau)

    # -- the tau quadrature ---------------------------------------------------------------

    def _log_density_x(self, x: FloatArray) -> tuple[FloatArray, _Conditional]:
        """log p(tau | y) + log(tau) (unnormalised) at tau = exp(x): the density of x."""
        assert self.prior_tau is not None
        tau = np.exp(x)
        cond = _conditional(self.y, self.s2, tau, self.prior_mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = self.prior_tau.logpdf(tau) + cond.log_marginal + x
        return np.where(np.isnan(lp), -np.inf, lp), cond

    def _build_grid(self, prior_tau: Prior) -> None:
        spread = float(np.std(self.y)) if self.y.size > 1 else 0.0
        ref = max(float(self.s.max()), spread, float(prior_tau.ppf(0.5)))
        x_lo_support = math.log(prior_tau.lower) if prior_tau.lower > 0 else -math.inf
        x_hi_support = math.log(prior_tau.upper) if math.isfinite(prior_tau.upper) else math.inf
        lo = max(math.log(ref) - 25.0, x_lo_support)
        hi = min(math.log(ref) + 20.0, x_hi_support)
        coarse = np.linspace(lo, hi, 450)
        lg, _ = self._log_density_x(coarse)
        top = float(np.max(lg))
        if not np.isfinite(top):
            raise FloatingPointError("the posterior of tau is zero everywhere on the grid")
        # keep where the density of x, or that density times tau^2 (second moments:
        # heavy-tailed posteriors), is within the cut of its maximum
        lg2 = lg + 2.0 * coarse
        keep = np.flatnonzero(
            (lg > top - _LOG_DENSITY_CUT) | (lg2 > np.max(lg2) - _LOG_DENSITY_CUT)
        )
        step = coarse[1] - coarse[0]
        x_lo = max(coarse[keep[0]] - step, lo)
        x_hi = min(coarse[keep[-1]] + step, hi)
        # panel edges: uniform in x, plus approximate posterior quantiles
        uniform = np.linspace(x_lo, x_hi, _UNIFORM_PANELS + 1)
        inside = (coarse >= x_lo) & (coarse <= x_hi)
        cx, cg = coarse[inside], np.exp(lg[inside] - top)
        if cx.size > 2:
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (cg[1:] + cg[:-1]) * np.diff(cx))])
            cdf /= cdf[-1]
            probs = np.linspace(0.0, 1.0, _QUANTILE_PANELS + 1)[1:-1]
            qedges = np.interp(probs, cdf, cx)
        else:
            qedges = np.array([])
        edges = np.unique(np.concatenate([uniform, qedges]))
        edges = edges[np.concatenate([[True], np.diff(edges) > 1e-9 * (x_hi - x_lo)])]
        edges[-1] = x_hi
        widths = np.diff(edges)
        nodes = (edges[:-1, None] + widths[:, None] * _GL_X01[None, :]).ravel()
        weights = (widths[:, None] * _GL_W01[None, :]).ravel()
        lg_nodes, cond = self._log_density_x(nodes)
        shift = float(np.max(lg_nodes))
        wq = weights * np.exp(lg_nodes - shift)
        total = float(wq.sum())
        self.edges = edges
        self.x = nodes
        self.tau = np.exp(nodes)
        self.p = wq / total
        self.cond = cond
        self._shift = shift
        self._norm = total
        self._panel_cum = np.concatenate([[0.0], np.cumsum(self.p.reshape(-1, _GL_NODES).sum(1))])
        self.log_evidence = shift + math.log(total)

    def _cdf_tau_x(self, x: FloatArray) -> FloatArray:
        """P(log tau <= x) for an array of x (partial-panel Gauss-Legendre)."""
        x = np.clip(np.asarray(x, dtype=float), self.edges[0], self.edges[-1])
        panel = np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, self.edges.size - 2)
        start = self.edges[panel]
        width = x - start
        sub = start[:, None] + width[:, None] * _GL_X01[None, :]
        lg, _ = self._log_density_x(sub.ravel())
        part = (np.exp(lg - self._shift).reshape(sub.shape) * _GL_W01[None, :]).sum(1) * width
        return np.asarray(self._panel_cum[panel] + part / self._norm, dtype=float)

    def tau_cdf(self, t: FloatArray) -> FloatArray:
        """Posterior CDF of tau."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if self.fixed:
            return np.where(t >= 0, 1.0, 0.0)
        out = np.zeros(t.shape)
        pos = t > 0
        out[pos] = self._cdf_tau_x(np.log(t[pos]))
        return out

    def tau_quantile(self, probs: FloatArray) -> FloatArray:
        """Posterior quantiles of tau: safeguarded Newton on log(tau) within the panel
        that holds each quantile."""
        probs = np.atleast_1d(np.asarray(probs, dtype=float))
        if self.fixed:
            return np.zeros(probs.shape)
        last = self.edges.size - 2
        panel = np.clip(np.searchsorted(self._panel_cum, probs) - 1, 0, last)
        lo, hi = self.edges[panel].copy(), self.edges[panel + 1].copy()
        c_lo, c_hi = self._panel_cum[panel], self._panel_cum[panel + 1]
        frac = np.clip((probs - c_lo) / np.maximum(c_hi - c_lo, 1e-300), 0.0, 1.0)
        x = lo + frac * (hi - lo)
        width = float(self.edges[-1] - self.edges[0])
        for _ in range(60):
            f = self._cdf_tau_x(x) - probs
            lo = np.where(f < 0, x, lo)
            hi = np.where(f > 0, x, hi)
            lg, _ = self._log_density_x(x)
            dens = np.exp(lg - self._shift) / self._norm
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = x - f / dens
            converged = np.abs(f) <= 1e-14
            bad = ~np.isfinite(newton) | (newton < lo) | (newton > hi)
            x_new = np.where(converged, x, np.where(bad, 0.5 * (lo + hi), newton))
            done = converged | (np.abs(x_new - x) <= 1e-13 * width)
            x = x_new
            if np.all(done):
                break
        return np.exp(x)

    def tau_mean_sd(self) -> tuple[float, float]:
        m = float(self.tau @ self.p)
        v = float((self.tau**2) @ self.p) - m * m
        return m, math.sqrt(max(v, 0.0))

    # the generic interface of the exact engines (PoolResult): scale parameters by name

    def scale_cdf(self, name: str, t: FloatArray) -> FloatArray:
        """Posterior CDF of the variance parameter ``name`` (here only ``"tau"``)."""
        assert name == "tau", name
        return self.tau_cdf(t)

    def scale_quantile(self, name: str, probs: FloatArray) -> FloatArray:
        """Posterior quantiles of the variance parameter ``name``."""
        assert name == "tau", name
        return self.tau_quantile(probs)

    def scale_mean_sd(self, name: str) -> tuple[float, float]:
        """Posterior mean and sd of the variance parameter ``name``."""
        assert name == "tau", name
        return self.tau_mean_sd()

    # -- mixtures for mu, theta_new, theta_i ----------------------------------------------

    @cached_property
    def mixture(self) -> _Mixture:
        """Rows: mu, theta_new, theta_1..theta_k, then b_i for the studies with a bias
        term (:attr:`bias_index`)."""
        tau = self.tau
        t2 = tau * tau
        k, n = self.y.size, tau.size
        c_i = self.s2[:, None] / (self.s2[:, None] + t2[None, :])  # (k, N)
        d_i = np.sqrt(self.s2[:, None] * t2[None, :] / (self.s2[:, None] + t2[None, :]))
        A = np.vstack([np.zeros((2, n)), (1.0 - c_i) * self.y[:, None]])
        c = np.vstack([np.ones((2, n)), c_i])
        d = np.vstack([np.zeros((1, n)), tau[None, :], d_i])
        assert A.shape == (k + 2, n)
        if self.bias_index.size:
            j = self.bias_index
            v2 = self.bias_sd[j, None] ** 2
            total = t2[None, :] + self.s2[j, None]  # tau^2 + s_i^2 + v_i^2
            A = np.vstack([A, self.bias_mean[j, None] + v2 * self.y[j, None] / total])
            c = np.vstack([c, -v2 / total])
            d = np.vstack([d, np.sqrt(v2 * (t2[None, :] + self.s_obs[j, None] ** 2) / total)])
        return _Mixture(self.p, A, c, d, self.cond)

    def predictive_cdf(self, x: float, extra_sd: float = 0.0) -> float:
        """CDF at ``x`` of ``theta_new + extra_sd Z``: the posterior predictive of a new
        study's estimate whose standard error is ``extra_sd`` (a mixture over tau of
        normals with variance ``Var(mu | tau, y) + tau^2 + extra_sd^2``; truncated
        normal mixtures under a Uniform prior on mu)."""
        tau = self.tau
        n = tau.size
        mix = _Mixture(
            self.p,
            np.zeros((1, n)),
            np.ones((1, n)),
            np.sqrt(tau * tau + float(extra_sd) ** 2)[None, :],
            self.cond,
        )
        return float(mix.cdf(np.array([[float(x)]]))[0, 0])

    # -- exact draws ----------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, FloatArray]:
        """``n`` independent posterior draws: tau by inverting its CDF (interpolated
        between exactly computed CDF values at the quadrature nodes), then mu, theta_i
        and theta_new from their conditional normal distributions."""
        u = rng.uniform(size=n)
        if self.fixed:
            tau = np.zeros(n)
        else:
            grid = np.concatenate([self.edges, self.x])
            grid.sort()
            cdf = self._cdf_tau_x(grid)
            cdf = np.maximum.accumulate(cdf)
            x = np.interp(u, cdf, grid)
            tau = np.exp(x)
        cond = _conditional(self.y, self.s2, tau, self.prior_mu)
        sv = np.sqrt(cond.V)
        if cond.alpha is None:
            mu = cond.M + sv * rng.standard_normal(n)
        else:
            assert cond.beta is not None
            pa, pb = special.ndtr(cond.alpha), special.ndtr(cond.beta)
            uu = rng.uniform(size=n)
            mu = cond.M + sv * special.ndtri(pa + uu * (pb - pa))
        t2 = tau * tau
        prec = (
            1.0 / self.s2[None, :] + np.where(t2 > 0, 1.0 / np.maximum(t2, 1e-300), np.inf)[:, None]
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(
                t2[:, None] > 0,
                (self.y[None, :] / self.s2[None, :] + mu[:, None] / np.maximum(t2, 1e-300)[:, None])
                / prec,
                mu[:, None],
            )
            sd = np.where(t2[:, None] > 0, np.sqrt(1.0 / prec), 0.0)
        theta = mean + sd * rng.standard_normal((n, self.y.size))
        theta_new = mu + tau * rng.standard_normal(n)
        out = {"mu": mu, "tau": tau, "theta": theta, "theta_new": theta_new}
        if self.has_bias:
            # b_i | theta_i, y_i: prior N(m_i, v_i^2), observation y_i - theta_i ~
            # N(b_i, s_i^2); b_i = m_i = 0 exactly for studies without a bias term
            v2, so2, m = self.bias_sd**2, self.s_obs**2, self.bias_mean
            gain = v2 / (v2 + so2)
            resid = self.y_obs[None, :] - theta - m[None, :]
            out["bias"] = (
                m[None, :]
                + gain[None, :] * resid
                + np.sqrt(gain * so2)[None, :] * rng.standard_normal((n, self.y.size))
            )
        return out


def fit_exact(
    y: FloatArray,
    s: FloatArray,
    prior_mu: Prior,
    prior_tau: Prior | None,
    *,
    bias_mean: FloatArray | None = None,
    bias_sd: FloatArray | None = None,
) -> ExactPosterior:
    """Compute the exact posterior (``prior_tau=None``: the fixed-effect model; with
    ``bias_mean``/``bias_sd``: the additive-bias model)."""
    return ExactPosterior(y, s, prior_mu, prior_tau, bias_mean=bias_mean, bias_sd=bias_sd)
