"""Simulation helpers for the model tests: Weibull arms with censoring, and what a paper
would report about them (Kaplan-Meier medians and landmark survival with Greenwood
variances, the log-rank test, a Cox hazard ratio by Newton-Raphson on the partial
likelihood), plus an exact normal-normal posterior by quadrature as an independent
reference for the hierarchical models.

Everything here is plain NumPy/SciPy, written for the tests (lifelines is not a
dependency); each helper is checked against a closed form in ``tests/test_model_survival.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hccmeta.effects import DeriveOptions, log_hr_from_logrank, log_median_from_events

LN2 = math.log(2.0)
#: Var[ln KM median] / Var[ln exponential-MLE median] (1 / ln(2)^2; hccmeta.effects.survival).
KM_MEDIAN_VARIANCE_FACTOR = 1.0 / LN2**2
# The default derivation options of the effects layer (what the coverage claims are about).
DEFAULTS = DeriveOptions()


# --------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Arm:
    """Simulated survival times of one arm: ``time`` (months) and ``event`` (1 = death)."""

    time: np.ndarray
    event: np.ndarray

    @property
    def n(self) -> int:
        return int(self.time.size)

    @property
    def events(self) -> int:
        return int(self.event.sum())


def weibull_survival(t: np.ndarray | float, median: float, shape: float) -> np.ndarray:
    """``S(t) = exp(-ln 2 (t / median)^k)``."""
    return np.exp(-LN2 * (np.asarray(t, dtype=float) / median) ** shape)


def simulate_arm(
    rng: np.random.Generator,
    *,
    n: int,
    median: float,
    shape: float,
    accrual: float = 24.0,
    follow_up: float = 24.0,
    dropout_rate: float = 0.01,
) -> Arm:
    """Weibull event times with median ``median`` and shape ``shape``; administrative
    censoring (uniform accrual over ``accrual`` months, analysis ``follow_up`` months after
    the last enrolment) and exponential loss to follow-up (``dropout_rate`` per month)."""
    scale = median / LN2 ** (1.0 / shape)
    t_event = scale * rng.weibull(shape, size=n)
    t_admin = accrual + follow_up - rng.uniform(0.0, accrual, size=n)
    t_drop = rng.exponential(1.0 / dropout_rate, size=n) if dropout_rate > 0 else np.inf
    t_cens = np.minimum(t_admin, t_drop)
    time = np.minimum(t_event, t_cens)
    return Arm(time=time, event=(t_event <= t_cens).astype(int))


# --------------------------------------------------------------------------------------
# Kaplan-Meier


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan-Meier estimate at the distinct event times, with Greenwood's sum
    ``sum d / (n (n - d))`` (so ``Var[S] = S^2 * greenwood``)."""

    time: np.ndarray
    survival: np.ndarray
    greenwood: np.ndarray

    def at(self, t: float) -> tuple[float, float]:
        """``S(t)`` and its Greenwood variance (right-continuous step function)."""
        j = np.searchsorted(self.time, t, side="right") - 1
        if j < 0:
            return 1.0, 0.0
        s = float(self.survival[j])
        return s, s**2 * float(self.greenwood[j])

    def median(self) -> float:
        """The smallest time with ``S(t) <= 0.5`` (NaN if not reached)."""
        below = np.flatnonzero(self.survival <= 0.5)
        return float(self.time[below[0]]) if below.size else math.nan


def kaplan_meier(arm: Arm) -> KaplanMeier:
    """Kaplan-Meier estimator (ties: deaths before censorings at the same time)."""
    times = np.unique(arm.time[arm.event == 1])
    s, gw, surv, green = 1.0, 0.0, [], []
    for t in times:
        at_risk = int(np.sum(arm.time >= t))
        d = int(np.sum((arm.time == t) & (arm.event == 1)))
        s *= 1.0 - d / at_risk
        gw += d / (at_risk * (at_risk - d)) if at_risk > d else math.inf
        surv.append(s)
        green.append(gw)
    return KaplanMeier(np.asarray(times), np.asarray(surv), np.asarray(green))


# --------------------------------------------------------------------------------------
# two-arm tests


def logrank(exp: Arm, ref: Arm) -> tuple[float, float, float]:
    """Log-rank test: ``(O - E, V, two-sided p)`` for the experimental arm."""
    time = np.concatenate([exp.time, ref.time])
    event = np.concatenate([exp.event, ref.event])
    group = np.concatenate([np.ones(exp.n), np.zeros(ref.n)])
    o_minus_e, var = 0.0, 0.0
    for t in np.unique(time[event == 1]):
        at_risk = time >= t
        n_all, n1 = at_risk.sum(), (at_risk & (group == 1)).sum()
        dead = (time == t) & (event == 1)
        d_all, d1 = dead.sum(), (dead & (group == 1)).sum()
        o_minus_e += d1 - d_all * n1 / n_all
        if n_all > 1:
            var += d_all * (n1 / n_all) * (1 - n1 / n_all) * (n_all - d_all) / (n_all - 1)
    z = o_minus_e / math.sqrt(var)
    return o_minus_e, var, float(2.0 * stats.norm.sf(abs(z)))


