"""A real ``redis-server`` subprocess on 127.0.0.1, for tests and demos of the shared ledger.

Tests kill and restart it to play an outage; with a ``data_dir`` it keeps an append-only file synced
on every write, so, like a production Redis with AOF, the data survives a crash and a restart on the
same port. Readiness is checked with a raw ``PING`` over a socket, so this module needs no client.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path
from typing import Self

from biorouter.testing.process import ManagedProcess
from biorouter.testing.standin import free_port

__all__ = ["RedisServer"]


class RedisServer(ManagedProcess):
    """One ``redis-server`` on 127.0.0.1:``port``; ``start()`` again after ``stop()`` or ``kill()``."""

    def __init__(self, port: int | None = None, *, data_dir: Path | None = None, log_path: Path | None = None) -> None:
        super().__init__(log_path)
        self.port = port if port is not None else free_port()
        self.data_dir = data_dir

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"RedisServer(port={self.port}, {state})"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def available() -> bool:
        """Whether ``redis-server`` is on PATH (``make redis`` installs it)."""
        return shutil.which("redis-server") is not None

    def start(self, timeout: float = 10) -> Self:
        """Launch the server and wait until it answers PING; RuntimeError (with its log tail) if it does not."""
        if self.is_running():
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server; or make redis)")
        cmd = [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes"]
        cmd += ["--save", "", "--daemonize", "no"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            cmd += ["--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always"]
        self._spawn(cmd)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + timeout
        while not self._pong():
            code = proc.poll()
            if code is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                why = f"exited with code {code}" if code is not None else f"did not answer PING within {timeout:g} s"
                raise RuntimeError(f"redis-server on port {self.port} {why}; log tail:\n{tail}")
            time.sleep(0.02)

    def _pong(self) -> bool:
        """True when the server answers PING (not while it is still loading its data)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
