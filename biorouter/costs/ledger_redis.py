"""The shared ledger: one Redis for every proxy replica (key layout in :mod:`biorouter.costs.ledger`).

Reserve, settle and release are Lua scripts (EVALSHA, falling back to EVAL when Redis forgot them,
e.g. after a restart), so each is atomic across its scopes and across processes: fifty replicas
reserving at once near a limit cannot all squeeze in.

Redis unreachable (refused, reset, or silent for half a second) never fails a request. The ledger
turns ``degraded``, logs one warning per outage and counts in memory: settled spend goes to an
in-memory tally, and reservations are refused when the ``fail_mode`` is ``closed`` (the default: cloud
spend that cannot be checked is not made; a request estimated at $0, such as a local group, still
passes) or taken in memory when it is ``open``. After ``retry_interval_s`` the next operation PINGs;
when Redis answers, the tally is pushed in one MULTI transaction, reservations that were settled or
released during the outage are given back, and the ledger is whole again. A reservation made in memory
is settled in memory (only this process knows it), its spend going to Redis if Redis is back.

An error after Redis may already have applied a command (a timeout) is counted in memory as well: the
ledger may count a request twice, but never loses one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from biorouter.costs.ledger import (
    EPSILON_USD,
    BudgetKey,
    BudgetScope,
    Denial,
    FailMode,
    Ledger,
    MemoryLedger,
    ReportKey,
    Reservation,
    ScopeUsage,
    SpendRecord,
    SpendRow,
    Tally,
    _utc,
    check_estimate,
    format_usd,
    report_end,
    rows_from_counters,
    unreserved,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisLedger"]

logger = logging.getLogger("biorouter.ledger")

_DAY_S = 86_400
_TTL_S = {"day": 35 * _DAY_S, "month": 400 * _DAY_S}  # budget keys: a month of days, a year of months
_SPEND_TTL_S = 400 * _DAY_S  # report counters: reports over a year work
_MARKER_TTL_S = 3 * _DAY_S  # settled/released markers: far longer than any request
_SOCKET_TIMEOUT_S = 0.5
_COUNTER_INDEX = {"cost": 0, "requests": 1, "gpu": 2}

# Gives back `amount` reserved in `key`; a remainder within rounding of zero is removed.
_GIVE_BACK = """
local function give_back(key, amount, ttl)
  local left = tonumber(redis.call('HINCRBYFLOAT', key, 'reserved', -amount))
  if left < EPSILON then redis.call('HDEL', key, 'reserved') end
  redis.call('EXPIRE', key, ttl)
end
"""

# KEYS: budget keys. ARGV: estimate, then (limit, ttl) per key.
# Returns {0} when reserved, or {n, spent, reserved} for the first budget key it does not fit in.
_RESERVE = """
local estimate = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local now = redis.call('HMGET', key, 'spent', 'reserved')
  local spent, reserved = tonumber(now[1]) or 0, tonumber(now[2]) or 0
  if spent + reserved + estimate > tonumber(ARGV[2 * i]) + EPSILON then
    return {i, now[1] or '0', now[2] or '0'}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('HINCRBYFLOAT', key, 'reserved', ARGV[1])
  redis.call('EXPIRE', key, ARGV[2 * i + 1])
end
return {0}
"""

# KEYS: marker, nr budget keys to give back, ns budget keys to spend in, the spend day key.
# ARGV: use marker (1/0), marker ttl, estimate, nr, ns, cost, nr + ns budget ttls, day ttl,
#       then (field, increment) pairs for the day key. Returns 0 when the id was settled before.
_SETTLE = """
local nr, ns = tonumber(ARGV[4]), tonumber(ARGV[5])
if ARGV[1] == '1' then
  local before = redis.call('GET', KEYS[1])
  if before == 'settled' then return 0 end
  if not before then
    for i = 1, nr do give_back(KEYS[1 + i], tonumber(ARGV[3]), ARGV[6 + i]) end
  end
  redis.call('SET', KEYS[1], 'settled', 'EX', ARGV[2])
