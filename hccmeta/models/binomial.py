"""Proportions: binomial likelihood with a logit link (response, disease control, adverse
events, survival at landmark times).

Two models, both non-centred, both without continuity corrections (a zero cell such as
0 of 12 responders is an ordinary binomial observation):

:func:`fit_proportion` -- pooled proportion of one or several regimens (``arm``)::

    events_i ~ Binomial(n_i, p_i),  logit p_i = mu_a + tau_a z_i,  z_i ~ Normal(0, 1)
    mu_a ~ prior_mu (default Normal(0, 2)),  tau_a ~ prior_tau (default HalfNormal(1))

one ``mu``/``tau`` per regimen ``a`` (the regimens are not linked; comparisons are
:func:`fit_contrast`'s job).

:func:`fit_contrast` -- two regimens, arm-level study effects and a treatment contrast::

    events_ij ~ Binomial(n_ij, p_ij),  logit p_ij = alpha_i + delta_i treat_ij
    delta_i = d + tau z_i                  d ~ prior_d (Normal(0, 1)), tau ~ prior_tau
                                           (HalfNormal(0.5)): the SPEC's log-OR defaults
    baseline="random": alpha_i = mu_alpha + sigma_alpha u_i,  mu_alpha ~ Normal(0, 2),
                       sigma_alpha ~ HalfNormal(1)
    baseline="fixed":  alpha_i ~ Normal(0, 2) independently

With ``bias=`` a study's contrast carries an additive bias, as in :func:`hccmeta.pool`:
``logit p_ij = alpha_i + (delta_i + b_i) treat_ij``, ``b_i = m_i + v_i w_i``, ``w_i ~
Normal(0, 1)`` (explicit and non-centred; ``m``, ``v`` are ``pm.Data``, ``v_i = 0`` is no
bias term), so that ``d`` and the ``delta_i`` are bias-adjusted (the study's observed
contrast estimates ``delta_i + b_i``).

A study with both arms informs its own ``alpha_i`` and ``delta_i``. A single-arm study
informs ``alpha`` only: a single arm of the reference regimen informs its ``alpha_i`` (and,
under ``baseline="random"``, ``mu_alpha``); a single arm of the experimental regimen is by
default excluded from the contrast (``single_arm_experimental="exclude"``: it gets its own
baseline from the prior of ``mu_alpha``, outside the exchangeable ones, and no ``delta_i``;
its fitted proportion is still reported). ``single_arm_experimental="arm_based"`` instead
treats it like any arm (``alpha_i + delta_i`` with both exchangeable), so that under
random baselines it informs ``mu_alpha + d`` -- the arm-based assumption of
multinma/baggr's arm-based models, a sensitivity analysis. Pooling one regimen's single
arms is :func:`fit_proportion`'s job.

Counts may be non-integer: survival at a landmark time enters as ``events = n_eff (1 -
S)`` of ``n_eff = S (1 - S) / Var[S]`` (the effective sample size); the likelihood is the
binomial kernel with ``lgamma`` coefficients, which is the binomial for integers.

Estimands (scales in the summary): the pooled proportion per regimen as ``p`` =
inverse-logit of the mean (the proportion of a typical study), ``p_mean`` (the mean over
the random-effects distribution, by Gauss-Hermite quadrature) and ``p_new`` (the
inverse-logit of a predictive draw); the contrast as ``d`` (log OR), ``or``, ``delta_new``
/ ``or_new`` (predictive), and per study ``delta`` (shrunken log OR).

Dimensions: ``study``, ``arm`` (the regimens; the reference first in :func:`fit_contrast`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit, gammaln

from hccmeta import priors as pr
from hccmeta.defaults import DEFAULT_SEED
from hccmeta.errors import InputError
from hccmeta.models import mcmc
from hccmeta.models._results import (
    Estimand,
    PosteriorResult,
    data_hash,
    make_tree,
    settings_attrs,
    versions,
)

__all__ = [
    "DEFAULT_MU_LOGIT",
    "DEFAULT_SIGMA_LOGIT",
    "binomial_coefficient",
    "binomial_logit_logp",
    "fit_contrast",
    "fit_proportion",
    "study_bias_entries",
]

#: Default prior of a pooled logit proportion: 95% of proportions within 0.02-0.98.
DEFAULT_MU_LOGIT = pr.Normal(0.0, 2.0)
#: Default prior of a between-study SD on the logit scale (proportions vary more across
#: studies than log ratios: a study at +1 SD has 2.7 times the odds).
DEFAULT_SIGMA_LOGIT = pr.HalfNormal(1.0)

_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(41)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


def binomial_coefficient(events: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``ln C(n, events)`` with ``lgamma``, defined for non-integer effective counts."""
    return np.asarray(gammaln(n + 1.0) - gammaln(events + 1.0) - gammaln(n - events + 1.0))


