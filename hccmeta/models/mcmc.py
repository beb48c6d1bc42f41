"""The shared MCMC base: compile a PyMC model once per structure, refit it with new data.

Every PyMC model of hccmeta is sampled through :func:`sample`:

1. the model is built by a ``build()`` callable whose data and prior hyperparameters are
   ``pm.Data`` containers, and compiled by nutpie once per process per *structure*
   (:func:`compiled`);
2. each fit sets the containers' values with nutpie's ``CompiledModel.with_data`` (no
   recompilation), samples, and checks the diagnostics (R-hat, bulk and tail ESS,
   divergences; computed as arviz-stats computes them, :mod:`hccmeta.models.convergence`);
3. a fit that fails the checks is sampled again (:meth:`SamplerSettings.retry`): after
   divergent transitions, an R-hat failure or a run nutpie could not start, with safer
   settings (:meth:`SamplerSettings.safer`: a higher target acceptance rate, more
   tuning and draws); after an ESS failure alone, longer
   (:meth:`SamplerSettings.longer`: twice the tuning and draws at the same target
   acceptance -- the chains agree and the sampler's geometry gave no warning, the run
   was too short for the tail quantiles). A fit that still fails comes back with
   ``Diagnostics.ok is False`` and the reasons in ``Diagnostics.messages`` -- it is
   never reported as clean.

What the cache key must contain
-------------------------------
nutpie fixes the number of unconstrained parameters (and of stored draws) when it
compiles; ``with_data`` can change the *values* of a ``pm.Data`` container but not the
number of parameters. A non-centred random-effects model with ``k`` studies has ``k``
latent parameters, so a model compiled for six studies cannot be refitted to four (nutpie
fails at initialisation: "All initialization points failed ... ErrorCode(1)"). The key a
caller passes names the structure (model, prior families, covariates, ...); :func:`sample`
adds the shapes of ``data`` to it, so a change of ``k`` compiles a new model instead of
failing. ``build`` must therefore build the model for the data it is about to get.

Fits stored across processes
-----------------------------
A fit is a deterministic function of the compiled structure, the data, the settings, the
seed and the start (the same seed gives bit-identical draws, whether the model was just
compiled or linked from PyTensor's numba cache: see "Reproducible draws" below). Inside
``with fit_store(store):`` :func:`sample` first asks ``store`` for the fit under
:func:`fit_key` of its inputs and samples (and compiles) only on a miss, storing what it
computed. ``hccmeta report`` passes its result cache (:mod:`hccmeta.report.cache`, which
adds the code version to the key): after one study is edited, the fits of an analysis
whose data did not change are read back instead of compiled and sampled again.

Compiled models across processes
--------------------------------
nutpie compiles a model in two steps: PyTensor functions (the log density with its
gradient, and the stored variables) whose graphs it rewrites, then numba C callbacks
around them. Both are kept on disk, beside PyTensor's numba cache: the functions under a
hash of the model graph (:func:`_make_functions`), the callbacks under a hash of their
sources and the functions' keys (:func:`_c_function`). A process that finds them reads
them back (the survival model: about 25 s of compiling per structure down to about
5 s); the code that runs is the same, and so are the draws.

PyMC, pytensor and nutpie are imported inside the functions (``import hccmeta`` stays
light).
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import math
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import xarray as xr

from hccmeta.scoped import Scoped

if TYPE_CHECKING:  # pragma: no cover
    import nutpie
    import pymc as pm

__all__ = [
    "Diagnostics",
    "FitStore",
    "SamplerSettings",
    "SamplingError",
    "clear_cache",
    "compile_count",
    "compiled",
    "current_fit_store",
    "diagnose",
    "fit_key",
    "fit_store",
    "sample",
]

DataValue = np.ndarray | float | int


class SamplingError(RuntimeError):
    """nutpie could not sample a model at all (e.g. no valid initial point), even after
    the retries; a fit that samples but fails its diagnostics is *not* an error but a
    result with ``Diagnostics.ok is False``."""


@dataclass(frozen=True)
class SamplerSettings:
    """Settings of one nutpie run and of the diagnostic checks applied to it.

    Attributes
    ----------
    draws, tune, chains : int
        Draws kept per chain, tuning draws per chain, number of chains.
    target_accept : float
        nutpie's target acceptance rate of the step-size adaptation.
    max_treedepth : int
        Maximum NUTS tree depth (nutpie's ``maxdepth``).
    max_retries : int
        How many times a fit that fails its diagnostics is re-sampled (with
        :meth:`retry` settings).
    cores : int or None
        Chains run in parallel; ``None`` means ``min(chains, CPUs)``.
    rhat_max : float
        Largest acceptable rank-normalised split R-hat (Vehtari et al. 2021: 1.01).
    ess_min_per_chain : float
        Smallest acceptable bulk and tail ESS, per chain (Vehtari et al. 2021: 100 per
        chain, i.e. 400 for four chains).
    max_divergences : int
        Largest acceptable number of divergent transitions after tuning.
    adaptation : str
        nutpie's mass-matrix adaptation (``"diag"``, ``"draw_diag"``, ``"low_rank"``).
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.8
    max_treedepth: int = 10
    max_retries: int = 2
    cores: int | None = None
    rhat_max: float = 1.01
    ess_min_per_chain: float = 100.0
    max_divergences: int = 0
    adaptation: str = "diag"

    def __post_init__(self) -> None:
        from hccmeta.errors import InputError

        for name in ("draws", "tune", "chains", "max_treedepth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(
                    f"SamplerSettings.{name} must be a positive integer, got {value!r}"
                )
        if self.max_retries < 0:
            raise InputError(f"SamplerSettings.max_retries must be >= 0, got {self.max_retries!r}")
        if not 0.0 < self.target_accept < 1.0:
            raise InputError(
                f"SamplerSettings.target_accept must be in (0, 1), got {self.target_accept!r}"
            )

    @property
    def ess_min(self) -> float:
        """Smallest acceptable bulk and tail ESS of this run (all chains together)."""
        return self.ess_min_per_chain * self.chains

    def retry(self, diagnostics: Diagnostics | None) -> SamplerSettings:
        """Settings of the next attempt after a run with these settings: :meth:`longer`
        when only the bulk or tail ESS failed; :meth:`safer` after divergent
        transitions, an R-hat failure, or when nutpie could not sample at all
        (``diagnostics`` None)."""
        if (
            diagnostics is None
            or diagnostics.n_divergent > self.max_divergences
            or not diagnostics.max_rhat <= self.rhat_max  # NaN: safer too
        ):
            return self.safer()
        return self.longer()

    def longer(self) -> SamplerSettings:
        """Settings for a retry of a run whose ESS alone failed (R-hat and divergences
        passed): twice the tuning and draws, the same target acceptance."""
        return dataclasses.replace(self, tune=self.tune * 2, draws=self.draws * 2)

    def safer(self) -> SamplerSettings:
        """Settings for a retry after divergent transitions, an R-hat failure or a run
        that could not start: twice the tuning and draws, a higher target acceptance
        (0.8 -> 0.95 -> 0.99 ...), one more level of tree depth."""
        target = 0.95 if self.target_accept < 0.95 else min(0.995, 1 - (1 - self.target_accept) / 5)
        return dataclasses.replace(
            self,
            tune=self.tune * 2,
            draws=self.draws * 2,
            target_accept=target,
            max_treedepth=self.max_treedepth + 1,
        )


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of one MCMC fit (the last attempt, after retries).

    Attributes
    ----------
    max_rhat : float
        Largest rank-normalised split R-hat over the checked variables.
    min_ess_bulk, min_ess_tail : float
        Smallest bulk and tail effective sample sizes.
    n_divergent : int
        Divergent transitions after tuning (all chains).
    ok : bool
        Whether every check passed.
    messages : tuple of str
        One line per failed check (empty when ``ok``), and a note on retries.
    retries : int
        How many times the fit was re-sampled (:meth:`SamplerSettings.retry`).
    n_max_treedepth : int
        Transitions that hit the maximum tree depth (an efficiency warning; not a
        failure).
    settings : SamplerSettings or None
        The settings of the attempt these diagnostics describe.
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    n_divergent: int
    ok: bool
    messages: tuple[str, ...] = ()
    retries: int = 0
    n_max_treedepth: int = 0
    settings: SamplerSettings | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (for JSON and netCDF attributes)."""
        return {
            "max_rhat": self.max_rhat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "n_divergent": self.n_divergent,
            "n_max_treedepth": self.n_max_treedepth,
            "ok": self.ok,
            "messages": list(self.messages),
            "retries": self.retries,
        }


# --------------------------------------------------------------------------------------
# faster-compiling C wrappers for nutpie
#
# nutpie 0.16 wraps the PyTensor-generated logp and expand functions in numba cfuncs that
# (a) read the shared variables' data pointers and shapes out of a record with generic,
# literal-unrolled code, and (b) copy the results with ``out[...] = grad`` and check
# ``np.all(np.isfinite(out))``. Numba types and lowers both slowly: (b) about 3 s the first
# time in a process, (a) about 2 s of CPU in *every* compile, because each model's record
# type is new. The functions below compute exactly the same thing -- generated code that
# reads the same record words at offsets computed from its layout, and element-wise
# loops -- and bring a compile from about 4 s to about 2 s of CPU on this machine
# (benchmarks/bench_pool.py). They replace nutpie's two private factory functions for
# nutpie 0.16.x only (checked by version and signature); HCCMETA_STOCK_NUTPIE=1 turns them
# off. They change no number: the same seed gives bit-identical draws
# (tests/test_pool_mcmc.py). They are also kept on disk, in PyTensor's numba cache, so
# that a structure compiled once on a machine is linked, not compiled, by later processes
# (:func:`_c_function`).

_PATCHED = False
#: nutpie's own factories, kept when the wrappers are installed (tests compare both).
_STOCK: dict[str, Any] = {}
#: ctypes of the C callbacks' argument types (the forwarders' targets).
_CTYPES: dict[str, Any] = {
    "uint64": ctypes.c_uint64,
    "float64*": ctypes.POINTER(ctypes.c_double),
    "void*": ctypes.c_void_p,
}


def _extraction_source(
    shared_data: Mapping[str, np.ndarray], shared_keys: Sequence[str], record: Any
) -> tuple[str, dict[str, Any]]:
    """Source of a function ``extract(x, user_data_)`` that calls ``inner(x, *shared
    arrays)``, and the globals it uses besides ``inner``.

    nutpie keeps, in one record ``user_data``, a data pointer and a shape per shared
    variable (``with_data`` rewrites them). nutpie's own extraction reads the record with
    generic, literal-unrolled code whose typing costs about 2 s of every compile, since
    every model's record type is new. This code reads the same words at offsets computed
    here from the record's layout. (It is a function of its own, outside the callback's
    ``try``: numba cannot type a call of more than 30 arguments inside one.)"""
    import numba
    from nutpie.compile_pymc import address_as_void_pointer

    glb: dict[str, Any] = {
        "carray": numba.carray,
        "uint64": np.uint64,
        "as_pointer": address_as_void_pointer,
    }
    lines = ["def extract(x, user_data_):"]
    if not shared_keys:
        return "\n".join([*lines, "    return inner(x)"]), glb
    shared, shared_off = record.fields["shared"][:2]
    data, data_off = shared.fields["data"][:2]
    shape, shape_off = shared.fields["shape"][:2]
    lines.append(f"    words = carray(user_data_, ({record.itemsize // 8},), uint64)")
    names = []
    for i, key in enumerate(shared_keys):
        value = shared_data[key]
        word = (shared_off + data_off + data.fields[key][1]) // 8
        first = (shared_off + shape_off + shape.fields[key][1]) // 8
        glb[f"dtype{i}"] = value.dtype.type
        if value.ndim == 0:
            lines.append(
                f"    a{i} = carray(as_pointer(words[{word}]), (1,), dtype{i}).reshape(())"
            )
        else:
            dims = "".join(f"int(words[{first + d}]), " for d in range(value.ndim))
            lines.append(f"    a{i} = carray(as_pointer(words[{word}]), ({dims}), dtype{i})")
        names.append(f"a{i}")
    lines.append(f"    return inner(x, {', '.join(names)})")
    return "\n".join(lines), glb


def _c_function(
    name: str, lines: list[str], extract: tuple[str, dict[str, Any]], inner: Any, c_sig: Any
) -> tuple[Any, Any]:
    """The generated C callback ``name`` (source ``lines``; it calls ``extract``, which
    calls ``inner``) as nutpie's factories return it: ``(python function, signature)``,
    which nutpie compiles with ``numba.cfunc``.

    Compiling the callback links the whole PyTensor-generated log density into one LLVM
    module and optimises it again (about 5 s each for the survival model), and numba
    keeps none of it. Where PyTensor keeps ``inner`` in its numba cache under a key
    (``<base_compiledir>/numba``), the callback is compiled here, with ``cache=True``,
    into that cache under a key of its own: the sources, the arrays' dtypes, ``inner``'s
    key, the signature and the numba and nutpie versions. Later processes load it from
    there; nutpie gets a one-line callback that calls it through its address (compiled
    in about 0.05 s). The code that runs is the same either way, so are the draws.
    """
    import numba
    import nutpie
    import pytensor
    from pytensor.link.numba.cache import compile_numba_function_src

    linked = isinstance(inner, _LinkedInner)
    extract_source, extract_globals = extract
    namespace: dict[str, Any] = {}
    exec(  # generated code (see _extraction_source)
        compile(extract_source, "<hccmeta.models.mcmc extract>", "exec"),
        {**extract_globals, "inner": inner},
        namespace,
    )
    glb = {
        "__name__": __name__,  # numba's cache rebuilds the function's environment from it
        "carray": numba.carray,
        "np": np,
        "extract": numba.njit(inline="always")(namespace["extract"]),
    }
    source = "\n".join(lines)
    inner_key = inner.cache_key if linked else _numba_key(inner)

    def uncached() -> tuple[Any, Any]:
        if linked:  # no code to compile: the functions must be read back
            raise _NotLinked(name)
        out: dict[str, Any] = {}
        exec(compile(source, f"<hccmeta.models.mcmc {name}>", "exec"), glb, out)
        return out[name], c_sig

    if inner_key is None or not pytensor.config.numba__cache:
        return uncached()
    dtypes = sorted(
        (k, np.dtype(v).str) for k, v in extract_globals.items() if k.startswith("dtype")
    )
    key = hashlib.sha256(
        repr(
            ("hccmeta.models.mcmc C callback 2", source, extract_source, dtypes, inner_key,
             str(c_sig), numba.__version__, nutpie.__version__)
        ).encode()
    ).hexdigest()  # fmt: skip
    func = compile_numba_function_src(source, name, global_env=glb, cache_key=key)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Cannot cache compiled function", category=numba.NumbaWarning
        )
        try:
            real = numba.cfunc(c_sig, cache=True)(func)
        except Exception:  # noqa: BLE001 - an unreadable cache entry: compile as nutpie does
            return uncached()
    arg_types = [_CTYPES[str(t)] for t in c_sig.args]
    address = real.address
    assert address is not None
    target = ctypes.CFUNCTYPE(ctypes.c_int64, *arg_types)(address)
    params = ", ".join(f"p{i}" for i in range(len(arg_types)))
    namespace = {}
    # ``real`` stays referenced from the forwarder's globals: its code must outlive it
    exec(
        compile(f"def forward({params}):\n    return target({params})", "<forward>", "exec"),
        {"target": target, "real": real},
        namespace,
    )
    return namespace["forward"], c_sig


def _make_c_logp_func(
    n_dim: int, logp_fn: Any, user_data: Any, shared_keys: Any, shared_data: Any
) -> tuple[Any, Any]:
    import numba

    c_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )
    lines = [
        "def logp_numba(dim, x_, out_, logp_, user_data_):",
        f"    if dim != {n_dim}:",
        "        return -1",
        "    try:",
        f"        x = carray(x_, ({n_dim},))",
        f"        out = carray(out_, ({n_dim},))",
        "        logp = carray(logp_, (1,))",
        "        logp_val, grad = extract(x, user_data_)",
        "        logp[0] = logp_val",
        "        finite = True",
        f"        for i in range({n_dim}):",
        "            value = grad[i]",
        "            out[i] = value",
        "            if not np.isfinite(value):",
        "                finite = False",
        "        if not finite:",
        "            return 3",
        "        if not np.isfinite(logp_val):",
        "            return 4",
        "    except Exception:",  # numba: any failure is an error code
        "        return 1",
        "    return 0",
    ]
    extract = _extraction_source(shared_data, shared_keys, user_data.dtype)
    return _c_function("logp_numba", lines, extract, logp_fn, c_sig)


def _make_c_expand_func(
    n_dim: int,
    n_expanded: int,
    expand_fn: Any,
    user_data: Any,
    shared_var_keys: Any,
    shared_data: Any,
) -> tuple[Any, Any]:
    import numba

    c_sig = numba.types.int64(
        numba.types.uint64,
        numba.types.uint64,
        numba.types.CPointer(numba.types.double),
        numba.types.CPointer(numba.types.double),
        numba.types.voidptr,
    )
    lines = [
        "def expand_numba(dim, expanded, x_, out_, user_data_):",
        f"    if dim != {n_dim}:",
        "        return -1",
        f"    if expanded != {n_expanded}:",
        "        return -1",
        "    try:",
        f"        x = carray(x_, ({n_dim},))",
        f"        out = carray(out_, ({n_expanded},))",
        "        (values,) = extract(x, user_data_)",
        f"        for i in range({n_expanded}):",
        "            out[i] = values[i]",
        "    except Exception:",  # numba: any failure is an error code
        "        return -2",
        "    return 0",
    ]
    extract = _extraction_source(shared_data, shared_var_keys, user_data.dtype)
    return _c_function("expand_numba", lines, extract, expand_fn, c_sig)


# --------------------------------------------------------------------------------------
# PyTensor functions kept on disk
#
# Before the C callbacks, nutpie builds two PyTensor functions of the model (the log
# density with its gradient, and the "expand" function of the stored variables) and
# rewrites their graphs; for the survival model that takes about 12 s per structure, and
# every new process paid it again. PyTensor functions pickle with their rewritten graphs
# and are linked again (from PyTensor's numba cache) when unpickled, without rewriting.
# :func:`_make_functions` keeps them in ``<base_compiledir>/hccmeta-functions``, under
# :func:`_graph_key`: a hash of the model's log density and stored variables as
# PyTensor prints them (every op, type and name), the bytes of every constant, the names,
# types and shapes of the shared variables (``pm.Data``), the shapes of every variable
# nutpie stores (a dimension's length need not appear in the graph), the options and
# the versions of the libraries involved. A function read back gets the model's current shared
# values (nutpie reads its initial data from them). Same rewritten graph, same numba
# code: the same draws (tests/test_pool_mcmc.py).

#: Functions read from disk (``loaded``; of them ``linked``: see below) and compiled, in
#: this process (tests and benchmarks read it).
FUNCTION_CACHE_STATS = {"loaded": 0, "linked": 0, "compiled": 0}
_FUNCTIONS_FORMAT = 3

# Linking without the PyTensor functions
#
# Reading the two PyTensor functions back still costs about 0.4 s each (PyTensor converts
# every node of the graph to numba source again to find the cached code), and the C
# callbacks do not need them when they themselves are in numba's cache: their cached code
# contains the functions' code, and the functions' cache keys name them. An entry
# therefore also keeps, besides the functions, those keys and what nutpie reads of the
# functions' shared variables (names, shapes, values); a later compile hands nutpie
# stand-ins that carry just that (:class:`_LinkedFunction`), and the callbacks are linked
# from numba's cache. Where a callback is not there (a cleared numba cache),
# :func:`_c_function` raises :class:`_NotLinked` and :func:`compiled` compiles again
# with the functions read back. Same code, same draws (tests/test_pool_mcmc.py).

#: Whether :func:`_make_functions` may hand nutpie stand-ins: only within
#: :func:`compiled`, which compiles again after :class:`_NotLinked` (not in a direct
#: call of nutpie's ``compile_pymc_model``).
_LINKING: Scoped[bool] = Scoped(False)


class _NotLinked(RuntimeError):
    """A C callback of a compile from stand-ins is not in numba's cache."""


