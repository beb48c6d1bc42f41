"""``hccmeta pool --csv FILE``: ad hoc random-effects pooling of a CSV of effect sizes.

The CSV shapes are read by :func:`hccmeta.effects.read_effect_csv` (shared with
``hccmeta convert``); priors are SPEC strings (:func:`hccmeta.priors.parse`).

No silent wrong answer: without ``--measure``, a file of ``yi`` columns is pooled as
``generic``; a file of estimates with CIs or of counts is refused (a ratio pooled on its
natural scale with symmetric CIs, or counts without a measure, would be wrong). A
generic measure without priors gets priors scaled to the data
(:func:`hccmeta.models.normal.scaled_priors`), said in one line on stderr.

``--json`` prints one object: the keys of SPEC section 7 (``method, measure, k, mu,
tau, theta_new, p_mu_below_0``) with the estimate keys ``hccmeta run --json`` uses
(``mean, median, sd, ci_lower, ci_upper, natural_scale, natural_median,
natural_ci_lower, natural_ci_upper``), plus priors, per-study shrunken estimates and
diagnostics (:meth:`hccmeta.models.result.PoolResult.to_dict`). Exit status: 0; 2 for
invalid input (a message naming the row and column, no traceback); 3 when an MCMC fit
fails its diagnostics after the retries (the numbers are still printed, and the
reasons go to stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from hccmeta.defaults import DEFAULT_SEED

EXIT_DIAGNOSTICS_FAILED = 3

_SPEC_HELP = (
    "normal:MEAN:SD, halfnormal:SCALE, halfcauchy:SCALE, halft:NU:SCALE, "
    "lognormal:MU:SIGMA, invgamma:ALPHA:BETA, uniform:LOW:HIGH, or a preset name"
)
_MEASURES = ("hr", "or", "rr", "rd", "generic")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``pool`` sub-command."""
    p = sub.add_parser(
        "pool",
        help="random-effects meta-analysis of a CSV of effect sizes",
        description="Pool a CSV with a column 'study' and one of: yi,sei | yi,vi | "
        "estimate,ci_lower,ci_upper[,ci_level] (ratio measures on their natural scale) | "
        "events_t,n_t,events_c,n_c (or, rr, rd) with the normal-normal hierarchical model. "
        "Results are on the analysis scale (log for hr, or, rr) and, for ratios, on the "
        "ratio scale; intervals are central 95%. Estimates with CIs and counts need "
        "--measure. A generic measure without --prior-mu/--prior-tau gets priors scaled to "
        "the data: s = max|yi| + max sei, mu ~ Normal(0, 2.5 s), tau ~ HalfNormal(s / 2) "
        "(said on stderr). Exit status 2 for invalid input, 3 if an MCMC fit fails its "
        "diagnostics.",
    )
    p.add_argument("--csv", metavar="FILE", required=True, help="the input CSV file")
    p.add_argument(
        "--measure",
        choices=_MEASURES,
        default=None,
        help="what the file holds: hr, or, rr (ratios: pooled on the log scale), rd (risk "
        "difference) or generic (pooled as given). Required for estimate/CI and count "
        "columns; yi columns default to generic",
    )
    p.add_argument(
        "--prior-mu",
        metavar="SPEC",
        default=None,
        help="prior for mu (default normal:0:1 for hr, or, rr, rd; scaled to the data for "
        "generic); SPEC: " + _SPEC_HELP,
    )
    p.add_argument(
        "--prior-tau",
        metavar="SPEC",
        default=None,
        help="prior for tau (default halfnormal:0.5 for hr, or, rr, rd; scaled to the data "
        "for generic); SPEC as for --prior-mu",
    )
    p.add_argument(
        "--method",
        choices=("exact", "mcmc"),
        default="exact",
        help="exact: numerical integration (default); mcmc: PyMC + nutpie",
    )
    p.add_argument(
        "--model",
        choices=("random", "fixed"),
        default="random",
        help="random effects (default) or a fixed effect (tau = 0)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help=f"random seed (default {DEFAULT_SEED})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def _looks_like_ratios(path: str) -> bool:
    """Whether estimate/CI columns are all positive and their CIs symmetric on the log
    scale rather than the natural one (how ratios are printed)."""
    import pandas as pd

    try:
        df = pd.read_csv(path, sep=None, engine="python")
        est, lo, hi = (pd.to_numeric(df[c], errors="coerce") for c in
                       ("estimate", "ci_lower", "ci_upper"))  # fmt: skip
    except (OSError, ValueError, KeyError):
        return False
    if not ((est > 0) & (lo > 0) & (hi > 0)).all():
        return False
    log_asym = (
        abs((hi.map(math.log) - est.map(math.log)) - (est.map(math.log) - lo.map(math.log)))
    ).sum()
    nat_asym = (abs((hi - est) - (est - lo)) / est).sum()
    return bool(log_asym < nat_asym)


def _read(args: argparse.Namespace) -> tuple[Any, str]:
    """The table (study, yi, vi, sei) and the measure; refuses what needs --measure."""
    from hccmeta.effects import read_effect_csv
    from hccmeta.errors import InputError
    from hccmeta.models.normal import MEASURES

    assert set(_MEASURES) <= set(MEASURES)
    if args.measure is not None:
        table = read_effect_csv(args.csv, args.measure)
        shape = str(table.attrs.get("shape", ""))
        if (
            args.measure == "generic"
            and shape.startswith("estimate")
            and _looks_like_ratios(args.csv)
        ):
            warn(
                "pool",
                "the intervals are symmetric on the log scale, as for ratios: if these are "
                "hazard, odds or risk ratios, use --measure hr, or or rr (generic pools them "
                "on their natural scale with symmetric CIs)",
            )
        return table, args.measure
    # no --measure: read as rd (the one measure every column set accepts) to learn the
    # column set; yi columns are the same under any measure
    table = read_effect_csv(args.csv, "rd")
    shape = str(table.attrs.get("shape", ""))
    if shape.startswith("estimate"):
        hint = (
            " (the intervals are symmetric on the log scale: these look like ratios)"
            if _looks_like_ratios(args.csv)
            else ""
        )
        raise InputError(
            f"--csv {args.csv}: columns estimate, ci_lower, ci_upper need --measure: hr, or "
            f"or rr for ratios (pooled on the log scale), rd or generic for differences "
            f"(pooled as given, with symmetric CIs){hint}"
        )
    if shape.startswith("events"):
        raise InputError(
            f"--csv {args.csv}: columns events_t, n_t, events_c, n_c need --measure or, rr or rd"
        )
    return read_effect_csv(args.csv, "generic"), "generic"


def warn(command: str, message: str) -> None:
    """One warning line on stderr."""
    print(f"hccmeta {command}: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Read the CSV, pool, print."""
    from hccmeta import priors
    from hccmeta.errors import InputError
    from hccmeta.models.normal import pool

    if args.seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}")
    prior_mu = (
        priors.parse(args.prior_mu, argument="--prior-mu") if args.prior_mu is not None else None
    )
    prior_tau = (
        priors.parse(args.prior_tau, argument="--prior-tau") if args.prior_tau is not None else None
    )
    if prior_mu is not None:
        priors.check_mu_prior(prior_mu, argument="--prior-mu")
    if prior_tau is not None:
        if args.model == "fixed":
            raise InputError("--prior-tau cannot be used with --model fixed (tau = 0)")
        priors.check_tau_prior(prior_tau, argument="--prior-tau")
    table, measure = _read(args)
    try:  # what pool refuses is about this file's numbers (with the priors): name it
        res = pool(
            table["yi"].to_numpy(float),
            table["sei"].to_numpy(float),
            study=table["study"].astype(str).tolist(),
            measure=measure,
            prior_mu=prior_mu,
            prior_tau=prior_tau,
            model=args.model,
            method=args.method,
            seed=args.seed,
        )
        summaries = [res.summary()]  # refuses a degenerate posterior before printing
        if res.is_ratio:
            summaries.append(res.summary(scale="ratio"))
    except InputError as exc:
        raise InputError(f"{args.csv}: {exc}") from None
    if args.json:
        print(json.dumps(_clean(res.to_dict())))
    else:
        _print_text(res, summaries)
    if not res.ok:
        assert res.diagnostics is not None
        warn("pool", "the MCMC fit failed its diagnostics: " + "; ".join(res.diagnostics.messages))
        return EXIT_DIAGNOSTICS_FAILED
    return 0


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _print_text(res: object, summaries: list[Any]) -> None:
    from hccmeta.models.result import PoolResult

    assert isinstance(res, PoolResult)
    tau = repr(res.prior_tau) if res.prior_tau is not None else "0 (fixed effect)"
    scale = "log scale" if res.is_ratio else "analysis scale"
    print(f"{res.model}-effects meta-analysis ({res.method}), measure {res.measure}, k = {res.k}")
    print(f"priors: mu ~ {res.prior_mu!r}, tau ~ {tau}")
    print(f"\nposterior ({scale}; central 95% intervals)")
    print(summaries[0].to_string(float_format=lambda v: f"{v:.4f}"))
    if res.is_ratio:
        ratio = summaries[1]
        print(f"\nback-transformed ({res.measure.upper()})")
        print(ratio.to_string(float_format=lambda v: f"{v:.4f}"))
        if ratio.attrs.get("undefined_moments"):
            print(
                f"note: the {res.measure.upper()} of a new study (theta_new) has no finite mean "
                f"or sd under tau ~ {res.prior_tau!r}, whose tail is heavier than a standard "
                "half-normal's; read its median and interval"
            )
    print(f"\nP(mu < 0) = {res.p_mu_below_0:.4f}; P(theta_new < 0) = {res.p_theta_new_below_0:.4f}")
    if res.diagnostics is not None:
        d = res.diagnostics
        status = "ok" if d.ok else "FAILED"
        print(
            f"MCMC diagnostics: {status} (max R-hat {d.max_rhat:.3f}, min bulk ESS "
            f"{d.min_ess_bulk:.0f}, min tail ESS {d.min_ess_tail:.0f}, "
            f"{d.n_divergent} divergences, {d.retries} retries)"
        )
