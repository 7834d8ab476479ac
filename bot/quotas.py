"""Budgets per server and member, and the ledger that enforces them.

Windows are UTC: a server's spend per day and per calendar month, a member's spend per day (in that
server), plus a cap on a server's jobs in flight. Limits come from the operator's defaults, overridden
per server in `guild_settings`.

The ledger: when a job is accepted it *reserves* its estimate, inside the caller's BEGIN IMMEDIATE
transaction that also moves the job from 'received' to 'reserved'; the checks and the write share that
transaction, so two racing requests (even from other connections) cannot both take the last dollar.
The reservation is later settled exactly once: *charged* when the clip is delivered (at the provider's
actual cost when it reported one, else at the estimate) or *refunded* when the job fails. Spent in a
window = what the reservations made in it (by `window_at`) came to: a charged job its charge, an open
reservation its estimate, a refunded one nothing (`_RESERVATIONS` says so once, for every query). Rows
are never changed or deleted (migration 0002 enforces this).
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from bot.db import Database
from bot.db_cursor import TransactionConnection
from bot.jobs.models import IN_FLIGHT
from bot.money import format_usd
from bot.reasons import PlainError

log = logging.getLogger(__name__)

DAY = 86_400
IN_FLIGHT_STATUSES = tuple(status.value for status in IN_FLIGHT)
_IN_FLIGHT_SQL = f"status IN ({', '.join(repr(status) for status in IN_FLIGHT_STATUSES)})"
#: Charged more than this much over its reservation, a job is worth the operator's attention.
OVERCHARGE_PERCENT = 10

# One row per reservation: its server, member and window; `settlement` ('open', 'charge' or 'refund');
# `reserved_micros`, the estimate; and `spent_micros`, what it counts in its windows: the charge once
# charged (the provider's actual cost), the estimate while open, nothing once refunded.
_RESERVATIONS = """(
    SELECT r.guild_id, r.member_id, r.window_at, r.amount_micros AS reserved_micros,
        COALESCE(s.kind, 'open') AS settlement,
        CASE WHEN s.kind = 'refund' THEN 0 ELSE COALESCE(s.amount_micros, r.amount_micros) END AS spent_micros
    FROM ledger AS r LEFT JOIN ledger AS s ON s.job_id = r.job_id AND s.kind != 'reserve'
    WHERE r.kind = 'reserve'
)"""

_SETTINGS_SQL = (
    "SELECT guild_daily_micros, guild_monthly_micros, guild_monthly_unlimited, member_daily_micros,"
    " max_concurrent_jobs FROM guild_settings WHERE guild_id = ?"
)

# Queries about a server's windows (rows `j` of `_RESERVATIONS`) share numbered parameters
# (`Database.fetchone` takes a sequence): ?1 guild_id, ?2 day_start, ?3 day_end, ?4 month_start,
# ?5 month_end (`Period.params`), ?6 member_id.
_IN_MONTH = "j.guild_id = ?1 AND j.window_at >= ?4 AND j.window_at < ?5"
_TODAY = "j.window_at >= ?2 AND j.window_at < ?3"

# Spent this month, today, and by one member today, in one server.
_SPENT_SQL = f"""
SELECT
    COALESCE(SUM(j.spent_micros), 0) AS month,
    COALESCE(SUM(CASE WHEN {_TODAY} THEN j.spent_micros END), 0) AS day,
    COALESCE(SUM(CASE WHEN {_TODAY} AND j.member_id = ?6 THEN j.spent_micros END), 0) AS member_day
FROM {_RESERVATIONS} AS j
WHERE {_IN_MONTH}
"""


class Window(StrEnum):
    """A budget window; the value is the matching `Limits` field."""

    GUILD_DAILY = "guild_daily"
    GUILD_MONTHLY = "guild_monthly"
    MEMBER_DAILY = "member_daily"

    @property
    def label(self) -> str:
        return {
            Window.GUILD_DAILY: "server today",
            Window.GUILD_MONTHLY: "server this month",
            Window.MEMBER_DAILY: "you today",
        }[self]


@dataclass(frozen=True)
class Limits:
    """Budgets in micro-dollars (0 = nothing allowed; `guild_monthly` None = no monthly limit)."""

    guild_daily: int
    guild_monthly: int | None
    member_daily: int
    max_concurrent: int


class Override(Enum):
    """Markers for `Quotas.set_limits`: leave a value as it is, or go back to the operator's default."""

    UNCHANGED = "unchanged"
    DEFAULT = "default"


UNCHANGED = Override.UNCHANGED
DEFAULT = Override.DEFAULT


