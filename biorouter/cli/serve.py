"""``biorouter serve --dev``: the whole stack on this machine, for demos and development.

Starts an OpenAI-compatible stand-in upstream for every deployment group of the profile (stand-ins
for vLLM and the cloud APIs: they answer with their own name, they are not models), writes a
LiteLLM config pointing those groups at them, and runs a real ``litellm`` proxy with the biorouter
hook on 127.0.0.1. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run stand-in upstreams + the LiteLLM proxy with biorouter (demo)", description=__doc__
    )
    parser.add_argument("--dev", action="store_true", help="serve the profile's groups from local stand-ins")
    parser.add_argument(
        "--profile",
        help="profile whose groups to stand in for (default: the active one; 'auto' means development)",
    )
    parser.add_argument("--port", type=int, help="proxy port (default: BIOROUTER_PORT or 4000)")
    parser.add_argument("--run-dir", type=Path, default=Path(".run"), help="logs and generated config go here")
    parser.set_defaults(handler=run)


def _banner(url: str, key: str, generated: bool, profile: str, groups: list[str], run_dir: Path) -> str:
    origin = "generated for this run" if generated else "from LITELLM_MASTER_KEY"
    return f"""
biorouter is serving on {url}  (profile '{profile}'; stand-ins for: {", ".join(groups)})
master key ({origin}): {key}

  curl {url}/v1/chat/completions -H "Authorization: Bearer {key}" \\
       -H "Content-Type: application/json" -i \\
       -d '{{"model": "auto", "messages": [{{"role": "user",
             "content": "write a snakemake rule that aligns reads with bwa"}}]}}'

  python: openai.OpenAI(base_url="{url}/v1", api_key="{key}").chat.completions.create(model="auto", messages=[...])

The decision is in the x-biorouter-* response headers and in {run_dir / "proxy.log"}.
Press Ctrl-C to stop.
"""


def run(args: argparse.Namespace) -> int:
    from biorouter.errors import BiorouterError
    from biorouter.profiles import load_profile
    from biorouter.settings import load_settings
    from biorouter.testing.devstack import DevStack, ProxyStartError

    if not args.dev:
        raise BiorouterError(
            "only --dev is served by this command; in production run "
            "'litellm --config litellm_config/config.yaml' (see README.md)"
        )
    settings = load_settings()
    # The demo stands in for real servers, so hardware selection has nothing to select: 'auto' means development.
    profile_name = args.profile or (settings.active_profile if settings.active_profile != "auto" else "development")
    profile = load_profile(settings.profiles_path / f"{profile_name}.yaml")
    port = args.port or int(os.environ.get("BIOROUTER_PORT", "4000"))
    configured_key = os.environ.get("LITELLM_MASTER_KEY")
    groups = sorted(profile.groups())
    env = {"BIOROUTER_HOME": str(settings.home), "BIOROUTER_PROFILE": profile_name}
    run_dir = args.run_dir.resolve()
    stack = DevStack(
        settings.litellm_config_path, groups, run_dir=run_dir, port=port, master_key=configured_key, env=env
    )
    try:
        stack.proxy.check_port()  # a busy port fails here, naming it, before anything starts
    except ProxyStartError as e:
        raise BiorouterError(f"cannot serve on port {port}: {e}; pass --port N or set BIOROUTER_PORT") from e
    print(f"starting {len(groups)} stand-ins and the LiteLLM proxy on 127.0.0.1:{port} ...", flush=True)
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        stack.start()
    except ProxyStartError as e:
        raise BiorouterError(f"{e}\n(full log: {run_dir / 'proxy.log'})") from e
    try:
        key, generated = stack.proxy.master_key, configured_key is None
        print(_banner(stack.proxy.url, key, generated, profile_name, groups, run_dir), flush=True)
        try:
            while not stop and stack.proxy.is_running():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        if not stack.proxy.is_running():
            print(
                f"the proxy on port {port} exited: {stack.proxy.exit_reason()}\n(full log: {run_dir / 'proxy.log'})",
                file=sys.stderr,
            )
            return 1
    finally:
        stack.stop()
    print("stopped")
    return 0