class _LinkedInner:
    """Stands for a PyTensor function's numba code (``fn.vm.jit_fn``): its cache key."""

    def __init__(self, cache_key: str) -> None:
        self.cache_key = cache_key


class _LinkedShared:
    """What nutpie reads of a shared variable: name, rank, value."""

    def __init__(self, name: str | None, value: np.ndarray) -> None:
        self.name = name
        self.ndim = value.ndim
        self._value = value

    def get_value(self) -> np.ndarray:
        return self._value


class _LinkedFunction:
    """What nutpie reads of a PyTensor function when its callbacks are linked from
    numba's cache (``vm.jit_fn`` and ``get_shared()``)."""

    def __init__(self, cache_key: str, shared: list[_LinkedShared]) -> None:
        self.vm = types.SimpleNamespace(jit_fn=_LinkedInner(cache_key))
        self._shared = shared

    def get_shared(self) -> list[_LinkedShared]:
        return list(self._shared)


def _numba_key(jit_fn: Any) -> str | None:
    """The key under which PyTensor keeps a function's numba code (``fn.vm.jit_fn``) in
    its numba cache; None if it is not kept there."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    py_func = getattr(jit_fn, "py_func", None)
    return CACHED_SRC_FUNCTIONS.get(py_func) if py_func is not None else None


def _link_entry(logp_fn: Any, expand_fn: Any) -> dict[str, Any] | None:
    """What a later compile needs to link the callbacks without the functions: the
    functions' numba cache keys and their shared variables (each once, in the order
    nutpie meets them); None where a key is unknown."""
    keys = []
    for fn in (logp_fn, expand_fn):
        key = _numba_key(getattr(getattr(fn, "vm", None), "jit_fn", None))
        if key is None:
            return None
        keys.append(key)
    unique: list[Any] = []
    lists: list[list[int]] = []
    for fn in (logp_fn, expand_fn):
        positions = []
        for var in fn.get_shared():
            found = next((i for i, seen in enumerate(unique) if seen is var), None)
            if found is None:
                found = len(unique)
                unique.append(var)
            positions.append(found)
        lists.append(positions)
    shared = [(var.name, np.array(var.get_value(), copy=True)) for var in unique]
    return {"keys": keys, "shared": shared, "lists": lists}


def _linked_functions(entry: dict[str, Any], current: Mapping[str, Any]) -> tuple[Any, Any]:
    """Stand-ins of the logp and expand functions; a shared variable's value is the
    model's own where ``current`` (the model's data containers by name) has it."""
    shared = [
        _LinkedShared(
            name,
            np.asarray(current[name].get_value()) if name in current else np.array(value),
        )
        for name, value in entry["shared"]
    ]
    logp_key, expand_key = entry["keys"]
    logp_list, expand_list = entry["lists"]
    return (
        _LinkedFunction(logp_key, [shared[i] for i in logp_list]),
        _LinkedFunction(expand_key, [shared[i] for i in expand_list]),
    )


def _function_dir() -> Path:
    import pytensor

    return Path(pytensor.config.base_compiledir) / "hccmeta-functions"


def _graph_key(model: Any, options: Mapping[str, Any]) -> str | None:
    """The key of a model's PyTensor functions (see above); None when it cannot be
    computed."""
    import io

    import nutpie
    import pymc
    import pytensor
    from nutpie.compile_pymc import _compute_shapes
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    try:
        outputs = [model.logp(), *model.unobserved_value_vars]
        # the shapes nutpie fixes (dims such as ``arm`` need not show in the graph)
        shapes = sorted((name, tuple(map(int, shape))) for name, shape in
                        _compute_shapes(model).items())  # fmt: skip
        text = io.StringIO()
        pytensor.printing.debugprint(outputs, file=text, print_type=True, id_type="CHAR")
        h = hashlib.sha256()
        for part in (
            f"hccmeta functions {_FUNCTIONS_FORMAT}",
            repr(sorted(options.items())),
            repr([v.name for v in model.free_RVs]),
            repr(bool(model.check_bounds)),
            repr(shapes),
            pytensor.__version__, pymc.__version__, nutpie.__version__,
            str(pytensor.config.floatX), str(pytensor.config.numba__fastmath),
            str(pytensor.config.optimizer_including), str(pytensor.config.optimizer_excluding),
            text.getvalue(),
        ):  # fmt: skip
            h.update(part.encode() + b"\x1f")
        for var in ancestors(outputs):
            if isinstance(var, Constant):
                data = np.asarray(var.data)
                h.update(f"{data.dtype.str}{data.shape}".encode() + data.tobytes())
            elif isinstance(var, SharedVariable):
                value = np.asarray(var.get_value())
                h.update(f"{var.name}|{var.type}|{value.dtype.str}{value.shape}".encode())
        return h.hexdigest()
    except Exception:  # noqa: BLE001 - no key: the functions are compiled as nutpie does
        return None


def _make_functions(model: Any, *, mode: str, **options: Any) -> tuple[Any, ...]:
    """nutpie's ``_make_functions``, with its PyTensor functions kept on disk (see above)."""
    import pickle

    from nutpie import compile_pymc

    stock = _STOCK["_make_functions"]
    point_fn = options.pop("pymc_initial_point_fn")
    key = _graph_key(model, {"mode": mode, **options}) if mode == "NUMBA" else None
    path = _function_dir() / f"{key}.pkl" if key is not None else None
    if path is not None and path.exists():
        try:
            with path.open("rb") as fh:
                entry = pickle.load(fh)
            n_dim, n_expanded, shape_info, names = entry["model"]
            current = {v.name: v for v in getattr(model, "data_vars", ())}
            if entry["link"] is not None and _LINKING.get():
                logp_fn, expand_fn = _linked_functions(entry["link"], current)
                FUNCTION_CACHE_STATS["linked"] += 1
            else:
                logp_fn, expand_fn = pickle.loads(entry["functions"])
                for fn in (logp_fn, expand_fn):
                    for var in fn.get_shared():
                        if var.name in current:
                            var.set_value(current[var.name].get_value())
        except Exception:  # noqa: BLE001 - unreadable: compiled again and rewritten
            pass
        else:
            k = len(model.free_RVs)
            point = compile_pymc._rv_dict_to_flat_array_wrapper(
                point_fn, names=shape_info[0][:k], shapes=shape_info[2][:k]
            )
            FUNCTION_CACHE_STATS["loaded"] += 1
            return n_dim, n_expanded, logp_fn, expand_fn, point, shape_info, names
    out = stock(model, mode=mode, pymc_initial_point_fn=point_fn, **options)
    FUNCTION_CACHE_STATS["compiled"] += 1
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            blob = pickle.dumps(
                {
                    "model": (out[0], out[1], out[5], out[6]),
                    "functions": pickle.dumps((out[2], out[3])),
                    "link": _link_entry(out[2], out[3]),
                }
            )
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(blob)
            os.replace(tmp, path)
        except Exception:  # noqa: BLE001 - not kept: the next process compiles again
            pass
    return out