@dataclass(frozen=True)
class Period:
    """The UTC day and month containing a moment, as epoch seconds [start, end)."""

    day_start: int
    day_end: int
    month_start: int
    month_end: int

    @classmethod
    def at(cls, now: float) -> Period:
        day_start = int(now) // DAY * DAY
        today = datetime.datetime.fromtimestamp(day_start, datetime.UTC)
        month = today.replace(day=1)
        next_month = (month + datetime.timedelta(days=32)).replace(day=1)
        return cls(day_start, day_start + DAY, int(month.timestamp()), int(next_month.timestamp()))

    def params(self) -> tuple[int, int, int, int]:
        return self.day_start, self.day_end, self.month_start, self.month_end


class QuotaError(PlainError):
    """A request refused by a budget or the in-flight cap; `reason` is meant for the member."""

    @property
    def message(self) -> str:
        return self.reason


class QuotaExceeded(QuotaError):
    """The video would take `window` over its limit."""

    def __init__(self, window: Window, *, cost: int, spent: int, limit: int, resets_at: int) -> None:
        self.window = window
        self.cost = cost
        self.spent = spent
        self.limit = limit
        self.left = max(0, limit - spent)
        self.resets_at = resets_at
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        if self.limit == 0:
            return {
                Window.GUILD_DAILY: "Videos are switched off on this server: its daily budget is $0.00.",
                Window.GUILD_MONTHLY: "Videos are switched off on this server: its monthly budget is $0.00.",
                Window.MEMBER_DAILY: "You cannot make videos on this server: your daily budget is $0.00.",
            }[self.window]
        left = format_usd(self.left, rounding="down")
        who = {
            Window.GUILD_DAILY: f"this server has {left} left today",
            Window.GUILD_MONTHLY: f"this server has {left} left this month",
            Window.MEMBER_DAILY: f"you have {left} left today",
        }[self.window]
        return (
            f"This video costs {format_usd(self.cost, rounding='up')} but {who} "
            f"(limit {format_usd(self.limit)}); it resets <t:{self.resets_at}:R>."
        )


class TooManyJobs(QuotaError):
    """The server already has `limit` jobs in flight and its queue (`queue_limit` places) is full."""

    def __init__(self, in_flight: int, limit: int, *, queue_limit: int = 0) -> None:
        self.in_flight = in_flight
        self.limit = limit
        self.queue_limit = queue_limit
        videos = "video" if in_flight == 1 else "videos"
        if limit == 0:
            message = "Videos are switched off on this server: it allows no videos in progress."
        elif queue_limit:
            message = (
                f"This server's queue is full: {in_flight} {videos} in progress and {queue_limit} waiting "
                "(the most it takes). Try again when one finishes."
            )
        else:
            message = (
                f"This server already has {in_flight} {videos} in progress; try again when one finishes."
            )
        super().__init__(message)


class LedgerError(RuntimeError):
    """A ledger call that breaks its rules (reserving twice, charging without a reservation): a bug."""


@dataclass(frozen=True)
class WindowStatus:
    window: Window
    spent: int
    limit: int | None
    resets_at: int

    @property
    def left(self) -> int | None:
        """What is left, or None if unlimited; never negative (a lowered limit can be below the spend)."""
        return None if self.limit is None else max(0, self.limit - self.spent)


@dataclass(frozen=True)
class QuotaStatus:
    """Everything `/quota show` displays, read in one statement."""

    limits: Limits
    guild_today: WindowStatus
    guild_month: WindowStatus
    member_today: WindowStatus
    in_flight: int


@dataclass(frozen=True)
class MemberUsage:
    member_id: int
    today: int
    month: int
    videos: int  # jobs reserved this month and not refunded


@dataclass(frozen=True)
class UsageGroup:
    members: int
    today: int
    month: int
    videos: int


@dataclass(frozen=True)
class UsageReport:
    """A server's spend in the current UTC day and month (charged jobs at their charge, refunds as 0)."""

    day_start: int
    month_start: int
    members: list[MemberUsage]  # the top spenders this month, biggest first
    rest: UsageGroup  # everyone else who spent this month
    total: UsageGroup
    open_micros: int  # reserved this month and not yet charged or refunded (jobs in progress)
    refunds: int  # jobs reserved this month and refunded
    refunded_micros: int


