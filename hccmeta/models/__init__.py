"""Pooling models: one module per model plus a small shared MCMC base.

- :mod:`hccmeta.models.mcmc` -- the shared base (compile once per structure, refit with
  ``pm.Data``, diagnostics and retries);
- :mod:`hccmeta.models.normal` -- the normal-normal random-effects model,
  :func:`hccmeta.pool` (optionally with an additive bias per study), with its engines
  :mod:`~hccmeta.models.normal_exact` (numerical integration over tau, as bayesmeta) and
  :mod:`~hccmeta.models.normal_mcmc` (PyMC, nutpie), and its result
  :mod:`~hccmeta.models.result`;
- :mod:`hccmeta.models.bias` -- randomised and non-randomised evidence with a learnt
  bias, :func:`pool_combined`, with its exact engine :mod:`~hccmeta.models.bias_exact`;
- :mod:`hccmeta.models.frequentist` -- REML, DerSimonian-Laird and fixed-effect estimates
  (metafor's ``rma``);
- :mod:`hccmeta.models.metareg` -- meta-regression on study-level covariates;
- :mod:`hccmeta.models.prognostic`, :mod:`~hccmeta.models.binomial`,
  :mod:`~hccmeta.models.survival` -- the joint prognostic-factor, binomial and
  multi-format survival models.

Nothing heavy is imported here: PyMC and nutpie load inside the functions that sample.
"""

from hccmeta.models.bias import CombinedResult, pool_combined
from hccmeta.models.normal import pool
from hccmeta.models.result import PoolResult

__all__ = ["CombinedResult", "PoolResult", "pool", "pool_combined"]