def _arrow_to_arviz(draw_batches: Any, stat_batches: Any, **kwargs: Any) -> Any:
    """nutpie's conversion of a finished run, through
    :func:`hccmeta.models.arrow_trace.arrow_to_datatree` where it applies."""
    from hccmeta.models.arrow_trace import arrow_to_datatree

    tree = arrow_to_datatree(draw_batches, stat_batches, **kwargs)
    if tree is None:
        return _STOCK["_arrow_to_arviz"](draw_batches, stat_batches, **kwargs)
    return tree


def _use_fast_wrappers() -> bool:
    """Install the wrappers above into nutpie (once); False if nutpie is not 0.16.x, its
    factories changed signature, or HCCMETA_STOCK_NUTPIE=1."""
    global _PATCHED
    if _PATCHED:
        return True
    if os.environ.get("HCCMETA_STOCK_NUTPIE") == "1":
        return False
    import inspect

    import nutpie
    from nutpie import compile_pymc

    expected = {
        "_make_c_logp_func": ["n_dim", "logp_fn", "user_data", "shared_keys", "shared_data"],
        "_make_c_expand_func": [
            "n_dim",
            "n_expanded",
            "expand_fn",
            "user_data",
            "shared_var_keys",
            "shared_data",
        ],
    }
    if not nutpie.__version__.startswith("0.16."):
        return False
    for name, params in expected.items():
        func = getattr(compile_pymc, name, None)
        if func is None or list(inspect.signature(func).parameters) != params:
            return False
    # the record layout the generated extraction reads: shared -> data, size, shape
    make_user_data = getattr(compile_pymc, "make_user_data", None)
    if make_user_data is None or not hasattr(compile_pymc, "address_as_void_pointer"):
        return False

    class _Var:
        ndim = 1

    record = make_user_data({_Var(): "k"}, {"k": np.zeros(2)}).dtype
    if record.names != ("shared",) or record["shared"].names != ("data", "size", "shape"):
        return False
    _STOCK["_make_c_logp_func"] = compile_pymc._make_c_logp_func
    _STOCK["_make_c_expand_func"] = compile_pymc._make_c_expand_func
    compile_pymc._make_c_logp_func = _make_c_logp_func
    compile_pymc._make_c_expand_func = _make_c_expand_func
    if list(inspect.signature(compile_pymc._make_functions).parameters) == [
        "model", "mode", "compute_grad", "join_expanded", "pymc_initial_point_fn", "var_names"
    ]:  # fmt: skip
        _STOCK["_make_functions"] = compile_pymc._make_functions
        compile_pymc._make_functions = _make_functions
    sample_module = sys.modules.get("nutpie.sample")
    if sample_module is not None and hasattr(sample_module, "_arrow_to_arviz"):
        _STOCK["_arrow_to_arviz"] = getattr(sample_module, "_arrow_to_arviz")  # noqa: B009
        setattr(sample_module, "_arrow_to_arviz", _arrow_to_arviz)  # noqa: B010
    _PATCHED = True
    return True