def cox_hr(exp: Arm, ref: Arm, *, tol: float = 1e-10, max_iter: int = 50) -> tuple[float, float]:
    """Cox log HR (experimental vs reference) and its SE: Newton-Raphson on the Breslow
    partial likelihood with one binary covariate."""
    time = np.concatenate([exp.time, ref.time])
    event = np.concatenate([exp.event, ref.event])
    x = np.concatenate([np.ones(exp.n), np.zeros(ref.n)])
    event_times = np.unique(time[event == 1])
    beta, info = 0.0, 1.0
    for _ in range(max_iter):
        score, info = 0.0, 0.0
        for t in event_times:
            risk = time >= t
            dead = (time == t) & (event == 1)
            w = np.exp(beta * x[risk])
            s0, s1 = w.sum(), (w * x[risk]).sum()
            mean = s1 / s0
            d = dead.sum()
            score += x[dead].sum() - d * mean
            info += d * (mean - mean**2)  # x is binary: s2 = s1
        step = score / info
        beta += step
        if abs(step) < tol:
            break
    return beta, 1.0 / math.sqrt(info)


# --------------------------------------------------------------------------------------
# what a paper reports -> the survival model's inputs


def paper_report(
    study: str,
    exp: Arm,
    ref: Arm,
    *,
    reference: str = "reference",
    experimental: str = "experimental",
    landmark_times: tuple[float, ...] = (6.0, 12.0, 24.0),
) -> dict[str, pd.DataFrame]:
    """The inputs of :func:`hccmeta.models.survival.fit_survival` for one simulated
    two-arm study, as a paper would report it and the effects layer derives them with
    its default options (:class:`hccmeta.effects.DeriveOptions`):

    - medians: ``ln`` KM median with the events per arm, by
      :func:`hccmeta.effects.log_median_from_events` (the Kaplan-Meier variance
      ``1 / (d (ln 2)^2)``, the default);
    - landmarks: KM ``S(t)`` with ``n_eff = S (1 - S) / Var_Greenwood[S]``;
    - contrasts: the Cox log HR with its SE (``kind="hr"``) and the log-rank p with the
      total events and group sizes (Tierney's O - E and V,
      :func:`hccmeta.effects.log_hr_from_logrank`, ``kind="logrank_peto"``; the default
      derivation when those are printed), which the model supersedes by the HR.
    """
    arms = pd.DataFrame({"study": [study, study], "arm": [reference, experimental]})
    med_rows, lm_rows = [], []
    km = {}
    for label, arm in ((reference, ref), (experimental, exp)):
        km[label] = kaplan_meier(arm)
        m = km[label].median()
        if math.isfinite(m):
            med_rows.append(
                {
                    "study": study,
                    "arm": label,
                    "yi": math.log(m),
                    "sei": float(
                        log_median_from_events(
                            m,
                            max(arm.events, 1),
                            variance=DEFAULTS.median_variance,
                            km_factor=DEFAULTS.km_median_factor,
                        ).sei
                    ),
                }
            )
        for t in landmark_times:
            s, var = km[label].at(t)
            if 0.0 < s < 1.0 and var > 0:
                lm_rows.append(
                    {
                        "study": study,
                        "arm": label,
                        "time": t,
                        "survival": round(s, 2),
                        "n_eff": s * (1.0 - s) / var,
                    }
                )
    beta, se = cox_hr(exp, ref)
    ct_rows = [{"study": study, "yi": beta, "sei": se, "kind": "hr"}]
    o_minus_e, _, p = logrank(exp, ref)
    events = exp.events + ref.events
    if events > 0 and p < 1.0:
        d = log_hr_from_logrank(p, events, exp.n, ref.n, direction=1.0 if o_minus_e > 0 else -1.0)
        ct_rows.append(
            {"study": study, "yi": float(d.yi), "sei": float(d.sei), "kind": "logrank_peto"}
        )
    return {
        "arms": arms,
        "medians": pd.DataFrame(med_rows),
        "landmarks": pd.DataFrame(lm_rows),
        "contrasts": pd.DataFrame(ct_rows),
    }


# --------------------------------------------------------------------------------------
# an independent reference: the exact normal-normal posterior


