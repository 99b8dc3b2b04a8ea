"""The control file: reloads and profile switches as numbered events every worker applies once.

A reload or a switch arrives at one worker (an HTTP request lands where the kernel puts it; SIGHUP
goes to one pid). That worker does it first, so its caller gets the validation errors, and then
appends the event here; every other worker sees the sequence number move (one ``stat`` every half
second) and applies the same event. A worker started later (a crash, ``--max_requests_before_restart``)
reads the file when it builds its engine and takes the active profile and generation from it.

Why a file and not Redis pub/sub or signals to worker pids: the workers of one proxy are on one
host by construction, the file needs no server (reloads keep working while Redis is down), a worker
that was busy or restarting misses nothing (it compares numbers, it does not wait for a message),
and pids change under a supervisor that restarts workers. Writers take an ``flock`` on a lock
file and replace the file atomically (write, fsync, rename), so a reader never sees half an event.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["ControlEvent", "ControlFile", "ControlState"]

EventKind = Literal["reload", "switch"]
_KEPT = 50  # events kept in the file (the newest); a worker only needs the last one to catch up


class ControlEvent(BaseModel):
    """One configuration change, as the worker that made it saw the result."""

    model_config = ConfigDict(frozen=True)

    seq: int = Field(ge=1)
    kind: EventKind
    profile: str = Field(description="the active profile after the event")
    generation: int = Field(ge=1, description="the configuration generation after the event")
    reason: str
    by: str
    at: datetime
    origin_pid: int = Field(description="the worker that made the change (0: the launcher, on SIGHUP)")


class ControlState(BaseModel):
    """The file's content: the events so far (newest last, at most ``_KEPT``)."""

    events: list[ControlEvent] = Field(default_factory=list)

    @property
    def last(self) -> ControlEvent | None:
        return self.events[-1] if self.events else None

    @property
    def seq(self) -> int:
        return self.events[-1].seq if self.events else 0


class ControlFile:
    """``control.json`` (and its lock) in the workers' shared folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "control.json"
        self._lock_path = folder / "control.lock"
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) of the last read
        self._cached = ControlState()

    def read(self) -> ControlState:
        """The current events (empty when nothing was published yet, or the file is unreadable)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ControlState()
        try:
            return ControlState.model_validate(json.loads(text))
        except (ValueError, ValidationError):
            return ControlState()  # a damaged file is replaced by the next publish

    def changed(self) -> ControlState | None:
        """The state when the file changed since the last call (one ``stat`` when it did not), else None."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return None
        mark = (info.st_ino, info.st_size, info.st_mtime_ns)
        if mark == self._seen:
            return None
        self._seen = mark
        self._cached = self.read()
        return self._cached

    def publish(
        self,
        kind: EventKind,
        *,
        profile: str,
        generation: int,
        reason: str,
        by: str,
        origin_pid: int,
        at: datetime | None = None,
    ) -> ControlEvent:
        """Append an event with the next sequence number; atomic against other workers.

        ``at``: when the change was made (the originating worker's own record of a switch carries it too).
        """
        with self._locked():
            state = self.read()
            event = ControlEvent(
                seq=state.seq + 1,
                kind=kind,
                profile=profile,
                generation=generation,
                reason=reason,
                by=by,
                at=at or datetime.now(UTC),
                origin_pid=origin_pid,
            )
            events = [*state.events, event][-_KEPT:]
            self._replace(ControlState(events=events).model_dump_json(indent=1))
        return event

    def publish_reload_request(self, *, reason: str, by: str) -> ControlEvent:
        """A reload every worker performs itself (the launcher on SIGHUP: it has no engine to reload first).

        Profile and generation are carried over from the last event; the workers' own reload bumps them.
        """
        last = self.read().last
        return self.publish(
            "reload",
            profile=last.profile if last else "",
            generation=last.generation if last else 1,
            reason=reason,
            by=by,
            origin_pid=0,
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _replace(self, text: str) -> None:
        temporary = self.path.with_name(f".control.{os.getpid()}.tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