# --------------------------------------------------------------------------------------
# the compile cache

_CACHE: dict[Hashable, Any] = {}
_LOCK = threading.RLock()
_COMPILE_COUNT = 0

# Reproducible draws
#
# PyTensor's numba backend compiles with LLVM fast-math flags by default (reassoc,
# contract, arcp, afn, nsz) and caches the compiled functions on disk, in
# ``<base_compiledir>/numba`` (``~/.pytensor/numba``; not under ``compiledir``). The
# first compile on a machine builds the whole log density from LLVM IR in one module;
# later compiles link the cached functions as object code. Fast-math lets LLVM
# reassociate and contract floating-point operations differently in the two cases, so
# the log density and its gradient differ in the last bits, and NUTS trajectories turn
# that into Monte Carlo-level differences: a fresh clone's `make report` gave other
# numbers than a second run on the same machine (issue 13, item 8). Measured on
# `hccmeta run prognostic_factors --json` (seed 20261122): cold cache vs warm cache
# differ (pooled log HR of Child-Pugh B vs A, median 0.4746 vs 0.4798); warm vs warm
# are byte-identical; with numba__fastmath=False cold and warm are byte-identical.
# So models are compiled with IEEE arithmetic (the cache keys carry the flag, so the
# cache still serves later compiles); the cost is a slightly slower log density.


