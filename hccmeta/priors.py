"""Prior distributions for the pooling models: frozen, printable objects.

Each prior serves both engines of :func:`hccmeta.pool`:

- the exact engine uses :meth:`Prior.logpdf`, :meth:`Prior.cdf`, :meth:`Prior.ppf` and
  :meth:`Prior.rvs` (scipy);
- the MCMC engine calls :meth:`Prior.to_pymc`, which creates one ``pm.Data`` container
  per hyperparameter (named ``<name>_<parameter>``, e.g. ``tau_scale``) and the PyMC
  random variable. The compiled graph depends only on the *family* (:attr:`Prior.family`),
  so a sensitivity grid over scales refits the same compiled model with new values
  (:meth:`Prior.data`).

Defaults for log hazard ratios and log odds ratios (SPEC section 4): ``mu ~ Normal(0, 1)``
(95% of HRs in 0.14-7.1) and ``tau ~ HalfNormal(0.5)`` (Friede et al. 2017; Röver et al.
2021). Named alternatives: :data:`PRESETS`, :func:`get`. Command-line strings such as
``halfnormal:0.5``: :func:`parse`. Bias distributions for non-randomised or flawed
evidence from a risk-of-bias judgement: :func:`bias_prior` (defaults
:data:`BIAS_DEFAULTS`, alternatives :data:`BIAS_VARIANTS`), and the priors of the
combined model's mean and SD of bias, :data:`DEFAULT_BIAS_MEAN`, :data:`DEFAULT_BIAS_SD`.

Examples
--------
>>> from hccmeta import priors
>>> priors.HalfNormal(0.5)
HalfNormal(scale=0.5)
>>> priors.parse("invgamma:2.42:0.30")
InverseGamma(alpha=2.42, beta=0.3)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hccmeta.errors import InputError
from hccmeta.numeric import MAX_MAGNITUDE, MIN_SCALE, NumberError, parse_number

if TYPE_CHECKING:  # pragma: no cover
    from scipy.stats._distn_infrastructure import rv_continuous_frozen

__all__ = [
    "BIAS_DEFAULTS",
    "BIAS_VARIANTS",
    "DEFAULT_BIAS_MEAN",
    "DEFAULT_BIAS_SD",
    "DEFAULT_MU",
    "DEFAULT_TAU",
    "PRESETS",
    "BiasDefault",
    "HalfCauchy",
    "HalfNormal",
    "HalfStudentT",
    "InverseGamma",
    "LogNormal",
    "Normal",
    "Prior",
    "Uniform",
    "bartos2023_log_hr",
    "bias_prior",
    "check_mu_prior",
    "check_tau_prior",
    "get",
    "parse",
    "turner2015_all_cause_mortality",
]

FloatArray = NDArray[np.float64]

#: Tail probability beyond each end of the central interval checked by the range rule.
_RANGE_TAIL = 5e-4
#: Normal quantiles of the range check (stdlib: the check needs no scipy).
_Z_RANGE = NormalDist().inv_cdf(1.0 - _RANGE_TAIL)
_Z_HALF_RANGE = NormalDist().inv_cdf(1.0 - _RANGE_TAIL / 2.0)


#: (family, hyperparameters) of the priors whose range check passed.
_RANGE_CHECKED: set[tuple[type, tuple[float, ...]]] = set()


@dataclass(frozen=True, repr=False)
class Prior:
    """Base class of the priors; subclasses declare their hyperparameters as fields.

    Hyperparameters are checked when a prior is made (the numeric-input policy of
    :mod:`hccmeta.numeric`): finite, at most 1e12 in absolute value, scale-type
    parameters (sd, scale, sigma, shape) at least 1e-12; and the prior's central 99.9%
    interval must lie within +-1e12. Priors outside these bounds (``halfnormal:1e-300``,
    ``halfnormal:1e300``, ``uniform:0:1e308``, ``normal:1e308:1e308``,
    ``normal:0:1e-300``, ``invgamma:0.001:0.001``) make the posterior numerically
    degenerate and raise :class:`~hccmeta.errors.InputError` naming the prior.

    Attributes
    ----------
    family : str
        Name of the family (the class name); the structure key of the MCMC engine.
    lower, upper : float
        Bounds of the support.
    """

    family: ClassVar[str] = "Prior"
    #: hyperparameters that must be > 0
    _positive: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            try:
                number = parse_number(value) if isinstance(value, str) else float(value)
            except (TypeError, ValueError):
                raise InputError(
                    f"{self.family}: {f.name} must be a number, got {value!r}"
                ) from None
            if isinstance(value, bool) or not math.isfinite(number):
                raise InputError(f"{self.family}: {f.name} must be a finite number, got {value!r}")
            if f.name in self._positive and number <= 0:
                raise InputError(f"{self.family}: {f.name} must be > 0, got {value!r}")
            if abs(number) > MAX_MAGNITUDE:
                raise InputError(
                    f"{self.family}: {f.name} = {number:g} is outside the accepted range (at "
                    f"most {MAX_MAGNITUDE:g} in absolute value)"
                )
            if f.name in self._positive and number < MIN_SCALE:
                raise InputError(
                    f"{self.family}: {f.name} = {number:g} is below the smallest accepted "
                    f"value {MIN_SCALE:g} (the posterior would be numerically degenerate)"
                )
            object.__setattr__(self, f.name, number)
        self._validate()
        self._check_range()

    def _validate(self) -> None:
        """Checks across hyperparameters (subclasses)."""

    def _range_bounds(self) -> tuple[float, float] | None:
        """The central 99.9% interval in closed form, where the family has one (None:
        :meth:`_check_range` asks scipy)."""
        return None

    def _check_range(self) -> None:
        """Refuse a prior whose central 99.9% interval is not finite or reaches beyond
        ``MAX_MAGNITUDE`` (1e12): neither engine can represent the posterior it gives.
        A family and hyperparameters that passed once are not checked again (the check
        costs a scipy distribution; a report builds the same few priors hundreds of
        times)."""
        key = (type(self), tuple(self.params().values()))
        if key in _RANGE_CHECKED:
            return
        bounds = self._range_bounds()
        if bounds is not None and all(
            math.isfinite(b) and abs(b) <= MAX_MAGNITUDE * (1.0 - 1e-9) for b in bounds
        ):
            _RANGE_CHECKED.add(key)  # clearly inside: no scipy needed (it is slow to import)
            return
        with np.errstate(all="ignore"):
            q = self.ppf(np.array([_RANGE_TAIL, 1.0 - _RANGE_TAIL]))
        if not (np.all(np.isfinite(q)) and np.all(np.abs(q) <= MAX_MAGNITUDE)):
            shown = ", ".join(f"{v:g}" for v in q)
            raise InputError(
                f"{self!r} puts more than {2 * _RANGE_TAIL:.1%} of its mass beyond "
                f"{MAX_MAGNITUDE:g} in absolute value (central 99.9% interval: {shown}): "
                "the posterior would be numerically degenerate; choose a prior on the "
                "scale of the data"
            )
        _RANGE_CHECKED.add(key)

    # -- presentation ------------------------------------------------------------------

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{self.family}({args})"

    __str__ = __repr__

    def params(self) -> dict[str, float]:
        """The hyperparameters, by name."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    # -- the exact engine (scipy) --------------------------------------------------------

    @property
    def lower(self) -> float:
        """Lower bound of the support."""
        return -math.inf

    @property
    def upper(self) -> float:
        """Upper bound of the support."""
        return math.inf

    def _scipy(self) -> rv_continuous_frozen:
        """The scipy distribution, frozen once per prior (creating one costs ~0.5 ms)."""
        dist = self.__dict__.get("_frozen")
        if dist is None:
            dist = self._make_scipy()
            object.__setattr__(self, "_frozen", dist)
        return dist

    def _make_scipy(self) -> rv_continuous_frozen:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the frozen scipy distribution (rebuilt on demand): loading a
        stored result then does not import scipy.stats."""
        return {k: v for k, v in self.__dict__.items() if k != "_frozen"}

    def logpdf(self, x: ArrayLike) -> FloatArray:
        """Log density at ``x`` (``-inf`` outside the support)."""
        return np.asarray(self._scipy().logpdf(x), dtype=float)

    def cdf(self, x: ArrayLike) -> FloatArray:
        """Cumulative distribution function at ``x``."""
        return np.asarray(self._scipy().cdf(x), dtype=float)

    def ppf(self, q: ArrayLike) -> FloatArray:
        """Quantile function (inverse of :meth:`cdf`)."""
        return np.asarray(self._scipy().ppf(q), dtype=float)

    def rvs(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> FloatArray:
        """Random draws (inverse-CDF sampling, so a seed gives the same draws in every
        family)."""
        return self.ppf(rng.uniform(size=size))

    # -- the MCMC engine (PyMC) ----------------------------------------------------------

    def data(self, name: str) -> dict[str, float]:
        """Values of the ``pm.Data`` hyperparameter containers :meth:`to_pymc` creates
        for a variable ``name`` (pass them to :func:`hccmeta.models.mcmc.sample`)."""
        return {f"{name}_{key}": value for key, value in self.params().items()}

    def to_pymc(self, name: str, **kwargs: Any) -> Any:
        """Create, inside a PyMC model context, the random variable ``name`` with its
        hyperparameters as ``pm.Data`` containers ``<name>_<parameter>``.

        The compiled graph depends only on :attr:`family`; refit with new hyperparameter
        values via :meth:`data`.
        """
        import pymc as pm

        tensors = {key: pm.Data(f"{name}_{key}", value) for key, value in self.params().items()}
        return self._pymc(name, tensors, **kwargs)

    def _pymc(self, name: str, p: Mapping[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, repr=False)
class Normal(Prior):
    """Normal(mean, sd) -- the prior for mu."""

    mean: float = 0.0
    sd: float = 1.0
    family: ClassVar[str] = "Normal"
    _positive: ClassVar[tuple[str, ...]] = ("sd",)

    def _range_bounds(self) -> tuple[float, float] | None:
        z = _Z_RANGE
        return (self.mean - z * self.sd, self.mean + z * self.sd)

    def _make_scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.norm(self.mean, self.sd)

    def _pymc(self, name: str, p: Mapping[str, Any], **kwargs: Any) -> Any:
        import pymc as pm

        return pm.Normal(name, mu=p["mean"], sigma=p["sd"], **kwargs)


@dataclass(frozen=True, repr=False)
class Uniform(Prior):
    """Uniform(low, high) -- for mu, or for tau with ``low >= 0``."""

    low: float = 0.0
    high: float = 1.0
    family: ClassVar[str] = "Uniform"

    def _validate(self) -> None:
        if not self.low < self.high:
            raise InputError(
                f"Uniform: low must be < high, got low={self.low!r}, high={self.high!r}"
            )

    @property
    def lower(self) -> float:
        return self.low

    @property
    def upper(self) -> float:
        return self.high

    def _range_bounds(self) -> tuple[float, float] | None:
        return (self.low, self.high)

    def _make_scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.uniform(self.low, self.high - self.low)

    def _pymc(self, name: str, p: Mapping[str, Any], **kwargs: Any) -> Any:
        import pymc as pm

        return pm.Uniform(name, lower=p["low"], upper=p["high"], **kwargs)


class _PositivePrior(Prior):
    """Priors on (0, inf): tau."""

    @property
    def lower(self) -> float:
        return 0.0


@dataclass(frozen=True, repr=False)
class HalfNormal(_PositivePrior):
    """HalfNormal(scale) on tau (the default: scale 0.5 for log HR and log OR)."""

    scale: float = 0.5
    family: ClassVar[str] = "HalfNormal"
    _positive: ClassVar[tuple[str, ...]] = ("scale",)

    def _range_bounds(self) -> tuple[float, float] | None:
        return (0.0, _Z_HALF_RANGE * self.scale)

    def _make_scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.halfnorm(scale=self.scale)

    def _pymc(self, name: str, p: Mapping[str, Any], **kwargs: Any) -> Any:
        import pymc as pm

        return pm.HalfNormal(name, sigma=p["scale"], **kwargs)


@dataclass(frozen=True, repr=False)
class HalfCauchy(_PositivePrior):
    """HalfCauchy(scale) on tau."""

    scale: float = 0.5
    family: ClassVar[str] = "HalfCauchy"
    _positive: ClassVar[tuple[str, ...]] = ("scale",)

    def _range_bounds(self) -> tuple[float, float] | None:
        return (0.0, self.scale * math.tan(math.pi * (1.0 - _RANGE_TAIL) / 2.0))

    def _make_scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.halfcauchy(scale=self.scale)

    def _pymc(self, name: str, p: Mapping[str, Any], **kwargs: Any) -> Any:
        import pymc as pm

        return pm.HalfCauchy(name, beta=p["scale"], **kwargs)


@dataclass(frozen=True, repr=False)
class HalfStudentT(_PositivePrior):
    """HalfStudentT(nu, scale) on tau: the absolute value of a scaled Student-t."""

    nu: float = 3.0
    scale: float = 0.5
    family: ClassVar[str] = "HalfStudentT"
    _positive: ClassVar[tuple[str, ...]] = ("nu", "scale")

    def _range_bounds(self) -> tuple[float, float] | None:
        from scipy import special  # light, unlike scipy.stats

        return (0.0, self.scale * float(special.stdtrit(self.nu, 1.0 - _RANGE_TAIL / 2.0)))

    def logpdf(self, x: ArrayLike) -> FloatArray:
        from scipy import stats

        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore"):
            out = math.log(2.0) + stats.t.logpdf(x / self.scale, self.nu) - math.log(self.scale)
        return np.where(x >= 0, out, -np.inf)

    def cdf(self, x: ArrayLike) -> FloatArray:
        from scipy import stats

        x = np.asarray(x, dtype=float)
        return np.where(x > 0, 2.0 * stats.t.cdf(x / self.scale, self.nu) - 1.0, 0.0)

    def ppf(self, q: ArrayLike) -> FloatArray:
        from scipy import stats

        q = np.asarray(q, dtype=float)
        return np.asarray(self.scale * stats.t.ppf((1.0 + q) / 2.0, self.nu), dtype=float)

    def _pymc(self, name: str, p: Mapping[str, Any], **kwargs: Any) -> Any:
        import pymc as pm

        return pm.HalfStudentT(name, nu=p["nu"], sigma=p["scale"], **kwargs)


@dataclass(frozen=True, repr=False)
class LogNormal(_PositivePrior):
    """LogNormal(mu, sigma) on tau: log(tau) ~ Normal(mu, sigma).

    A log-normal prior on tau^2, ``log(tau^2) ~ N(m, s^2)`` (Turner et al. 2015), is the
    same distribution as ``log(tau) ~ N(m/2, (s/2)^2)``: use :meth:`from_log_tau2`.
    """

    mu: float = 0.0
    sigma: float = 1.0
    family: ClassVar[str] = "LogNormal"
    _positive: ClassVar[tuple[str, ...]] = ("sigma",)

    @classmethod
    def from_log_tau2(cls, mean: float, sd: float) -> LogNormal:
        """The prior on tau implied by ``log(tau^2) ~ Normal(mean, sd^2)``.

        With ``u = log(tau^2) = 2 log(tau)``, ``p(tau) = N(2 log tau; mean, sd) * 2 / tau``
        (the Jacobian ``|du/dtau| = 2 / tau``), which equals the log-normal density of tau
        with ``mu = mean / 2`` and ``sigma = sd / 2``.
        """
        return cls(mu=float(mean) / 2.0, sigma=float(sd) / 2.0)

    def _range_bounds(self) -> tuple[float, float] | None:
        top = self.mu + _Z_RANGE * self.sigma
        return None if top > 700.0 else (0.0, math.exp(top))

    def _make_scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.lognorm(s=self.sigma, scale=math.exp(self.mu))

    def _pymc(self, name: str, p: Mapping[str, Any], **kwargs: Any) -> Any:
        import pymc as pm

        return pm.LogNormal(name, mu=p["mu"], sigma=p["sigma"], **kwargs)


@dataclass(frozen=True, repr=False)
class InverseGamma(_PositivePrior):
    """InverseGamma(alpha, beta) on tau (shape alpha, scale beta)."""

    alpha: float = 1.0
    beta: float = 1.0
    family: ClassVar[str] = "InverseGamma"
    _positive: ClassVar[tuple[str, ...]] = ("alpha", "beta")

    def _range_bounds(self) -> tuple[float, float] | None:
        from scipy import special  # light, unlike scipy.stats

        # 1 / X ~ Gamma(alpha, rate beta): the upper quantile from the lower one of 1 / X
        low = float(special.gammaincinv(self.alpha, _RANGE_TAIL))
        return None if not low > 0.0 else (0.0, self.beta / low)

    def _make_scipy(self) -> rv_continuous_frozen:
        from scipy import stats

        return stats.invgamma(self.alpha, scale=self.beta)

    def _pymc(self, name: str, p: Mapping[str, Any], **kwargs: Any) -> Any:
        import pymc as pm

        return pm.InverseGamma(name, alpha=p["alpha"], beta=p["beta"], **kwargs)


# --------------------------------------------------------------------------------------
# defaults and named presets

#: Default prior for mu on the log-ratio scale (log HR, log OR, log RR).
DEFAULT_MU = Normal(0.0, 1.0)
#: Default prior for tau on the log-ratio scale.
DEFAULT_TAU = HalfNormal(0.5)

#: Turner et al. (2015, Stat Med 34:984-998), all-cause mortality, pharmacological vs
#: control: ``log(tau^2) ~ N(-3.95, 1.34^2)``, i.e. ``tau ~ LogNormal(-1.975, 0.67)``.
turner2015_all_cause_mortality = LogNormal.from_log_tau2(-3.95, 1.34)
#: Bartoš et al. (2023, Res Synth Methods), empirical prior for tau of log HRs:
#: ``tau ~ InverseGamma(2.42, 0.30)``.
bartos2023_log_hr = InverseGamma(2.42, 0.30)

#: Priors offered by name (``hccmeta.priors.get(name)``, ``--prior-tau NAME``).
PRESETS: dict[str, Prior] = {
    "default_mu": DEFAULT_MU,
    "default_tau": DEFAULT_TAU,
    "halfnormal_0.25": HalfNormal(0.25),
    "halfnormal_0.5": HalfNormal(0.5),
    "halfnormal_1": HalfNormal(1.0),
    "halfcauchy_0.5": HalfCauchy(0.5),
    "turner2015_all_cause_mortality": turner2015_all_cause_mortality,
    "bartos2023_log_hr": bartos2023_log_hr,
}


def get(name: str) -> Prior:
    """The preset prior called ``name``; unknown names are an :class:`InputError`."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(
            f"unknown prior {name!r}; known presets: {', '.join(sorted(PRESETS))}"
        ) from None


