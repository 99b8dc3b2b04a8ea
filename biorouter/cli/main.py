"""Entry point of the ``biorouter`` command.

Each subcommand lives in its own module with ``register(subparsers)`` and ``run(args)``; this
file only wires them, so ``biorouter --help`` imports nothing heavy and answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from biorouter import __version__
from biorouter.errors import BiorouterError

__all__ = ["main"]

COMMANDS = {
    "route": "biorouter.cli.route",
    "validate": "biorouter.cli.validate",
    "eval": "biorouter.cli.evaluate",
    "serve": "biorouter.cli.serve",
    "audit": "biorouter.cli.audit",
    "detect": "biorouter.cli.detect",
    "profiles": "biorouter.cli.profiles",
    "select": "biorouter.cli.select",
    "status": "biorouter.cli.status",
    "reload": "biorouter.cli.reload",
    "spend": "biorouter.cli.spend",
    "prepare": "biorouter.cli.prepare",
    "tune": "biorouter.cli.tune",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="biorouter",
        description="Task-aware, governance-first routing of LLM requests on top of LiteLLM.",
    )
    parser.add_argument("--version", action="version", version=f"biorouter {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        code: int = args.handler(args)
        sys.stdout.flush()
    except BiorouterError as e:  # ConfigError included: it lists every problem
        print(f"biorouter {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader stopped early (`biorouter validate | head`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout again at exit
        return 128 + 13  # as a process ended by SIGPIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
