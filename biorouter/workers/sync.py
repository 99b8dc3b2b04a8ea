"""One worker's side of the shared state: apply siblings' reloads and switches, publish its own, report its counters.

:class:`WorkerSync` runs a task on the worker's event loop that wakes every half second, looks at
the control file (one ``stat``), applies any event it has not seen, and rewrites the worker's tally
file when its counters changed. It costs nothing per request: requests only bump the session's
version number, which the task compares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biorouter.errors import BiorouterError
from biorouter.serving.session import SessionSummary
from biorouter.workers.control import ControlEvent, ControlFile, EventKind
from biorouter.workers.tally import WorkerTally, combine, read_tallies, write_tally

if TYPE_CHECKING:
    from biorouter.serving.engine import BioRouter

__all__ = ["WorkerSync"]

logger = logging.getLogger("biorouter.workers")

INTERVAL_S = 0.5


class WorkerSync:
    """The control-file watcher and tally writer of one worker (``pid``) in ``folder``."""

    def __init__(self, folder: Path, *, workers: int, pid: int | None = None, interval: float = INTERVAL_S) -> None:
        self.folder = folder
        self.workers = workers
        self.pid = pid if pid is not None else os.getpid()
        self.interval = interval
        self.control = ControlFile(folder)
        self._applied = 0  # highest control sequence number this worker has applied (or made)
        self._written: tuple[int, int] | None = None  # (session version, generation) in the tally file
        self._task: asyncio.Task[None] | None = None

    def start(self, engine: Callable[[], Awaitable[BioRouter]]) -> None:
        """Start the watcher on the running event loop; ``engine`` builds (once) and returns the worker's engine.

        The watcher builds it as soon as the proxy has loaded its deployments, not on the first
        request: a worker joins (adopts its siblings' profile and reports its tally) when it is up.
        """
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._watch(engine), name="biorouter-worker-sync")

    async def _watch(self, engine: Callable[[], Awaitable[BioRouter]]) -> None:
        reported = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                current = await engine()
            except BiorouterError as e:  # no deployments loaded yet, or a configuration error
                if not reported and "no model_list loaded" not in str(e):
                    logger.error("biorouter worker %d: cannot build the engine yet: %s", self.pid, e)
                    reported = True
                continue
            try:
                await self.tick(current)
            except Exception:  # the watcher must outlive one bad tick; the next one tries again
                logger.exception("biorouter worker %d: syncing with the other workers failed", self.pid)

    async def tick(self, engine: BioRouter) -> None:
        """Apply unseen events, then write the tally if it is out of date."""
        state = self.control.changed()
        if state is not None:
            pending = [event for event in state.events if event.seq > self._applied]
            if pending:
                await self._apply(engine, pending)
                self._applied = max(self._applied, pending[-1].seq)
        self.write(engine)

    def adopt(self, engine: BioRouter) -> None:
        """A worker building its engine takes the profile and generation its siblings serve."""
        last = self.control.read().last
        if last is None:
            return
        if last.profile and last.profile != engine.profile.name:
            engine.switch_profile(last.profile, reason=last.reason, by=last.by, at=last.at)
        if last.origin_pid != 0:
            engine.align_generation(last.generation)
        self._applied = last.seq
        logger.info(
            "biorouter worker %d: joined at generation %d, profile '%s'",
            self.pid,
            last.generation,
            last.profile,
        )

    async def _apply(self, engine: BioRouter, events: list[ControlEvent]) -> None:
        theirs = [event for event in events if event.origin_pid != self.pid]
        if not theirs:
            return
        for event in theirs:
            if event.kind == "switch" and event.profile != engine.profile.name:
                try:
                    engine.switch_profile(event.profile, reason=event.reason, by=event.by, at=event.at)
                except BiorouterError as e:
                    logger.error("biorouter worker %d: cannot apply the switch to '%s': %s", self.pid, event.profile, e)
        if any(event.kind == "reload" for event in theirs):
            last = theirs[-1]
            via = f"{last.by} (via worker {last.origin_pid or 'launcher'})"
            with contextlib.suppress(BiorouterError):  # logged by the engine; the last good configuration serves on
                await engine.reload(reason=last.reason, by=via)
        made_by_a_worker = [event for event in theirs if event.origin_pid != 0]
        if made_by_a_worker:
            engine.align_generation(made_by_a_worker[-1].generation)
        logger.info(
            "biorouter worker %d: applied %d change(s) from other workers; generation %d, profile '%s'",
            self.pid,
            len(theirs),
            engine.state.generation,
            engine.profile.name,
        )

    def publish(self, kind: EventKind, engine: BioRouter, *, reason: str, by: str, at: datetime | None = None) -> None:
        """Tell the other workers about a change this worker just made (at ``at``)."""
        state = engine.state
        event = self.control.publish(
            kind,
            profile=state.profile.name,
            generation=state.generation,
            reason=reason,
            by=by,
            origin_pid=self.pid,
            at=at,
        )
        if event.seq == self._applied + 1:
            self._applied = event.seq  # nothing of the others' was skipped in between
        self.write(engine, force=True)

    def write(self, engine: BioRouter, *, force: bool = False) -> None:
        mark = (engine.session.version, engine.state.generation)
        if not force and mark == self._written:
            return
        tally = WorkerTally(
            pid=self.pid,
            generation=engine.state.generation,
            profile=engine.profile.name,
            updated_at=datetime.now(UTC),
            summary=engine.session.summary(),
        )
        write_tally(self.folder, tally)
        self._written = mark

    def summary(self, engine: BioRouter) -> SessionSummary:
        """The whole proxy's session: this worker's counts now, the others' as of their last write."""
        self.write(engine, force=True)
        return combine(read_tallies(self.folder), engine.session.summary())

    def describe(self) -> list[dict[str, Any]]:
        """Each worker as the status endpoint lists it."""
        return [
            {
                "pid": tally.pid,
                "generation": tally.generation,
                "profile": tally.profile,
                "requests": tally.summary.totals.requests,
                "updated_at": tally.updated_at.isoformat(),
            }
            for tally in read_tallies(self.folder)
        ]
