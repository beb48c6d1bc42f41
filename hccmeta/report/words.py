"""Words for readers: priors, sensitivity variants and derivation options as the report
prints them.

The objects and tables keep their exact, machine-readable forms (a prior's ``repr``
``LogNormal(mu=-0.6931471805599453, sigma=0.5)``, a variant's name
``tau_halfnormal_1``, the study id ``lee2017``); the report prints

- priors with their parameters in order and rounded, a location that is the log of a
  round number as such: ``LogNormal(log 0.5, 0.5)``, ``HalfNormal(0.5)``
  (:func:`prior_text`, :func:`readable_priors`);
- a sensitivity variant by its description without the bookkeeping of how it was
  computed (importance reweighting, Pareto k, refits): :func:`variant_text`;
- the options of the effect derivations in sentences: :func:`options_text`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hccmeta import priors as pr
from hccmeta.data.labels import relabel

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.effects.table import DeriveOptions

__all__ = ["options_text", "prior_text", "readable_priors", "variant_text"]

#: The location parameter of each family (printed as ``log x`` where that is exact).
_LOCATION = {"Normal": "mean", "LogNormal": "mu"}
_FAMILIES = "|".join(
    ("HalfStudentT", "HalfNormal", "HalfCauchy", "LogNormal", "InverseGamma", "Uniform", "Normal")
)
_REPR = re.compile(rf"(?<![\w.])({_FAMILIES})\(([^()]*)\)")


def _number(x: float) -> str:
    """Four significant digits where that is exact (0.5, 2.42, -1.975, 10), else three
    (0.283)."""
    text = f"{x:.4g}"
    return text if float(text) == x else f"{x:.3g}"


def _location(x: float) -> str:
    """A location parameter: ``log 0.5`` where ``x`` is the log of a number with at most
    three significant digits (and is not itself short), else :func:`_number`."""
    short = f"{x:.4g}"
    if float(short) == x:
        return short
    value = math.exp(x)
    nice = float(f"{value:.3g}")
    if math.isclose(value, nice, rel_tol=1e-9):
        return f"log {nice:g}"
    return _number(x)


def prior_text(prior: pr.Prior) -> str:
    """A prior as the report prints it: the family and its parameters in order, without
    names, rounded; a location that is the log of a round number as ``log x``.

    Examples
    --------
    >>> import math
    >>> from hccmeta import priors
    >>> prior_text(priors.LogNormal(math.log(0.5), 0.5))
    'LogNormal(log 0.5, 0.5)'
    >>> prior_text(priors.HalfNormal(0.5))
    'HalfNormal(0.5)'
    """
    location = _LOCATION.get(prior.family)
    args = [
        _location(value) if name == location else _number(value)
        for name, value in prior.params().items()
    ]
    return f"{prior.family}({', '.join(args)})"


def readable_priors(text: str) -> str:
    """``text`` with every prior ``repr`` in it (``HalfNormal(scale=0.5)``,
    ``LogNormal(mu=-0.6931471805599453, sigma=0.5)``) replaced by :func:`prior_text`;
    anything that is not a prior of :mod:`hccmeta.priors` (``Normal(mu_alpha,
    sigma_alpha^2)``) is left as it is."""
    from hccmeta.sensitivity.draws import parse_prior_repr

    def sub(m: re.Match[str]) -> str:
        prior = parse_prior_repr(m.group(1), m.group(2))
        return m.group(0) if prior is None else prior_text(prior)

    return _REPR.sub(sub, text)


#: Parentheticals of a variant's description that say how it was computed, not what
#: it changes (:mod:`hccmeta.sensitivity.run`).
_HOW = ("importance-reweighted", "refitted", "the primary fit")
_POWER_HOW = re.compile(r", by Pareto-smoothed importance reweighting[^;]*")
_PSENSE = re.compile(r"; psense: .*$")


def _drop_parentheticals(text: str, starts: tuple[str, ...]) -> str:
    """``text`` without the (balanced) parentheticals that begin with one of ``starts``."""
    out = text
    for start in starts:
        while True:
            i = out.find(f" ({start}")
            if i < 0:
                break
            depth, j = 0, i + 1
            for j in range(i + 1, len(out)):
                depth += {"(": 1, ")": -1}.get(out[j], 0)
                if depth == 0:
                    break
            out = out[:i] + out[j + 1 :]
    return out


def variant_text(description: str, labels: Mapping[str, str] | None = None, *,
                 short: bool = False) -> str:  # fmt: skip
    """A sensitivity variant's description as the report prints it: readable priors,
    study labels instead of ids, and without how the variant was computed (importance
    reweighting and its Pareto k, refits, psense); ``short`` (the rows of the
    sensitivity plot) also drops what it replaces ('instead of ...') and the primary
    analysis's priors.

    Examples
    --------
    >>> variant_text("tau ~ HalfNormal(scale=1.0) instead of HalfNormal(scale=0.5) "
    ...              "(importance-reweighted primary posterior, Pareto k 0.61)")
    'tau ~ HalfNormal(1) instead of HalfNormal(0.5)'
    >>> variant_text("leave out study lee2017", {"lee2017": "Lee 2017"}, short=True)
    'leave out study Lee 2017'
    """
    text = _drop_parentheticals(" ".join(description.split()), _HOW)
    text = _PSENSE.sub("", _POWER_HOW.sub("", text))
    if short:
        if text.startswith("the registered analysis"):
            return "the registered analysis"
        text = re.sub(r"(: the primary analysis's (prior|hyperprior)| instead of .*$)", "", text)
    return relabel(readable_priors(text), labels or {}).strip()


def options_text(options: DeriveOptions) -> str:
    """The options of the effect derivations, in sentences (the Methods section).

    Examples
    --------
    >>> from hccmeta.effects.table import DeriveOptions
    >>> options_text(DeriveOptions()).split(". ")[0]
    'The variance of a log median was that of a Kaplan-Meier median, 2.08 / events'
    """
    o = options
    parts = [
        "The variance of a log median was that of a Kaplan-Meier median, "
        f"{o.km_median_factor:.3g} / events"
        if o.median_variance == "km"
        else "The variance of a log median was that of an exponential model, 1 / events",
        {
            "bound": "a p-value printed as a bound ('p < 0.05') was taken at the bound",
            "midpoint": "a p-value printed as a bound ('p < 0.05') was taken at the middle "
            "of the interval it implies (half the bound)",
            "exclude": "a p-value printed as a bound ('p < 0.05') was not used",
        }[o.p_bound],
        {
            "record": "where a study prints two p-values for one comparison, each record's "
            "own was used (a log-rank one where the record's own names no test)",
            "smallest": "where a study prints two p-values for one comparison, the smaller "
            "was used",
            "largest": "where a study prints two p-values for one comparison, the larger was used",
        }[o.p_choice],
        "survival was taken as exponential where medians were turned into hazard ratios "
        "or their variances"
        if o.weibull_shape == 1
        else f"survival was taken as Weibull with shape {_number(o.weibull_shape)} where "
        "medians were turned into hazard ratios or their variances",
        "events printed only for a whole population were split between its groups in "
        "proportion to their sizes"
        if o.impute_events
        else "events printed only for a whole population were not split between its groups",
        "a survival proportion with neither CI nor number at risk was given the group size "
        "as its number at risk, less the censoring implied by the study's entry period and "
        "end of follow-up where both are printed"
        if o.impute_n_at_risk and o.censoring_from_follow_up
        else "a survival proportion with neither CI nor number at risk was given the group "
        "size as its number at risk (nobody censored before the landmark)"
        if o.impute_n_at_risk
        else "a survival proportion with neither CI nor number at risk was not used",
        "a count printed only as a rate was taken as the whole number that rounds to it"
        if o.count_from_rate
        else "a count printed only as a rate was not rebuilt",
        f"{_number(o.continuity_correction)} was added to the cells of a table with a zero cell"
        if o.continuity_correction
        else "no continuity correction was applied to tables with a zero cell",
        "an SE derived from a p-value was raised to the smallest the group sizes allow "
        f"(a subgroup of unprinted size taken as at least {100 * o.subgroup_share_min:.0f}% "
        "of its arm)"
        if o.se_floor
        else "an SE derived from a p-value was not raised to the smallest the group sizes allow",
    ]
    return parts[0] + "; " + "; ".join(parts[1:]) + "."
