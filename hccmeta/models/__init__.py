"""Pooling models: one module per model plus a small shared MCMC base.

- :mod:`hccmeta.models.mcmc` -- the shared base (compile once per structure, refit with
  ``pm.Data``, diagnostics and retries);
- :mod:`hccmeta.models.normal` -- the normal-normal random-effects model,
  :func:`hccmeta.pool`, with its engines :mod:`~hccmeta.models.normal_exact` (numerical
  integration over tau, as bayesmeta) and :mod:`~hccmeta.models.normal_mcmc` (PyMC,
  nutpie), and its result :mod:`~hccmeta.models.result`;
- :mod:`hccmeta.models.frequentist` -- REML, DerSimonian-Laird and fixed-effect estimates
  (metafor's ``rma``);
- :mod:`hccmeta.models.metareg` -- meta-regression on study-level covariates;
- :mod:`hccmeta.models.prognostic`, :mod:`~hccmeta.models.binomial`,
  :mod:`~hccmeta.models.survival` -- the joint prognostic-factor, binomial and
  multi-format survival models.

Nothing heavy is imported here: PyMC and nutpie load inside the functions that sample.
"""
