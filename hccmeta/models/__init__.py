"""Pooling models: one module per model plus a small shared MCMC base.

- :mod:`hccmeta.models.mcmc` -- the shared base (compile once per structure, refit with
  ``pm.Data``, diagnostics and retries);
- :mod:`hccmeta.models.normal` -- the normal-normal random-effects model
  (:func:`hccmeta.pool`; exact and MCMC engines);
- :mod:`hccmeta.models.frequentist` -- REML and DerSimonian-Laird estimates;
- :mod:`hccmeta.models.metareg` -- meta-regression on study-level covariates.

Nothing heavy is imported here: PyMC and nutpie load inside the functions that sample.
"""
