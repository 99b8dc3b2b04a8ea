"""The spend ledger: what every request cost (by profile, task, group, user and day) and the budgets that cap it.

A budget checked after the call is checked too late: fifty requests arriving together just under the
limit would all pass and all spend. So the engine *reserves* a request's estimated cost in every budget
scope that applies before the call (``reserve``: refused when ``spent + reserved + estimate`` would pass
a limit, atomically across scopes) and *settles* after it (``settle``: the reservation is given back
and the actual cost is spent). Concurrent requests near a limit therefore overspend by at most the
error of one request's estimate, never by fifty requests.

Backends:

* :class:`MemoryLedger` (the default): one process; a ``threading.Lock`` makes every operation atomic
  from any thread or event loop.
* :class:`RedisLedger` (:mod:`biorouter.costs.ledger_redis`): one ledger shared by every proxy replica. Each
  reserve, settle and release is one Lua script, so atomic across scopes and processes. When Redis is
  unreachable the ledger keeps serving, counts in memory, warns once, and reconciles when Redis answers
  again; whether budgets then fail open or closed is the ``fail_mode`` (closed by default: cloud spend
  is refused while it cannot be checked). Importing this module does not import ``redis``.

Redis key layout (``{prefix}`` is ``biorouter:`` by default; every period and day is UTC):

    {prefix}budget:{period}:{period_id}:{scope key}   hash  spent, reserved (USD)
                                                      period_id "2026-11-22" (day) or "2026-11" (month)
    {prefix}spend:{YYYY-MM-DD}                        hash  cost|{dimension}|{key}, requests|{dimension}|{key},
                                                            gpu|{dimension}|{key}  (the report counters)
    {prefix}settled:{reservation id}                  string "settled" or "released" (SET NX, with a TTL):
                                                      makes settle and release idempotent

A request that straddles midnight is budgeted in the period it reserved in (``Reservation.created_at``)
and reported on the day it finished (``SpendRecord.time``). A missing task, group or user is reported
under the key ``-``. Money is float USD; comparisons allow a nano-dollar of rounding.
"""

from __future__ import annotations

import math
import threading
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import TracebackType
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "BudgetScope",
    "Denial",
    "Ledger",
    "MemoryLedger",
    "Period",
    "Reservation",
    "ScopeUsage",
    "SpendRecord",
    "SpendRow",
    "format_usd",
]

Period = Literal["day", "month"]
Dimension = Literal["total", "profile", "task", "group", "user"]
FailMode = Literal["closed", "open"]

DIMENSIONS: tuple[Dimension, ...] = ("total", "profile", "task", "group", "user")
EPSILON_USD = 1e-9  # float rounding allowance when comparing against a limit
_PERIOD_WORDS = {"day": "daily", "month": "monthly"}
_SETTLED_MEMORY = 100_000  # settled reservation ids a MemoryLedger remembers (idempotent settle)

BudgetKey = tuple[Period, str, str]  # (period, period_id, scope key)
ReportKey = tuple[date, str, str]  # (day, dimension, key)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_usd(amount: float) -> str:
    """``$20.00``, ``$0.04``, ``$0.0012``: cents from a cent up, up to six decimals below a cent."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    text = f"{abs(amount):.6f}".rstrip("0")
    sign = "-" if amount < 0 else ""
    return f"{sign}${text}" if text != "0." else f"{sign}<$0.000001"


def period_id(period: Period, moment: datetime) -> str:
    """``2026-11-22`` for a day, ``2026-11`` for a month, in UTC."""
    moment = _utc(moment)
    return moment.strftime("%Y-%m-%d") if period == "day" else moment.strftime("%Y-%m")


class BudgetScope(BaseModel):
    """One limit: a key such as ``profile:t4_hybrid`` or ``profile:t4_hybrid:task:code_generation``, per period."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1)
    period: Period
    limit_usd: float = Field(gt=0, allow_inf_nan=False)

    def budget_key(self, moment: datetime) -> BudgetKey:
        return (self.period, period_id(self.period, moment), self.key)