def binomial_logit_logp(events: Any, n: Any, eta: Any, coef: Any) -> Any:
    """Log-likelihood of ``events`` of ``n`` with ``logit p = eta`` (pytensor).

    ``coef + events log p + (n - events) log(1 - p)`` with ``log p = -softplus(-eta)``
    (stable for zero cells and extreme ``eta``); ``coef`` is
    :func:`binomial_coefficient`, computed once outside the graph.
    """
    import pytensor.tensor as pt

    return coef - events * pt.softplus(-eta) - (n - events) * pt.softplus(eta)


def _counts(data: pd.DataFrame, required: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in required if c not in data.columns]
    if missing:
        raise InputError(f"data: missing column(s) {missing}; expected {list(required)}")
    if len(data) == 0:
        raise InputError("data: no rows")
    df = data.loc[:, list(required)].reset_index(drop=True).copy()
    for col in ("study", "arm"):
        if col in df:
            empty = (df[col].isna() | (df[col].astype(str).str.strip() == "")).to_numpy()
            if empty.any():
                raise InputError(f"data: row {int(np.flatnonzero(empty)[0])}, column {col}: empty")
            df[col] = df[col].astype(str)
    for col in ("events", "n"):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < 0)
        if col == "n":
            bad |= values <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"data: row {i}, column {col}: {data[col].iloc[i]!r} is not a "
                f"{'positive' if col == 'n' else 'non-negative'} number"
            )
        df[col] = values
    over = df["events"] > df["n"]
    if over.any():
        i = int(np.flatnonzero(over.to_numpy())[0])
        raise InputError(
            f"data: row {i}: events {df['events'].iloc[i]:g} exceed n {df['n'].iloc[i]:g}"
        )
    keys = [c for c in ("study", "arm") if c in df]
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        rows = list(np.flatnonzero(dup.to_numpy()))
        raise InputError(f"data: rows {rows} repeat the same {' and '.join(keys)}")
    return df


def study_bias_entries(
    bias: Any, studies: list[str], has_contrast: np.ndarray, *, what: str = "log odds ratio"
) -> list[pr.Normal | None] | None:
    """A ``bias`` argument (a mapping from study to a Normal, its text or None, or a
    sequence in the order of ``studies``) as one entry per study (None: no bias term);
    an InputError for a bias on a study without a contrast (``what``: the scale, for the
    message). Shared by :func:`fit_contrast` and the survival model."""
    if bias is None:
        return None
    if isinstance(bias, Mapping):
        unknown = [str(s) for s in bias if str(s) not in studies]
        if unknown:
            raise InputError(f"bias: unknown study {unknown[0]!r}; the studies are {studies}")
        raw = [bias.get(s) for s in studies]
        names = [f"bias[{s!r}]" for s in studies]
    else:
        if isinstance(bias, str | bytes) or not isinstance(bias, Sequence):
            raise InputError(
                f"bias must be a mapping from study to Normal/None or a sequence, got {bias!r}"
            )
        raw = list(bias)
        if len(raw) != len(studies):
            raise InputError(
                f"bias has {len(raw)} entries for {len(studies)} studies (in the order in "
                f"which they first appear in data: {studies})"
            )
        names = [f"bias[{i}]" for i in range(len(studies))]
    out: list[pr.Normal | None] = []
    for name, entry, study, contrast in zip(names, raw, studies, has_contrast, strict=True):
        if isinstance(entry, str):
            entry = pr.parse(entry, argument=name)
        if entry is not None and not isinstance(entry, pr.Normal):
            raise InputError(f"{name} = {entry!r}: a bias distribution must be a Normal or None")
        if entry is not None and not contrast:
            raise InputError(
                f"{name}: study {study!r} has no contrast (a single arm), so it cannot carry "
                f"a bias on the {what}"
            )
        out.append(entry)
    return out


