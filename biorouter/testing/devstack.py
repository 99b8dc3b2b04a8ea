"""A whole biorouter deployment on loopback: stand-in upstreams plus a real LiteLLM proxy.

``make run`` and the proxy tests both use this, so the demo a newcomer sees is the very path the
tests prove. Each deployment group of the chosen profile gets a stand-in upstream; the platform's
``litellm_config/config.yaml`` is copied with those groups' ``litellm_params`` pointed at the
stand-ins (an overlay, written to a file of its own, never over the real config), and a real
``litellm`` proxy process serves it with the biorouter hook on 127.0.0.1.
"""

from __future__ import annotations

import copy
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Self

import httpx
import yaml

from biorouter.costs.prices import Prices, group_prices
from biorouter.errors import ConfigError
from biorouter.offline import apply as offline_env
from biorouter.routing.catalogue import parse_model_list
from biorouter.serving.validate import STANDIN_MARK
from biorouter.testing.ports import PortInUseError, ensure_port_free, port_owned_by_session
from biorouter.testing.standin import StandInFleet, free_port

__all__ = ["DevStack", "ProxyProcess", "ProxyStartError", "standin_config"]

STANDIN_API_KEY = "standin-not-a-secret"


class ProxyStartError(RuntimeError):
    """The proxy could not start (port taken, exited, not ready); the message names the port and why."""


