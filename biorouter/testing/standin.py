"""Run stand-in upstreams (:mod:`biorouter.testing.upstream`) as real subprocesses.

Tests and ``make run`` use these to put real HTTP servers on loopback in place of the vLLM
servers and cloud APIs; a stand-in is not a model.  Each :class:`StandIn` is one process in its
own session, controlled over HTTP (``/stats``, ``/admin/*``) with synchronous httpx calls.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from biorouter.testing.process import ManagedProcess
from biorouter.testing.upstream import Fault


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StandIn(ManagedProcess):
    """One stand-in upstream subprocess named ``name`` listening on 127.0.0.1:``port``."""

    def __init__(
        self,
        name: str,
        port: int | None = None,
        fault: Fault | None = None,
        log_path: Path | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__(log_path)
        self.name = name
        self.port = port if port is not None else free_port()
        self.fault = fault or Fault()
        self.seed = seed

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"StandIn({self.name!r}, port={self.port}, {state})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.url + "/v1"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 20) -> StandIn:
        """Launch the process and wait until ``/health`` answers; RuntimeError if it does not."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the process without waiting for it (see :meth:`wait_ready`)."""
        if self.is_running():
            raise RuntimeError(f"stand-in {self.name!r} on port {self.port} is already running")
        cmd = [
            sys.executable,
            "-m",
            "biorouter.testing.upstream",
            "--port",
            str(self.port),
            "--name",
            self.name,
        ]
        f = self.fault
        cmd += [
            "--error-rate",
            str(f.error_rate),
            "--status",
            str(f.status),
            "--latency-ms",
            str(f.latency_ms),
        ]
        if f.down:
            cmd.append("--down")
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        self._spawn(cmd)

    def wait_ready(self, timeout: float = 20) -> None:
        """Poll ``/health`` until this very process answers; stop it and raise RuntimeError if not."""
        proc = self._proc
        if proc is None:
            raise RuntimeError(f"stand-in {self.name!r} was never launched")
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                code = proc.poll()
                if code is not None:
                    tail = self.log_tail()
                    self.stop()
                    raise RuntimeError(
                        f"stand-in {self.name!r} on port {self.port} exited with code {code} "
                        f"before becoming ready; log tail:\n{tail}"
                    )
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    body = client.get(self.url + "/health").json()
                    if isinstance(body, dict) and body.get("pid") == proc.pid:
                        return
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    self.stop()
                    raise RuntimeError(
                        f"stand-in {self.name!r} on port {self.port} not ready after {timeout:g} s; log tail:\n{tail}"
                    )
                time.sleep(0.05)

    # -- control over HTTP --------------------------------------------------------------------

    def _call(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            resp = client.request(method, self.url + path, json=json)
        body: Any = resp.json()
        if resp.status_code != 200:
            message = body.get("error", {}).get("message", resp.text) if isinstance(body, dict) else resp.text
            raise ValueError(f"stand-in {self.name!r}: {method} {path} -> {resp.status_code}: {message}")
        if not isinstance(body, dict):
            raise TypeError(f"stand-in {self.name!r}: {path} did not return a JSON object")
        return body

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def reset(self) -> None:
        self._call("POST", "/admin/reset")

    def set_fault(self, **fields: Any) -> dict[str, Any]:
        """Change some fault fields (see :class:`Fault`); ValueError if the stand-in rejects them."""
        return self._call("POST", "/admin/fault", json=fields)

    def get_fault(self) -> dict[str, Any]:
        return self._call("GET", "/admin/fault")

    def clear_fault(self) -> None:
        self._call("POST", "/admin/fault/clear")

    def set_canary(self, regex: str | None) -> dict[str, Any]:
        """Count requests carrying text that matches ``regex`` (stats ``canary_hits``); None switches it off."""
        return self._call("POST", "/admin/canary", json={"regex": regex})

    def set_answer(self, content: str | None) -> dict[str, Any]:
        """Answer every chat request with ``content`` (None: echo the request again, the default)."""
        return self._call("POST", "/admin/answer", json={"content": content})


class StandInFleet:
    """Several stand-ins started concurrently; ``fleet[name]`` is one of them."""

    def __init__(
        self,
        members: Iterable[str | StandIn],
        *,
        faults: Mapping[str, Fault] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self._members: dict[str, StandIn] = {}
        for member in members:
            if isinstance(member, str):
                log = log_dir / f"{member}.log" if log_dir is not None else None
                member = StandIn(member, fault=(faults or {}).get(member), log_path=log)
            if member.name in self._members:
                raise ValueError(f"duplicate stand-in name {member.name!r}")
            self._members[member.name] = member

    @property
    def names(self) -> list[str]:
        return list(self._members)

    def __getitem__(self, name: str) -> StandIn:
        return self._members[name]

    def __iter__(self) -> Iterator[StandIn]:
        return iter(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    def start(self, timeout: float = 20) -> StandInFleet:
        """Launch every process, then wait for all; on any failure stop them all and re-raise."""
        deadline = time.monotonic() + timeout
        try:
            for member in self:
                member.launch()
            for member in self:
                member.wait_ready(max(0.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for member in self:
            member.stop()

    def reset_all(self) -> None:
        for member in self:
            member.reset()

    def clear_faults(self) -> None:
        for member in self:
            member.clear_fault()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
