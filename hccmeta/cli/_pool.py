"""``hccmeta pool --csv FILE``: ad hoc random-effects pooling of a CSV of effect sizes.

The CSV shapes are read by :func:`hccmeta.effects.read_effect_csv` (shared with
``hccmeta convert``); priors are SPEC strings (:func:`hccmeta.priors.parse`). ``--json``
prints one object with exactly the keys ``method, measure, k, mu, tau, theta_new,
p_mu_below_0`` (SPEC section 7). Exit status: 0, 2 for invalid input (a message naming
the row and column, no traceback), 3 when an MCMC fit fails its diagnostics after the
retries (the numbers are still printed, and the reasons go to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_DIAGNOSTICS_FAILED = 3

_SPEC_HELP = (
    "normal:MEAN:SD, halfnormal:SCALE, halfcauchy:SCALE, halft:NU:SCALE, "
    "lognormal:MU:SIGMA, invgamma:ALPHA:BETA, uniform:LOW:HIGH, or a preset name"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``pool`` sub-command."""
    p = sub.add_parser(
        "pool",
        help="random-effects meta-analysis of a CSV of effect sizes",
        description="Pool a CSV with a column 'study' and one of: yi,sei | yi,vi | "
        "estimate,ci_lower,ci_upper[,ci_level] (ratio measures on their natural scale) | "
        "events_t,n_t,events_c,n_c (or, rr) with the normal-normal hierarchical model. "
        "Results are on the analysis scale (log for hr, or, rr); intervals are central "
        "95%. Exit status 2 for invalid input, 3 if an MCMC fit fails its diagnostics.",
    )
    p.add_argument("--csv", metavar="FILE", required=True, help="the input CSV file")
    p.add_argument(
        "--measure",
        choices=("hr", "or", "rr", "generic"),
        default="generic",
        help="what the file holds (default: generic, the natural scale)",
    )
    p.add_argument(
        "--prior-mu",
        metavar="SPEC",
        default=None,
        help="prior for mu (default normal:0:1); SPEC: " + _SPEC_HELP,
    )
    p.add_argument(
        "--prior-tau",
        metavar="SPEC",
        default=None,
        help="prior for tau (default halfnormal:0.5); SPEC as for --prior-mu",
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
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the CSV, pool, print."""
    from hccmeta import priors
    from hccmeta.effects import read_effect_csv
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
    table = read_effect_csv(args.csv, args.measure)
    res = pool(
        table["yi"].to_numpy(float),
        table["sei"].to_numpy(float),
        study=table["study"].astype(str).tolist(),
        measure=args.measure,
        prior_mu=prior_mu,
        prior_tau=prior_tau,
        model=args.model,
        method=args.method,
        seed=args.seed,
    )
    summaries = [res.summary()]  # refuses a degenerate posterior before printing anything
    if res.is_ratio:
        summaries.append(res.summary(scale="ratio"))
    if args.json:
        print(json.dumps(res.to_dict()))
    else:
        _print_text(res, summaries)
    if not res.ok:
        assert res.diagnostics is not None
        print(
            "hccmeta pool: warning: the MCMC fit failed its diagnostics: "
            + "; ".join(res.diagnostics.messages),
            file=sys.stderr,
        )
        return EXIT_DIAGNOSTICS_FAILED
    return 0


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
