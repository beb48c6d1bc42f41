"""The ``hccmeta`` command line.

Each sub-command lives in its own module ``hccmeta.cli._<name>`` that defines
``register(subparsers)``; heavy imports (PyMC, matplotlib) happen inside the command
handlers so that ``hccmeta validate`` starts quickly. Errors that bad input provokes
(:class:`hccmeta.errors.HccmetaError`) end with exit status 2 and a message on stderr,
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from hccmeta.errors import HccmetaError, InputProblems, StudyDataError, printable

#: Sub-command modules, in the order ``hccmeta --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "validate",
    "new-study",
    "locate",
    "schema",
    "analyses",
    "run",
    "sensitivity",
    "convert",
    "pool",
    "report",
)

EXIT_OK = 0
EXIT_INVALID = 2


class _Parser(argparse.ArgumentParser):
    """argparse parser whose usage errors exit with status 2 (argparse's own default)."""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered sub-command."""
    parser = _Parser(
        prog="hccmeta",
        description="Bayesian meta-analysis of sorafenib with or without TACE in HCC.",
    )
    from hccmeta import __version__

    parser.add_argument("--version", action="version", version=f"hccmeta {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"hccmeta.cli._{name.replace('-', '_')}")
        module.register(sub)
    return parser


def _one_line_warnings(command: str) -> Any:
    """A ``warnings.showwarning`` that prints ``hccmeta COMMAND: warning: MESSAGE`` as one
    line on stderr (no source file, line or category)."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = " ".join(str(message).split())
        print(f"hccmeta {command}: warning: {text}", file=file or sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status. Every warning is printed as one
    clean line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(args.command)
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        status: int = args.handler(args)
    except StudyDataError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        return EXIT_INVALID
    except InputProblems as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return EXIT_INVALID
    except HccmetaError as exc:
        print(f"hccmeta {args.command}: error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # pragma: no cover - e.g. `hccmeta convert | head`
        return EXIT_OK
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
