"""``biorouter reload``: make the running proxy re-read profiles/ and utterances/ (admin key).

Calls ``POST /biorouter/reload`` with the key in ``--key`` or ``LITELLM_MASTER_KEY``. The proxy
validates every file exactly as ``biorouter validate`` does and swaps the new configuration in
atomically; when anything is wrong it answers with every problem, keeps serving the last good
configuration, and this command exits 1. ``kill -HUP <proxy pid>`` does the same without a key
(the result is then in the proxy log and in ``biorouter status``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    from biorouter.cli.status import _connection_arguments

    parser = subparsers.add_parser(
        "reload", help="reload profiles/ and utterances/ in the running proxy (admin key)", description=__doc__
    )
    parser.add_argument("--reason", default="biorouter reload", help="why (recorded in the proxy log and status)")
    _connection_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from biorouter.cli.status import _call

    payload = _call(args, "POST", "/biorouter/reload", {"reason": args.reason})
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    last = payload.get("last_reload") or {}
    print(f"reloaded: generation {payload['generation']}, profile '{payload['profile']}' ({last.get('seconds', 0)} s)")
    for warning in last.get("warnings") or ():
        print(f"warning     {warning}")
    return 0
