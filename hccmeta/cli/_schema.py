"""``hccmeta schema``: the study-data schema as JSON Schema."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` sub-command."""
    p = sub.add_parser(
        "schema",
        help="print the study-data schema as JSON Schema",
        description="Print the JSON Schema of a study file (for editors' completion).",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the JSON Schema."""
    from hccmeta.data.schema import Study

    schema = Study.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hccmeta study file"
    print(json.dumps(schema, indent=2, sort_keys=False))
    return 0