# --------------------------------------------------------------------------------------
# the command-line SPEC strings

#: family keyword -> (class, parameter names as the SPEC string orders them)
_SPEC_FAMILIES: dict[str, tuple[type[Prior], tuple[str, ...]]] = {
    "normal": (Normal, ("MEAN", "SD")),
    "halfnormal": (HalfNormal, ("SCALE",)),
    "halfcauchy": (HalfCauchy, ("SCALE",)),
    "halft": (HalfStudentT, ("NU", "SCALE")),
    "lognormal": (LogNormal, ("MU", "SIGMA")),
    "invgamma": (InverseGamma, ("ALPHA", "BETA")),
    "uniform": (Uniform, ("LOW", "HIGH")),
}


def parse(spec: str, *, argument: str = "prior") -> Prior:
    """Parse a prior SPEC string of the command line.

    ``normal:MEAN:SD``, ``halfnormal:SCALE``, ``halfcauchy:SCALE``, ``halft:NU:SCALE``,
    ``lognormal:MU:SIGMA``, ``invgamma:ALPHA:BETA``, ``uniform:LOW:HIGH``, or the name of
    a preset (:data:`PRESETS`).

    Parameters
    ----------
    spec : str
        The string.
    argument : str, keyword-only
        Name of the option or argument, used in error messages (e.g. ``--prior-tau``).

    Raises
    ------
    InputError
        For an empty SPEC, an unknown family, a wrong number of parameters, a parameter
        that is not a number in plain decimal notation (:mod:`hccmeta.numeric`), or an
        invalid or numerically degenerate value (see :class:`Prior`).
    """
    text = spec.strip()
    if text in PRESETS:
        return PRESETS[text]
    if not text:
        forms = ", ".join(":".join([k, *names]) for k, (_, names) in _SPEC_FAMILIES.items())
        raise InputError(f"{argument}: empty prior SPEC; expected one of {forms}, or a preset")
    family, *values = text.split(":")
    key = family.strip().lower()
    if key not in _SPEC_FAMILIES:
        forms = ", ".join(":".join([k, *names]) for k, (_, names) in _SPEC_FAMILIES.items())
        raise InputError(
            f"{argument}: unknown prior family {family!r} in {spec!r}; "
            f"expected one of {forms}, or a preset ({', '.join(sorted(PRESETS))})"
        )
    cls, names = _SPEC_FAMILIES[key]
    form = ":".join([key, *names])
    if len(values) != len(names):
        raise InputError(f"{argument}: {spec!r} has {len(values)} parameter(s); expected {form}")
    numbers = []
    for pname, raw in zip(names, values, strict=True):
        if raw.strip().lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise InputError(f"{argument}: {pname} in {spec!r} must be finite, got {raw!r}")
        try:
            number = parse_number(raw, what=pname)
        except NumberError as exc:
            reason = str(exc)
            if reason.startswith(pname):  # a number out of range
                raise InputError(f"{argument}: {spec!r}: {reason}") from None
            detail = reason.split(" (", 1)[1].rstrip(")") + "; " if " (" in reason else ""
            raise InputError(
                f"{argument}: {pname} in {spec!r} is not a number: {raw!r} ({detail}expected "
                f"{form})"
            ) from None
        numbers.append(number)
    try:
        return cls(*numbers)
    except InputError as exc:
        raise InputError(f"{argument}: {spec!r}: {exc}") from None