end
for i = 1, ns do
  local key = KEYS[1 + nr + i]
  redis.call('HINCRBYFLOAT', key, 'spent', ARGV[6])
  redis.call('EXPIRE', key, ARGV[6 + nr + i])
end
local day, base = KEYS[2 + nr + ns], 7 + nr + ns
for j = base + 1, #ARGV, 2 do
  if string.sub(ARGV[j], 1, 9) == 'requests|' then
    redis.call('HINCRBY', day, ARGV[j], ARGV[j + 1])
  else
    redis.call('HINCRBYFLOAT', day, ARGV[j], ARGV[j + 1])
  end
end
redis.call('EXPIRE', day, ARGV[base])
return 1
"""

# KEYS: marker, budget keys to give back. ARGV: marker value (released/settled), marker ttl, estimate,
# ttl per budget key. 'settled' is how an outage settle is delivered (its spend went with the tally).
_RELEASE = """
local before = redis.call('GET', KEYS[1])
if before == 'settled' or (before and ARGV[1] == 'released') then return 0 end
if not before then
  for i = 2, #KEYS do give_back(KEYS[i], tonumber(ARGV[3]), ARGV[2 + i]) end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


@dataclass(frozen=True)
class _Script:
    lua: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.lua.encode(), usedforsecurity=False).hexdigest()


def _script(body: str, *, give_back: bool = False) -> _Script:
    head = f"local EPSILON = {EPSILON_USD!r}\n" + (_GIVE_BACK if give_back else "")
    return _Script(head + body)


_RESERVE_SCRIPT = _script(_RESERVE)
_SETTLE_SCRIPT = _script(_SETTLE, give_back=True)
_RELEASE_SCRIPT = _script(_RELEASE, give_back=True)

Marker = Literal["settled", "released"]