class _DeferredModule(types.ModuleType):
    """A module whose import is deferred until one of its attributes is read: then the
    real module is imported (replacing this one in ``sys.modules``) and its attributes
    are copied here, so that a reference taken before sees them too."""

    def __getattr__(self, name: str) -> Any:
        import importlib

        if name.startswith("__") and name.endswith("__"):
            # what tools probe every module for (inspect.getmodule reads __file__ of
            # each): not a use
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, name)


def _defer_arviz() -> None:
    """Let nutpie's ``import arviz`` defer importing ArviZ until it is used.

    nutpie imports the ``arviz`` meta-package, which imports arviz-plots and with it
    matplotlib's pyplot: 0.8-0.9 s of nutpie's 2.9 s import here, in every process that
    samples. nutpie reads it only in its own conversion of the draws, which
    :mod:`hccmeta.models.arrow_trace` replaces (and which, where it still runs, imports
    ArviZ then). Done only while nothing has imported ArviZ, and only together with the
    nutpie wrappers (not with ``HCCMETA_STOCK_NUTPIE=1``)."""
    import importlib.util

    if "arviz" in sys.modules or os.environ.get("HCCMETA_STOCK_NUTPIE") == "1":
        return
    spec = importlib.util.find_spec("arviz")
    if spec is None:
        return
    module = _DeferredModule("arviz")
    # what the import system reads without importing (a submodule import needs the
    # package's path)
    module.__spec__ = spec
    module.__file__ = spec.origin
    if spec.submodule_search_locations is not None:
        module.__path__ = list(spec.submodule_search_locations)
    sys.modules["arviz"] = module