# --------------------------------------------------------------------------------------
# which priors fit which parameter (the same rule for both engines)

_MU_FAMILIES = (Normal, Uniform)


def check_mu_prior(prior: object, *, argument: str = "prior_mu") -> Prior:
    """Return ``prior`` if it is a valid prior for mu (Normal or Uniform), else raise
    :class:`InputError` naming ``argument``."""
    if isinstance(prior, str):
        prior = parse(prior, argument=argument)
    if not isinstance(prior, Prior):
        raise InputError(f"{argument} must be a prior object from hccmeta.priors, got {prior!r}")
    if not isinstance(prior, _MU_FAMILIES):
        raise InputError(
            f"{argument}: {prior!r} is not a prior for mu, which takes values on the real "
            "line; use Normal(mean, sd) or Uniform(low, high)"
        )
    return prior


def check_tau_prior(prior: object, *, argument: str = "prior_tau") -> Prior:
    """Return ``prior`` if it is a valid prior for tau (support within [0, inf)), else
    raise :class:`InputError` naming ``argument``."""
    if isinstance(prior, str):
        prior = parse(prior, argument=argument)
    if not isinstance(prior, Prior):
        raise InputError(f"{argument} must be a prior object from hccmeta.priors, got {prior!r}")
    if prior.lower < 0:
        hint = " (use HalfNormal)" if isinstance(prior, Normal) else ""
        raise InputError(f"{argument}: {prior!r} puts mass on negative values, but tau >= 0{hint}")
    return prior


