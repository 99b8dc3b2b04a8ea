"""``biorouter spend``: what the proxies spent, read from the shared ledger, by group, task, profile, user or day.

Reads the report counters of the Redis ledger every proxy replica writes to: ``--redis-url``, else
REDIS_URL, else ``ledger: redis_url:`` in biorouter.yaml. Days are whole UTC days, both ends
included: ``--since 24h`` starts at 00:00 UTC of the day 24 hours ago. Cost is what LiteLLM priced;
local deployments cost $0, so their use shows as requests and GPU-seconds instead.

A proxy without Redis counts in its own memory; that ledger lives and dies with the process and no
other process can read it, so reports need the shared Redis ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from biorouter.costs.ledger import SpendRow

__all__ = ["SpendLine", "register", "run", "summarise"]

DIMENSIONS = ("group", "task", "profile", "user", "day")
DEFAULT_SINCE = "7d"
NO_KEY = "(none)"  # requests the proxy counted without a task, group or user
_LEDGER_NO_KEY = ("-", "")  # how the ledger keys them
_PLOT_HINT = "--plot needs matplotlib: pip install 'biorouter[plot]'"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "spend",
        help="spend per group, task, profile, user or day, from the shared (Redis) ledger",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        default=DEFAULT_SINCE,
        help="first UTC day: an age (24h, 7d, 2w) or an ISO date (2026-11-01); default: %(default)s",
    )
    parser.add_argument("--until", metavar="WHEN", help="last UTC day, included (same forms); default: today")
    parser.add_argument(
        "--by",
        choices=DIMENSIONS,
        default="group",
        help="what each line is: a group, task, profile, user or UTC day (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the lines and the total as JSON")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="draw cost per line as a bar chart (matplotlib)")
    parser.add_argument(
        "--redis-url", metavar="URL", help="the ledger (default: REDIS_URL, else ledger: redis_url in biorouter.yaml)"
    )
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class SpendLine:
    """One line of the report: a key of the chosen dimension (or a day) over the whole period."""

    key: str
    cost_usd: float
    requests: int
    gpu_seconds: float
    share: float | None = None  # of the period's cost; None when nothing was paid for


def run(args: argparse.Namespace) -> int:
    from biorouter.errors import BiorouterError

    since = _day(args.since, "--since")
    until = _day(args.until, "--until") if args.until is not None else _today()
    if until < since:
        raise BiorouterError(f"--until {until} is before --since {since}")
    pyplot = _pyplot(args.plot) if args.plot is not None else None
    url, origin = _ledger_url(args.redis_url)
    rows = asyncio.run(_read(url, origin, since, until))
    lines, total = summarise(rows, args.by)
    period = f"{since} to {until}"
    if args.json:
        report = {"ledger": _redacted(url), "since": str(since), "until": str(until), "by": args.by}
        print(json.dumps({**report, "rows": [_rounded(line) for line in lines], "total": _rounded(total)}, indent=2))
    elif not rows:
        print(f"no spend recorded between {since} and {until} (UTC days) in the ledger at {_redacted(url)}")
    else:
        print(f"ledger  {_redacted(url)}  ({origin})")
        print(f"period  {period}  (UTC days, both included)\n")
        print(_table(lines, total, args.by))
    if pyplot is not None:
        if lines:
            _plot(pyplot, lines, args.plot, by=args.by, title=f"biorouter spend by {args.by}, {period} (UTC)")
        else:
            print(f"--plot: nothing to draw, {args.plot} not written", file=sys.stderr)
    return 0


def summarise(rows: Iterable[SpendRow], by: str) -> tuple[list[SpendLine], SpendLine]:
    """The lines for ``by`` (a dimension, or ``day``) and the total, from the ledger's per-day rows.

    The ledger counts every request once in every dimension, under ``-`` when it had no task, group
    or user; that key is shown as ``(none)``. Lines are by cost, then GPU-seconds; days in order.
    """
    rows = list(rows)
    totals = [row for row in rows if row.dimension == "total"]
    total = _add("total", totals)
    if by == "day":
        days = sorted({row.day for row in totals})
        lines = [_add(day.isoformat(), [row for row in totals if row.day == day]) for day in days]
    else:
        keys: dict[str, list[SpendRow]] = {}
        for row in rows:
            if row.dimension == by:
                keys.setdefault(NO_KEY if row.key in _LEDGER_NO_KEY else row.key, []).append(row)
        lines = [_add(key, members) for key, members in keys.items()]
        lines.sort(key=lambda line: (-line.cost_usd, -line.gpu_seconds, -line.requests, line.key))
    paid = total.cost_usd if total.cost_usd > 0 else None
    shared = [replace(line, share=line.cost_usd / paid if paid else None) for line in lines]
    return shared, replace(total, share=1.0 if paid else None)


def _add(key: str, parts: Sequence[SpendRow]) -> SpendLine:
    return SpendLine(
        key=key,
        cost_usd=sum(part.cost_usd for part in parts),
        requests=sum(part.requests for part in parts),
        gpu_seconds=sum(part.gpu_seconds for part in parts),
    )


def _day(value: str, flag: str) -> date:
    from biorouter.errors import BiorouterError
    from biorouter.serving.audit import parse_since

    try:
        return parse_since(value).astimezone(UTC).date()
    except ValueError as e:
        raise BiorouterError(f"{flag} {e}") from e


def _today() -> date:
    return datetime.now(UTC).date()


def _ledger_url(given: str | None) -> tuple[str, str]:
    """The Redis URL to read and where it came from; an error saying why reports need Redis if none is set."""
    from biorouter.errors import BiorouterError, ConfigError
    from biorouter.settings import SETTINGS_FILE, find_home, load_settings

    if given:
        return given, "from --redis-url"
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], "from REDIS_URL"
    try:
        home = find_home()
    except ConfigError:  # no biorouter.yaml: spend needs none when the URL is given otherwise
        home = None
    if home is not None:
        configured = getattr(getattr(load_settings(home), "ledger", None), "redis_url", None)
        if configured and configured.startswith("os.environ/"):
            configured = os.environ.get(configured.removeprefix("os.environ/")) or None
        if configured:
            return configured, f"from 'ledger: redis_url:' in {home / SETTINGS_FILE}"
    raise BiorouterError(
        "no shared ledger to read: pass --redis-url URL, set REDIS_URL, or set 'ledger: redis_url:' in "
        "biorouter.yaml. A proxy without Redis counts spend in its own memory, which no other process can "
        "read; reports need the proxies to share a Redis ledger"
    )


async def _read(url: str, origin: str, since: date, until: date) -> list[SpendRow]:
    from biorouter.costs.ledger_url import ledger_from_url
    from biorouter.errors import BiorouterError

    with _quiet("biorouter.ledger"):  # its outage warning speaks of budgets; the error below is ours
        try:
            ledger = ledger_from_url(url)
        except ValueError as e:
            raise BiorouterError(
                f"{_redacted(url)} ({origin}) is not a Redis URL: expected redis://HOST:PORT/DB, "
                "rediss://HOST:PORT/DB or unix://PATH"
            ) from e
        try:
            rows = await ledger.report(since, until)
            unreachable = ledger.degraded
        finally:
            await ledger.aclose()
    if unreachable:
        raise BiorouterError(f"the ledger at {_redacted(url)} ({origin}) is unreachable; is Redis running there?")
    return rows


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _redacted(url: str) -> str:
    """``url`` with its password hidden, to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _rounded(line: SpendLine) -> dict[str, Any]:
    """The line for JSON, without the float noise of summed counters (0.30000000000000004)."""
    share = None if line.share is None else round(line.share, 6)
    return {
        **asdict(line),
        "cost_usd": round(line.cost_usd, 6),
        "gpu_seconds": round(line.gpu_seconds, 3),
        "share": share,
    }