class Reservation(BaseModel):
    """Money set aside for one request until it is settled or released."""

    model_config = ConfigDict(frozen=True)

    id: str
    estimate_usd: float = Field(ge=0)
    scopes: tuple[BudgetScope, ...]
    created_at: datetime = Field(description="UTC; the period keys are taken from this moment")

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return _utc(value)


class Denial(BaseModel):
    """Why a reservation was refused: the first scope it would not fit in."""

    model_config = ConfigDict(frozen=True)

    scope: BudgetScope
    spent_usd: float
    reserved_usd: float
    estimate_usd: float
    reason: Literal["over_budget", "ledger_unavailable"]

    def message(self) -> str:
        scope = self.scope
        head = f"{_PERIOD_WORDS[scope.period]} budget of {scope.key} ({format_usd(scope.limit_usd)})"
        if self.reason == "ledger_unavailable":
            return (
                f"{head}: the shared spend ledger is unreachable and budgets fail closed; "
                f"a {format_usd(self.estimate_usd)} request cannot be checked against it"
            )
        return (
            f"{head}: {format_usd(self.spent_usd)} spent + {format_usd(self.reserved_usd)} reserved + "
            f"{format_usd(self.estimate_usd)} estimate exceeds it"
        )


class ScopeUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    scope: BudgetScope
    spent_usd: float
    reserved_usd: float

    @property
    def fraction(self) -> float:
        """How much of the limit is spent or set aside (compare with a profile's ``warn_at``)."""
        return (self.spent_usd + self.reserved_usd) / self.scope.limit_usd


class SpendRecord(BaseModel):
    """One finished request."""

    model_config = ConfigDict(frozen=True)

    time: datetime = Field(description="UTC; the report day")
    cost_usd: float = Field(ge=0, allow_inf_nan=False, description="LiteLLM's response_cost; 0 for local groups")
    profile: str
    task: str | None
    group: str | None
    user: str | None = Field(default=None, description="API key alias or user id, when the proxy knows it")
    gpu_seconds: float = Field(default=0.0, ge=0, description="wall time on a local group (which costs $0)")

    @field_validator("time")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    def report_keys(self) -> list[tuple[Dimension, str]]:
        return [
            ("total", ""),
            ("profile", self.profile),
            ("task", self.task or "-"),
            ("group", self.group or "-"),
            ("user", self.user or "-"),
        ]


class SpendRow(BaseModel):
    """One line of a report: a day's spend under one dimension's key (``""`` for the total)."""

    model_config = ConfigDict(frozen=True)

    day: date
    dimension: Dimension
    key: str
    cost_usd: float
    requests: int
    gpu_seconds: float


def rows_from_counters(counters: Mapping[ReportKey, Sequence[float]], since: date, until: date) -> list[SpendRow]:
    """Report rows for ``since..until`` (inclusive) from ``(day, dimension, key) -> (cost, requests, gpu)``."""
    order = {name: n for n, name in enumerate(DIMENSIONS)}
    rows = [
        SpendRow(
            day=day, dimension=dimension, key=key, cost_usd=values[0], requests=round(values[1]), gpu_seconds=values[2]
        )
        for (day, dimension, key), values in counters.items()
        if since <= day <= until and dimension in order
    ]
    return sorted(rows, key=lambda row: (row.day, order[row.dimension], row.key))


def report_end(until: date | None) -> date:
    """The last day of a report: ``until``, or today (UTC)."""
    return until if until is not None else datetime.now(UTC).date()


def check_estimate(estimate_usd: float) -> None:
    if not math.isfinite(estimate_usd) or estimate_usd < 0:
        raise ValueError(f"a cost estimate must be a finite amount >= 0, not {estimate_usd!r}")


def unreserved(estimate_usd: float, moment: datetime) -> Reservation:
    """A reservation that sets nothing aside (no scopes, or a request that costs nothing)."""
    return Reservation(id=uuid.uuid4().hex, estimate_usd=estimate_usd, scopes=(), created_at=moment)


