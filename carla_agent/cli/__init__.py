"""Command line: ``carla-agent <command>`` or ``python -m carla_agent <command>``.

Each command module adds its own subparsers (``add_parsers``); :func:`main` parses,
sets up logging and turns the package's own errors into one line on stderr with
exit code 2; Ctrl-C and SIGTERM exit with 130 after cleanup.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import List, Optional

from carla_agent.cli import drive, evaluate, network, runs, serve, sweep
from carla_agent.errors import CarlaAgentError
from carla_agent.interrupts import sigterm_as_ctrl_c
from carla_agent.network.tensorflow_logs import quiet_tensorflow_import

COMMAND_MODULES = (drive, runs, sweep, evaluate, serve, network)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are the one line and a pointer to ``-h``: the full usage
    (18 lines for ``drive``) printed first buried the line that says what was wrong."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n(all options: {self.prog} -h)\n")


def build_parser(prog: str = "carla-agent") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog,
                                     description="Drive a steering network in CARLA or the embedded simulator, "
                                                 "and see where it looks.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug); TensorFlow's own log lines too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def parse_args(argv: Optional[List[str]] = None, prog: str = "carla-agent") -> argparse.Namespace:
    """Parse a command line; ``verbose`` counts ``-v`` before and after the command."""
    args = build_parser(prog).parse_args(argv)
    args.verbose += getattr(args, "verbose_after", 0)
    return args


def main(argv: Optional[List[str]] = None, prog: str = "carla-agent") -> int:
    """Run one command; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    args = parse_args(argv, prog)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Before any command imports TensorFlow: its C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL
    # (see carla_agent.network.tensorflow_logs). -v brings them back, as does the variable set to 0.
    quiet_tensorflow_import(level=0 if args.verbose else 2)
    if not getattr(args, "command", None):
        build_parser(prog).print_help()
        return 2
    previous = sigterm_as_ctrl_c()
    try:
        return int(args.func(args) or 0)
    except CarlaAgentError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


__all__ = ["build_parser", "main", "parse_args"]