# --------------------------------------------------------------------------------------
# bias distributions from a risk-of-bias judgement


@dataclass(frozen=True)
class BiasDefault:
    """The default additive bias for one overall risk-of-bias judgement, on the
    log-ratio scale (log HR, log OR, log RR).

    Attributes
    ----------
    tool : str
        ``"RoB 2"``, ``"ROBINS-I"``, or ``"either"``.
    judgement : str
        The overall judgement, as :func:`bias_prior` spells it.
    magnitude : float
        ``|mean|`` of the bias when its direction is predicted (``sign`` = +1 or -1).
    sd : float
        Its standard deviation then.
    source : str
        Where the numbers come from (see ``validation/bias/README.md``).
    """

    tool: str
    judgement: str
    magnitude: float
    sd: float
    source: str

    @property
    def rms(self) -> float:
        """Root-mean-square bias ``sqrt(magnitude^2 + sd^2)``: the sd of the bias when its
        direction is not predicted (``sign`` = 0)."""
        return math.hypot(self.magnitude, self.sd)


#: Default bias per overall judgement (log-ratio scale); ``None``: no bias term. The
#: table with its sources and reasoning is ``validation/bias/README.md``.
BIAS_DEFAULTS: dict[str, BiasDefault | None] = {
    "low": None,
    "some_concerns": BiasDefault(
        "RoB 2",
        "some_concerns",
        0.10,
        0.10,
        "Savovic et al. 2012 (Ann Intern Med 157:429): ROR 0.89 for inadequate/unclear "
        "sequence generation, 0.93 for allocation concealment (|ln ROR| 0.12, 0.07); "
        "sd = magnitude is our judgement",
    ),
    "high": BiasDefault(
        "RoB 2",
        "high",
        0.15,
        0.15,
        "Savovic et al. 2012: ROR 0.87 for lack of/unclear double blinding (|ln| 0.14) and "
        "an increase of 0.14 in the between-trial SD",
    ),
    "moderate": BiasDefault(
        "ROBINS-I",
        "moderate",
        0.20,
        0.20,
        "Hemkens et al. 2016 (BMJ 352:i493): propensity-score studies of routinely "
        "collected data judged at moderate risk of confounding, mortality, summary "
        "ROR 1.31 (|ln| 0.27; 0.98 with another direction rule, Franklin et al. 2017); "
        "root-mean-square bias 0.28 is our judgement",
    ),
    "serious": BiasDefault(
        "ROBINS-I",
        "serious",
        0.30,
        0.30,
        "Deeks et al. 2003 (HTA 7(27)), Table 18: historically controlled vs randomised "
        "results in 8 regions of the ECST, ln ratio of average ORs: mean -0.15, SD 0.41, "
        "root-mean-square 0.44; ours: root-mean-square 0.42",
    ),
    "critical": BiasDefault(
        "ROBINS-I",
        "critical",
        0.50,
        0.50,
        "our judgement: ROBINS-I (Sterne et al. 2016) says such a study should not be "
        "included in a synthesis; this prior (root-mean-square 0.71) is for sensitivity "
        "analyses that keep it",
    ),
    "no_information": BiasDefault(
        "ROBINS-I",
        "no_information",
        0.30,
        0.30,
        "our judgement: treated as 'serious' (a study whose risk of bias cannot be judged "
        "is not given the benefit of the doubt)",
    ),
    "not_assessed": BiasDefault(
        "either",
        "not_assessed",
        0.30,
        0.30,
        "our judgement: as 'serious'",
    ),
}

