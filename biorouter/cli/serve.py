"""``biorouter serve``: the LiteLLM proxy with biorouter, in as many worker processes as the machine has cores.

``biorouter serve`` runs LiteLLM's own proxy on ``litellm_config`` through biorouter's launcher
(:mod:`biorouter.workers.launch`): ``--workers N`` (default: this machine's cores) becomes LiteLLM's
``--num_workers``; with more than one worker the spend ledger must be shared (``ledger.redis_url``
or ``REDIS_URL``), and reloads, profile switches, status and metrics cover every worker.

``biorouter serve --dev`` is the whole stack on this machine, for demos and development: an
OpenAI-compatible stand-in upstream for every deployment group of the profile (stand-ins for vLLM
and the cloud APIs: they answer with their own name, they are not models), a LiteLLM config
pointing those groups at them, and the proxy with the biorouter hook on 127.0.0.1. With several
workers and no Redis configured it starts a local ``redis-server`` for the ledger when one is
installed, else it serves with one worker and says so. Ctrl-C stops everything.
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
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"proxy worker processes (default: this machine's cores, {default_workers()}); more than one needs "
        "a shared ledger (ledger.redis_url or REDIS_URL)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (not --dev; default 127.0.0.1)")
    parser.set_defaults(handler=run)


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _serve_production(args: argparse.Namespace, workers: int) -> int:
    """LiteLLM's proxy over the real ``litellm_config``, through the launcher (returns when it stops)."""
    from biorouter.offline import apply as offline_env
    from biorouter.settings import load_settings
    from biorouter.workers.launch import main as launch

    settings = load_settings()
    offline_env()
    os.environ.setdefault("BIOROUTER_WARMUP", "1")
    os.environ.setdefault("BIOROUTER_HOME", str(settings.home))
    port = args.port or int(os.environ.get("BIOROUTER_PORT", "4000"))
    litellm_args = ["--config", str(settings.litellm_config_path), "--host", args.host, "--port", str(port)]
    print(f"starting the LiteLLM proxy with biorouter on {args.host}:{port}, {workers} worker(s) ...", flush=True)
    return launch([*litellm_args, "--num_workers", str(workers)], run_dir=args.run_dir.resolve())


def _dev_ledger(settings: Any, workers: int, run_dir: Path) -> tuple[int, dict[str, str], Any]:
    """Several demo workers need a shared ledger: the configured one, else a local redis-server, else one worker."""
    if workers <= 1 or settings.ledger.url is not None:
        return workers, {}, None
    from biorouter.testing.redis import RedisServer

    if not RedisServer.available():
        print(
            f"note: {workers} workers need a shared ledger (ledger.redis_url or REDIS_URL) and redis-server is not "
            "installed (make redis): serving with one worker",
            flush=True,
        )
        return 1, {}, None
    redis = RedisServer(data_dir=run_dir / "redis", log_path=run_dir / "redis.log").start()
    print(f"started redis-server on {redis.url} for the shared ledger of {workers} workers", flush=True)
    return workers, {"REDIS_URL": redis.url}, redis


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
    from biorouter.routing.profiles import load_profile
    from biorouter.settings import load_settings

    workers = args.workers if args.workers is not None else default_workers()
    if workers < 1:
        raise BiorouterError(f"--workers must be at least 1, not {workers}")
    if not args.dev:
        return _serve_production(args, workers)
    settings = load_settings()
    # The demo stands in for real servers, so hardware selection has nothing to select: 'auto' means development.
    profile_name = args.profile or (settings.active_profile if settings.active_profile != "auto" else "development")
    profile = load_profile(settings.profiles_path / f"{profile_name}.yaml")
    port = args.port or int(os.environ.get("BIOROUTER_PORT", "4000"))
    configured_key = os.environ.get("LITELLM_MASTER_KEY")
    groups = sorted(profile.groups())
    env = {"BIOROUTER_HOME": str(settings.home), "BIOROUTER_PROFILE": profile_name}
    run_dir = args.run_dir.resolve()
    workers, ledger_env, redis = _dev_ledger(settings, workers, run_dir)
    env.update(ledger_env)
    try:
        return _serve_dev_stack(settings, groups, profile_name, port, configured_key, env, run_dir, workers)
    finally:
        if redis is not None:
            redis.stop()


def _serve_dev_stack(
    settings: Any,
    groups: list[str],
    profile_name: str,
    port: int,
    configured_key: str | None,
    env: dict[str, str],
    run_dir: Path,
    workers: int,
) -> int:
    """Stand-ins and the proxy until Ctrl-C or SIGTERM; 1 when the proxy dies on its own."""
    from biorouter.errors import BiorouterError
    from biorouter.testing.devstack import DevStack, ProxyStartError

    stack = DevStack(
        settings.litellm_config_path,
        groups,
        run_dir=run_dir,
        port=port,
        master_key=configured_key,
        env=env,
        workers=workers,
    )
    try:
        stack.proxy.check_port()  # a busy port fails here, naming it, before anything starts
    except ProxyStartError as e:
        raise BiorouterError(f"cannot serve on port {port}: {e}; pass --port N or set BIOROUTER_PORT") from e
    print(
        f"starting {len(groups)} stand-ins and the LiteLLM proxy on 127.0.0.1:{port}, {workers} worker(s) ...",
        flush=True,
    )
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
