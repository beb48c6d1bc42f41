"""Sensitivity analyses: variants of an analysis, one tidy table (SPEC section 6).

:func:`sensitivity` runs every variant that applies to one analysis, :func:`sensitivity_all`
those of every registered analysis; the table's columns are :data:`SENSITIVITY_COLUMNS`.
One module per kind of variant (``priors``, ``fixed``, ``loo``, ``conversions``,
``subsets``, ``alternatives``, ``power``), importance reweighting of prior changes
(``reweight``), and the executor that runs the fits in this process, a local pool or
on a Dask cluster (``executor``). The plot is
:func:`hccmeta.report.sensitivity_plot.sensitivity_plot`.

``hccmeta.sensitivity`` is both this package and the function of SPEC section 7
(``hm.sensitivity(result)``): the package module is callable and calling it calls
:func:`sensitivity`, so that ``hccmeta.sensitivity.sensitivity_all`` and
``from hccmeta.sensitivity import ...`` keep working next to ``hm.sensitivity(...)``.
"""

import sys
import types
from typing import Any

from hccmeta.sensitivity.run import DEFAULT_SEED, plan_variants, sensitivity, sensitivity_all
from hccmeta.sensitivity.table import GROUPS, SENSITIVITY_COLUMNS
from hccmeta.sensitivity.variants import Variant

__all__ = [
    "DEFAULT_SEED",
    "GROUPS",
    "SENSITIVITY_COLUMNS",
    "Variant",
    "plan_variants",
    "sensitivity",
    "sensitivity_all",
]


class _CallableModule(types.ModuleType):
    """The ``hccmeta.sensitivity`` module; calling it runs :func:`sensitivity`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return sensitivity(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
