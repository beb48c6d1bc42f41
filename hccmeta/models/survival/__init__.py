"""Multi-format survival synthesis: a latent Weibull curve per study arm, one likelihood
term per reported statistic, the statistics of one arm and study taken jointly.

Model
-----
Two regimens (``arm``: the reference first). Study ``i`` has a baseline log median
``eta_i`` (of its reference-regimen arm) and, if it has an arm of the experimental
regimen, a log hazard ratio ``beta_i``; a common Weibull shape ``k`` applies to every arm::

    S_ij(t) = exp(-ln 2 (t / M_ij)^k),   ln M_ij = eta_i - treat_ij (beta_i + b_i) / k

which is proportional hazards within each study (``S_exp = S_ref^HR``); ``weibull=False``
fixes ``k = 1`` (exponential). ``b_i`` is an optional additive bias on the study's log
HR (``bias=``; ``b_i = m_i + v_i w_i``, ``w_i ~ Normal(0, 1)``, explicit and
non-centred, 0 without it), so that ``beta_i`` is bias-adjusted while the study's arms
and contrast show ``beta_i + b_i``. Non-centred random effects::

    beta_i = mu_hr + tau z_i,            mu_hr ~ prior_mu_hr (Normal(0, 1)),
                                         tau ~ prior_tau (HalfNormal(0.5))
    baseline="random": eta_i = m_eta + sigma_eta u_i,
                       m_eta ~ prior_log_median (Normal(ln 8, 1.2): medians 0.8-84
                       months), sigma_eta ~ prior_sigma_baseline (HalfNormal(0.5))
    baseline="fixed":  eta_i ~ prior_log_median independently
    ln k ~ prior_log_shape (Normal(0, 0.5): k within 0.37-2.7)

A study with only an experimental arm (a single-arm phase II study of the experimental
regimen) has by default an exchangeable baseline and a ``beta_i`` drawn from the
random-effects distribution, so it informs the experimental regimen's pooled median (the
arm-based assumption); ``single_arm_experimental="exclude"`` gives it a baseline of its own
instead, so that it informs only the shape ``k``.

Statistics (all on the analysis scale of :mod:`hccmeta.effects`):

- **median** (``medians``: ``yi = ln median``, ``sei``; with a CI, ``sei = (ln U - ln L)
  / (2 z)``; with events only, the effects layer's Kaplan-Meier variance);
- **landmark** (``landmarks``: ``time``, ``survival`` and ``n_eff`` or ``sei`` on the
  cloglog scale): successive *conditional* survivals ``S(t_k) / S(t_{k-1})``
  (``landmark_terms="conditional"``, default), each a binomial with effective sample
  size (``landmark_likelihood="binomial"``, default) or a normal on ``ln(-ln S)``; the
  log Kaplan-Meier estimator has independent increments, so these terms are the joint
  density of an arm's landmarks (exactly so without censoring: ``n`` patients, ``n
  S(t_1)`` at risk after ``t_1``, and so on). ``"marginal"`` takes each S(t) on its own.
- **contrast** (``contrasts``: ``yi = ln HR`` experimental vs reference, ``sei``,
  ``kind``): an HR with CI, or a log-rank/Peto estimate. A study contributes one
  contrast: an HR with CI supersedes p-value-based rows (listed as unused).

The statistics of one study summarise the same patients: a median and the landmarks
around it are read off one Kaplan-Meier curve, and an HR is estimated from the deaths
the two curves record. ``overlap="joint"`` (the default) uses their joint density under
the model's curves -- the landmarks as above, each median given its arm's landmarks, the
contrast given both arms' statistics -- from the asymptotic covariances of Kaplan-Meier
statistics (Greenwood; the median by its Bahadur representation with Kiefer's remainder,
its loading 1 / (k ln 2) under the model's shape k and its reported SE read as an
exponential curve's; the Cox/log-rank score's covariance with the log Kaplan-Meier
curves), assuming no censoring before the statistics' times (the arms' sizes thinned
where the contrast's SE says censoring removed information; a landmark below the model's
curve enters through its complementary log-log deviation, which keeps the terms bounded
far from the data): :mod:`hccmeta.models.survival.terms`, where the
formulas and assumptions are, with :func:`statistic_covariance` the covariance matrix
they are the conditionals of. Two sensitivity variants take every statistic on its own:
``overlap="families"`` weights each study's terms by ``1 / m`` (m = 1-3 kinds of
statistic it reports; a composite likelihood that counts each study about once, which
also deflates the information on baselines and shape that the contrast does not carry),
``overlap="none"`` multiplies the terms as if independent (overstating the information
when one study reports several statistics); ``families`` is the analyses' sensitivity
variant ``survival_overlap_families``. The sampler starts the baselines and the mean log
HR at the data (the arms' crude log medians, the reported log HRs), not at the priors'
centres. Calibration (SBC of the default) and the
coverage of its intervals on simulated Kaplan-Meier data: ``validation/calibration/`` and
``validation/survival/``.

Estimands: ``mu_hr``, ``hr`` and the predictive ``log_hr_new`` / ``hr_new``; per regimen
(``baseline="random"``) the median ``median`` (typical study) and ``median_new``
(predictive), survival at ``times`` (6, 12, 24 months by default) ``survival`` /
``survival_new``; the shape ``k``; per study ``log_hr_study`` (bias-adjusted),
``median_study`` (each arm's fitted median, as observed) and, with a bias model,
``bias``.

The fit's DataTree also has, at the draws, a ``log_likelihood`` group (one variable per
term family -- ``median``, ``landmark``, ``contrast`` over the dimensions
``median_term``, ``landmark_term``, ``contrast_term`` -- each term's weighted log
density, summing to the model's log-likelihood; with the joint likelihood a median's
term is conditional on its arm's landmarks and a contrast's on both arms' statistics)
and a ``log_prior`` group (the top-level priors: ``mu_hr``, ``tau``, ``log_k``
(Weibull), ``m_eta`` and ``sigma_eta`` (random baselines), ``eta`` (baselines with a
prior of their own)), which power-scaling sensitivity (:mod:`hccmeta.sensitivity.power`)
scales.

Modules: :mod:`~hccmeta.models.survival.inputs` (checks, landmark terms, study
structure), :mod:`~hccmeta.models.survival.terms` (the likelihood terms),
:mod:`~hccmeta.models.survival.graph` (data, PyMC model, log-likelihood at the draws),
:mod:`~hccmeta.models.survival.summary` (estimands, log priors, observed data),
:mod:`~hccmeta.models.survival.fit` (:func:`fit_survival`).

Dimensions: ``study``, ``arm``, ``time``.
"""

from hccmeta.models.survival.fit import (
    DEFAULT_LOG_MEDIAN,
    DEFAULT_LOG_SHAPE,
    DEFAULT_SIGMA_BASELINE,
    fit_survival,
)
from hccmeta.models.survival.inputs import landmark_likelihood_terms
from hccmeta.models.survival.terms import statistic_covariance

__all__ = [
    "DEFAULT_LOG_MEDIAN",
    "DEFAULT_LOG_SHAPE",
    "DEFAULT_SIGMA_BASELINE",
    "fit_survival",
    "landmark_likelihood_terms",
    "statistic_covariance",
]