class Ledger(ABC):
    """Where spend is reserved, settled and reported; see the module docstring for the protocol."""

    backend: ClassVar[str]

    @property
    def degraded(self) -> bool:
        """True while a shared backend is unreachable and spend is counted in memory."""
        return False

    @abstractmethod
    async def reserve(
        self, scopes: Sequence[BudgetScope], estimate_usd: float, *, now: datetime | None = None
    ) -> Reservation | Denial:
        """Set ``estimate_usd`` aside in every scope, or change nothing and name the first scope it does not fit."""

    @abstractmethod
    async def settle(self, reservation: Reservation | None, record: SpendRecord, scopes: Sequence[BudgetScope]) -> None:
        """Give the reservation back, spend ``record.cost_usd`` in ``scopes`` and count the record; once per id."""

    @abstractmethod
    async def release(self, reservation: Reservation) -> None:
        """Give a reservation back without spending (the call failed or was refused)."""

    @abstractmethod
    async def usage(self, scopes: Sequence[BudgetScope], *, now: datetime | None = None) -> list[ScopeUsage]:
        """Spent and reserved in each scope's current period."""

    @abstractmethod
    async def report(self, since: date, until: date | None = None) -> list[SpendRow]:
        """Rows per day (inclusive, UTC; ``until`` defaults to today) and dimension."""

    async def aclose(self) -> None:  # noqa: B027 -- most backends hold nothing to close
        """Release connections; the ledger is not used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@dataclass
class Tally:
    """Spend counted in one process: spent per budget period and the report counters."""

    spent: dict[BudgetKey, float] = field(default_factory=dict)
    counters: dict[ReportKey, list[float]] = field(default_factory=dict)  # [cost, requests, gpu_seconds]
    records: int = 0
    cost_usd: float = 0.0

    @property
    def empty(self) -> bool:
        return self.records == 0 and not self.spent

    def add(self, record: SpendRecord, budget_keys: Iterable[BudgetKey]) -> None:
        for budget_key in budget_keys:
            self.spent[budget_key] = self.spent.get(budget_key, 0.0) + record.cost_usd
        day = record.time.date()
        for dimension, key in record.report_keys():
            values = self.counters.setdefault((day, dimension, key), [0.0, 0.0, 0.0])
            values[0] += record.cost_usd
            values[1] += 1
            values[2] += record.gpu_seconds
        self.records += 1
        self.cost_usd += record.cost_usd

    def merge(self, other: Tally) -> None:
        for key, amount in other.spent.items():
            self.spent[key] = self.spent.get(key, 0.0) + amount
        for report_key, values in other.counters.items():
            mine = self.counters.setdefault(report_key, [0.0, 0.0, 0.0])
            for n, value in enumerate(values):
                mine[n] += value
        self.records += other.records
        self.cost_usd += other.cost_usd


class MemoryLedger(Ledger):
    """The ledger of one process. The ``*_now`` methods are the synchronous core (also the outage book
    of :class:`RedisLedger`); the async methods only wrap them."""

    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tally = Tally()
        self._reserved: dict[BudgetKey, float] = {}
        self._open: dict[str, Reservation] = {}
        self._settled: OrderedDict[str, None] = OrderedDict()

    # -- the Ledger interface ----------------------------------------------------------------

    async def reserve(
        self, scopes: Sequence[BudgetScope], estimate_usd: float, *, now: datetime | None = None
    ) -> Reservation | Denial:
        return self.reserve_now(scopes, estimate_usd, _utc(now or datetime.now(UTC)))

    async def settle(self, reservation: Reservation | None, record: SpendRecord, scopes: Sequence[BudgetScope]) -> None:
        self.settle_now(reservation, record, scopes)

    async def release(self, reservation: Reservation) -> None:
        self.release_now(reservation)

    async def usage(self, scopes: Sequence[BudgetScope], *, now: datetime | None = None) -> list[ScopeUsage]:
        return self.usage_now(scopes, _utc(now or datetime.now(UTC)))

    async def report(self, since: date, until: date | None = None) -> list[SpendRow]:
        with self._lock:
            return rows_from_counters(self._tally.counters, since, report_end(until))

    # -- the synchronous core ----------------------------------------------------------------

    def reserve_now(self, scopes: Sequence[BudgetScope], estimate_usd: float, moment: datetime) -> Reservation | Denial:
        check_estimate(estimate_usd)
        if not scopes or estimate_usd == 0:
            return unreserved(estimate_usd, moment)
        keys = [scope.budget_key(moment) for scope in scopes]
        with self._lock:
            for scope, key in zip(scopes, keys, strict=True):
                spent, reserved = self._tally.spent.get(key, 0.0), self._reserved.get(key, 0.0)
                if spent + reserved + estimate_usd > scope.limit_usd + EPSILON_USD:
                    return Denial(
                        scope=scope,
                        spent_usd=spent,
                        reserved_usd=reserved,
                        estimate_usd=estimate_usd,
                        reason="over_budget",
                    )
            for key in keys:
                self._reserved[key] = self._reserved.get(key, 0.0) + estimate_usd
            reservation = Reservation(
                id=uuid.uuid4().hex, estimate_usd=estimate_usd, scopes=tuple(scopes), created_at=moment
            )
            self._open[reservation.id] = reservation
        return reservation

    def release_now(self, reservation: Reservation) -> bool:
        """Give back a reservation held here; False when it is not (already given back, or made elsewhere)."""
        with self._lock:
            return self._release_locked(reservation)

    def settle_now(self, reservation: Reservation | None, record: SpendRecord, scopes: Sequence[BudgetScope]) -> bool:
        """Settle and count; False (and nothing changes) when this reservation id was settled before."""
        moment = reservation.created_at if reservation is not None else record.time
        keys = [scope.budget_key(moment) for scope in scopes]
        with self._lock:
            if reservation is not None:
                if reservation.id in self._settled:
                    return False
                self._release_locked(reservation)
                self._settled[reservation.id] = None
                if len(self._settled) > _SETTLED_MEMORY:
                    self._settled.popitem(last=False)
            self._tally.add(record, keys)
        return True

    def usage_now(self, scopes: Sequence[BudgetScope], moment: datetime) -> list[ScopeUsage]:
        with self._lock:
            return [
                ScopeUsage(
                    scope=scope,
                    spent_usd=self._tally.spent.get(scope.budget_key(moment), 0.0),
                    reserved_usd=self._reserved.get(scope.budget_key(moment), 0.0),
                )
                for scope in scopes
            ]

    def holds(self, reservation_id: str) -> bool:
        """True while a reservation made here is neither settled nor released."""
        with self._lock:
            return reservation_id in self._open

    def is_settled(self, reservation_id: str) -> bool:
        with self._lock:
            return reservation_id in self._settled

    def has_spend(self) -> bool:
        with self._lock:
            return not self._tally.empty

    def counted(self) -> tuple[int, float]:
        """Records and dollars counted here (and not yet drained)."""
        with self._lock:
            return self._tally.records, self._tally.cost_usd

    def drain(self) -> Tally:
        """Take the counted spend away (reservations stay): what a shared backend has not seen yet."""
        with self._lock:
            tally, self._tally = self._tally, Tally()
        return tally

    def restore(self, tally: Tally) -> None:
        """Put back a drained tally that could not be delivered."""
        with self._lock:
            self._tally.merge(tally)

    def _release_locked(self, reservation: Reservation) -> bool:
        if self._open.pop(reservation.id, None) is None:
            return False
        for scope in reservation.scopes:
            key = scope.budget_key(reservation.created_at)
            left = self._reserved.get(key, 0.0) - reservation.estimate_usd
            if left > EPSILON_USD:
                self._reserved[key] = left
            else:
                self._reserved.pop(key, None)
        return True