def _prob_mean(mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[expit(mu + sd Z)], Z ~ N(0, 1), by Gauss-Hermite quadrature (41 nodes)."""
    x = mu[..., None] + sd[..., None] * _GH_NODES
    return np.asarray((expit(x) * _GH_WEIGHTS).sum(axis=-1))


def _settings(
    settings: mcmc.SamplerSettings | None, target_accept: float = 0.9
) -> mcmc.SamplerSettings:
    if settings is not None:
        return settings
    return mcmc.SamplerSettings(target_accept=target_accept)


def _observed(
    df: pd.DataFrame, studies: list[str], arms: list[str], s_idx: np.ndarray, a_idx: np.ndarray
) -> xr.Dataset:
    out = {}
    for col in ("events", "n"):
        m = np.full((len(studies), len(arms)), np.nan)
        m[s_idx, a_idx] = df[col].to_numpy()
        out[col] = xr.DataArray(m, dims=("study", "arm"), coords={"study": studies, "arm": arms})
    return xr.Dataset(out)


# --------------------------------------------------------------------------------------
# one regimen (or several, unlinked)


def fit_proportion(
    data: pd.DataFrame,
    *,
    prior_mu: pr.Prior = DEFAULT_MU_LOGIT,
    prior_tau: pr.Prior = DEFAULT_SIGMA_LOGIT,
    seed: int = DEFAULT_SEED,
    settings: mcmc.SamplerSettings | None = None,
) -> PosteriorResult:
    """Pooled proportion per regimen: ``logit p_i ~ Normal(mu_a, tau_a^2)``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study arm: ``study``, ``events`` (may be 0, may be a non-integer
        effective count), ``n`` (> 0, may be an effective sample size), and optionally
        ``arm`` (the regimen; default one regimen called ``"all"``).
    prior_mu : Prior, keyword-only
        Prior of each regimen's mean logit (default Normal(0, 2)).
    prior_tau : Prior, keyword-only
        Prior of each regimen's between-study SD of the logit (default HalfNormal(1)).
    seed : int, keyword-only
        Seed of the sampler and of the predictive draws.
    settings : SamplerSettings, keyword-only
        Sampler settings (default 4 chains x 1000 draws, target acceptance 0.95).

    Returns
    -------
    PosteriorResult
        Estimands ``p`` (inverse-logit of ``mu``), ``p_mean`` (mean proportion over the
        random-effects distribution), ``p_new`` (predictive), ``mu``, ``tau`` (dim
        ``arm``) and ``p_study`` (each study's shrunken proportion, dims ``study, arm``).
    """
    frame = data.copy() if isinstance(data, pd.DataFrame) else data
    if isinstance(frame, pd.DataFrame) and "arm" not in frame.columns:
        frame["arm"] = "all"
    df = _counts(frame, ("study", "arm", "events", "n"))
    prior_mu = pr.check_mu_prior(prior_mu, argument="prior_mu")
    prior_tau = pr.check_tau_prior(prior_tau, argument="prior_tau")
    # a regimen with a single study has a ridge along mu + tau z = logit p: a smaller step
    settings = _settings(settings, target_accept=0.95)
    arms = list(dict.fromkeys(df["arm"]))
    studies = list(dict.fromkeys(df["study"]))
    a_idx = df["arm"].map({a: i for i, a in enumerate(arms)}).to_numpy(dtype=np.int64)
    s_idx = df["study"].map({s: i for i, s in enumerate(studies)}).to_numpy(dtype=np.int64)
    n_obs = len(df)
    values: dict[str, Any] = {
        "events": df["events"].to_numpy(),
        "n": df["n"].to_numpy(),
        "coef": binomial_coefficient(df["events"].to_numpy(), df["n"].to_numpy()),
        "arm_idx": a_idx,
        **prior_mu.data("mu"),
        **prior_tau.data("tau"),
    }

    def build() -> Any:
        import pymc as pm

        with pm.Model(coords={"arm": arms, "obs": np.arange(n_obs)}) as model:
            events = pm.Data("events", values["events"])
            n = pm.Data("n", values["n"])
            coef = pm.Data("coef", values["coef"])
            ai = pm.Data("arm_idx", a_idx)
            mu = prior_mu.to_pymc("mu", dims="arm")
            tau = prior_tau.to_pymc("tau", dims="arm")
            z = pm.Normal("z", 0.0, 1.0, dims="obs")
            eta = mu[ai] + tau[ai] * z
            pm.Potential("loglik", binomial_logit_logp(events, n, eta, coef).sum())
        return model

    key = ("binomial.proportion", prior_mu.family, prior_tau.family, len(arms), n_obs)
    trace, diagnostics = mcmc.sample(
        key, build, values, seed=seed, settings=settings, coords={"arm": arms}
    )
    post = trace["posterior"].to_dataset()
    mu, tau, z = post["mu"], post["tau"], post["z"].to_numpy()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7_101]))
    eta_study = mu.to_numpy()[..., a_idx] + tau.to_numpy()[..., a_idx] * z
    p_study = np.full((*z.shape[:2], len(studies), len(arms)), np.nan)
    p_study[..., s_idx, a_idx] = expit(eta_study)
    theta_new = mu + tau * rng.standard_normal(mu.shape)
    derived = {
        "p": xr.apply_ufunc(expit, mu),
        "p_mean": xr.DataArray(
            _prob_mean(mu.to_numpy(), tau.to_numpy()), dims=mu.dims, coords=mu.coords
        ),
        "theta_new": theta_new,
        "p_new": xr.apply_ufunc(expit, theta_new),
        "p_study": xr.DataArray(
            p_study,
            dims=("chain", "draw", "study", "arm"),
            coords={"study": studies, "arm": arms},
        ),
    }
    estimands = (
        Estimand("p", "probability", "pooled proportion: inverse-logit of mu"),
        Estimand("p_mean", "probability", "mean proportion over the random-effects distribution"),
        Estimand("p_new", "probability", "predictive proportion in a new study"),
        Estimand("mu", "logit", "pooled logit proportion"),
        Estimand("tau", "sd", "between-study SD of the logit proportion"),
        Estimand("p_study", "probability", "each study's shrunken proportion"),
    )
    prior_text = {"mu": f"mu ~ {prior_mu}", "tau": f"tau ~ {prior_tau}"}
    attrs = {
        "model": "binomial.proportion",
        "priors": prior_text,
        "data_hash": data_hash(df),
        "versions": versions(),
        "seed": int(seed),
        **settings_attrs(settings, diagnostics),
    }
    tree = make_tree(
        trace,
        derived=derived,
        observed=_observed(df, studies, arms, s_idx, a_idx),
        attrs=attrs,
        drop=("z",),
    )
    return PosteriorResult(
        model="binomial.proportion",
        tree=tree,
        diagnostics=diagnostics,
        priors=prior_text,
        estimands=estimands,
        inputs={"arms": df},
    )


# --------------------------------------------------------------------------------------
# two regimens: arm-level baselines and a contrast


def fit_contrast(
    data: pd.DataFrame,
    *,
    reference: str,
    baseline: Literal["random", "fixed"] = "random",
    single_arm_experimental: Literal["exclude", "arm_based"] = "exclude",
    prior_d: pr.Prior = pr.DEFAULT_MU,
    prior_tau: pr.Prior = pr.DEFAULT_TAU,
    prior_mu_alpha: pr.Prior = DEFAULT_MU_LOGIT,
    prior_sigma_alpha: pr.Prior = DEFAULT_SIGMA_LOGIT,
    seed: int = DEFAULT_SEED,
    settings: mcmc.SamplerSettings | None = None,
    bias: Mapping[str, pr.Normal | None] | Sequence[pr.Normal | None] | None = None,
) -> PosteriorResult:
    """Log odds ratio of two regimens with arm-level study baselines.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study arm: ``study``, ``arm`` (the regimen: exactly two distinct
        values, one of them ``reference``), ``events``, ``n`` (non-integer effective
        counts allowed). A study has at most one arm per regimen.
    reference : str, keyword-only
        The reference regimen (``treat = 0``); the odds ratio is experimental vs it.
    baseline : {"random", "fixed"}, keyword-only
        Study baselines ``alpha_i`` exchangeable (``Normal(mu_alpha, sigma_alpha^2)``;
        default) or fixed (independent ``prior_mu_alpha``).
    single_arm_experimental : {"exclude", "arm_based"}, keyword-only
        Whether a study with only an experimental arm stays out of the contrast
        (default) or informs it through exchangeable baselines; see the module
        docstring.
    prior_d, prior_tau : Prior, keyword-only
        Priors of the pooled log OR (default Normal(0, 1)) and of its between-study SD
        (default HalfNormal(0.5)).
    prior_mu_alpha, prior_sigma_alpha : Prior, keyword-only
        Priors of the baseline logit mean (default Normal(0, 2); with ``baseline="fixed"``
        the prior of each ``alpha_i``) and SD (default HalfNormal(1)).
    seed : int, keyword-only
        Seed of the sampler and of the predictive draws.
    settings : SamplerSettings, keyword-only
        Sampler settings (default 4 chains x 1000 draws, target acceptance 0.9).
    bias : mapping or sequence, keyword-only, optional
        An additive bias on each study's log odds ratio, on the log-OR scale: a
        :class:`~hccmeta.priors.Normal` or None (no bias term) per study, as a mapping
        from study label (studies left out have none) or a sequence in the order in which
        the studies first appear in ``data``. Only a study with a contrast may have one.
        :func:`hccmeta.priors.bias_prior` gives defaults for a risk-of-bias judgement.
        ``d`` and ``delta`` are then bias-adjusted, and the estimand ``bias`` is each
        study's bias.

    Returns
    -------
    PosteriorResult
        Estimands ``d`` (log OR), ``or``, ``tau``, ``delta_new`` / ``or_new``
        (predictive), ``delta`` (each comparative or experimental-arm study's log OR), and
        with ``baseline="random"`` the pooled proportions per regimen ``p``, ``p_mean``,
        ``p_new`` (dim ``arm``, reference first), ``mu_alpha``, ``sigma_alpha``.
    """
    df = _counts(data, ("study", "arm", "events", "n"))
    if baseline not in ("random", "fixed"):
        raise InputError(f"baseline must be 'random' or 'fixed', got {baseline!r}")
    if single_arm_experimental not in ("exclude", "arm_based"):
        raise InputError(
            "single_arm_experimental must be 'exclude' or 'arm_based', "
            f"got {single_arm_experimental!r}"
        )
    arms_seen = list(dict.fromkeys(df["arm"]))
    if reference not in arms_seen:
        raise InputError(f"reference {reference!r} is not among the arms {arms_seen}")
    if len(arms_seen) != 2:
        raise InputError(
            f"data: fit_contrast compares exactly two regimens, got {len(arms_seen)}: {arms_seen}"
        )
    experimental = next(a for a in arms_seen if a != reference)
    arms = [reference, experimental]
    prior_d = pr.check_mu_prior(prior_d, argument="prior_d")
    prior_tau = pr.check_tau_prior(prior_tau, argument="prior_tau")
    prior_mu_alpha = pr.check_mu_prior(prior_mu_alpha, argument="prior_mu_alpha")
    prior_sigma_alpha = pr.check_tau_prior(prior_sigma_alpha, argument="prior_sigma_alpha")
    settings = _settings(settings)

    studies = list(dict.fromkeys(df["study"]))
    s_idx = df["study"].map({s: i for i, s in enumerate(studies)}).to_numpy(dtype=np.int64)
    a_idx = (df["arm"] == experimental).to_numpy(dtype=np.int64)
    n_arms = df.groupby("study")["arm"].transform("size").to_numpy()
    kind = np.where(
        n_arms == 2, "comparative", np.where(a_idx == 1, "single_experimental", "single_reference")
    )
    # single arms of the experimental regimen: excluded from the contrast (their own
    # baseline, outside the exchangeable ones) unless asked for arm-based borrowing
    excluded = np.zeros(len(studies), dtype=bool)
    if single_arm_experimental == "exclude":
        excluded[s_idx[kind == "single_experimental"]] = True
        kind = np.where(kind == "single_experimental", "single_experimental_excluded", kind)
    treat = ((a_idx == 1) & ~excluded[s_idx]).astype(float)
    # studies with an experimental arm in the contrast carry a delta_i
    has_exp = np.zeros(len(studies), dtype=bool)
    has_exp[s_idx[treat == 1]] = True
    delta_studies = [s for s, h in zip(studies, has_exp, strict=True) if h]
    d_index = np.cumsum(has_exp) - 1  # study -> position among delta_studies
    d_idx = np.where(treat == 1, d_index[s_idx], 0).astype(np.int64)
    n_study, n_delta = len(studies), len(delta_studies)
    if n_delta == 0:
        raise InputError(
            f"data: no study informs the contrast with {experimental!r} (single experimental "
            "arms are excluded unless single_arm_experimental='arm_based')"
        )

    bias_entries = study_bias_entries(bias, studies, has_exp)
    values: dict[str, Any] = {
        "events": df["events"].to_numpy(),
        "n": df["n"].to_numpy(),
        "coef": binomial_coefficient(df["events"].to_numpy(), df["n"].to_numpy()),
        "study_idx": s_idx,
        "delta_idx": d_idx,
        "treat": treat,
        **prior_d.data("d"),
        **prior_tau.data("tau"),
    }
    if bias_entries is not None:
        biased = [bias_entries[i] for i in np.flatnonzero(has_exp)]
        values["bias_mean"] = np.array([0.0 if b is None else b.mean for b in biased])
        values["bias_sd"] = np.array([0.0 if b is None else b.sd for b in biased])
    if baseline == "random":
        values["excluded"] = excluded.astype(float)
        values.update(prior_mu_alpha.data("mu_alpha"))
        values.update(prior_sigma_alpha.data("sigma_alpha"))
    else:
        values.update(prior_mu_alpha.data("alpha"))

    def build() -> Any:
        import pymc as pm

        with pm.Model(coords={"study": studies, "delta_study": delta_studies}) as model:
            events = pm.Data("events", values["events"])
            n = pm.Data("n", values["n"])
            coef = pm.Data("coef", values["coef"])
            si = pm.Data("study_idx", s_idx)
            di = pm.Data("delta_idx", d_idx)
            tr = pm.Data("treat", treat)
            d = prior_d.to_pymc("d")
            tau = prior_tau.to_pymc("tau")
            z = pm.Normal("z_delta", 0.0, 1.0, dims="delta_study")
            delta = d + tau * z
            if bias_entries is not None:
                bm = pm.Data("bias_mean", values["bias_mean"], dims="delta_study")
                bs = pm.Data("bias_sd", values["bias_sd"], dims="delta_study")
                w = pm.Normal("w_bias", 0.0, 1.0, dims="delta_study")
                # the observed contrast is the bias-adjusted delta plus the bias
                delta = delta + pm.Deterministic("bias_delta", bm + bs * w, dims="delta_study")
            if baseline == "random":
                mu_alpha = prior_mu_alpha.to_pymc("mu_alpha")
                sigma_alpha = prior_sigma_alpha.to_pymc("sigma_alpha")
                u = pm.Normal("z_alpha", 0.0, 1.0, dims="study")
                # an excluded study's baseline: its own, from the prior of mu_alpha
                own = model["mu_alpha_mean"] + model["mu_alpha_sd"] * u
                ex = pm.Data("excluded", values["excluded"])
                alpha = pm.Deterministic(
                    "alpha", ex * own + (1.0 - ex) * (mu_alpha + sigma_alpha * u), dims="study"
                )
            else:
                alpha = prior_mu_alpha.to_pymc("alpha", dims="study")
            eta = alpha[si] + tr * delta[di]
            pm.Potential("loglik", binomial_logit_logp(events, n, eta, coef).sum())
        return model

    key = (
        "binomial.contrast",
        baseline,
        prior_d.family,
        prior_tau.family,
        prior_mu_alpha.family,
        prior_sigma_alpha.family,
        n_study,
        n_delta,
        "bias" if bias_entries is not None else "no bias",
    )
    trace, diagnostics = mcmc.sample(
        key,
        build,
        values,
        seed=seed,
        settings=settings,
        coords={"study": studies, "delta_study": delta_studies},
    )

    post = trace["posterior"].to_dataset()
    d, tau = post["d"], post["tau"]
    zd = post["z_delta"].to_numpy()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7_202]))
    delta_new = d + tau * rng.standard_normal(d.shape)
    delta = np.full((*zd.shape[:2], n_study), np.nan)
    delta[..., has_exp] = d.to_numpy()[..., None] + tau.to_numpy()[..., None] * zd
    observed_contrast = delta.copy()
    bias_draws = None
    if bias_entries is not None:
        bias_draws = np.full((*zd.shape[:2], n_study), np.nan)
        bias_draws[..., has_exp] = (
            post["bias_delta"].transpose("chain", "draw", "delta_study").to_numpy()
        )
        observed_contrast = delta + bias_draws
    alpha = post["alpha"].to_numpy()
    eta = alpha[..., s_idx] + treat * np.nan_to_num(observed_contrast[..., s_idx])
    p_study = np.full((*zd.shape[:2], n_study, 2), np.nan)
    p_study[..., s_idx, a_idx] = expit(eta)
    derived: dict[str, xr.DataArray] = {
        "or": xr.apply_ufunc(np.exp, d),
        "delta_new": delta_new,
        "or_new": xr.apply_ufunc(np.exp, delta_new),
        "delta": xr.DataArray(delta, dims=("chain", "draw", "study"), coords={"study": studies}),
        "p_study": xr.DataArray(
            p_study,
            dims=("chain", "draw", "study", "arm"),
            coords={"study": studies, "arm": arms},
        ),
    }
    estimands = [
        Estimand("d", "log", "pooled log odds ratio, experimental vs reference"),
        Estimand("or", "ratio", "pooled odds ratio, exp(d)"),
        Estimand("tau", "sd", "between-study SD of the log odds ratio"),
        Estimand("delta_new", "log", "predictive log odds ratio in a new study"),
        Estimand("or_new", "ratio", "predictive odds ratio in a new study"),
    ]
    if baseline == "random":
        mu_a = post["mu_alpha"].to_numpy()
        sd_a = post["sigma_alpha"].to_numpy()
        alpha_new = mu_a + sd_a * rng.standard_normal(mu_a.shape)
        logit_mean = np.stack([mu_a, mu_a + d.to_numpy()], axis=-1)
        logit_new = np.stack([alpha_new, alpha_new + delta_new.to_numpy()], axis=-1)
        sd_total = np.stack([sd_a, np.sqrt(sd_a**2 + tau.to_numpy() ** 2)], axis=-1)
        dims, coords = ("chain", "draw", "arm"), {"arm": arms}
        derived["p"] = xr.DataArray(expit(logit_mean), dims=dims, coords=coords)
        derived["p_mean"] = xr.DataArray(_prob_mean(logit_mean, sd_total), dims=dims, coords=coords)
        derived["p_new"] = xr.DataArray(expit(logit_new), dims=dims, coords=coords)
        estimands = [
            Estimand("p", "probability", "pooled proportion per regimen (typical study)"),
            Estimand("p_mean", "probability", "mean proportion per regimen over studies"),
            Estimand("p_new", "probability", "predictive proportion per regimen"),
            *estimands,
            Estimand("mu_alpha", "logit", "mean baseline logit (reference regimen)"),
            Estimand("sigma_alpha", "sd", "between-study SD of the baseline logit"),
        ]
    estimands += [
        Estimand("delta", "log", "each study's shrunken log odds ratio (bias-adjusted)"),
        Estimand("p_study", "probability", "each study arm's fitted proportion"),
    ]
    if bias_draws is not None:
        derived["bias"] = xr.DataArray(
            bias_draws, dims=("chain", "draw", "study"), coords={"study": studies}
        )
        estimands.append(Estimand("bias", "log", "each study's additive bias on its log OR"))
    prior_text = {
        "d": f"d ~ {prior_d}",
        "tau": f"tau ~ {prior_tau}",
    }
    if bias_entries is not None:
        prior_text["bias"] = (
            "; ".join(
                f"b[{s}] ~ {b}" for s, b in zip(studies, bias_entries, strict=True) if b is not None
            )
            or "no study has a bias term"
        )
    if baseline == "random":
        prior_text["alpha"] = (
            f"alpha_i ~ Normal(mu_alpha, sigma_alpha^2); mu_alpha ~ {prior_mu_alpha}; "
            f"sigma_alpha ~ {prior_sigma_alpha}"
        )
    else:
        prior_text["alpha"] = f"alpha_i ~ {prior_mu_alpha} (fixed baselines)"
    rows = df.assign(treat=treat, kind=kind)
    attrs = {
        "model": "binomial.contrast",
        "priors": prior_text,
        "data_hash": data_hash(df, {"reference": reference, "baseline": baseline}),
        "versions": versions(),
        "seed": int(seed),
        "reference": reference,
        "experimental": experimental,
        "baseline": baseline,
        "single_arm_experimental": single_arm_experimental,
        **settings_attrs(settings, diagnostics),
    }
    if bias_entries is not None:
        attrs["bias"] = {
            s: (repr(b) if b is not None else "none")
            for s, b in zip(studies, bias_entries, strict=True)
        }
    observed = _observed(df, studies, arms, s_idx, a_idx)
    tree = make_tree(
        trace,
        derived=derived,
        observed=observed,
        attrs=attrs,
        drop=("z_delta", "z_alpha", "w_bias", "bias_delta"),
    )
    return PosteriorResult(
        model="binomial.contrast",
        tree=tree,
        diagnostics=diagnostics,
        priors=prior_text,
        estimands=tuple(estimands),
        inputs={"arms": rows},
    )