def compiled(key: Hashable, build: Callable[[], pm.Model]) -> nutpie.CompiledModel:
    """Compile once per process per key (a model structure); later calls return the
    cached model.

    Parameters
    ----------
    key : hashable
        Identifies the model structure: everything that changes the compiled graph
        (model, prior families, number of studies and covariates, ...), but not the
        values held in ``pm.Data`` containers.
    build : callable
        Builds the PyMC model; called only when ``key`` is not cached.

    Returns
    -------
    nutpie.CompiledModel
        The compiled model (numba backend).
    """
    global _COMPILE_COUNT
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        _defer_arviz()
        import nutpie
        import pytensor

        _use_fast_wrappers()
        model = build()
        # IEEE arithmetic, not fastmath: see "Reproducible draws" above.
        with pytensor.config.change_flags(numba__fastmath=False):
            try:
                with _LINKING.using(True):
                    result = nutpie.compile_pymc_model(model, backend="numba")
            except _NotLinked:  # a callback not in numba's cache: read the functions back
                FUNCTION_CACHE_STATS["linked"] -= 1  # (the read counts once, unlinked)
                FUNCTION_CACHE_STATS["loaded"] -= 1
                result = nutpie.compile_pymc_model(build(), backend="numba")
        _CACHE[key] = result
        _COMPILE_COUNT += 1
        return result


def compile_count() -> int:
    """Number of models compiled in this process (the sensitivity benchmark reports it)."""
    return _COMPILE_COUNT


def clear_cache() -> None:
    """Forget every compiled model (tests; frees memory)."""
    with _LOCK:
        _CACHE.clear()


