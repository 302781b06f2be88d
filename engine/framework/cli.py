"""`engine` entry point: builds the parser from engine.framework.commands and turns user errors into one line."""
from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from engine.framework.commands import COMMANDS
from engine.errors import EngineError, ModelError
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
    parser = argparse.ArgumentParser(prog="engine", description="Real-time human action recognition over ZeroMQ.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in modules.values():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    modules = _command_modules()
    args = build_parser(modules).parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
