"""Entry point of ``breast-subtype``.

Exit status: 0 success, 2 bad input (one line on stderr per problem, naming it; nothing written),
1 internal error, 130 interrupted. Each sub-command lives in its own module exposing
``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; heavy imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from BreastSubtypeLib import __version__
from BreastSubtypeLib.errors import BadCasesError, BadInputError

# name -> module; order is the order shown in --help.
COMMANDS = {
    "phantom": "BreastSubtypeLib.cli.phantom_command",
    "roi": "BreastSubtypeLib.cli.roi_command",
    "predict": "BreastSubtypeLib.cli.predict_command",
    "merge": "BreastSubtypeLib.cli.merge_command",
    "demo": "BreastSubtypeLib.cli.demo_command",
    "models": "BreastSubtypeLib.cli.models_command",
    "web": "BreastSubtypeLib.cli.web_command",
}


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; we want one line and exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


# "-12.5,3,40": a point or box whose first coordinate is negative. argparse takes any "-..." token
# that is not a plain number for an option, so such values are glued to their option ("--seed-ras=-12.5,3,40").
_COORDINATES = re.compile(r"^-\d*\.?\d+(,-?\d*\.?\d+)+$")


def _glue_negative_coordinates(argv: list[str]) -> list[str]:
    glued: list[str] = []
    for token in argv:
        if _COORDINATES.match(token) and glued and glued[-1].startswith("--") and "=" not in glued[-1]:
            glued[-1] = f"{glued[-1]}={token}"
        else:
            glued.append(token)
    return glued


def _chosen_command(argv: list[str]) -> str | None:
    """The sub-command named on the command line (the first token that is not an option)."""
    for token in argv:
        if not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that sub-command's module is imported (a process that runs
    ``predict`` need not import the web app's asyncio stack to build its parser)."""
    parser = OneLineErrorParser(
        prog="breast-subtype",
        description="ER, PR, HER2 and Ki-67 from one post-contrast breast DCE-MRI volume "
        "(research use only; the bundled model is a demonstration model trained on synthetic phantoms).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "BreastSubtypeWeb":
                continue  # the web app is not installed (inside Slicer only the Lib is): no "web" command
            raise
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def run_command(args: argparse.Namespace, prog: str) -> int:
    """Run a parsed sub-command with the exit-status contract shared by every console script."""
    try:
        return int(args._run(args) or 0)
    except BadInputError as exc:
        # One line per problem: one for a bad input, one per case for a cohort with bad cases.
        lines = exc.lines() if isinstance(exc, BadCasesError) else [str(exc)]
        for line in lines:
            print(f"{prog} {args.command}: error: {' '.join(line.split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # internal error: one line unless --debug
        if getattr(args, "debug", False) or os.environ.get("BREAST_SUBTYPE_DEBUG"):
            raise
        print(
            f"{prog} {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def main(argv: list[str] | None = None) -> int:
    tokens = _glue_negative_coordinates(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser(only=_chosen_command(tokens))
    args = parser.parse_args(tokens)
    if not getattr(args, "_run", None):
        build_parser().print_help(sys.stderr)
        return 2
    return run_command(args, "breast-subtype")


def console_main() -> None:
    """The ``breast-subtype`` program: ``main`` then a fast exit. Every output is written (atomically)
    and its writer threads joined before ``run`` returns, so the interpreter's teardown of torch
    (about 0.3 s) buys nothing; streams and log handlers are flushed first. (A fast exit once exposed
    a race in the Slicer runner, which stopped polling before the child's last lines had been read;
    ``BackgroundProcess.running`` now stays true until they have been handed out.)"""
    import logging

    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
