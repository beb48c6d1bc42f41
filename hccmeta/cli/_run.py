"""``hccmeta run ANALYSIS [--data DIR] [--json] [--seed N]``: one analysis.

``--json`` prints one object: ``analysis, status, message, k``, ``estimates`` (one per
estimand, with the estimate keys ``hccmeta pool --json`` uses: ``mean, median, sd,
ci_lower, ci_upper, natural_scale, natural_median, natural_ci_lower, natural_ci_upper``,
and ``estimand, label, scale, benefit, p_benefit, k, n_patients``), ``effects`` (as
pooled: ``orientation`` says whether the analysis reversed a derived contrast),
``studies`` (each study's shrunken estimate per estimand), ``priors``,
``diagnostics`` (one entry per MCMC fit), ``diagnostics_ok``, ``statement``,
``data_hash`` and ``seed``.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from hccmeta.defaults import DEFAULT_SEED


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser(
        "run",
        help="run one analysis and print its pooled estimates",
        description="Run one registered analysis (see `hccmeta analyses`) and print its "
        "pooled estimates with 95% intervals, or a clean 'no eligible records' with what "
        "is missing.",
    )
    p.add_argument("analysis", metavar="ANALYSIS", help="name of a registered analysis")
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    p.set_defaults(handler=run)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        return _clean(value.item())
    try:
        import pandas as pd

        if value is not None and not isinstance(value, str | list | dict) and pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _studies(result: Any) -> list[dict[str, Any]]:
    """Each study's shrunken estimate per estimand: the analysis-scale summary for the
    normal-normal fits; for the MCMC models the natural-scale median and interval of
    the forest plot (:func:`hccmeta.report.forest.forest_rows`), the analysis-scale keys
    null."""
    from hccmeta.analyses.run import natural_columns
    from hccmeta.models.result import PoolResult
    from hccmeta.report.forest import forest_rows

    out: list[dict[str, Any]] = []
    keys = ("mean", "median", "sd", "ci_lower", "ci_upper")
    if all(isinstance(f, PoolResult) for f in result.fits.values()):
        for role, fit in result.fits.items():
            for s in fit.study:
                est = {k: v for k, v in fit.estimate(f"theta[{s}]").items() if k in keys}
                nat = natural_columns(result.analysis.measure, est)
                out.append({"estimand": role, "study": s, **est, **nat})
        return out
    labels = dict(zip(result.estimates["label"], result.estimates["estimand"], strict=True))
    rows = forest_rows(result)
    for _, r in rows[rows["kind"] == "shrunken"].iterrows():
        out.append(
            {
                "estimand": labels.get(r["group"], r["group"]),
                "study": r["label"],
                **dict.fromkeys(keys),
                "natural_scale": r["panel"],
                "natural_median": r["center"],
                "natural_ci_lower": r["lower"],
                "natural_ci_upper": r["upper"],
            }
        )
    return out


def run(args: argparse.Namespace) -> int:
    """Run the analysis and print it."""
    from hccmeta.analyses import run_analysis
    from hccmeta.data import load_studies
    from hccmeta.report.interpret import interpret
    from hccmeta.report.tables import format_estimates

    evidence = load_studies(args.data)
    result = run_analysis(args.analysis, evidence, seed=args.seed)
    if args.json:
        effect_keys = ("study", "effect", "role", "exposed", "reference", "orientation", "yi",
                       "sei", "method")  # fmt: skip
        out = {
            "analysis": result.name,
            "status": result.status,
            "message": result.message,
            "k": result.k,
            "estimates": result.estimate_records(),
            "effects": [
                {k: _clean(row.get(k)) for k in effect_keys}
                for row in result.effects.to_dict(orient="records")
            ],
            "conflicts": [
                {k: _clean(row[k]) for k in ("study", "record", "statistic", "p", "method")}
                for row in result.conflicts.to_dict(orient="records")
            ],
            "studies": [
                {k: _clean(v) for k, v in s.items()}
                for s in (_studies(result) if result.status == "ok" else [])
            ],
            "priors": result.priors,
            "diagnostics": [
                {k: _clean(v) for k, v in row.items()}
                for row in result.diagnostics.to_dict(orient="records")
            ],
            "diagnostics_ok": result.ok,
            "statement": interpret(result, labels=evidence.study_labels),
            "data_hash": result.data_hash,
            "seed": result.seed,
        }
        print(json.dumps(out, indent=2))
        return 0
    print(f"{result.analysis.title}")
    if result.status != "ok":
        print(result.message)
        return 0
    print(format_estimates(result.estimates))
    if not result.ok:
        print("WARNING: MCMC diagnostics failed; see the diagnostics table")
    print()
    print(interpret(result, labels=evidence.study_labels))
    return 0
