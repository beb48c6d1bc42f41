"""The machine-readable outputs of the report: CSV tables and ``provenance.json``.

Every CSV is written with one float format (:data:`FLOAT_FORMAT`), ``\\n`` line ends and
no timestamp, so the same data and seed give byte-identical files.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hccmeta.analyses.run import CREDIBILITY_COLUMNS, DOMINANCE_COLUMNS, ESTIMATE_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from hccmeta.analyses.run import AnalysisResult
    from hccmeta.report.collect import ReportData

__all__ = [
    "EFFECT_USE_COLUMNS",
    "FLOAT_FORMAT",
    "FREQUENTIST_FIELDS",
    "PACKAGES",
    "effects_table",
    "frequentist_columns",
    "pooled_table",
    "provenance",
    "write_csv",
]

#: Format of every float in the CSV files (six significant digits).
FLOAT_FORMAT = "%.6g"

#: Packages whose versions ``provenance.json`` records.
PACKAGES = (
    "hccmeta",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "matplotlib",
    "jinja2",
    "pydantic",
)


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` with the report's fixed float format and ``\\n`` line ends."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, float)).any():
            values = out[col].map(lambda v: FLOAT_FORMAT % v if isinstance(v, float) else v)
            out[col] = values.where(out[col].notna(), None)
    out.to_csv(path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


#: Fields of the frequentist comparison (metafor's vocabulary) written per method, on
#: the analysis scale: estimate, SE, 95% CI, 95% prediction interval, tau^2, tau, I^2
#: (percent), Cochran's Q and its p-value.
FREQUENTIST_FIELDS = (
    "estimate",
    "se",
    "ci_lower",
    "ci_upper",
    "pi_lower",
    "pi_upper",
    "tau2",
    "tau",
    "i2",
    "q",
    "q_p",
)


def frequentist_columns(result: AnalysisResult) -> dict[str, float]:
    """The frequentist comparison of a result as flat columns (``reml_estimate``,
    ``reml_ci_lower``, ..., ``dl_q_p``: :data:`FREQUENTIST_FIELDS` prefixed with the
    method). Empty without a comparison."""
    freq = result.frequentist
    if freq is None or freq.empty or "method" not in freq.columns:
        return {}
    out: dict[str, float] = {}
    for _, row in freq.iterrows():
        prefix = str(row["method"]).lower()
        for col in FREQUENTIST_FIELDS:
            value = row.get(col)
            if isinstance(value, int | float | np.integer | np.floating) and not isinstance(
                value, bool
            ):
                out[f"{prefix}_{col}"] = float(value)
    return out


def pooled_table(data: ReportData) -> pd.DataFrame:
    """``pooled_estimates.csv``: one row per analysis and estimand (an analysis without
    eligible records has one row with its status), the MCMC diagnostics verdict and the
    frequentist comparison where there is one."""
    rows: list[dict[str, Any]] = []
    freq_cols: list[str] = []
    for section in data.sections:
        res = section.result
        freq = frequentist_columns(res)
        freq_cols += [c for c in freq if c not in freq_cols]
        base = {"analysis": res.name, "status": res.status, "diagnostics_ok": res.ok}
        if res.estimates.empty:
            rows.append(
                {
                    **base,
                    **dict.fromkeys([*ESTIMATE_COLUMNS, *CREDIBILITY_COLUMNS, *DOMINANCE_COLUMNS]),
                }
            )
            continue
        for _, est in res.estimates.iterrows():
            row = {
                **base,
                **{
                    c: est[c] for c in (*ESTIMATE_COLUMNS, *CREDIBILITY_COLUMNS, *DOMINANCE_COLUMNS)
                },
            }
            reasons = est["certainty_reasons"]
            row["certainty_reasons"] = "; ".join(reasons) if isinstance(reasons, tuple) else None
            if est["estimand"] == "effect":
                row.update(freq)
            rows.append(row)
    columns = [
        "analysis",
        "status",
        *ESTIMATE_COLUMNS,
        *CREDIBILITY_COLUMNS,
        *DOMINANCE_COLUMNS,
        "diagnostics_ok",
        *freq_cols,
    ]
    table = pd.DataFrame(rows, columns=columns)
    numeric = ["mean", "median", "sd", "ci_lower", "ci_upper", "natural_median",
               "natural_ci_lower", "natural_ci_upper", "p_benefit", "n_patients",
               *CREDIBILITY_COLUMNS[3:], *DOMINANCE_COLUMNS[:3]]  # fmt: skip
    for col in [*numeric, *freq_cols]:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    table["k"] = pd.to_numeric(table["k"], errors="coerce").astype("Int64")
    return table


#: The columns ``effects.csv`` puts before those of the effects table.
EFFECT_USE_COLUMNS: dict[str, str] = {
    "used_by": "the analysis that pools the effect in this row (empty: no default analysis "
    "uses it)",
    "role": "the regimen or factor it stands for in that analysis (empty for a single estimand)",
    "orientation": "'as derived', or 'reversed': the analysis swapped exposed and reference "
    "of the derived contrast, so yi is negated (log scale) and exposed/reference are "
    "swapped in this row: yi, sei of the rows of one analysis are what it pools",
}


def effects_table(data: ReportData) -> pd.DataFrame:
    """``effects.csv``: one row per derived effect and analysis that uses it, oriented as
    that analysis pools it, plus one row (``used_by`` empty, as derived) per effect no
    analysis uses. Columns :data:`EFFECT_USE_COLUMNS`, then those of
    :data:`hccmeta.effects.EFFECT_COLUMNS`.

    Re-pooling an analysis from the file: take the rows with its name in ``used_by``
    (and a ``role``, where it has several); their ``yi`` and ``sei`` are on the analysis
    scale with the sign the analysis uses (``orientation`` says whether it is reversed
    relative to the record's contrast).
    """
    from hccmeta.effects import EFFECT_COLUMNS

    columns = [*EFFECT_USE_COLUMNS, *EFFECT_COLUMNS]
    parts = []
    used: set[str] = set()
    for section in data.sections:
        eff = section.result.effects
        if eff.empty:
            continue
        rows = eff.assign(used_by=section.name)
        if "orientation" not in rows:
            rows = rows.assign(orientation="as derived")
        if "role" not in rows:
            rows = rows.assign(role="")
        parts.append(rows.reindex(columns=columns))
        used |= set(eff["effect"].astype(str))
    derived = data.derived.effects
    unused = derived[~derived["effect"].astype(str).isin(used)]
    parts.append(unused.assign(used_by="", role="", orientation="as derived")[columns])
    table = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    return table.reset_index(drop=True)


def account_table(data: ReportData) -> pd.DataFrame:
    """``evidence_account.csv``: the evidence account with study files named
    ``<data dir>/<file>`` (independent of the working directory)."""
    from hccmeta.report.collect import source_file

    table = data.account.copy()
    table["file"] = [source_file(data.evidence, f) for f in table["file"]]
    table["line"] = pd.to_numeric(table["line"], errors="coerce").astype("Int64")
    return table


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def provenance(data: ReportData, *, netcdf_format: str) -> dict[str, Any]:
    """The content of ``provenance.json`` (no timestamps: the same inputs give the same
    file)."""
    ev = data.evidence
    return {
        "generated_by": "hccmeta report",
        "data_hash": ev.data_hash,
        "data_dir": ev.data_dir.name,
        "seed": data.seed,
        "studies": [s.id for s in ev.studies],
        "n_records": ev.n_records,
        "n_characteristics": ev.n_characteristics,
        "analyses": [s.name for s in data.sections],
        "n_sensitivity_variants": data.n_variants,
        "derive_options": data.derived.options.as_dict(),
        "posteriors_format": netcdf_format,
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def write_json(obj: Any, path: Path) -> None:
    """Write ``obj`` as sorted, indented JSON with a final newline."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