def _reason_line(log: str) -> str:
    """The log line that says why the proxy died (a bind error, else the last error, else the last line)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for needle in ("address already in use", "error", "exception"):
        for line in reversed(lines):
            if needle in line.lower():
                return line
    return lines[-1] if lines else "(no output)"


def standin_config(config: Mapping[str, Any], api_bases: Mapping[str, str]) -> dict[str, Any]:
    """``config`` (LiteLLM YAML as a dict) restricted to ``api_bases``' groups, pointed at them.

    Locality, mode and context window (``model_info``) are kept, so governance and routing are
    judged exactly as in production; only the transport changes. Cloud groups become
    OpenAI-compatible stand-ins too, priced as the real group is (its ``model_info`` prices or
    LiteLLM's price map for its real model), so budgets, spend and downgrades show in the demo;
    local groups cost nothing, as on the platform.
    """
    prices = _real_prices(config, api_bases)
    result = copy.deepcopy(dict(config))
    model_list = []
    for entry in result.get("model_list", []):
        group = entry.get("model_name")
        if str((entry.get("litellm_params") or {}).get("model", "")).startswith("biorouter/"):
            model_list.append(entry)  # biorouter's own pseudo group (strategies) runs in the proxy: kept as is
            continue
        if group not in api_bases:
            continue
        entry["litellm_params"] = {
            "model": f"openai/{group}",
            "api_base": api_bases[group],
            "api_key": STANDIN_API_KEY,
        }
        info = dict(entry.get("model_info") or {})
        price = prices.get(group)
        info.update(
            {
                "input_cost_per_token": price.input_per_token if price is not None else 0,
                "output_cost_per_token": price.output_per_token if price is not None else 0,
                STANDIN_MARK: True,  # 'biorouter validate' then notes the profiles this list cannot serve
            }
        )
        entry["model_info"] = info
        model_list.append(entry)
    result["model_list"] = model_list
    settings = dict(result.get("router_settings") or {})
    if "fallbacks" in settings:
        kept = []
        for item in settings["fallbacks"]:
            for group, chain in dict(item).items():
                chain = [g for g in chain if g in api_bases]
                if group in api_bases and chain:
                    kept.append({group: chain})
        settings["fallbacks"] = kept
    result["router_settings"] = settings
    return result


def _real_prices(config: Mapping[str, Any], groups: Iterable[str]) -> dict[str, Prices | None]:
    """What each of ``groups`` costs on the platform (None: no known price, the stand-in then costs $0)."""
    wanted = set(groups)
    entries = [e for e in config.get("model_list") or [] if isinstance(e, dict) and e.get("model_name") in wanted]
    try:
        deployments = parse_model_list(entries)
    except ConfigError:
        return {}  # a malformed entry: the proxy reports it; the demo is then unpriced
    return group_prices(deployments)


class ProxyProcess:
    """``litellm --config CONFIG`` as a subprocess on 127.0.0.1, with the offline environment."""

    def __init__(
        self,
        config_path: Path,
        *,
        port: int | None = None,
        master_key: str | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        workers: int = 1,
    ) -> None:
        self.config_path = config_path
        self.workers = workers
        self.port = port or free_port()
        self.master_key = master_key or f"sk-local-{secrets.token_urlsafe(18)}"
        self.log_path = log_path
        self._extra_env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        offline_env()
        env.update({k: os.environ[k] for k in ("HF_HUB_OFFLINE", "LITELLM_LOCAL_MODEL_COST_MAP", "TIKTOKEN_CACHE_DIR")})
        env.update({"LITELLM_MASTER_KEY": self.master_key, "BIOROUTER_WARMUP": "1", "PYTHONUNBUFFERED": "1"})
        env.update(self._extra_env)
        return env

    def check_port(self) -> None:
        """ProxyStartError naming the port when another server already listens on it."""
        try:
            ensure_port_free("127.0.0.1", self.port)
        except PortInUseError as e:
            raise ProxyStartError(str(e)) from e

    def start(self, timeout: float = 120) -> Self:
        self.check_port()
        arguments = ["--config", str(self.config_path), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers > 1:  # the launcher biorouter serve runs: shared folders, SIGHUP to every worker
            command = [sys.executable, "-m", "biorouter.workers.launch", *arguments, "--num_workers", str(self.workers)]
            run_dir = self.log_path.parent if self.log_path is not None else Path(tempfile.mkdtemp(prefix="biorouter-"))
            self._extra_env.setdefault("BIOROUTER_WORKERS_DIR", str(run_dir / f"workers-{self.port}"))
            self._extra_env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(run_dir / f"prometheus-{self.port}"))
        else:
            command = [str(Path(sys.executable).parent / "litellm"), *arguments]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a+b")
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- kept open for the process lifetime
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,
        )
        self.wait_ready(timeout)
        return self

    def log_tail(self, size: int = 4000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        length = self._log.tell()
        self._log.seek(max(0, length - size))
        return self._log.read().decode("utf-8", "replace")

    def wait_ready(self, timeout: float) -> None:
        """Until *our* proxy answers its liveness probe; ProxyStartError naming the port and why otherwise.

        Another server on the port answers the probe too, so an answer counts only while our process
        lives and (where the OS tells) the listening socket is one of its session's. With several
        workers, also until every worker has joined (``/biorouter/status`` lists them all).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                tail = self.log_tail()
                raise ProxyStartError(
                    f"the litellm proxy for port {self.port} exited during start-up: {_reason_line(tail)}\n"
                    f"log tail:\n{tail}"
                )
            try:
                answered = (
                    httpx.get(self.url + "/health/liveliness", timeout=2).status_code == 200 and self._all_joined()
                )
            except httpx.HTTPError:
                answered = False
            if answered and port_owned_by_session(self.port, self._proc.pid) is not False:
                return
            time.sleep(0.3)
        self.stop()
        raise ProxyStartError(
            f"the litellm proxy on port {self.port} was not ready after {timeout:.0f} s; log tail:\n{self.log_tail()}"
        )

    def exit_reason(self) -> str:
        """Why the proxy stopped, as one log line (for a proxy that exited after starting)."""
        return _reason_line(self.log_tail())

    def _all_joined(self) -> bool:
        if self.workers <= 1:
            return True
        headers = {"Authorization": f"Bearer {self.master_key}"}
        response = httpx.get(self.url + "/biorouter/status", headers=headers, timeout=5)
        if response.status_code == 404:  # a proxy without the biorouter hook (the bench's pass-through)
            return True
        return response.status_code == 200 and len(response.json().get("workers") or ()) >= self.workers

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The proxy's process id (SIGHUP to it reloads biorouter's configuration)."""
        if self._proc is None:
            raise RuntimeError("the proxy is not started")
        return self._proc.pid

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
        if self._log is not None and self.log_path is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DevStack:
    """Stand-ins for ``groups`` plus a proxy over the overlay config: the whole demo."""

    def __init__(
        self,
        base_config: Path,
        groups: Iterable[str],
        *,
        run_dir: Path,
        port: int | None = None,
        master_key: str | None = None,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
    ) -> None:
        self.base_config = base_config
        self.groups = sorted(set(groups))
        self.run_dir = run_dir
        self.fleet = StandInFleet(self.groups, log_dir=run_dir / "standins")
        self.config_path = run_dir / "litellm.standins.yaml"
        self.proxy = ProxyProcess(
            self.config_path, port=port, master_key=master_key, env=env, log_path=run_dir / "proxy.log", workers=workers
        )

    def start(self, timeout: float = 180) -> Self:
        self.proxy.check_port()  # before any stand-in starts: a busy port fails at once, naming it
        self.run_dir.mkdir(parents=True, exist_ok=True)
        base = yaml.safe_load(self.base_config.read_text(encoding="utf-8")) or {}
        self.fleet.start()
        try:
            overlay = standin_config(base, {name: self.fleet[name].api_base for name in self.groups})
            header = f"# generated from {self.base_config} for local stand-ins; do not edit\n"
            self.config_path.write_text(header + yaml.safe_dump(overlay, sort_keys=False), encoding="utf-8")
            self.proxy.start(timeout)
        except BaseException:
            self.fleet.stop()
            raise
        return self

    def stop(self) -> None:
        self.proxy.stop()
        self.fleet.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