def _shape_key(data: Mapping[str, DataValue]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple(sorted((name, np.shape(value)) for name, value in data.items()))


# --------------------------------------------------------------------------------------
# diagnostics


def diagnose(
    trace: xr.DataTree,
    settings: SamplerSettings,
    *,
    var_names: Sequence[str] | None = None,
    retries: int = 0,
) -> Diagnostics:
    """Check R-hat, bulk and tail ESS (as arviz-stats computes them:
    :mod:`hccmeta.models.convergence`) and divergences of a trace.

    Variables that are constant across all draws (e.g. a parameter fixed by the data)
    have undefined R-hat and ESS and are skipped.
    """
    from hccmeta.models.convergence import rank_diagnostics

    post = trace["posterior"].to_dataset()
    names = list(var_names) if var_names is not None else list(post.data_vars)
    columns = []
    for name in names:
        values = np.asarray(post[name].transpose("chain", "draw", ...).values, dtype=float)
        flat = values.reshape(values.shape[0], values.shape[1], -1)
        varying = np.ptp(flat.reshape(-1, flat.shape[2]), axis=0) > 0
        if varying.any():
            columns.append(flat[:, :, varying])
    if columns:
        # rank-normalised split R-hat, bulk ESS, and tail ESS at the 5% and 95% quantiles
        # (Vehtari et al. 2021)
        rhat, bulk, tail = rank_diagnostics(np.concatenate(columns, axis=2), (0.05, 0.95))
        max_rhat = _finite_reduce(rhat, np.max)
        min_bulk = _finite_reduce(bulk, np.min)
        min_tail = _finite_reduce(tail, np.min)
    else:
        max_rhat, min_bulk, min_tail = 1.0, math.inf, math.inf
    stats = trace["sample_stats"].to_dataset() if "sample_stats" in trace.children else None
    n_div = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    n_depth = (
        int(stats["maxdepth_reached"].sum())
        if stats is not None and "maxdepth_reached" in stats
        else 0
    )
    messages: list[str] = []
    if not max_rhat <= settings.rhat_max:  # NaN fails too
        messages.append(f"max R-hat {max_rhat:.4f} > {settings.rhat_max}")
    if not min_bulk >= settings.ess_min:
        messages.append(f"min bulk ESS {min_bulk:.0f} < {settings.ess_min:.0f}")
    if not min_tail >= settings.ess_min:
        messages.append(f"min tail ESS {min_tail:.0f} < {settings.ess_min:.0f}")
    if n_div > settings.max_divergences:
        messages.append(f"{n_div} divergent transitions (target_accept={settings.target_accept})")
    return Diagnostics(
        max_rhat=float(max_rhat),
        min_ess_bulk=float(min_bulk),
        min_ess_tail=float(min_tail),
        n_divergent=n_div,
        ok=not messages,
        messages=tuple(messages),
        retries=retries,
        n_max_treedepth=n_depth,
        settings=settings,
    )


def _finite_reduce(values: Any, fn: Callable[..., Any]) -> float:
    """``fn`` over the values; NaN if any value is NaN (a failed diagnostic)."""
    flat = np.asarray(values, dtype=float).ravel()
    if flat.size == 0 or np.isnan(flat).any():
        return math.nan
    return float(fn(flat))


# --------------------------------------------------------------------------------------
# fits stored across processes


class FitStore(Protocol):
    """Where :func:`sample` reads and writes whole fits (see "Fits stored across
    processes" above); a store must never raise: a failure to read is a miss."""

    def get_fit(self, key: str) -> tuple[xr.DataTree, Diagnostics] | None:
        """The fit stored under ``key``, or None."""

    def put_fit(self, key: str, fit: tuple[xr.DataTree, Diagnostics]) -> None:
        """Store ``fit`` under ``key``."""


_STORE: Scoped[FitStore | None] = Scoped(None)


def fit_store(store: FitStore | None) -> AbstractContextManager[None]:
    """Within the block, :func:`sample` in this process reuses and stores fits through
    ``store`` (None: no store)."""
    return _STORE.using(store)


def current_fit_store() -> FitStore | None:
    """The store :func:`sample` uses now (None outside :func:`fit_store`)."""
    return _STORE.get()


def _digest_values(h: Any, label: str, values: Mapping[str, DataValue] | None) -> None:
    h.update(f"{label}:{0 if values is None else len(values)}\0".encode())
    for name in sorted(values or {}):
        arr = np.ascontiguousarray(np.asarray(values[name]))  # type: ignore[index]
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}\0".encode())
        h.update(arr.tobytes())


def fit_key(
    key: Hashable,
    data: Mapping[str, DataValue],
    *,
    seed: int,
    settings: SamplerSettings,
    var_names: Sequence[str] | None = None,
    coords: Mapping[str, Sequence[Any]] | None = None,
    init: Mapping[str, DataValue] | None = None,
) -> str | None:
    """SHA-256 of everything a :func:`sample` call's result depends on besides the code:
    the structure key, the shapes, dtypes and bytes of the data, the settings, seed,
    checked variables, coordinates and start. None when the key's text is not a
    faithful description (an object printed with its address): such a fit is not
    stored."""
    text = repr((key, _shape_key(data), settings, int(seed), var_names, coords))
    if " at 0x" in text:
        return None
    h = hashlib.sha256(text.encode())
    _digest_values(h, "data", data)
    _digest_values(h, "init", init)
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# sampling


def _run(model: nutpie.CompiledModel, settings: SamplerSettings, seed: int) -> xr.DataTree:
    import nutpie

    cores = settings.cores
    if cores is None:
        cores = max(1, min(settings.chains, os.cpu_count() or 1))
    trace: xr.DataTree = nutpie.sample(
        model,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        cores=cores,
        seed=seed,
        target_accept=settings.target_accept,
        maxdepth=settings.max_treedepth,
        adaptation=settings.adaptation,
        save_warmup=False,
        progress_bar=False,
    )
    return trace


def _attempt_seed(seed: int, attempt: int) -> int:
    """Seed of retry ``attempt`` (0 = the first run): deterministic, distinct."""
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1, dtype=np.uint32)[0])