def normal_normal_exact(
    yi: np.ndarray,
    sei: np.ndarray,
    *,
    mu_mean: float = 0.0,
    mu_sd: float = 1.0,
    tau_scale: float = 0.5,
    grid: int = 4000,
) -> dict[str, float]:
    """Posterior of ``y_i ~ N(theta_i, s_i^2)``, ``theta_i ~ N(mu, tau^2)``, ``mu ~ N(m, v)``,
    ``tau ~ HalfNormal(tau_scale)``: ``mu`` integrated analytically given ``tau``, ``tau``
    on a fine grid (the bayesmeta approach). Returns the mean and sd of ``mu`` and the
    mean of ``tau``."""
    yi, sei = np.asarray(yi, float), np.asarray(sei, float)
    taus = np.linspace(0.0, 8.0 * tau_scale, grid)[1:]
    log_w, means, variances = [], [], []
    for tau in taus:
        v = sei**2 + tau**2
        prec = 1.0 / mu_sd**2 + np.sum(1.0 / v)
        mean = (mu_mean / mu_sd**2 + np.sum(yi / v)) / prec
        # marginal likelihood of y given tau (mu integrated), up to a constant
        cov = np.diag(v) + mu_sd**2
        ll = stats.multivariate_normal.logpdf(yi, mean=np.full(yi.size, mu_mean), cov=cov)
        log_w.append(ll + stats.halfnorm.logpdf(tau, scale=tau_scale))
        means.append(mean)
        variances.append(1.0 / prec)
    w = np.exp(np.asarray(log_w) - np.max(log_w))
    w /= w.sum()
    means_a, var_a = np.asarray(means), np.asarray(variances)
    mu_mean_post = float(np.sum(w * means_a))
    mu_var_post = float(np.sum(w * (var_a + means_a**2)) - mu_mean_post**2)
    return {
        "mu_mean": mu_mean_post,
        "mu_sd": math.sqrt(mu_var_post),
        "tau_mean": float(np.sum(w * taus)),
    }


# --------------------------------------------------------------------------------------
# a coverage study (not a test: ``python -m tests.simulate [replicates] [overlap]``)


def coverage_study(replicates: int = 20, overlap: str = "families") -> pd.DataFrame:
    """Fit ``replicates`` simulated two-arm studies (n 40 + 60, Weibull k 1.3, reference
    median 9 months, HR 0.5) with :func:`hccmeta.models.survival.fit_survival` and return,
    per quantity, the share of 95% intervals that contain the truth and their mean width.
    The inputs are what :func:`paper_report` derives with the effects layer's default
    options (Kaplan-Meier median variance; Tierney's O - E and V from the log-rank p),
    so the coverage is that of the shipped defaults."""
    from hccmeta.models import mcmc
    from hccmeta.models.survival import fit_survival

    k_true, m_ref, hr = 1.3, 9.0, 0.5
    m_exp = m_ref * hr ** (-1 / k_true)
    settings = mcmc.SamplerSettings(draws=500, tune=500, chains=4, target_accept=0.9)
    rows = []
    for rep in range(replicates):
        rng = np.random.default_rng(1000 + rep)
        ref = simulate_arm(rng, n=40, median=m_ref, shape=k_true)
        exp = simulate_arm(rng, n=60, median=m_exp, shape=k_true)
        rp = paper_report("sim", exp, ref)
        res = fit_survival(
            rp["arms"],
            reference="reference",
            medians=rp["medians"],
            landmarks=rp["landmarks"],
            contrasts=rp["contrasts"],
            overlap=overlap,  # type: ignore[arg-type]
            seed=rep,
            settings=settings,
        )
        med = res.draws("median_study")[:, 0, :]
        k = res.draws("k")
        draws = {"log_hr": (res.draws("log_hr_study")[:, 0], math.log(hr)), "k": (k, k_true)}
        for j, (label, m_true) in enumerate((("reference", m_ref), ("experimental", m_exp))):
            draws[f"median_{label}"] = (med[:, j], m_true)
            for t in (6.0, 12.0, 24.0):
                s_draws = np.exp(-LN2 * (t / med[:, j]) ** k)
                draws[f"S{t:g}_{label}"] = (s_draws, float(weibull_survival(t, m_true, k_true)))
        for name, (x, truth) in draws.items():
            lo, hi = np.quantile(x, [0.025, 0.975])
            rows.append(
                {
                    "replicate": rep,
                    "quantity": name,
                    "covered": lo <= truth <= hi,
                    "width": hi - lo,
                    "divergent": res.diagnostics.n_divergent,
                }
            )
    out = pd.DataFrame(rows)
    return out.groupby("quantity", sort=False).agg(
        coverage=("covered", "mean"), mean_width=("width", "mean"), divergent=("divergent", "sum")
    )


if __name__ == "__main__":  # pragma: no cover
    import sys

    n_rep = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    how = sys.argv[2] if len(sys.argv) > 2 else "families"
    print(coverage_study(n_rep, how).round(3).to_string())
