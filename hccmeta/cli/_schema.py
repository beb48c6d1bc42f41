"""``hccmeta schema [--data DIR]``: the study-data schema as JSON Schema."""

from __future__ import annotations

import argparse
import json
from typing import Any

#: (schema model, field, vocabulary section, record type of an endpoint or None)
_TERM_FIELDS = (
    ("Study", "design", "design", None),
    ("Study", "setting", "setting", None),
    ("Arm", "regimen", "regimen", None),
    ("SurvivalRecord", "endpoint", "endpoint", "survival"),
    ("SurvivalRecord", "time_origin", "time_origin", None),
    ("CountRecord", "endpoint", "endpoint", "counts"),
    ("Subgroup", "variable", "subgroup_variable", None),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` sub-command."""
    p = sub.add_parser(
        "schema",
        help="print the study-data schema as JSON Schema",
        description="Print the JSON Schema of a study file (for editors' completion); the "
        "vocabulary fields (design, setting, regimen, endpoint, time_origin, subgroup "
        "variable) list the terms of the data directory's vocabulary.yaml.",
    )
    p.add_argument("--data", metavar="DIR", help="study data directory (default: study_data/)")
    p.set_defaults(handler=run)


def with_vocabulary(schema: dict[str, Any], vocabulary: Any) -> dict[str, Any]:
    """``schema`` with an ``enum`` of the vocabulary's terms on every vocabulary field."""
    defs = schema.get("$defs", {})
    for model, field, section, record_type in _TERM_FIELDS:
        node = schema if model == "Study" else defs.get(model)
        prop = (node or {}).get("properties", {}).get(field)
        if prop is None:
            continue
        terms = vocabulary.terms(section)
        if record_type is not None:
            terms = {k: t for k, t in terms.items() if t.record_type == record_type}
        prop["enum"] = list(terms)
        prop["description"] = (
            prop.get("description", "")
            + " Terms: "
            + "; ".join(f"{k} ({t.label})" for k, t in terms.items())
        ).strip()
    return schema


def run(args: argparse.Namespace) -> int:
    """Print the JSON Schema."""
    from hccmeta.data import default_data_dir
    from hccmeta.data.schema import Study
    from hccmeta.data.vocabulary import load_vocabulary

    schema = Study.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hccmeta study file"
    schema = with_vocabulary(schema, load_vocabulary(args.data or default_data_dir()))
    print(json.dumps(schema, indent=2, sort_keys=False))
    return 0