def _table(lines: list[SpendLine], total: SpendLine, by: str) -> str:
    width = max(len(by), len(total.key), *(len(line.key) for line in lines))
    header = f"{by:<{width}}  {'cost (USD)':>12}  {'requests':>9}  {'GPU-seconds':>12}  {'share':>7}"
    body = [_row(line, width) for line in lines]
    return "\n".join([header, *body, "-" * len(header), _row(total, width)])


def _row(line: SpendLine, width: int) -> str:
    share = "-" if line.share is None else f"{line.share:.1%}"
    return f"{line.key:<{width}}  {line.cost_usd:>12.4f}  {line.requests:>9}  {line.gpu_seconds:>12.1f}  {share:>7}"


def _pyplot(path: Path) -> Any:
    """matplotlib's pyplot on the Agg backend, checked before the ledger is read; a clear error without it."""
    from biorouter.errors import BiorouterError

    folder = path.resolve().parent
    if not folder.is_dir():
        raise BiorouterError(f"--plot {path}: folder {folder} does not exist")
    try:
        import matplotlib
    except ImportError as e:
        raise BiorouterError(_PLOT_HINT) from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot(plt: Any, lines: list[SpendLine], path: Path, *, by: str, title: str) -> None:
    keys = [line.key for line in lines]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(lines) + 2.5), 4.5))
    try:
        bars = ax.bar(keys, [line.cost_usd for line in lines], color="tab:blue")
        labels = [f"${line.cost_usd:.4f}\n{line.requests} req{_gpu(line)}" for line in lines]
        ax.bar_label(bars, labels=labels, fontsize=8, padding=2)
        if len(keys) > 4:
            ax.set_xticks(range(len(keys)), labels=keys, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_xlabel(by)
        ax.set_ylabel("cost (USD)")
        ax.margins(y=0.2)
        ax.set_title(title)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def _gpu(line: SpendLine) -> str:
    return f", {line.gpu_seconds:.1f} GPU-s" if line.gpu_seconds else ""
