"""Posterior draws of a fitted analysis, seen the way the sensitivity layer needs them.

For each fit of an :class:`~hccmeta.analyses.AnalysisResult` a :class:`FitView` holds

- the draws of each estimand of the result, on its analysis scale (``estimands``);
- the draws of each parameter that has a prior of its own, with that prior
  (``priors``: what importance reweighting to another prior and prior power-scaling
  change), and which :class:`~hccmeta.analyses.Variation` field sets it (``settable``);
- the pointwise log-likelihood (``log_likelihood``: what likelihood power-scaling
  changes).

The normal-normal fits (:class:`~hccmeta.models.result.PoolResult`) carry their priors
as objects and their DataTree has ``log_prior`` and ``log_likelihood`` groups (the
exact engine's draws are exact posterior draws). The MCMC models' results
(:class:`~hccmeta.models._results.PosteriorResult`) record their priors as text; the
prognostic and binomial fits have neither group: this module reads the priors back from
that text (the ``repr`` of :mod:`hccmeta.priors` objects) and computes the log densities
from the draws and the model inputs -- the joint prognostic model (marginal likelihood
of each log HR, theta integrated out, as the model samples it) and the two binomial
models (binomial likelihood of each arm from the fitted proportions). A fit whose
DataTree already has both groups (the multi-format survival synthesis) is used as it
is. For any other fit the view has no log densities, and the power-scaling rows say so.

Weighted summaries (:func:`weighted_stats`) turn draws and importance weights into
the estimate columns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special

from hccmeta import priors as pr
from hccmeta.analyses.estimates import NATURAL
from hccmeta.analyses.run import JOINT_FIT, AnalysisResult

__all__ = ["FitView", "fit_priors", "fit_views", "weighted_estimate", "weighted_stats"]

FloatArray = NDArray[np.float64]

_PRIOR_CLASSES: dict[str, type[pr.Prior]] = {
    cls.family: cls
    for cls in (
        pr.Normal,
        pr.Uniform,
        pr.HalfNormal,
        pr.HalfCauchy,
        pr.HalfStudentT,
        pr.LogNormal,
        pr.InverseGamma,
    )
}
_PRIOR_TEXT = re.compile(r"(\w+)\s*~\s*([A-Z]\w*)\(([^()]*)\)")


def parse_prior_repr(family: str, args: str) -> pr.Prior | None:
    """A prior from its ``repr`` (``HalfNormal(scale=0.5)``, ``HalfNormal(1)``); None
    if it is not one (e.g. ``Normal(mu_alpha, sigma_alpha^2)``)."""
    cls = _PRIOR_CLASSES.get(family)
    if cls is None:
        return None
    pos: list[float] = []
    kw: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in args.split(","))):
        key, _, value = part.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            return None
        if key:
            kw[key.strip()] = number
        else:
            pos.append(number)
    try:
        return cls(*pos, **kw)
    except (TypeError, pr.InputError):
        return None


def fit_priors(fit: Any) -> dict[str, pr.Prior]:
    """The priors a fit records, by parameter name (``mu``, ``tau``, ``d``, ``tau_scale``,
    ``mu_alpha``, ...). The joint prognostic model's ``mu_f`` is returned as ``mu`` and
    its ``h_f`` as ``tau_raw``."""
    if hasattr(fit, "prior_mu") and hasattr(fit, "prior_tau"):  # PoolResult
        out = {"mu": fit.prior_mu}
        if fit.prior_tau is not None:
            out["tau"] = fit.prior_tau
        return out
    found: dict[str, pr.Prior] = {}
    for text in getattr(fit, "priors", {}).values():
        for name, family, args in _PRIOR_TEXT.findall(str(text)):
            prior = parse_prior_repr(family, args)
            if prior is not None:
                name = {"mu_f": "mu", "h_f": "tau_raw"}.get(name, name)
                found.setdefault(name, prior)
    return found


@dataclass
class FitView:
    """One fit of an analysis result, as draws.

    Attributes
    ----------
    role : str
        Key of the fit in ``AnalysisResult.fits``.
    estimands : dict of str to ndarray
        Estimand -> draws (chain, draw) on the analysis scale.
    priors : dict of str to (ndarray, Prior)
        Parameter -> (draws (chain, draw, ...), its prior).
    settable : dict of str to str
        Variation field (``prior_mu``, ``prior_tau``, ``prior_tau_scale``) -> the
        parameter of ``priors`` it sets; only these can be importance-reweighted.
    log_likelihood : ndarray or None
        Pointwise log-likelihood (chain, draw, observation).
    note : str
        Why the log densities are missing, if they are.
    log_prior_total : ndarray or None
        The summed log prior (chain, draw) when it comes ready-made from a DataTree's
        ``log_prior`` group rather than from ``priors``.
    unaffected : frozenset of str
        Variation fields the runner does not pass to this fit (its estimands do not
        change with them): the absolute per-regimen model of a proportions analysis
        keeps its own priors while the contrast's vary.
    """

    role: str
    estimands: dict[str, FloatArray]
    priors: dict[str, tuple[FloatArray, pr.Prior]] = field(default_factory=dict)
    settable: dict[str, str] = field(default_factory=dict)
    log_likelihood: FloatArray | None = None
    note: str = ""
    log_prior_total: FloatArray | None = None
    unaffected: frozenset[str] = frozenset()

    def log_prior(self) -> FloatArray | None:
        """Sum of the log prior densities (chain, draw); None if unknown."""
        if self.log_prior_total is not None:
            return self.log_prior_total
        if not self.priors:
            return None
        total: FloatArray | None = None
        for draws, prior in self.priors.values():
            lp = prior.logpdf(draws)
            lp = lp.reshape((*lp.shape[:2], -1)).sum(axis=-1)
            total = lp if total is None else total + lp
        return total


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    return np.asarray(np.log(p) - np.log1p(-p))


def _cloglog(s: FloatArray) -> FloatArray:
    s = np.clip(np.asarray(s, dtype=float), 1e-12, 1 - 1e-12)
    return np.asarray(np.log(-np.log(s)))


def fit_views(result: AnalysisResult) -> list[FitView]:
    """The fits of an analysis result as :class:`FitView` objects (one per fit)."""
    kind = result.analysis.model
    views = []
    for role, fit in result.fits.items():
        if kind in ("random_effects", "per_regimen"):
            views.append(_normal_view(result, role, fit))
        else:
            model = str(getattr(fit, "model", ""))
            builder = _BUILDERS.get(model)
            views.append(
                builder(result, role, fit) if builder else _generic_view(result, role, fit)
            )
    return views


# ------------------------------------------------------------------ normal-normal model
def _normal_view(result: AnalysisResult, role: str, fit: Any) -> FitView:
    draws = fit.posterior_draws()
    estimand = "effect" if result.analysis.model == "random_effects" else role
    priors = {"mu": (draws["mu"], fit.prior_mu)}
    settable = {"prior_mu": "mu"}
    if fit.prior_tau is not None:
        priors["tau"] = (draws["tau"], fit.prior_tau)
        settable["prior_tau"] = "tau"
    loglik = fit.pointwise_log_likelihood()  # the bias term integrated out, if any
    return FitView(role, {estimand: draws["mu"]}, priors, settable, np.asarray(loglik))


# ------------------------------------------------------------ joint prognostic factors
def _prognostic_view(result: AnalysisResult, role: str, fit: Any) -> FitView:
    post = fit.posterior
    factors = [str(f) for f in post["mu"]["factor"].to_numpy()]
    mu = post["mu"].transpose("chain", "draw", "factor").to_numpy()
    tau = post["tau"].transpose("chain", "draw", "factor").to_numpy()
    estimands = {
        f: mu[..., i] for i, f in enumerate(factors) if f in set(result.estimates["estimand"])
    }
    found = fit_priors(fit)
    view = FitView(role, estimands)
    rows = fit.inputs.get("rows")
    if rows is None or "mu" not in found or "tau_scale" not in found:
        view.note = "the prognostic fit does not record its priors or inputs"
        return view
    tau_scale = post["tau_scale"].to_numpy()
    view.priors = {
        "mu": (mu, found["mu"]),
        "tau_scale": (tau_scale, found["tau_scale"]),
        "tau_raw": (tau / tau_scale[..., None], found.get("tau_raw", pr.HalfNormal(1.0))),
    }
    view.settable = {"prior_mu": "mu", "prior_tau_scale": "tau_scale"}
    f_idx = rows["factor"].map({f: i for i, f in enumerate(factors)}).to_numpy(dtype=int)
    m = mu[..., f_idx]
    if "beta_adjusted" in post:
        m = m + post["beta_adjusted"].to_numpy()[..., None] * rows["x_adjusted"].to_numpy(float)
        if "beta" in found:
            view.priors["beta_adjusted"] = (post["beta_adjusted"].to_numpy(), found["beta"])
    if "beta_time_origin" in post:
        beta_o = post["beta_time_origin"].transpose("chain", "draw", "time_origin")
        for j, origin in enumerate(beta_o["time_origin"].to_numpy()):
            x = rows[f"x_time_origin[{origin}]"].to_numpy(float)
            m = m + beta_o.to_numpy()[..., j, None] * x
        if "beta" in found:
            view.priors["beta_time_origin"] = (beta_o.to_numpy(), found["beta"])
    sd = np.sqrt(rows["sei"].to_numpy(float) ** 2 + tau[..., f_idx] ** 2)
    from scipy import stats  # imported where used: slow to import

    view.log_likelihood = np.asarray(stats.norm.logpdf(rows["yi"].to_numpy(float), m, sd))
    return view


# -------------------------------------------------------------------- binomial models
def _binomial_loglik(fit: Any) -> FloatArray:
    post = fit.posterior
    obs = fit.tree["observed_data"].to_dataset()
    p = post["p_study"].transpose("chain", "draw", "study", "arm").to_numpy()
    events = obs["events"].transpose("study", "arm").to_numpy()
    n = obs["n"].transpose("study", "arm").to_numpy()
    present = np.isfinite(events) & np.isfinite(n)
    e, nn = events[present], n[present]
    pp = np.clip(p[..., present], 1e-300, 1 - 1e-16)
    coef = special.gammaln(nn + 1) - special.gammaln(e + 1) - special.gammaln(nn - e + 1)
    return np.asarray(coef + e * np.log(pp) + (nn - e) * np.log1p(-pp))


def _absolute_fit_role(result: AnalysisResult) -> str | None:
    """The role of a proportions analysis's absolute per-regimen fit next to its
    contrast fit (``"regimens"``), if it has one."""
    fit = result.fits.get("regimens")
    return "regimens" if fit is not None and JOINT_FIT in result.fits else None


def _contrast_view(result: AnalysisResult, role: str, fit: Any) -> FitView:
    post = fit.posterior
    estimands: dict[str, FloatArray] = {}
    # the regimens' proportions come from the absolute model where there is one
    arms = set() if _absolute_fit_role(result) else set(map(str, post["p"]["arm"].to_numpy()))
    for est in result.estimates["estimand"]:
        if est == "log_or":
            estimands[est] = post["d"].to_numpy()
        elif "p" in post and est in arms:
            estimands[est] = _logit(post["p"].sel(arm=est).to_numpy())
    found = fit_priors(fit)
    view = FitView(role, estimands)
    priors: dict[str, tuple[FloatArray, pr.Prior]] = {}
    for name in ("d", "tau", "mu_alpha", "sigma_alpha"):
        if name in post and name in found:
            priors[name] = (post[name].to_numpy(), found[name])
    if "mu_alpha" not in post and "alpha" in post:  # fixed baselines
        text = str(fit.priors.get("alpha", ""))
        hit = re.search(r"alpha_i\s*~\s*([A-Z]\w*)\(([^()]*)\)", text)
        prior = parse_prior_repr(hit.group(1), hit.group(2)) if hit else None
        if prior is not None:
            priors["alpha"] = (post["alpha"].to_numpy(), prior)
    if "d" not in priors or "tau" not in priors:
        view.note = "the binomial fit does not record its priors"
        return view
    view.priors = priors
    view.settable = {"prior_mu": "d", "prior_tau": "tau"}
    view.log_likelihood = _binomial_loglik(fit)
    return view


def _proportion_view(result: AnalysisResult, role: str, fit: Any) -> FitView:
    post = fit.posterior
    arms = [str(a) for a in post["mu"]["arm"].to_numpy()]
    mu = post["mu"].transpose("chain", "draw", "arm").to_numpy()
    estimands = {
        e: mu[..., arms.index(e)] for e in map(str, result.estimates["estimand"]) if e in arms
    }
    found = fit_priors(fit)
    view = FitView(role, estimands)
    if "mu" not in found or "tau" not in found:
        view.note = "the binomial fit does not record its priors"
        return view
    tau = post["tau"].transpose("chain", "draw", "arm").to_numpy()
    view.priors = {"mu": (mu, found["mu"]), "tau": (tau, found["tau"])}
    if role == _absolute_fit_role(result):
        view.unaffected = frozenset({"prior_mu", "prior_tau"})
    else:
        view.settable = {"prior_tau": "tau"}
    view.log_likelihood = _binomial_loglik(fit)
    return view


# ----------------------------------------------------------- multi-format survival model
_SURV_EST = re.compile(r"^survival_([0-9.]+)m_(.+)$")


def _survival_estimands(result: AnalysisResult, post: Any) -> dict[str, FloatArray]:
    out: dict[str, FloatArray] = {}
    for est in map(str, result.estimates["estimand"]):
        if est == "log_hr" and "mu_hr" in post:
            out[est] = post["mu_hr"].to_numpy()
        elif est.startswith("median_") and "median" in post:
            arm = est.removeprefix("median_")
            if arm in set(map(str, post["median"]["arm"].to_numpy())):
                out[est] = np.log(post["median"].sel(arm=arm).to_numpy())
        elif (hit := _SURV_EST.match(est)) and "survival" in post:
            t, arm = float(hit.group(1)), hit.group(2)
            out[est] = _cloglog(post["survival"].sel(arm=arm, time=t).to_numpy())
    return out


def _generic_view(result: AnalysisResult, role: str, fit: Any) -> FitView:
    """A fit of another model: estimands it names like the survival synthesis; log
    densities only if its DataTree carries them."""
    tree = getattr(fit, "tree", None)
    post = fit.posterior if hasattr(fit, "posterior") else None
    view = FitView(role, _survival_estimands(result, post) if post is not None else {})
    found = fit_priors(fit)
    if post is not None and "tau" in found and "tau" in post:
        # tau has a prior of its own (mu_hr is integrated out analytically: not reweightable)
        view.priors = {"tau": (post["tau"].to_numpy(), found["tau"])}
        view.settable = {"prior_tau": "tau"}
    if tree is not None and {"log_prior", "log_likelihood"} <= set(tree.children):
        lp = tree["log_prior"].to_dataset()
        ll = tree["log_likelihood"].to_dataset()
        view.log_prior_total = np.sum([_flat(lp[v].to_numpy()) for v in lp.data_vars], axis=0)
        view.log_likelihood = np.concatenate([_flat(ll[v].to_numpy(), keep=True) for v in ll], -1)
    else:
        view.note = (
            f"the {getattr(fit, 'model', 'model')} fit has no log_prior / log_likelihood "
            "groups, so power-scaling cannot be computed"
        )
    return view


def _flat(x: FloatArray, keep: bool = False) -> FloatArray:
    x = np.asarray(x, dtype=float)
    flat = x.reshape((*x.shape[:2], -1))
    return flat if keep else flat.sum(axis=-1)


_BUILDERS = {
    "prognostic": _prognostic_view,
    "binomial.contrast": _contrast_view,
    "binomial.proportion": _proportion_view,
}


# ------------------------------------------------------------------- weighted summaries
def _weighted_quantiles(x: FloatArray, w: FloatArray, probs: FloatArray) -> FloatArray:
    order = np.argsort(x)
    xs, ws = x[order], w[order]
    cdf = np.cumsum(ws) - 0.5 * ws
    return np.asarray(np.interp(probs, cdf / ws.sum(), xs))


def weighted_stats(draws: FloatArray, log_weights: FloatArray | None = None) -> dict[str, float]:
    """mean, median, sd and the central 95% interval of draws under importance weights
    (normalised ``exp(log_weights)``; equal weights when None)."""
    x = np.asarray(draws, dtype=float).ravel()
    if log_weights is None:
        w = np.full(x.size, 1.0 / x.size)
    else:
        lw = np.asarray(log_weights, dtype=float).ravel()
        w = np.exp(lw - np.max(lw))
        w = w / w.sum()
    mean = float(np.sum(w * x))
    var = float(np.sum(w * (x - mean) ** 2)) / max(1.0 - float(np.sum(w * w)), 1e-12)
    q = _weighted_quantiles(x, w, np.array([0.5, 0.025, 0.975]))
    return {
        "mean": mean,
        "median": float(q[0]),
        "sd": math.sqrt(var),
        "ci_lower": float(q[1]),
        "ci_upper": float(q[2]),
        "p_below": float(np.sum(w[x < 0.0])),
    }


def weighted_estimate(
    template: Mapping[str, Any],
    draws: FloatArray,
    log_weights: FloatArray | None,
    *,
    p_below_primary: float | None = None,
) -> dict[str, Any]:
    """An estimate row (the columns of ``AnalysisResult.estimates``) from weighted draws.

    ``template`` is the primary's row of the estimand (label, scale, k, n_patients and
    whether and on which side a probability of benefit is reported); the side is read
    off the primary: ``p_benefit`` equals P(x < 0) for a benefit below zero and
    1 - P(x < 0) for one above.
    """
    s = weighted_stats(draws, log_weights)
    row = dict(template)
    row.update({k: s[k] for k in ("mean", "median", "sd", "ci_lower", "ci_upper")})
    scale = str(template.get("scale"))
    if template.get("natural_scale") is not None and scale in NATURAL:
        _, fn, decreasing = NATURAL[scale]
        lo, med, hi = (float(fn(np.asarray(s[c]))) for c in ("ci_lower", "median", "ci_upper"))
        if decreasing:
            lo, hi = hi, lo
        row.update(natural_median=med, natural_ci_lower=lo, natural_ci_upper=hi)
    pb = template.get("p_benefit")
    if pb is not None and not (isinstance(pb, float) and math.isnan(pb)):
        below = p_below_primary if p_below_primary is not None else weighted_stats(draws)["p_below"]
        side_below = abs(float(pb) - below) <= abs(float(pb) - (1.0 - below))
        row["p_benefit"] = s["p_below"] if side_below else 1.0 - s["p_below"]
    return row


def estimate_template(result: AnalysisResult) -> dict[str, dict[str, Any]]:
    """The primary's estimate rows by estimand."""
    est = result.estimates
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in est.to_dict(orient="records")
    ]
    return {str(r["estimand"]): r for r in records}