#: Named alternatives of :func:`bias_prior` for the sensitivity grid.
BIAS_VARIANTS: dict[str, str] = {
    "none": "no bias adjustment (every study's bias term is None)",
    "default": "the documented default (BIAS_DEFAULTS)",
    "mean_0": "direction not predicted: mean 0, sd the root-mean-square bias",
    "doubled_sd": "the default with its sd doubled",
    "halved": "the default with mean and sd halved",
    "doubled": "the default with mean and sd doubled",
}


def _judgement_key(judgement: str) -> str:
    if not isinstance(judgement, str):
        raise InputError(f"judgement must be a string, got {judgement!r}")
    key = judgement.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in BIAS_DEFAULTS:
        raise InputError(
            f"unknown risk-of-bias judgement {judgement!r}; expected one of "
            f"{', '.join(BIAS_DEFAULTS)}"
        )
    return key


def bias_prior(judgement: str, sign: int, *, variant: str = "default") -> Normal | None:
    """The default distribution of a study's additive bias for an overall risk-of-bias
    judgement, on the log-ratio scale (log HR, log OR, log RR).

    The model is ``y_i ~ N(theta_i + b_i, s_i^2)`` with ``b_i`` drawn from the returned
    distribution (:func:`hccmeta.pool`'s ``bias`` argument). The defaults (log scale):

    ===============  =========  =========  ====  =====  ==========================
    judgement        tool       |mean| m   sd s  RMS    anchor
    ===============  =========  =========  ====  =====  ==========================
    low              both       no bias term (None)     Sterne 2016, 2019
    some_concerns    RoB 2      0.10       0.10  0.14   Savovic 2012 (ROR 0.89, 0.93)
    high             RoB 2      0.15       0.15  0.21   Savovic 2012 (ROR 0.87; +0.14)
    moderate         ROBINS-I   0.20       0.20  0.28   Hemkens 2016 (ROR 1.31)
    serious          ROBINS-I   0.30       0.30  0.42   Deeks 2003 (RMS 0.44)
    critical         ROBINS-I   0.50       0.50  0.71   judgement
    no_information   ROBINS-I   0.30       0.30  0.42   judgement (as serious)
    not_assessed     either     0.30       0.30  0.42   judgement (as serious)
    ===============  =========  =========  ====  =====  ==========================

    With a predicted direction the bias is ``Normal(sign * m, s)``; with ``sign = 0``
    (direction unpredictable, as Deeks et al. 2003 found for concurrently controlled
    non-randomised studies) it is ``Normal(0, sqrt(m^2 + s^2))``: the normal with the
    mean and variance of an equal mixture of ``N(+m, s^2)`` and ``N(-m, s^2)``. The
    choice ``s = m`` (a bias against the predicted direction has probability 0.16) and
    every number without a source in the table are our judgements; the sources and the
    arithmetic are in ``validation/bias/README.md``. Turner et al. 2009 (JRSS A 172:21)
    elicit such distributions study by study, which is better than any default when
    assessors are available.

    Parameters
    ----------
    judgement : str
        ROBINS-I ``low, moderate, serious, critical, no_information``; RoB 2 ``low,
        some_concerns, high``; or ``not_assessed`` (spaces and hyphens are read as
        underscores, case is ignored).
    sign : {-1, 0, 1}
        Predicted direction of the bias on the analysis scale: +1 pushes the estimate
        up (towards harm for a log HR of death), -1 down, 0 unpredictable.
    variant : str, keyword-only
        One of :data:`BIAS_VARIANTS`: ``"default"``, ``"none"``, ``"mean_0"``,
        ``"doubled_sd"``, ``"halved"``, ``"doubled"``.

    Returns
    -------
    Normal or None
        ``None`` for ``low`` (and for ``variant="none"``): no bias term.

    Examples
    --------
    >>> from hccmeta.priors import bias_prior
    >>> bias_prior("serious", -1)
    Normal(mean=-0.3, sd=0.3)
    >>> bias_prior("moderate", 0)
    Normal(mean=0.0, sd=0.282842712474619)
    """
    key = _judgement_key(judgement)
    if isinstance(sign, bool) or sign not in (-1, 0, 1):
        raise InputError(f"sign must be -1, 0 or +1, got {sign!r}")
    if variant not in BIAS_VARIANTS:
        raise InputError(
            f"unknown bias variant {variant!r}; expected one of {', '.join(BIAS_VARIANTS)}"
        )
    default = BIAS_DEFAULTS[key]
    if default is None or variant == "none":
        return None
    if sign == 0 or variant == "mean_0":
        mean, sd = 0.0, default.rms
    else:
        mean, sd = sign * default.magnitude, default.sd
    factor_mean, factor_sd = {
        "default": (1.0, 1.0),
        "mean_0": (1.0, 1.0),
        "doubled_sd": (1.0, 2.0),
        "halved": (0.5, 0.5),
        "doubled": (2.0, 2.0),
    }[variant]
    return Normal(mean * factor_mean + 0.0, sd * factor_sd)


#: Default prior of the mean bias ``mu_b`` of non-randomised studies in
#: :func:`hccmeta.models.pool_combined` (log-ratio scale): centred at 0 (the direction
#: is not predictable in general: Deeks et al. 2003; Hemkens et al. 2016 vs Franklin et
#: al. 2017) with 95% of its mass within +-0.98 (ratio of ratios 0.38-2.7), which holds
#: the largest regional bias of historically controlled studies in Deeks et al. 2003
#: (ln 2.12 = 0.75). The scale is our judgement.
DEFAULT_BIAS_MEAN = Normal(0.0, 0.5)
#: Default prior of the between-study SD ``sigma_b`` of the bias of non-randomised
#: studies: median 0.20, 95th percentile 0.59; it holds the increase of 0.14 in the
#: between-trial SD found for unblinded trials (Savovic et al. 2012) and the SD 0.41 of
#: the bias of historically controlled studies across regions (Deeks et al. 2003). The
#: scale is our judgement.
DEFAULT_BIAS_SD = HalfNormal(0.3)
