"""The ``recharge-autoscaler`` command: the one place that wires subcommands, logging and error reporting.

Each subcommand has its module in this package, exposing ``register(subparsers)``; the registered
handler takes the parsed arguments and returns an exit code. Errors the product anticipates
(:class:`forecaster.errors.AutoscalerError`) become one line on stderr and a non-zero exit code, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from forecaster import __version__
from forecaster.errors import AutoscalerError

PROG = "recharge-autoscaler"

# Modules that contribute subcommands, in the order they appear in --help.
SUBCOMMAND_MODULES = (
    "controller.cli.forecast",
    "controller.cli.job",
    "controller.cli.plan",
    "controller.cli.simulate",
    "controller.cli.whatif",
    "controller.cli.report",
    "controller.cli.run",
    "controller.cli.fleet",
)


class _Parser(argparse.ArgumentParser):
    """argparse parser whose usage errors exit with code 2 and a single clear line.

    Values such as ``-1h`` are read as (bad) values rather than unknown options, so ``--horizon -1h`` gets the
    duration's own error message.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\d+(\.\d+)?[smhdw%]?\S*$")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# Which module registers each subcommand: running one imports only its module, so `forecast` starts without
# the job's, the controller's or the Kubernetes client's imports. --help and unknown commands load them all.
COMMAND_MODULES = {
    "forecast": "controller.cli.forecast",
    "backtest": "controller.cli.forecast",
    "forecast-job": "controller.cli.job",
    "plan": "controller.cli.plan",
    "simulate": "controller.cli.simulate",
    "whatif": "controller.cli.whatif",
    "report": "controller.cli.report",
    "run": "controller.cli.run",
    "fleet": "controller.cli.fleet",
}


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not a root option or its value)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--log-level":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The root parser with every subcommand, or with ``command``'s module only when it is a known one."""
    parser = _Parser(
        prog=PROG,
        description="Forecast recharge traffic and scale the recharge deployment before the load arrives.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity (default: WARNING)",
    )
    parser.add_argument("--log-json", action="store_true", help="write logs as JSON lines on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    modules = (COMMAND_MODULES[command],) if command in COMMAND_MODULES else SUBCOMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    from forecaster.logs import setup_logging

    setup_logging(args.log_level, json_lines=args.log_json)
    try:
        return int(args.func(args) or 0)
    except AutoscalerError as exc:
        from forecaster.redact import redact

        print(redact(f"{PROG} {args.command}: error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
