"""A real ``redis-server`` subprocess on 127.0.0.1, for tests and demos of the shared ledger.

Tests kill and restart it to play an outage; with a ``data_dir`` it keeps an append-only file synced
on every write, so, like a production Redis with AOF, the data survives a crash and a restart on the
same port. Readiness is checked with a raw ``PING`` over a socket, so this module needs no client.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from biorouter.testing.standin import free_port

__all__ = ["RedisServer"]

_LIVE: weakref.WeakSet[RedisServer] = weakref.WeakSet()
_TAIL_BYTES = 2000


class RedisServer:
    """One ``redis-server`` on 127.0.0.1:``port``; ``start()`` again after ``stop()`` or ``kill()``."""

    def __init__(self, port: int | None = None, *, data_dir: Path | None = None, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.data_dir = data_dir
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

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
        self._close_log()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- kept open for the process lifetime
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _LIVE.add(self)
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

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (Redis flushes its append-only file and exits), wait up to 5 s, then SIGKILL."""
        if self._proc is not None and self._proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL at once: a crash."""
        if self._proc is not None and self._proc.poll() is None:
            self._signal(signal.SIGKILL)
            self._proc.wait()

    def log_tail(self, size: int = _TAIL_BYTES) -> str:
        """The last ``size`` bytes of the server's output."""
        if self._log is None or self._log.closed:
            return "(no output captured)"
        fd = self._log.fileno()
        end = os.fstat(fd).st_size
        return os.pread(fd, size, max(0, end - size)).decode("utf-8", "replace").strip() or "(no output)"

    def _signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        server.stop()