class RedisLedger(Ledger):
    """A ledger in Redis at ``url``, shared by every process that uses the same URL and ``prefix``."""

    backend: ClassVar[str] = "redis"

    def __init__(
        self, url: str, *, fail_mode: FailMode = "closed", prefix: str = "biorouter:", retry_interval_s: float = 2.0
    ) -> None:
        if fail_mode not in ("closed", "open"):
            raise ValueError(f"fail_mode must be 'closed' or 'open', not {fail_mode!r}")
        if retry_interval_s < 0:
            raise ValueError(f"retry_interval_s must be >= 0, not {retry_interval_s!r}")
        try:
            import redis.exceptions
        except ImportError as e:  # a dependency of biorouter; missing only in a trimmed environment
            raise ImportError("RedisLedger needs the 'redis' package: pip install 'redis>=5'") from e
        self.url = url
        self.fail_mode: FailMode = fail_mode
        self.prefix = prefix
        self.retry_interval_s = retry_interval_s
        self._outage: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._no_script: type[BaseException] = redis.exceptions.NoScriptError
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Redis] = weakref.WeakKeyDictionary()
        self._local = MemoryLedger()  # the outage book: spend Redis has not seen, reservations made in memory
        self._undelivered: dict[str, tuple[Reservation, Marker]] = {}  # Redis reservations finished in an outage
        self._lock = threading.Lock()
        self._degraded = False
        self._next_probe = 0.0
        self._reconciling = False

    def __repr__(self) -> str:
        state = "degraded" if self._degraded else "up"
        return f"RedisLedger({_redacted(self.url)!r}, prefix={self.prefix!r}, fail_mode={self.fail_mode!r}, {state})"

    @property
    def degraded(self) -> bool:
        return self._degraded

    # -- the Ledger interface ----------------------------------------------------------------

    async def reserve(
        self, scopes: Sequence[BudgetScope], estimate_usd: float, *, now: datetime | None = None
    ) -> Reservation | Denial:
        check_estimate(estimate_usd)
        moment = _utc(now or datetime.now(UTC))
        if not scopes or estimate_usd == 0:
            return unreserved(estimate_usd, moment)
        if await self._usable():
            try:
                return await self._reserve_in_redis(scopes, estimate_usd, moment)
            except self._outage as e:
                self._went_down(e)
        if self.fail_mode == "open":
            return self._local.reserve_now(scopes, estimate_usd, moment)
        first = self._local.usage_now(scopes[:1], moment)[0]
        return Denial(
            scope=scopes[0],
            spent_usd=first.spent_usd,
            reserved_usd=first.reserved_usd,
            estimate_usd=estimate_usd,
            reason="ledger_unavailable",
        )

    async def settle(self, reservation: Reservation | None, record: SpendRecord, scopes: Sequence[BudgetScope]) -> None:
        if reservation is not None and self._local.is_settled(reservation.id):
            return  # settled by this process during an outage
        held = reservation is not None and self._local.holds(reservation.id)
        if await self._usable():
            try:
                await self._settle_in_redis(reservation, record, scopes, give_back=not held)
            except self._outage as e:
                self._went_down(e)
            else:
                if held and reservation is not None:
                    self._local.release_now(reservation)
                return
        first = self._local.settle_now(reservation, record, scopes)
        if first and reservation is not None and not held and reservation.scopes:
            with self._lock:
                self._undelivered[reservation.id] = (reservation, "settled")

    async def release(self, reservation: Reservation) -> None:
        if self._local.release_now(reservation) or not reservation.scopes:
            return  # made in memory, or set nothing aside
        if await self._usable():
            try:
                await self._release_in_redis(reservation, "released")
                return
            except self._outage as e:
                self._went_down(e)
        with self._lock:
            if reservation.id not in self._undelivered and not self._local.is_settled(reservation.id):
                self._undelivered[reservation.id] = (reservation, "released")

    async def usage(self, scopes: Sequence[BudgetScope], *, now: datetime | None = None) -> list[ScopeUsage]:
        moment = _utc(now or datetime.now(UTC))
        if scopes and await self._usable():
            try:
                async with self._client().pipeline(transaction=False) as pipe:
                    for scope in scopes:
                        pipe.hmget(self._budget_key(scope.budget_key(moment)), ["spent", "reserved"])
                    answers = await pipe.execute()
                held = self._local.usage_now(scopes, moment)  # reservations made in memory during an outage
                return [
                    ScopeUsage(scope=scope, spent_usd=float(spent or 0), reserved_usd=float(reserved or 0) + mine)
                    for scope, (spent, reserved), mine in zip(
                        scopes, answers, (u.reserved_usd for u in held), strict=True
                    )
                ]
            except self._outage as e:
                self._went_down(e)
        return self._local.usage_now(scopes, moment)

    async def report(self, since: date, until: date | None = None) -> list[SpendRow]:
        until = report_end(until)
        days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
        if days and await self._usable():
            try:
                async with self._client().pipeline(transaction=False) as pipe:
                    for day in days:
                        pipe.hgetall(self._spend_key(day))
                    answers = await pipe.execute()
                return rows_from_counters(_parse_counters(days, answers), since, until)
            except self._outage as e:
                self._went_down(e)
        return await self._local.report(since, until)

    async def aclose(self) -> None:
        """Try once more to deliver what was counted in memory, then close this event loop's client."""
        if self._degraded or self._local.has_spend() or self._undelivered:
            with self._lock:
                self._next_probe = 0.0
            await self._usable()
            records, cost = self._local.counted()
            if records or self._undelivered:
                logger.warning(
                    "biorouter ledger: closing with %d records (%s) and %d finished reservations that Redis at %s "
                    "never received",
                    records,
                    format_usd(cost),
                    len(self._undelivered),
                    _redacted(self.url),
                )
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
            self._clients.clear()  # clients of other (finished) loops cannot be closed from here
        if client is not None:
            try:
                await client.aclose()
            except self._outage as e:
                logger.debug("biorouter ledger: closing the Redis client: %s", e)

    # -- Redis operations ----------------------------------------------------------------------

    def _client(self) -> Redis:
        """This event loop's client (a redis.asyncio client belongs to the loop that created it)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                from redis.asyncio import Redis
                from redis.asyncio.retry import Retry
                from redis.backoff import NoBackoff

                client = Redis.from_url(
                    self.url,
                    decode_responses=True,
                    socket_timeout=_SOCKET_TIMEOUT_S,
                    socket_connect_timeout=_SOCKET_TIMEOUT_S,
                    retry=Retry(NoBackoff(), 0),  # a retried reserve could apply twice; an outage is handled here
                )
                self._clients[loop] = client
        return client

    async def _eval(self, script: _Script, keys: Sequence[str], args: Sequence[str | float | int]) -> Any:
        client = self._client()
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except self._no_script:
            return await client.eval(script.lua, len(keys), *keys, *args)

    def _budget_key(self, key: BudgetKey) -> str:
        period, period_id, scope_key = key
        return f"{self.prefix}budget:{period}:{period_id}:{scope_key}"

    def _spend_key(self, day: date) -> str:
        return f"{self.prefix}spend:{day.isoformat()}"

    def _marker_key(self, reservation_id: str) -> str:
        return f"{self.prefix}settled:{reservation_id}"

    async def _reserve_in_redis(
        self, scopes: Sequence[BudgetScope], estimate_usd: float, moment: datetime
    ) -> Reservation | Denial:
        keys = [self._budget_key(scope.budget_key(moment)) for scope in scopes]
        args: list[str | float | int] = [repr(estimate_usd)]
        for scope in scopes:
            args += [repr(scope.limit_usd), _TTL_S[scope.period]]
        answer = await self._eval(_RESERVE_SCRIPT, keys, args)
        failing = int(answer[0])
        if failing == 0:
            return Reservation(id=uuid.uuid4().hex, estimate_usd=estimate_usd, scopes=tuple(scopes), created_at=moment)
        return Denial(
            scope=scopes[failing - 1],
            spent_usd=float(answer[1]),
            reserved_usd=float(answer[2]),
            estimate_usd=estimate_usd,
            reason="over_budget",
        )

    async def _settle_in_redis(
        self, reservation: Reservation | None, record: SpendRecord, scopes: Sequence[BudgetScope], *, give_back: bool
    ) -> None:
        moment = reservation.created_at if reservation is not None else record.time
        back = reservation.scopes if reservation is not None and give_back else ()
        keys = [self._marker_key(reservation.id if reservation is not None else "-")]
        keys += [self._budget_key(scope.budget_key(moment)) for scope in (*back, *scopes)]
        keys.append(self._spend_key(record.time.date()))
        args: list[str | float | int] = [
            "1" if reservation is not None else "0",
            _MARKER_TTL_S,
            repr(reservation.estimate_usd if reservation is not None else 0.0),
            len(back),
            len(scopes),
            repr(record.cost_usd),
        ]
        args += [_TTL_S[scope.period] for scope in (*back, *scopes)]
        args.append(_SPEND_TTL_S)
        for dimension, key in record.report_keys():
            args += [f"cost|{dimension}|{key}", repr(record.cost_usd), f"requests|{dimension}|{key}", 1]
            args += [f"gpu|{dimension}|{key}", repr(record.gpu_seconds)]
        await self._eval(_SETTLE_SCRIPT, keys, args)

    async def _release_in_redis(self, reservation: Reservation, marker: Marker) -> None:
        keys = [self._marker_key(reservation.id)]
        keys += [self._budget_key(scope.budget_key(reservation.created_at)) for scope in reservation.scopes]
        args: list[str | float | int] = [marker, _MARKER_TTL_S, repr(reservation.estimate_usd)]
        args += [_TTL_S[scope.period] for scope in reservation.scopes]
        await self._eval(_RELEASE_SCRIPT, keys, args)

    async def _push(self, tally: Tally) -> None:
        """Add an outage's tally to Redis in one MULTI transaction."""
        async with self._client().pipeline(transaction=True) as pipe:
            for budget_key, amount in tally.spent.items():
                name = self._budget_key(budget_key)
                pipe.hincrbyfloat(name, "spent", amount)
                pipe.expire(name, _TTL_S[budget_key[0]])
            days = set()
            for (day, dimension, key), (cost, requests, gpu) in tally.counters.items():
                name = self._spend_key(day)
                pipe.hincrbyfloat(name, f"cost|{dimension}|{key}", cost)
                pipe.hincrby(name, f"requests|{dimension}|{key}", round(requests))
                pipe.hincrbyfloat(name, f"gpu|{dimension}|{key}", gpu)
                days.add(name)
            for name in days:
                pipe.expire(name, _SPEND_TTL_S)
            await pipe.execute()

    # -- outages -------------------------------------------------------------------------------

    async def _usable(self) -> bool:
        """Whether to use Redis now; after an outage (or with spend left over) probe and reconcile first."""
        with self._lock:
            if self._reconciling or (self._degraded and time.monotonic() < self._next_probe):
                return not self._degraded
            if not self._degraded and not self._undelivered and not self._local.has_spend():
                return True
            self._reconciling = True
        try:
            await self._reconcile()
        finally:
            with self._lock:
                self._reconciling = False
        return not self._degraded

    async def _reconcile(self) -> None:
        """PING; when Redis answers, use it again and deliver what was counted in memory meanwhile."""
        try:
            if self._degraded:
                # Connections idle through the outage point at a server that is gone: a restarted Redis
                # closes them on first use, which would look like a new outage (measured: the ledger
                # flapped for seconds after a restart under load). Only idle ones are dropped.
                await self._client().connection_pool.disconnect(inuse_connections=False)
            await self._client().ping()
        except self._outage as e:
            self._went_down(e)
            return
        with self._lock:
            was_degraded, self._degraded = self._degraded, False
        try:
            records, cost = await self._deliver()
        except self._outage as e:
            self._went_down(e)
            return
        if was_degraded:
            logger.info("biorouter ledger: Redis back; reconciled %d records (%s)", records, format_usd(cost))
        elif records:
            logger.info("biorouter ledger: delivered %d records (%s) counted in memory", records, format_usd(cost))

    async def _deliver(self) -> tuple[int, float]:
        """Push the in-memory tally (one MULTI) and give back reservations finished during the outage."""
        records, cost = 0, 0.0
        while True:  # again, for what operations already under way counted meanwhile
            tally = self._local.drain()
            with self._lock:
                finished, self._undelivered = self._undelivered, {}
            if tally.empty and not finished:
                return records, cost
            try:
                if not tally.empty:
                    await self._push(tally)
            except BaseException:
                self._local.restore(tally)
                self._redeliver(finished)
                raise
            records, cost = records + tally.records, cost + tally.cost_usd
            while finished:
                reservation_id, (reservation, marker) = next(iter(finished.items()))
                try:
                    await self._release_in_redis(reservation, marker)
                except BaseException:
                    self._redeliver(finished)
                    raise
                del finished[reservation_id]

    def _redeliver(self, finished: dict[str, tuple[Reservation, Marker]]) -> None:
        with self._lock:
            self._undelivered = {**finished, **self._undelivered}

    def _went_down(self, error: BaseException) -> None:
        with self._lock:
            first = not self._degraded
            self._degraded = True
            self._next_probe = time.monotonic() + self.retry_interval_s
        if not first:
            logger.debug("biorouter ledger: Redis at %s still unreachable: %s", _redacted(self.url), _describe(error))
            return
        consequence = "fail closed for cloud spend" if self.fail_mode == "closed" else "fail open"
        logger.warning(
            "biorouter ledger: Redis at %s unreachable (%s): counting in memory; budgets %s",
            _redacted(self.url),
            _describe(error),
            consequence,
        )


def _parse_counters(days: Sequence[date], answers: Sequence[dict[str, str]]) -> dict[ReportKey, list[float]]:
    counters: dict[ReportKey, list[float]] = {}
    for day, fields in zip(days, answers, strict=True):
        for name, value in fields.items():
            kind, _, rest = name.partition("|")
            dimension, _, key = rest.partition("|")
            if kind in _COUNTER_INDEX and dimension:
                counters.setdefault((day, dimension, key), [0.0, 0.0, 0.0])[_COUNTER_INDEX[kind]] = float(value)
    return counters


def _describe(error: BaseException) -> str:
    text = str(error).strip() or "no detail"
    return f"{type(error).__name__}: {text}"[:300]


def _redacted(url: str) -> str:
    """The URL with its password replaced by ``***`` (log lines must not carry secrets)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
