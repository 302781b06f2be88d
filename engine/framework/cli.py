"""`engine` entry point: builds the parser from engine.framework.commands and turns user errors into one line."""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
from types import ModuleType

from engine.framework.commands import COMMANDS
from engine.framework.commands.needs import extra_module, missing_extra_error
from engine.errors import EngineError, ModelError
from engine.framework.options import Parser
from pose.base import PoseError


def _command_modules() -> dict[str, ModuleType]:
    modules = {}
    for name in COMMANDS:
        try:
            modules[name] = importlib.import_module(f"engine.framework.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"engine.framework.commands.{name}":
                raise
    return modules


def build_parser(modules: dict[str, ModuleType]) -> argparse.ArgumentParser:
    # Parser: no prefix matching; every sub-command's parser is built of the same class.
    parser = Parser(prog="engine", description="Real-time human action recognition over ZeroMQ.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in modules.values():
        module.add_parser(sub)
    return parser


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The sub-command's own parser (`engine prepare mhad`), so a usage error names its --help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return _innermost(action.choices[getattr(args, action.dest)], args)
    return parser


def parse(modules: dict[str, ModuleType], argv: list[str] | None) -> argparse.Namespace:
    """The command line, every flag spelled out in full; an unknown one is refused by its command's parser."""
    parser = build_parser(modules)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _innermost(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def stop_on_sigint() -> None:
    """SIGINT stops every command, as it stops `engine run` and the stages (their own handlers).

    A background job of a script (`engine listen ... &`) starts with SIGINT ignored, and Python
    then never raises KeyboardInterrupt: SIGINT would leave such a command running until killed.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    stop_on_sigint()
    modules = _command_modules()
    args = parse(modules, argv)
    try:
        return int(modules[args.command].run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (EngineError, PoseError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        # pose/ sits below the engine and knows no exit codes: a missing weights file is like a bad model file.
        return getattr(exc, "exit_code", ModelError.exit_code)
    except ImportError as exc:
        # A training-extra module imported late, past the command's own check: the same one line.
        module = extra_module(exc)
        if module is None or args.debug:
            raise
        error = missing_extra_error(args.command, module, exc)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
