"""A child process in its own session with its output captured: what every test server here is.

Stand-in upstreams and ``redis-server`` share this lifecycle: start with output to a log file (or
a temporary file), stop with SIGTERM then SIGKILL, kill to play a crash, read the log's tail for
error messages. Each runs in its own session so a signal reaches any children it started, and
every process still running when the interpreter exits is stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = ["ManagedProcess"]

_LIVE: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()
_TAIL_BYTES = 2000


class ManagedProcess:
    """Base of the test servers; subclasses build the command and define ``start()``."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def _spawn(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``command`` with stdout and stderr into the log."""
        self._close_log()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 -- kept open for the process lifetime
        self._proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
        _LIVE.add(self)
        return self._proc

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, wait up to 5 s, then SIGKILL."""
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
        """The last ``size`` bytes of the process output (stdout and stderr)."""
        if self._log is None or self._log.closed:
            return "(no output captured)"
        fd = self._log.fileno()
        end = os.fstat(fd).st_size
        data = os.pread(fd, size, max(0, end - size))  # pread: leaves the shared file offset alone
        return data.decode("utf-8", "replace").strip() or "(no output)"

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
    for process in list(_LIVE):
        process.stop()