class Quotas:
    """Limits, reservations, charges and refunds for every server."""

    def __init__(self, db: Database, defaults: Limits, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._defaults = defaults
        self._clock = clock

    def _merge(self, row: Mapping[str, Any] | None) -> Limits:
        """A server's effective limits: its overrides where set, the defaults elsewhere."""
        if row is None:
            return self._defaults
        defaults = self._defaults

        def pick(column: str, default: int) -> int:
            return default if row[column] is None else int(row[column])

        if row["guild_monthly_unlimited"]:
            monthly = None
        elif row["guild_monthly_micros"] is not None:
            monthly = int(row["guild_monthly_micros"])
        else:
            monthly = defaults.guild_monthly
        return Limits(
            pick("guild_daily_micros", defaults.guild_daily),
            monthly,
            pick("member_daily_micros", defaults.member_daily),
            pick("max_concurrent_jobs", defaults.max_concurrent),
        )

    async def limits_for(self, guild_id: int) -> Limits:
        return self._merge(await self._db.fetchone(_SETTINGS_SQL, (guild_id,)))

    async def set_limits(
        self,
        guild_id: int,
        *,
        by: int,
        guild_daily: int | Override = UNCHANGED,
        guild_monthly: int | Override | None = UNCHANGED,
        member_daily: int | Override = UNCHANGED,
        max_concurrent: int | Override = UNCHANGED,
    ) -> tuple[Limits, Limits]:
        """Change a server's overrides; returns its effective limits before and after.

        Each value is an amount (micro-dollars, or a job count for `max_concurrent`), `DEFAULT` to
        follow the operator's default again, or `UNCHANGED`. `guild_monthly=None` means no monthly
        limit for this server, whatever the default.
        """
        changes = {
            "guild_daily_micros": guild_daily,
            "guild_monthly_micros": guild_monthly,
            "member_daily_micros": member_daily,
            "max_concurrent_jobs": max_concurrent,
        }
        for column, value in changes.items():
            valid = isinstance(value, Override) or (value is None and column == "guild_monthly_micros")
            if not valid and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{column} must be a whole number of 0 or more, not {value!r}")
        async with self._db.transaction() as conn:
            row = await _fetchone(conn, _SETTINGS_SQL, (guild_id,))
            old = self._merge(row)
            columns: dict[str, Any] = (
                dict(row) if row else {column: None for column in changes} | {"guild_monthly_unlimited": 0}
            )
            for column, value in changes.items():
                if value is UNCHANGED:
                    continue
                columns[column] = None if value is DEFAULT else value
                if column == "guild_monthly_micros":
                    columns["guild_monthly_unlimited"] = int(value is None)
            await conn.execute(
                "INSERT INTO guild_settings (guild_id, guild_daily_micros, guild_monthly_micros,"
                " guild_monthly_unlimited, member_daily_micros, max_concurrent_jobs, updated_by, updated_at)"
                " VALUES (:guild_id, :guild_daily_micros, :guild_monthly_micros, :guild_monthly_unlimited,"
                " :member_daily_micros, :max_concurrent_jobs, :by, :now)"
                " ON CONFLICT (guild_id) DO UPDATE SET"
                " guild_daily_micros = excluded.guild_daily_micros,"
                " guild_monthly_micros = excluded.guild_monthly_micros,"
                " guild_monthly_unlimited = excluded.guild_monthly_unlimited,"
                " member_daily_micros = excluded.member_daily_micros,"
                " max_concurrent_jobs = excluded.max_concurrent_jobs,"
                " updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                columns | {"guild_id": guild_id, "by": by, "now": int(self._clock())},
            )
            new = self._merge(columns)
        log.info("Guild %s limits changed by %s: %s -> %s", guild_id, by, old, new)
        return old, new

    async def reserve(
        self,
        conn: TransactionConnection,
        *,
        job_id: int,
        guild_id: int,
        member_id: int,
        amount: int,
        queue_limit: int = 0,
    ) -> bool:
        """Check every window and the server's slots, then record the reservation; True when the job
        can start now, False when it waits in the server's queue (at most `queue_limit` wait).

        Call inside the caller's `db.transaction()`, the one that accepts the job (the job itself is not
        counted). Raises `QuotaExceeded`, `TooManyJobs` (no slot and no room in the queue) — roll back —
        or `LedgerError` if the job already has a reservation.
        """
        if amount < 0:
            raise ValueError(f"amount must not be negative, not {amount}")
        now = int(self._clock())
        period = Period.at(now)
        if await _fetchone(conn, "SELECT 1 FROM ledger WHERE job_id = ? AND kind = 'reserve'", (job_id,)):
            raise LedgerError(f"job {job_id} already has a reservation")
        limits = self._merge(await _fetchone(conn, _SETTINGS_SQL, (guild_id,)))
        spent = await _fetchone(conn, _SPENT_SQL, (guild_id, *period.params(), member_id))
        assert spent is not None
        # The month first: when it is exhausted, the day resetting would not help.
        for window, used, limit, resets_at in (
            (Window.GUILD_MONTHLY, spent["month"], limits.guild_monthly, period.month_end),
            (Window.GUILD_DAILY, spent["day"], limits.guild_daily, period.day_end),
            (Window.MEMBER_DAILY, spent["member_day"], limits.member_daily, period.day_end),
        ):
            if limit is not None and (limit == 0 or used + amount > limit):
                raise QuotaExceeded(window, cost=amount, spent=used, limit=limit, resets_at=resets_at)
        in_flight = await _fetchone(
            conn,
            f"SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND id != ? AND {_IN_FLIGHT_SQL}",
            (guild_id, job_id),
        )
        assert in_flight is not None
        starts = in_flight["n"] < limits.max_concurrent
        if not starts:
            waiting = await _fetchone(
                conn,
                "SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND id != ? AND status = 'queued'",
                (guild_id, job_id),
            )
            assert waiting is not None
            if limits.max_concurrent == 0 or waiting["n"] >= queue_limit:
                raise TooManyJobs(in_flight["n"], limits.max_concurrent, queue_limit=queue_limit)
        await conn.execute(
            "INSERT INTO ledger (job_id, guild_id, member_id, kind, amount_micros, window_at, created_at)"
            " VALUES (?, ?, ?, 'reserve', ?, ?, ?)",
            (job_id, guild_id, member_id, amount, now, now),
        )
        log.debug("Job %s reserved %s in guild %s", job_id, amount, guild_id)
        return starts

    async def charge(self, conn: TransactionConnection, job_id: int, amount: int | None = None) -> bool:
        """Settle the job's reservation as delivered, inside the caller's transaction.

        The charge is `amount`, what the provider says the job cost, or the reservation's estimate
        without one; it counts in the window of the reservation. A charge more than
        `OVERCHARGE_PERCENT` over the estimate is logged as a warning: the budgets were checked on
        the estimate, so the prices need updating. Returns False, writing nothing, if the job was
        already charged or refunded. Raises `LedgerError` if the job has no reservation: a delivered
        job always has one.
        """
        if amount is not None and amount < 0:
            raise ValueError(f"amount must not be negative, not {amount}")
        reservation = await self._settle(conn, job_id, "charge", amount)
        if reservation is None:
            return False
        estimate = reservation["amount_micros"]
        if amount is not None and amount * 100 > estimate * (100 + OVERCHARGE_PERCENT):
            log.warning(
                "Job %s cost %s, more than %s%% over its estimate of %s: the prices need updating",
                job_id,
                format_usd(amount),
                OVERCHARGE_PERCENT,
                format_usd(estimate),
            )
        return True

    async def refund(self, conn: TransactionConnection, job_id: int) -> bool:
        """Give the job's reservation back (inside the caller's transaction).

        Returns False, writing nothing, if the job was already charged or refunded, or never reserved
        (it failed before its reservation).
        """
        return await self._settle(conn, job_id, "refund") is not None

    async def _settle(
        self, conn: TransactionConnection, job_id: int, kind: str, amount: int | None = None
    ) -> sqlite3.Row | None:
        """Write the job's `kind` of settlement for `amount` (else the reserved amount); returns the
        reservation it settled, or None if there was nothing to settle."""
        rows = await _fetchall(
            conn,
            "SELECT kind, guild_id, member_id, amount_micros, window_at FROM ledger WHERE job_id = ?",
            (job_id,),
        )
        by_kind = {row["kind"]: row for row in rows}
        reservation = by_kind.get("reserve")
        if reservation is None:
            if kind == "charge":
                raise LedgerError(f"job {job_id} has no reservation to charge")
            return None
        for settled in ("charge", "refund"):
            if settled in by_kind:
                if settled != kind:
                    log.warning("Job %s was already settled (%s); ignoring the %s", job_id, settled, kind)
                return None
        settled_micros = reservation["amount_micros"] if amount is None else amount
        # The reservation's window: the job stays counted in the day it was accepted.
        await conn.execute(
            "INSERT INTO ledger (job_id, guild_id, member_id, kind, amount_micros, window_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                reservation["guild_id"],
                reservation["member_id"],
                kind,
                settled_micros,
                reservation["window_at"],
                int(self._clock()),
            ),
        )
        log.debug("Job %s: %s of %s", job_id, kind, settled_micros)
        return reservation

    async def status(self, guild_id: int, member_id: int) -> QuotaStatus:
        """The server's and the member's windows now, and the server's jobs in flight."""
        period = Period.at(self._clock())
        row = await self._db.fetchone(
            "SELECT s.month, s.day, s.member_day,"
            f" (SELECT COUNT(*) FROM jobs WHERE guild_id = ?1 AND {_IN_FLIGHT_SQL}) AS in_flight,"
            " g.guild_daily_micros, g.guild_monthly_micros,"
            " COALESCE(g.guild_monthly_unlimited, 0) AS guild_monthly_unlimited,"
            " g.member_daily_micros, g.max_concurrent_jobs"
            f" FROM ({_SPENT_SQL}) AS s LEFT JOIN guild_settings AS g ON g.guild_id = ?1",
            (guild_id, *period.params(), member_id),
        )
        assert row is not None
        limits = self._merge(row)
        day, month = period.day_end, period.month_end
        return QuotaStatus(
            limits=limits,
            guild_today=WindowStatus(Window.GUILD_DAILY, row["day"], limits.guild_daily, day),
            guild_month=WindowStatus(Window.GUILD_MONTHLY, row["month"], limits.guild_monthly, month),
            member_today=WindowStatus(Window.MEMBER_DAILY, row["member_day"], limits.member_daily, day),
            in_flight=row["in_flight"],
        )

    async def usage(self, guild_id: int, *, top: int = 15) -> UsageReport:
        """Spend per member today and this month (the `top` biggest this month, then the rest)."""
        if top < 0:
            raise ValueError(f"top must not be negative, not {top}")
        period = Period.at(self._clock())
        params = (guild_id, *period.params())
        rows = await self._db.fetchall(
            "SELECT j.member_id, SUM(j.spent_micros) AS month, COUNT(*) AS videos,"
            f" COALESCE(SUM(CASE WHEN {_TODAY} THEN j.spent_micros END), 0) AS day"
            f" FROM {_RESERVATIONS} AS j WHERE {_IN_MONTH} AND j.settlement != 'refund'"
            " GROUP BY j.member_id ORDER BY month DESC, day DESC, j.member_id",
            params,
        )
        totals = await self._db.fetchone(
            "SELECT"
            " COALESCE(SUM(CASE WHEN j.settlement = 'open' THEN j.spent_micros END), 0) AS open,"
            " COUNT(CASE WHEN j.settlement = 'refund' THEN 1 END) AS refunds,"
            " COALESCE(SUM(CASE WHEN j.settlement = 'refund' THEN j.reserved_micros END), 0) AS refunded"
            f" FROM {_RESERVATIONS} AS j WHERE {_IN_MONTH}",
            params,
        )
        assert totals is not None
        members = [MemberUsage(row["member_id"], row["day"], row["month"], row["videos"]) for row in rows]
        return UsageReport(
            day_start=period.day_start,
            month_start=period.month_start,
            members=members[:top],
            rest=_group(members[top:]),
            total=_group(members),
            open_micros=totals["open"],
            refunds=totals["refunds"],
            refunded_micros=totals["refunded"],
        )

    async def daily_spend(self, guild_id: int, days: int = 30) -> list[tuple[datetime.date, int]]:
        """Spend per UTC day for the last `days` days, today last, days without spend as 0."""
        if days < 1:
            raise ValueError(f"days must be at least 1, not {days}")
        period = Period.at(self._clock())
        first = period.day_start // DAY - (days - 1)
        rows = await self._db.fetchall(
            f"SELECT j.window_at / {DAY} AS day, SUM(j.spent_micros) AS spent FROM {_RESERVATIONS} AS j"
            " WHERE j.guild_id = ? AND j.window_at >= ? AND j.window_at < ? GROUP BY day",
            (guild_id, first * DAY, period.day_end),
        )
        spent = {row["day"]: row["spent"] for row in rows}
        epoch = datetime.date(1970, 1, 1)
        return [
            (epoch + datetime.timedelta(days=day), spent.get(day, 0)) for day in range(first, first + days)
        ]


def _group(members: list[MemberUsage]) -> UsageGroup:
    return UsageGroup(
        members=len(members),
        today=sum(member.today for member in members),
        month=sum(member.month for member in members),
        videos=sum(member.videos for member in members),
    )


async def _fetchone(conn: TransactionConnection, sql: str, params: Any = ()) -> sqlite3.Row | None:
    async with conn.execute(sql, params) as cursor:
        return await cursor.fetchone()


async def _fetchall(conn: TransactionConnection, sql: str, params: Any = ()) -> list[sqlite3.Row]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())