def sample(
    key: Hashable,
    build: Callable[[], pm.Model],
    data: Mapping[str, DataValue],
    *,
    seed: int,
    settings: SamplerSettings | None = None,
    var_names: Sequence[str] | None = None,
    coords: Mapping[str, Sequence[Any]] | None = None,
    init: Mapping[str, DataValue] | None = None,
) -> tuple[xr.DataTree, Diagnostics]:
    """Set data/hyperparameters (``with_data``), sample with nutpie, check diagnostics,
    retry (:meth:`SamplerSettings.retry`), return the DataTree and Diagnostics
    (``ok=False`` if it still fails).

    Parameters
    ----------
    key : hashable
        The model structure (see :func:`compiled`); the shapes of ``data`` are added
        to it, since nutpie cannot change the number of parameters of a compiled model.
    build : callable
        Builds the PyMC model for data of these shapes (called on a cache miss only).
    data : mapping
        Values of the model's ``pm.Data`` containers, by name (data and prior
        hyperparameters).
    seed : int
        Seed of the first attempt; retries derive their seeds from it, so the same seed
        gives the same numbers.
    settings : SamplerSettings, optional
        Sampler settings and diagnostic thresholds (defaults: 4 chains x 1000 draws).
    var_names : sequence of str, optional
        Variables whose R-hat and ESS are checked; default all posterior variables.
    coords : mapping, optional
        Coordinate values to put on the posterior's dimensions (e.g. study labels),
        replacing those the model was compiled with.
    init : mapping, optional
        Starting values of free variables, by the name nutpie samples them under (the
        transformed name, e.g. ``tau_log__``, for a constrained one), replacing the
        model's own ``initval`` for this fit only: a start informed by the data, where
        the compiled default (the prior's centre) can lie far from them. Every chain
        starts there; names the model does not have are ignored.

    Returns
    -------
    (xarray.DataTree, Diagnostics)
        The trace of the last attempt (groups ``posterior`` and ``sample_stats``) and
        its diagnostics. Inside :func:`fit_store`, the fit stored under the same inputs
        (:func:`fit_key`) if there is one: nothing is compiled or sampled.

    Raises
    ------
    SamplingError
        If nutpie cannot sample at all in any attempt.
    """
    settings = settings if settings is not None else SamplerSettings()
    store = _STORE.get()
    stored_as = None
    if store is not None:
        stored_as = fit_key(
            key, data, seed=seed, settings=settings, var_names=var_names, coords=coords, init=init
        )
    if store is None or stored_as is None:
        return _sample(key, build, data, seed, settings, var_names, coords, init)
    hit = store.get_fit(stored_as)
    if hit is not None:
        return hit
    fit = _sample(key, build, data, seed, settings, var_names, coords, init)
    store.put_fit(stored_as, fit)
    return fit


def _sample(
    key: Hashable,
    build: Callable[[], pm.Model],
    data: Mapping[str, DataValue],
    seed: int,
    settings: SamplerSettings,
    var_names: Sequence[str] | None,
    coords: Mapping[str, Sequence[Any]] | None,
    init: Mapping[str, DataValue] | None,
) -> tuple[xr.DataTree, Diagnostics]:
    full_key = (key, _shape_key(data))
    model = compiled(full_key, build)
    if data:
        model = model.with_data(**{name: np.asarray(value) for name, value in data.items()})
    if init:
        model = _start_at(model, init)

    current = settings
    last_error: Exception | None = None
    trace: xr.DataTree | None = None
    diagnostics: Diagnostics | None = None
    for attempt in range(settings.max_retries + 1):
        try:
            trace = _run(model, current, _attempt_seed(seed, attempt))
        except RuntimeError as exc:  # nutpie: no valid initial point, logp failure
            last_error = exc
            trace = None
            current = current.retry(None)
            continue
        diagnostics = diagnose(trace, current, var_names=var_names, retries=attempt)
        if diagnostics.ok or attempt == settings.max_retries:
            break
        current = current.retry(diagnostics)
    if trace is None or diagnostics is None:
        raise SamplingError(
            f"nutpie could not sample the model {key!r} in {settings.max_retries + 1} "
            f"attempts: {str(last_error).splitlines()[0] if last_error else 'unknown error'}"
        ) from last_error
    if not diagnostics.ok and diagnostics.retries:
        diagnostics = dataclasses.replace(
            diagnostics,
            messages=(
                *diagnostics.messages,
                f"still failing after {diagnostics.retries} retries with longer runs or "
                "safer settings",
            ),
        )
    if coords:
        trace = _relabel(trace, coords)
    return trace, diagnostics


def _start_at(model: nutpie.CompiledModel, init: Mapping[str, DataValue]) -> Any:
    """``model`` with its initial point replaced where ``init`` names a variable."""
    names, slices, shapes = model.shape_info
    where = {
        name: (slc, shape)
        for name, slc, shape in zip(names, slices, shapes, strict=True)
        if name in init
    }
    if not where:
        return model
    default = model.initial_point_func

    def initial_point(seed: Any) -> np.ndarray:
        point = np.array(default(seed), dtype=float, copy=True)
        for name, (slc, shape) in where.items():
            point[slc] = np.broadcast_to(np.asarray(init[name], dtype=float), shape).ravel()
        return point

    return dataclasses.replace(model, initial_point_func=initial_point)


def _relabel(trace: xr.DataTree, coords: Mapping[str, Sequence[Any]]) -> xr.DataTree:
    groups: dict[str, xr.Dataset] = {}
    for name, node in trace.children.items():
        ds = node.to_dataset()
        present = {dim: list(vals) for dim, vals in coords.items() if dim in ds.dims}
        groups[name] = ds.assign_coords(present) if present else ds
    out = xr.DataTree.from_dict(groups)
    out.attrs = dict(trace.attrs)
    return out
