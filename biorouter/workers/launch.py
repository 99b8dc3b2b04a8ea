"""Run LiteLLM's proxy with N workers as one biorouter deployment: ``python -m biorouter.workers.launch ARGS``.

``ARGS`` are LiteLLM's own CLI arguments (``--config``, ``--port``, ``--num_workers`` ...). Before
handing over to LiteLLM's CLI in this process, the launcher:

* refuses several workers without a shared spend ledger (:func:`require_shared_ledger`);
* empties the workers' shared folder (``BIOROUTER_WORKERS_DIR``, default ``.run/workers``) and,
  with more than one worker, a Prometheus multiprocess folder (``PROMETHEUS_MULTIPROC_DIR``), and
  exports both so every worker inherits them before it imports ``prometheus_client``;
* makes SIGHUP to this (the parent) process a reload of every worker. uvicorn's supervisor would
  otherwise restart the workers one by one, and a new worker that meets a broken file serves its
  first request with an error instead of the last good configuration;
* after LiteLLM returns (every worker stopped), logs one session summary summed over the workers.

``biorouter serve`` (and ``serve --dev``) run this; running ``litellm --num_workers N`` directly also
works (workers meet in a folder named after their parent), but SIGHUP to LiteLLM's parent then
restarts the workers, and biorouter's metrics stay per worker unless ``PROMETHEUS_MULTIPROC_DIR`` is set.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from biorouter.workers.control import ControlFile
from biorouter.workers.topology import WORKERS_DIR_ENV

__all__ = ["main", "num_workers_in", "prepare_environment"]

logger = logging.getLogger("biorouter.workers")

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def num_workers_in(argv: list[str]) -> int:
    """The ``--num_workers`` LiteLLM will use (its ``NUM_WORKERS`` default otherwise)."""
    for index, arg in enumerate(argv):
        if arg == "--num_workers" and index + 1 < len(argv):
            return int(argv[index + 1])
        if arg.startswith("--num_workers="):
            return int(arg.split("=", 1)[1])
    value = os.environ.get("NUM_WORKERS", "1")
    return int(value) if value.isdigit() else 1


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prepare_environment(workers: int, run_dir: Path) -> Path:
    """Empty and export the shared folders; returns the workers' folder."""
    folder = _fresh(Path(os.environ.get(WORKERS_DIR_ENV) or run_dir / "workers").resolve())
    os.environ[WORKERS_DIR_ENV] = str(folder)
    if workers > 1:
        metrics_dir = Path(os.environ.get(METRICS_DIR_ENV) or run_dir / "prometheus").resolve()
        os.environ[METRICS_DIR_ENV] = str(_fresh(metrics_dir))
    return folder


def _forward_sighup(folder: Path) -> bool:
    """SIGHUP to uvicorn's supervisor: one reload event every worker applies, instead of a restart."""
    try:
        from uvicorn.supervisors.multiprocess import Multiprocess
    except ImportError:  # pragma: no cover - uvicorn ships with litellm[proxy]
        return False
    if not hasattr(Multiprocess, "handle_hup"):
        logger.warning("biorouter: this uvicorn has no SIGHUP handler to replace; SIGHUP will restart the workers")
        return False
    control = ControlFile(folder)

    def handle_hup(self: Multiprocess) -> None:
        event = control.publish_reload_request(reason="SIGHUP", by="signal")
        print(f"biorouter: SIGHUP: every worker reloads profiles/ and utterances/ (event {event.seq})", flush=True)

    Multiprocess.handle_hup = handle_hup  # type: ignore[method-assign]
    return True


def _log_summary(folder: Path) -> None:
    from biorouter.workers.tally import combine, read_tallies

    tallies = read_tallies(folder)
    if not tallies:
        return
    summary = combine(tallies, max(tallies, key=lambda t: t.updated_at).summary)
    totals = summary.totals
    groups = ", ".join(f"{g}={c.requests}" for g, c in summary.by_group.items()) or "-"
    print(
        f"biorouter session summary ({len(tallies)} worker processes): profile '{summary.profile}', "
        f"up {summary.uptime_s:.0f} s, {totals.requests} requests, {totals.errors} errors, {totals.refused} refused, "
        f"${totals.cost_usd:.4f}; by group: {groups}",
        flush=True,
    )


def main(argv: list[str] | None = None, *, run_dir: Path = Path(".run")) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    workers = num_workers_in(args)
    if workers > 1:
        from biorouter.errors import ConfigError
        from biorouter.settings import load_settings
        from biorouter.workers.topology import require_shared_ledger

        try:
            require_shared_ledger(load_settings(), workers, source="--workers / --num_workers")
        except ConfigError as e:
            print(f"biorouter: cannot start: {e}", file=sys.stderr)
            return 2
    folder = prepare_environment(workers, run_dir)
    if workers > 1:
        _forward_sighup(folder)
    from litellm.proxy.proxy_cli import run_server

    code = 0
    try:
        run_server.main(args=args, prog_name="litellm", standalone_mode=False)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        _log_summary(folder)
    return code


if __name__ == "__main__":
    sys.exit(main())
