"""``biorouter status`` and ``biorouter switch``: the running proxy's session, and changing its profile.

Both talk to the proxy's biorouter endpoints (``GET /biorouter/status``, ``POST /biorouter/profile``)
with the key in ``--key`` or ``LITELLM_MASTER_KEY``. Switching needs the proxy admin (master) key
and a reason; the proxy logs who switched and why.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

__all__ = ["register", "run_status", "run_switch"]


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help="the proxy (default: http://127.0.0.1:PORT, PORT from BIOROUTER_PORT as for 'serve --dev', else 4000)",
    )
    parser.add_argument("--key", help="API key (default: LITELLM_MASTER_KEY)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the proxy's answer as JSON")


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="the running proxy's profile and session statistics", description=__doc__
    )
    _connection_arguments(status)
    status.set_defaults(handler=run_status)
    switch = subparsers.add_parser(
        "switch", help="make another profile active in the running proxy (admin key; logged)", description=__doc__
    )
    switch.add_argument("profile", help="the profile to make active")
    switch.add_argument("--reason", required=True, help="why (recorded in the proxy log and the session)")
    _connection_arguments(switch)
    switch.set_defaults(handler=run_switch)


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    import httpx

    from biorouter.errors import BiorouterError

    key = args.key or os.environ.get("LITELLM_MASTER_KEY")
    if not key:
        raise BiorouterError("no API key: pass --key or set LITELLM_MASTER_KEY")
    args.url = args.url or f"http://127.0.0.1:{os.environ.get('BIOROUTER_PORT') or '4000'}"
    url = args.url.rstrip("/") + path
    try:
        response = httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=args.timeout
        )
    except httpx.HTTPError as e:
        raise BiorouterError(f"cannot reach the proxy at {args.url}: {e}") from e
    if response.status_code == 404:
        raise BiorouterError(f"{url}: not found; is this a LiteLLM proxy with the biorouter callback?")
    if response.status_code != 200:
        try:
            detail = response.json().get("detail") or response.json().get("error", {}).get("message")
        except ValueError:
            detail = response.text
        raise BiorouterError(f"{url}: HTTP {response.status_code}: {detail}")
    payload: dict[str, Any] = response.json()
    return payload


def _print_status(payload: dict[str, Any]) -> None:
    session = payload["session"]
    totals = session["totals"]
    print(f"profile     {payload['profile']}  ({session['selected']})")
    for warning in session.get("warnings") or ():
        print(f"warning     {warning}")
    print(f"since       {session['started_at']}  (up {session['uptime_s']:.0f} s)")
    if "generation" in payload:
        print(f"config      generation {payload['generation']}, loaded {payload['loaded_at']}")
    last = payload.get("last_reload")
    if last:
        print(f"last reload {last['at']}: {last['outcome']} ({last['reason']}, by {last['by']})")
        for problem in last.get("problems") or ():
            print(f"  {problem}")
    for degraded in payload.get("degraded") or ():
        print(f"degraded    {degraded}")
    print(
        f"requests    {totals['requests']}  errors {totals['errors']}  refused (kept local) {totals['refused']}  "
        f"cost ${totals['cost_usd']:.4f}"
    )
    for title, key in (("by task", "by_task"), ("by group", "by_group")):
        rows = session.get(key) or {}
        if rows:
            print(f"{title}:")
            for name, counter in rows.items():
                print(
                    f"  {name:<20} {counter['requests']:>7} requests {counter['errors']:>5} errors "
                    f"{counter['refused']:>5} refused  ${counter['cost_usd']:.4f}"
                )
    for worker in payload.get("workers") or ():  # several proxy workers: the counts above are their sum
        print(
            f"worker      pid {worker['pid']}: generation {worker['generation']}, profile '{worker['profile']}', "
            f"{worker['requests']} requests (as of {worker['updated_at']})"
        )
    for switch in session.get("switches") or ():
        print(
            f"switched    {switch['time']}: {switch['previous']} -> {switch['profile']} by {switch['by']}: "
            f"{switch['reason']}"
        )


def run_status(args: argparse.Namespace) -> int:
    payload = _call(args, "GET", "/biorouter/status")
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        _print_status(payload)
    return 0


def run_switch(args: argparse.Namespace) -> int:
    payload = _call(args, "POST", "/biorouter/profile", {"profile": args.profile, "reason": args.reason})
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        _print_status(payload)
    return 0
