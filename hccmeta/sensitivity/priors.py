"""The prior grid: tau and mu.

On tau (the between-study SD, analysis scale): HalfNormal(0.25), HalfNormal(0.5),
HalfNormal(1), HalfCauchy(0.5), Uniform(0, 2) for every model with one heterogeneity
parameter, and, for ratio measures (log HR, log OR) only, the two empirical priors of
:mod:`hccmeta.priors`: Turner et al. 2015 (all-cause mortality, pharmacological vs
control: ``log tau^2 ~ N(-3.95, 1.34^2)``) and Bartoš et al. 2023 (log HR: ``tau ~
InverseGamma(2.42, 0.30)``) -- they describe heterogeneity of relative effects, not of
log medians or logit proportions. The grid row equal to the primary analysis's prior is
kept (and equals the primary).

On mu: the primary prior vs a vague Normal(0, 10).

What the prior applies to, per model: the normal-normal fits' mu and tau (each regimen
of a per-regimen analysis alike); the binomial contrast model's log OR ``d`` and its
heterogeneity (the baselines' priors are not varied); the binomial per-regimen model's
heterogeneity of the logit proportion (its runner takes no mu prior); the survival
synthesis's pooled log HR and its heterogeneity.

The joint prognostic model has no single tau: each factor's ``tau_f = tau_scale * h_f``
with ``h_f ~ HalfNormal(1)`` and a LogNormal hyperprior on ``tau_scale`` (median 0.5,
log-SD 0.5). What its API allows -- and what the grid varies -- is that hyperprior:
median 0.25, 0.5 with log-SD 1 (wider), 1.0, and a log-SD of 0.001 around 0.5 (the scale
fixed: independent HalfNormal(0.5) heterogeneities, no borrowing between factors); and
the prior of the factors' mu_f.
"""

from __future__ import annotations

import math

from hccmeta import priors as pr
from hccmeta.analyses.run import Variation
from hccmeta.sensitivity.variants import PlanContext, Variant

__all__ = ["MU_VAGUE", "PROPOSAL_VARIANT", "TAU_GRID", "TAU_SCALE_GRID", "prior_variants"]

#: (name, prior, ratio measures only)
TAU_GRID: tuple[tuple[str, pr.Prior, bool], ...] = (
    ("tau_halfnormal_0.25", pr.HalfNormal(0.25), False),
    ("tau_halfnormal_0.5", pr.HalfNormal(0.5), False),
    ("tau_halfnormal_1", pr.HalfNormal(1.0), False),
    ("tau_halfcauchy_0.5", pr.HalfCauchy(0.5), False),
    ("tau_turner2015", pr.turner2015_all_cause_mortality, True),
    ("tau_bartos2023", pr.bartos2023_log_hr, True),
    ("tau_uniform_0_2", pr.Uniform(0.0, 2.0), False),
)

_TAU_WORDS = {
    "tau_turner2015": "Turner 2015 empirical prior (log tau^2 ~ N(-3.95, 1.34^2))",
    "tau_bartos2023": "Bartoš 2023 empirical prior for log HRs",
}

#: Hyperpriors of the joint prognostic model's heterogeneity scale (name, prior, words).
TAU_SCALE_GRID: tuple[tuple[str, pr.LogNormal, str], ...] = (
    ("tau_scale_0.25", pr.LogNormal(math.log(0.25), 0.5), "median 0.25, log-SD 0.5"),
    ("tau_scale_0.5", pr.LogNormal(math.log(0.5), 0.5), "median 0.5, log-SD 0.5"),
    ("tau_scale_1", pr.LogNormal(math.log(1.0), 0.5), "median 1, log-SD 0.5"),
    ("tau_scale_wide", pr.LogNormal(math.log(0.5), 1.0), "median 0.5, log-SD 1 (wider)"),
    (
        "tau_scale_fixed_0.5",
        pr.LogNormal(math.log(0.5), 0.001),
        "fixed at 0.5: each factor's tau ~ HalfNormal(0.5) independently, no borrowing",
    ),
)

#: The grid's heaviest-tailed tau prior: prior variants that importance reweighting of
#: the primary posterior cannot serve (Pareto k > 0.7) are reweighted from its fit
#: instead, before they are refitted (every other prior of the grid has lighter tails,
#: so its weights relative to this one are bounded).
PROPOSAL_VARIANT = "tau_halfcauchy_0.5"

#: The vague prior on mu.
MU_VAGUE = pr.Normal(0.0, 10.0)

_RATIO = frozenset({"log_hr", "log_or", "log_rr"})


def _tau_applies(ctx: PlanContext) -> tuple[bool, bool]:
    """(the model has a tau the runner sets, the tau is that of a ratio measure)."""
    model = ctx.fit_model
    if ctx.exact:
        return True, ctx.analysis.measure in _RATIO
    if model == "binomial.contrast" or model == "survival":
        return True, True
    if model == "binomial.proportion":
        return True, False
    return False, False


def _mu_applies(ctx: PlanContext) -> bool:
    return ctx.exact or ctx.fit_model in ("binomial.contrast", "prognostic", "survival")


def _same(a: pr.Prior | None, b: pr.Prior | None) -> bool:
    return a is not None and b is not None and repr(a) == repr(b)


def prior_variants(ctx: PlanContext) -> list[Variant]:
    """The prior-grid variants that apply to the analysis."""
    mu0, tau0 = ctx.primary_priors()
    out: list[Variant] = []
    if ctx.fit_model == "prognostic":
        for name, prior, words in TAU_SCALE_GRID:
            default = _same(prior, tau0)
            desc = f"heterogeneity scale tau_scale ~ {prior!r} ({words})" + (
                ": the primary analysis's hyperprior" if default else f" instead of {tau0!r}"
            )
            out.append(
                Variant(name, "prior_tau", desc, Variation(prior_tau_scale=prior), True, default)
            )
    else:
        has_tau, ratio = _tau_applies(ctx)
        if has_tau:
            for name, tau_prior, ratio_only in TAU_GRID:
                if ratio_only and not ratio:
                    continue
                default = _same(tau_prior, tau0)
                what = _TAU_WORDS.get(name, "")
                desc = (
                    f"tau ~ {tau_prior!r}"
                    + (f", {what}" if what else "")
                    + (": the primary analysis's prior" if default else f" instead of {tau0!r}")
                )
                out.append(
                    Variant(name, "prior_tau", desc, Variation(prior_tau=tau_prior), True, default)
                )
    if _mu_applies(ctx) and not _same(MU_VAGUE, mu0):
        what = "each factor's mu_f" if ctx.fit_model == "prognostic" else "mu"
        if ctx.fit_model == "binomial.contrast":
            what = "the pooled log odds ratio d"
        out.append(
            Variant(
                "mu_vague",
                "prior_mu",
                f"{what} ~ {MU_VAGUE!r} (vague) instead of {mu0!r}",
                Variation(prior_mu=MU_VAGUE),
                True,
            )
        )
    return out
