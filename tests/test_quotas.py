"""Quotas and the ledger, against a real SQLite file."""

from __future__ import annotations

import asyncio
import datetime
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.db import Database
from bot.jobs.models import JobStatus
from bot.jobs.store import JobStore, NewJob
from bot.money import format_usd
from bot.quotas import (
    DEFAULT,
    IN_FLIGHT_STATUSES,
    LedgerError,
    Limits,
    Period,
    QuotaError,
    QuotaExceeded,
    Quotas,
    TooManyJobs,
    Window,
)

GUILD, OTHER_GUILD = 1001, 1002
ALICE, BOB, CAROL = 11, 12, 13
DEFAULTS = Limits(guild_daily=5_000_000, guild_monthly=None, member_daily=1_000_000, max_concurrent=3)


def at(*args: int) -> int:
    """UTC epoch seconds for datetime(*args)."""
    return int(datetime.datetime(*args, tzinfo=datetime.UTC).timestamp())  # type: ignore[misc]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(at(2026, 3, 10, 12, 0))


@pytest.fixture
def quotas(db: Database, clock: Clock) -> Quotas:
    return Quotas(db, DEFAULTS, clock=clock)


async def add_job(db: Database, guild: int, member: int, status: str = "received") -> int:
    return await db.execute(
        "INSERT INTO jobs (guild_id, channel_id, member_id, application_id, upload_limit, model, size,"
        " seconds, prompt, status, created_at, updated_at)"
        " VALUES (?, 1, ?, 1, 10485760, 'sora-2', '1280x720', 4, 'a cat', ?, 0, 0)",
        (guild, member, status),
    )


async def accept(db: Database, quotas: Quotas, guild: int, member: int, amount: int) -> int:
    """What the job store does: move a new job to 'reserved' and reserve, in one transaction."""
    job = await add_job(db, guild, member)
    async with db.transaction() as conn:
        await conn.execute("UPDATE jobs SET status = 'reserved' WHERE id = ?", (job,))
        await quotas.reserve(conn, job_id=job, guild_id=guild, member_id=member, amount=amount)
    return job


async def settle(db: Database, quotas: Quotas, job: int, kind: str, amount: int | None = None) -> bool:
    """Charge (at `amount`, if given) or refund the job, moving it to 'posted' or 'failed'."""
    async with db.transaction() as conn:
        if kind == "charge":
            await conn.execute("UPDATE jobs SET status = 'posted' WHERE id = ?", (job,))
            return await quotas.charge(conn, job, amount)
        await conn.execute("UPDATE jobs SET status = 'failed' WHERE id = ?", (job,))
        return await quotas.refund(conn, job)


async def ledger(db: Database) -> list[tuple[int, str, int]]:
    rows = await db.fetchall("SELECT job_id, kind, amount_micros FROM ledger ORDER BY id")
    return [(row["job_id"], row["kind"], row["amount_micros"]) for row in rows]


@pytest.mark.parametrize(
    ("micros", "rounding", "text"),
    [
        (0, "nearest", "$0.00"),
        (1_200_000, "nearest", "$1.20"),
        (1_234_567_890_000, "nearest", "$1,234,567.89"),
        (5_000, "nearest", "$0.01"),
        (4_999, "nearest", "$0.00"),
        (4_999, "up", "$0.01"),
        (19_999, "down", "$0.01"),
        (-1_205_000, "nearest", "-$1.21"),
    ],
)
def test_format_usd(micros: int, rounding: str, text: str) -> None:
    assert format_usd(micros, rounding=rounding) == text  # type: ignore[arg-type]


def test_period_boundaries() -> None:
    period = Period.at(at(2026, 12, 31, 23, 59, 59) + 0.9)
    assert period == Period(at(2026, 12, 31), at(2027, 1, 1), at(2026, 12, 1), at(2027, 1, 1))
    assert Period.at(at(2028, 2, 29, 0, 0)).month_end == at(2028, 3, 1)


async def test_reserve_and_status(db: Database, quotas: Quotas, clock: Clock) -> None:
    await accept(db, quotas, GUILD, ALICE, 400_000)
    await accept(db, quotas, GUILD, BOB, 300_000)
    await accept(db, quotas, OTHER_GUILD, ALICE, 900_000)
    status = await quotas.status(GUILD, ALICE)
    assert status.limits == DEFAULTS
    assert (status.guild_today.spent, status.guild_today.limit, status.guild_today.left) == (
        700_000,
        5_000_000,
        4_300_000,
    )
    assert (status.guild_month.spent, status.guild_month.limit, status.guild_month.left) == (
        700_000,
        None,
        None,
    )
    assert (status.member_today.spent, status.member_today.left) == (400_000, 600_000)
    assert status.guild_today.resets_at == status.member_today.resets_at == at(2026, 3, 11)
    assert status.guild_month.resets_at == at(2026, 4, 1)
    assert status.in_flight == 2
    assert [window.window for window in (status.guild_today, status.guild_month, status.member_today)] == [
        Window.GUILD_DAILY,
        Window.GUILD_MONTHLY,
        Window.MEMBER_DAILY,
    ]


async def test_day_rolls_over_at_utc_midnight(db: Database, quotas: Quotas, clock: Clock) -> None:
    await quotas.set_limits(GUILD, by=1, guild_monthly=3_000_000, member_daily=5_000_000)
    clock.now = at(2026, 3, 10, 23, 59, 59) + 0.999
    await accept(db, quotas, GUILD, ALICE, 5_000_000 - 3_000_000 + 1_000_000)  # 3.00 of the 3.00 month
    with pytest.raises(QuotaExceeded) as caught:
        await accept(db, quotas, GUILD, ALICE, 100_000)
    assert caught.value.window is Window.GUILD_MONTHLY  # the month is checked first: it binds longer
    await quotas.set_limits(GUILD, by=1, guild_monthly=DEFAULT)
    await accept(db, quotas, GUILD, ALICE, 2_000_000)
    with pytest.raises(QuotaExceeded) as caught:
        await accept(db, quotas, GUILD, ALICE, 100_000)
    assert caught.value.window is Window.GUILD_DAILY
    assert caught.value.resets_at == at(2026, 3, 11)

    clock.now = at(2026, 3, 11)
    status = await quotas.status(GUILD, ALICE)
    assert (status.guild_today.spent, status.member_today.spent, status.guild_month.spent) == (
        0,
        0,
        5_000_000,
    )
    await accept(db, quotas, GUILD, ALICE, 100_000)
    assert await quotas.daily_spend(GUILD, days=2) == [
        (datetime.date(2026, 3, 10), 5_000_000),
        (datetime.date(2026, 3, 11), 100_000),
    ]


async def test_month_rolls_over_at_month_start(db: Database, quotas: Quotas, clock: Clock) -> None:
    await quotas.set_limits(GUILD, by=1, guild_monthly=1_500_000)
    clock.now = at(2026, 3, 30, 10, 0)
    await accept(db, quotas, GUILD, ALICE, 1_000_000)
    clock.now = at(2026, 3, 31, 23, 59, 59)
    await accept(db, quotas, GUILD, BOB, 500_000)
    with pytest.raises(QuotaExceeded) as caught:
        await accept(db, quotas, GUILD, CAROL, 10_000)
    assert (caught.value.window, caught.value.left, caught.value.resets_at) == (
        Window.GUILD_MONTHLY,
        0,
        at(2026, 4, 1),
    )
    clock.now = at(2026, 4, 1)
    await accept(db, quotas, GUILD, CAROL, 1_500_000 - 1_000_000)
    status = await quotas.status(GUILD, CAROL)
    assert (status.guild_month.spent, status.guild_month.left) == (500_000, 1_000_000)
    assert status.guild_month.resets_at == at(2026, 5, 1)


async def test_refund_restores_exactly(db: Database, quotas: Quotas, clock: Clock) -> None:
    keep = await accept(db, quotas, GUILD, ALICE, 333_333)
    job = await accept(db, quotas, GUILD, ALICE, 666_667)
    with pytest.raises(QuotaExceeded):
        await accept(db, quotas, GUILD, ALICE, 1)
    assert await settle(db, quotas, job, "refund") is True
    status = await quotas.status(GUILD, ALICE)
    assert (status.member_today.spent, status.guild_today.spent) == (333_333, 333_333)
    assert status.in_flight == 1
    await accept(db, quotas, GUILD, ALICE, 666_667)
    assert await settle(db, quotas, keep, "charge") is True
    assert (await quotas.status(GUILD, ALICE)).member_today.spent == 1_000_000


async def test_refund_of_an_earlier_day_frees_that_day_only(
    db: Database, quotas: Quotas, clock: Clock
) -> None:
    job = await accept(db, quotas, GUILD, ALICE, 1_000_000)
    clock.now += 86_400
    await accept(db, quotas, GUILD, ALICE, 1_000_000)
    await settle(db, quotas, job, "refund")
    assert (await quotas.status(GUILD, ALICE)).member_today.spent == 1_000_000
    assert [amount for _, amount in await quotas.daily_spend(GUILD, days=2)] == [0, 1_000_000]


async def test_settling_is_idempotent_and_exclusive(db: Database, quotas: Quotas) -> None:
    charged = await accept(db, quotas, GUILD, ALICE, 400_000)
    refunded = await accept(db, quotas, GUILD, BOB, 300_000)
    assert await settle(db, quotas, charged, "charge") is True
    assert await settle(db, quotas, charged, "charge") is False
    assert await settle(db, quotas, charged, "refund") is False
    assert await settle(db, quotas, refunded, "refund") is True
    assert await settle(db, quotas, refunded, "refund") is False
    assert await settle(db, quotas, refunded, "charge") is False
    assert await ledger(db) == [
        (charged, "reserve", 400_000),
        (refunded, "reserve", 300_000),
        (charged, "charge", 400_000),
        (refunded, "refund", 300_000),
    ]
    assert (await quotas.status(GUILD, ALICE)).guild_today.spent == 400_000


async def test_a_charge_at_the_actual_cost_frees_what_the_estimate_held(
    db: Database, quotas: Quotas, clock: Clock
) -> None:
    await quotas.set_limits(GUILD, by=1, guild_daily=2_000_000)
    cheaper = await accept(db, quotas, GUILD, ALICE, 400_000)
    estimated = await accept(db, quotas, GUILD, BOB, 400_000)
    refunded = await accept(db, quotas, GUILD, BOB, 300_000)
    clock.now = at(2026, 3, 11, 0, 30)  # settled after midnight: still counted on the day it was accepted
    assert await settle(db, quotas, cheaper, "charge", 250_000) is True
    assert await settle(db, quotas, estimated, "charge") is True  # no actual cost: the estimate
    assert await settle(db, quotas, refunded, "refund") is True
    assert await settle(db, quotas, cheaper, "charge", 1) is False  # settled once, at the first amount
    rows = await db.fetchall(
        "SELECT job_id, kind, amount_micros, window_at FROM ledger WHERE kind != 'reserve'"
    )
    day = at(2026, 3, 10, 12, 0)
    assert [tuple(row) for row in rows] == [
        (cheaper, "charge", 250_000, day),
        (estimated, "charge", 400_000, day),
        (refunded, "refund", 300_000, day),
    ]

    clock.now = at(2026, 3, 10, 18, 0)
    status = await quotas.status(GUILD, ALICE)
    assert (status.guild_today.spent, status.guild_today.left) == (650_000, 1_350_000)  # not 800_000 spent
    assert (status.guild_month.spent, status.member_today.spent) == (650_000, 250_000)
    assert status.member_today.left == 750_000  # $0.15 more than the estimate's $0.60
    report = await quotas.usage(GUILD)
    assert [(m.member_id, m.today, m.month, m.videos) for m in report.members] == [
        (BOB, 400_000, 400_000, 1),
        (ALICE, 250_000, 250_000, 1),
    ]
    assert (report.total.today, report.total.month, report.total.videos) == (650_000, 650_000, 2)
    assert (report.open_micros, report.refunds, report.refunded_micros) == (0, 1, 300_000)
    assert await quotas.daily_spend(GUILD, days=1) == [(datetime.date(2026, 3, 10), 650_000)]

    # The reservation check counts the charge too: $0.75 fits Alice's $1.00 next to $0.25, not next to $0.40.
    await accept(db, quotas, GUILD, ALICE, 750_000)
    with pytest.raises(QuotaExceeded) as caught:
        await accept(db, quotas, GUILD, ALICE, 1)
    assert (caught.value.window, caught.value.spent) == (Window.MEMBER_DAILY, 1_000_000)
    report = await quotas.usage(GUILD)
    assert (report.total.today, report.open_micros) == (1_400_000, 750_000)


async def test_a_charge_over_the_estimate_is_logged_and_counted(
    db: Database, quotas: Quotas, caplog: pytest.LogCaptureFixture
) -> None:
    over = await accept(db, quotas, GUILD, ALICE, 400_000)
    at_the_margin = await accept(db, quotas, GUILD, BOB, 400_000)
    free = await accept(db, quotas, GUILD, CAROL, 0)
    with caplog.at_level(logging.WARNING, logger="bot.quotas"):
        assert await settle(db, quotas, over, "charge", 450_000) is True
        assert await settle(db, quotas, at_the_margin, "charge", 440_000) is True  # 10 % over: expected
        assert await settle(db, quotas, free, "charge", 10_000) is True
    assert [record.getMessage() for record in caplog.records] == [
        f"Job {over} cost $0.45, more than 10% over its estimate of $0.40: the prices need updating",
        f"Job {free} cost $0.01, more than 10% over its estimate of $0.00: the prices need updating",
    ]
    status = await quotas.status(GUILD, ALICE)
    assert (status.member_today.spent, status.guild_today.spent) == (450_000, 900_000)
    assert (await quotas.usage(GUILD)).total.today == 900_000
    assert await quotas.daily_spend(GUILD, days=1) == [(datetime.date(2026, 3, 10), 900_000)]
    # Over Alice's $1.00 would now be any reservation above $0.55, whatever she was estimated at.
    with pytest.raises(QuotaExceeded):
        await accept(db, quotas, GUILD, ALICE, 550_001)


async def test_a_refund_gives_back_everything_whatever_was_reported(db: Database, quotas: Quotas) -> None:
    job = await accept(db, quotas, GUILD, ALICE, 400_000)
    await db.execute("UPDATE jobs SET actual_cost_micros = 250000 WHERE id = ?", (job,))
    assert await settle(db, quotas, job, "refund") is True
    assert await settle(db, quotas, job, "charge", 250_000) is False
    assert await ledger(db) == [(job, "reserve", 400_000), (job, "refund", 400_000)]
    assert (await quotas.status(GUILD, ALICE)).member_today.spent == 0
    report = await quotas.usage(GUILD)
    assert (report.members, report.total.today, report.refunded_micros) == ([], 0, 400_000)
    assert await quotas.daily_spend(GUILD, days=1) == [(datetime.date(2026, 3, 10), 0)]


@pytest.mark.parametrize(
    ("reported", "with_delivery", "charged"),
    [
        (250_000, {}, 250_000),  # the provider's actual cost, stored while the job ran
        (None, {}, 400_000),  # none reported: the estimate
        (250_000, {"actual_cost_micros": 300_000}, 300_000),  # one written with the delivery wins
    ],
)
async def test_mark_posted_charges_the_actual_cost(
    db: Database, quotas: Quotas, reported: int | None, with_delivery: dict[str, int], charged: int
) -> None:
    store = JobStore(db, quotas, clock=lambda: at(2026, 3, 10, 12, 0))
    new = NewJob(GUILD, 2, ALICE, 3, None, None, 10_485_760, "sora-2", "1280x720", 4, "a cat")
    job = await store.reserve(await store.create(new), 400_000)
    await store.transition(job.id, JobStatus.RESERVED, JobStatus.POSTING, actual_cost_micros=reported)
    posted = await store.mark_posted(job.id, 99, **with_delivery)
    assert (posted.status, posted.clip_message_id) == (JobStatus.POSTED, 99)
    assert await ledger(db) == [(job.id, "reserve", 400_000), (job.id, "charge", charged)]


async def test_ledger_misuse(db: Database, quotas: Quotas) -> None:
    job = await accept(db, quotas, GUILD, ALICE, 100_000)
    with pytest.raises(LedgerError, match="already has a reservation"):
        async with db.transaction() as conn:
            await quotas.reserve(conn, job_id=job, guild_id=GUILD, member_id=ALICE, amount=100_000)
    never = await add_job(db, GUILD, ALICE)
    assert await settle(db, quotas, never, "refund") is False  # failed before its reservation
    with pytest.raises(LedgerError, match="no reservation"):
        await settle(db, quotas, never, "charge")
    with pytest.raises(ValueError, match="negative"):
        async with db.transaction() as conn:
            await quotas.reserve(conn, job_id=never, guild_id=GUILD, member_id=ALICE, amount=-1)
    with pytest.raises(ValueError, match="negative"):
        await settle(db, quotas, job, "charge", -1)
    assert len(await ledger(db)) == 1


async def test_ledger_is_append_only_in_the_database(db: Database, quotas: Quotas) -> None:
    job = await accept(db, quotas, GUILD, ALICE, 100_000)
    other = await add_job(db, GUILD, BOB)
    for sql, params in [
        ("UPDATE ledger SET amount_micros = 0", ()),
        ("DELETE FROM ledger", ()),
        (
            "INSERT INTO ledger (job_id, guild_id, member_id, kind, amount_micros, window_at, created_at)"
            " VALUES (?, ?, ?, 'charge', 1, 0, 0)",
            (other, GUILD, BOB),
        ),
    ]:
        with pytest.raises(sqlite3.IntegrityError):
            await db.execute(sql, params)
    await settle(db, quotas, job, "charge")
    with pytest.raises(sqlite3.IntegrityError, match="never both"):
        await db.execute(
            "INSERT INTO ledger (job_id, guild_id, member_id, kind, amount_micros, window_at, created_at)"
            " VALUES (?, ?, ?, 'refund', 100000, 0, 0)",
            (job, GUILD, ALICE),
        )


async def test_a_refused_request_writes_nothing(db: Database, quotas: Quotas) -> None:
    job = await add_job(db, GUILD, ALICE)
    with pytest.raises(QuotaExceeded):
        async with db.transaction() as conn:
            await conn.execute("UPDATE jobs SET status = 'reserved' WHERE id = ?", (job,))
            await quotas.reserve(conn, job_id=job, guild_id=GUILD, member_id=ALICE, amount=1_000_001)
    assert await ledger(db) == []
    row = await db.fetchone("SELECT status FROM jobs WHERE id = ?", (job,))
    assert row is not None and row["status"] == "received"


async def test_overrides_and_defaults(db: Database, quotas: Quotas, clock: Clock) -> None:
    monthly_default = Quotas(db, Limits(5_000_000, 20_000_000, 1_000_000, 3), clock=clock)
    assert await monthly_default.limits_for(GUILD) == Limits(5_000_000, 20_000_000, 1_000_000, 3)

    old, new = await monthly_default.set_limits(GUILD, by=ALICE, guild_daily=2_000_000, guild_monthly=None)
    assert old == Limits(5_000_000, 20_000_000, 1_000_000, 3)
    assert new == Limits(2_000_000, None, 1_000_000, 3)  # None: no monthly limit despite the default
    assert await monthly_default.limits_for(GUILD) == new
    assert await monthly_default.limits_for(OTHER_GUILD) == Limits(5_000_000, 20_000_000, 1_000_000, 3)

    old, new = await monthly_default.set_limits(GUILD, by=BOB, guild_monthly=DEFAULT, max_concurrent=7)
    assert old == Limits(2_000_000, None, 1_000_000, 3)
    assert new == Limits(2_000_000, 20_000_000, 1_000_000, 7)
    row = await db.fetchone("SELECT * FROM guild_settings WHERE guild_id = ?", (GUILD,))
    assert row is not None
    assert (row["guild_monthly_micros"], row["guild_monthly_unlimited"], row["updated_by"]) == (None, 0, BOB)
    assert (row["guild_daily_micros"], row["member_daily_micros"]) == (2_000_000, None)

    _, new = await monthly_default.set_limits(GUILD, by=BOB, guild_daily=DEFAULT, guild_monthly=4_000_000)
    assert new == Limits(5_000_000, 4_000_000, 1_000_000, 7)
    # The operator changing a default reaches every server that has no override for it.
    raised = Quotas(db, Limits(6_000_000, 30_000_000, 2_000_000, 1), clock=clock)
    assert await raised.limits_for(GUILD) == Limits(6_000_000, 4_000_000, 2_000_000, 7)

    for bad in ({"guild_daily": -1}, {"guild_daily": None}, {"max_concurrent": True}, {"member_daily": 1.5}):
        with pytest.raises(ValueError, match="whole number"):
            await quotas.set_limits(GUILD, by=ALICE, **bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("limits", "window", "message"),
    [
        (
            {"guild_daily": 0},
            Window.GUILD_DAILY,
            "Videos are switched off on this server: its daily budget is $0.00.",
        ),
        ({"guild_monthly": 0}, Window.GUILD_MONTHLY, "its monthly budget is $0.00."),
        ({"member_daily": 0}, Window.MEMBER_DAILY, "your daily budget is $0.00."),
    ],
)
async def test_zero_allows_nothing(
    db: Database, quotas: Quotas, limits: dict[str, int], window: Window, message: str
) -> None:
    await quotas.set_limits(GUILD, by=1, **limits)
    with pytest.raises(QuotaExceeded) as caught:
        await accept(db, quotas, GUILD, ALICE, 0)  # not even a free video
    assert caught.value.window is window
    assert message in caught.value.message


async def test_zero_concurrency_allows_nothing(db: Database, quotas: Quotas) -> None:
    await quotas.set_limits(GUILD, by=1, max_concurrent=0)
    with pytest.raises(TooManyJobs) as caught:
        await accept(db, quotas, GUILD, ALICE, 100_000)
    assert caught.value.message == "Videos are switched off on this server: it allows no videos in progress."


async def test_in_flight_cap(db: Database, quotas: Quotas) -> None:
    for status in ("received", "posted", "failed"):  # none of these is in flight
        await add_job(db, GUILD, BOB, status)
    await add_job(db, OTHER_GUILD, BOB, "submitted")
    jobs = [await accept(db, quotas, GUILD, member, 100_000) for member in (ALICE, BOB, CAROL)]
    assert (await quotas.status(GUILD, ALICE)).in_flight == 3
    with pytest.raises(TooManyJobs) as caught:
        await accept(db, quotas, GUILD, ALICE, 100_000)
    assert (caught.value.in_flight, caught.value.limit) == (3, 3)
    assert caught.value.message == (
        "This server already has 3 videos in progress; try again when one finishes."
    )
    assert isinstance(caught.value, QuotaError)
    for status in IN_FLIGHT_STATUSES:  # every in-flight status counts
        await db.execute("UPDATE jobs SET status = ? WHERE id = ?", (status, jobs[0]))
        with pytest.raises(TooManyJobs):
            await accept(db, quotas, GUILD, ALICE, 100_000)
    await settle(db, quotas, jobs[0], "charge")
    await accept(db, quotas, GUILD, ALICE, 100_000)
    assert TooManyJobs(1, 1).message.startswith("This server already has 1 video in progress;")


async def test_exceeded_messages(db: Database, quotas: Quotas, clock: Clock) -> None:
    await quotas.set_limits(GUILD, by=1, member_daily=5_000_000, guild_monthly=50_000_000)
    await accept(db, quotas, GUILD, ALICE, 4_800_000)
    with pytest.raises(QuotaExceeded) as caught:
        await accept(db, quotas, GUILD, BOB, 400_000)
    error = caught.value
    assert (error.window, error.cost, error.spent, error.left, error.limit) == (
        Window.GUILD_DAILY,
        400_000,
        4_800_000,
        200_000,
        5_000_000,
    )
    reset = at(2026, 3, 11)
    assert str(error) == error.message
    assert error.message == (
        f"This video costs $0.40 but this server has $0.20 left today (limit $5.00); it resets <t:{reset}:R>."
    )

    await quotas.set_limits(GUILD, by=1, guild_daily=DEFAULT, member_daily=DEFAULT, guild_monthly=5_000_000)
    with pytest.raises(QuotaExceeded) as caught:
        await accept(db, quotas, GUILD, BOB, 400_000)
    assert caught.value.message == (
        "This video costs $0.40 but this server has $0.20 left this month (limit $5.00); "
        f"it resets <t:{at(2026, 4, 1)}:R>."
    )

    await accept(db, quotas, OTHER_GUILD, BOB, 995_001)
    with pytest.raises(QuotaExceeded) as caught:
        await accept(db, quotas, OTHER_GUILD, BOB, 5_001)
    # What is left rounds down and the cost rounds up, so the sentence never looks affordable.
    assert caught.value.message == (
        f"This video costs $0.01 but you have $0.00 left today (limit $1.00); it resets <t:{reset}:R>."
    )


async def test_usage_report(db: Database, quotas: Quotas, clock: Clock) -> None:
    await quotas.set_limits(GUILD, by=1, member_daily=10_000_000, guild_daily=50_000_000, max_concurrent=9)
    clock.now = at(2026, 3, 9, 12, 0)
    await accept(db, quotas, GUILD, CAROL, 3_000_000)
    await accept(db, quotas, GUILD, OTHER_GUILD, 7_000_000)  # any member id
    clock.now = at(2026, 3, 10, 12, 0)
    done = await accept(db, quotas, GUILD, ALICE, 1_000_000)
    failed = await accept(db, quotas, GUILD, ALICE, 2_000_000)
    await accept(db, quotas, GUILD, BOB, 500_000)
    await accept(db, quotas, OTHER_GUILD, BOB, 900_000)
    await settle(db, quotas, done, "charge")
    await settle(db, quotas, failed, "refund")

    report = await quotas.usage(GUILD, top=2)
    assert (report.day_start, report.month_start) == (at(2026, 3, 10), at(2026, 3, 1))
    assert [(m.member_id, m.today, m.month, m.videos) for m in report.members] == [
        (OTHER_GUILD, 0, 7_000_000, 1),
        (CAROL, 0, 3_000_000, 1),
    ]
    assert (report.rest.members, report.rest.today, report.rest.month, report.rest.videos) == (
        2,
        1_500_000,
        1_500_000,
        2,
    )
    assert (report.total.members, report.total.today, report.total.month, report.total.videos) == (
        4,
        1_500_000,
        11_500_000,
        4,
    )
    assert report.open_micros == 3_000_000 + 7_000_000 + 500_000
    assert (report.refunds, report.refunded_micros) == (1, 2_000_000)
    everyone = await quotas.usage(GUILD)
    assert len(everyone.members) == 4 and everyone.rest.members == 0
    with pytest.raises(ValueError):
        await quotas.usage(GUILD, top=-1)


async def test_daily_spend(db: Database, quotas: Quotas, clock: Clock) -> None:
    clock.now = at(2026, 2, 27, 8, 0)
    await accept(db, quotas, GUILD, ALICE, 100_000)
    clock.now = at(2026, 3, 1, 23, 0)
    await accept(db, quotas, GUILD, ALICE, 200_000)
    await accept(db, quotas, GUILD, BOB, 300_000)
    clock.now = at(2026, 3, 2, 1, 0)
    assert await quotas.daily_spend(GUILD, days=4) == [
        (datetime.date(2026, 2, 27), 100_000),
        (datetime.date(2026, 2, 28), 0),
        (datetime.date(2026, 3, 1), 500_000),
        (datetime.date(2026, 3, 2), 0),
    ]
    assert len(await quotas.daily_spend(GUILD)) == 30
    assert await quotas.daily_spend(OTHER_GUILD, days=1) == [(datetime.date(2026, 3, 2), 0)]
    with pytest.raises(ValueError):
        await quotas.daily_spend(GUILD, days=0)


async def test_racing_for_the_last_dollar(tmp_path: Path, db: Database, clock: Clock) -> None:
    """Two connections to one file, many requests at once: the budget admits exactly what fits."""
    other = await Database.open(db.path)
    try:
        sides = [Quotas(db, DEFAULTS, clock=clock), Quotas(other, DEFAULTS, clock=clock)]
        jobs = [await add_job(db, GUILD, ALICE) for _ in range(8)]

        async def request(index: int) -> bool:
            database = (db, other)[index % 2]
            try:
                async with database.transaction() as conn:
                    await sides[index % 2].reserve(
                        conn, job_id=jobs[index], guild_id=GUILD, member_id=ALICE, amount=400_000
                    )
                    await conn.execute("UPDATE jobs SET status = 'reserved' WHERE id = ?", (jobs[index],))
            except QuotaExceeded:
                return False
            return True

        results = await asyncio.gather(*(request(index) for index in range(8)))
        assert sum(results) == 2  # $1.00 a day for Alice: two videos at $0.40
    finally:
        await other.close()


# --- property test: concurrent reserve/charge/refund over several connections ---------------------


@dataclass(frozen=True)
class Request:
    guild: int
    member: int
    amount: int
    actual: int | None  # what a charge says the job cost (None: the estimate)
    settle: tuple[str, ...]
    advance: int
    pauses: int


requests = st.builds(
    Request,
    guild=st.sampled_from([GUILD, OTHER_GUILD]),
    member=st.sampled_from([ALICE, BOB, CAROL]),
    amount=st.integers(0, 6).map(lambda n: n * 150_000),
    actual=st.none() | st.integers(0, 9).map(lambda n: n * 100_000),
    settle=st.sampled_from(
        [
            (),
            ("charge",),
            ("refund",),
            ("charge", "refund"),
            ("refund", "charge"),
            ("charge", "charge"),
            ("refund", "refund"),
        ]
    ),
    advance=st.sampled_from([0, 0, 0, 1_800, 4 * 3_600]),
    pauses=st.integers(0, 3),
)
money = st.integers(0, 12).map(lambda n: n * 250_000)
limits_strategy = st.builds(
    Limits,
    guild_daily=money,
    guild_monthly=st.none() | money,
    member_daily=money,
    max_concurrent=st.integers(0, 4),
)
overrides = st.fixed_dictionaries(
    {},
    optional={
        "guild_daily": money,
        "guild_monthly": st.none() | money,
        "member_daily": money,
        "max_concurrent": st.integers(0, 4),
    },
)
starts = st.sampled_from([at(2026, 3, 10, 12, 0), at(2026, 3, 31, 20, 0), at(2026, 12, 31, 23, 30)])


def effective(defaults: Limits, override: dict[str, int | None]) -> Limits:
    return Limits(**{**defaults.__dict__, **override})


def independent_spent(
    rows: list[sqlite3.Row], guild: int, start: int, end: int, member: int | None = None
) -> int:
    """Spent computed from raw ledger rows, without the module's SQL: charges, open reservations."""
    settled = {row["job_id"]: row for row in rows if row["kind"] != "reserve"}
    return sum(
        settled.get(row["job_id"], row)["amount_micros"]
        for row in rows
        if row["kind"] == "reserve"
        and row["guild_id"] == guild
        and start <= row["window_at"] < end
        and settled.get(row["job_id"], row)["kind"] != "refund"
        and (member is None or row["member_id"] == member)
    )


def utc_windows(moment: int) -> tuple[int, int, int, int]:
    """Day and month bounds, computed differently from `Period` on purpose."""
    when = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    day = datetime.datetime(when.year, when.month, when.day, tzinfo=datetime.UTC)
    month = datetime.datetime(when.year, when.month, 1, tzinfo=datetime.UTC)
    following = datetime.datetime(when.year + when.month // 12, when.month % 12 + 1, 1, tzinfo=datetime.UTC)
    return (
        int(day.timestamp()),
        int((day + datetime.timedelta(days=1)).timestamp()),
        int(month.timestamp()),
        int(following.timestamp()),
    )


async def run_scenario(
    path: Path, defaults: Limits, override: dict[str, int | None], start: int, plan: list[Request]
) -> None:
    first = await Database.open(path)
    await first.migrate()
    databases = [first, await Database.open(path), await Database.open(path)]
    clock = Clock(start)
    services = [Quotas(database, defaults, clock=clock) for database in databases]
    limits = {GUILD: defaults, OTHER_GUILD: effective(defaults, override)}
    if override:
        await services[0].set_limits(OTHER_GUILD, by=1, **override)  # type: ignore[arg-type]
    jobs = [await add_job(first, request.guild, request.member) for request in plan]

    async def check_limits(conn: object, guild: int, member: int) -> None:
        """Inside the reserving transaction: nothing is over any limit, checked from raw rows."""
        async with conn.execute("SELECT * FROM ledger") as cursor:  # type: ignore[attr-defined]
            rows = list(await cursor.fetchall())
        async with conn.execute(  # type: ignore[attr-defined]
            "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND status IN"
            " ('reserved', 'submitting', 'submitted', 'completed')",
            (guild,),
        ) as cursor:
            (in_flight,) = await cursor.fetchone()
        day_start, day_end, month_start, month_end = utc_windows(max(row["window_at"] for row in rows))
        limit = limits[guild]
        assert independent_spent(rows, guild, day_start, day_end) <= limit.guild_daily
        assert independent_spent(rows, guild, day_start, day_end, member) <= limit.member_daily
        if limit.guild_monthly is not None:
            assert independent_spent(rows, guild, month_start, month_end) <= limit.guild_monthly
        assert in_flight <= limit.max_concurrent

    async def run(index: int, request: Request) -> None:
        database, service, job = databases[index % 3], services[index % 3], jobs[index]
        for _ in range(request.pauses):
            await asyncio.sleep(0)
        clock.now += request.advance
        try:
            async with database.transaction() as conn:
                await conn.execute("UPDATE jobs SET status = 'reserved' WHERE id = ?", (job,))
                await service.reserve(
                    conn, job_id=job, guild_id=request.guild, member_id=request.member, amount=request.amount
                )
                await check_limits(conn, request.guild, request.member)
        except QuotaError:
            return
        for kind in request.settle:
            for _ in range(request.pauses):
                await asyncio.sleep(0)
            await settle(database, service, job, kind, request.actual)

    try:
        await asyncio.gather(*(run(index, request) for index, request in enumerate(plan)))

        rows = await first.fetchall("SELECT * FROM ledger")
        kinds: dict[int, list[str]] = {}
        for row in rows:
            kinds.setdefault(row["job_id"], []).append(row["kind"])
        for job, settled in kinds.items():
            assert settled in (["reserve"], ["reserve", "charge"], ["reserve", "refund"]), (job, settled)
        for job, request in zip(jobs, plan, strict=True):
            expected = ["reserve", request.settle[0]] if request.settle else ["reserve"]
            assert kinds.get(job, expected) == expected  # the first settlement wins
            if kinds.get(job) == ["reserve", "charge"]:  # at the actual cost, if one was given
                (charged,) = [
                    row["amount_micros"] for row in rows if row["job_id"] == job and row["kind"] == "charge"
                ]
                assert charged == (request.amount if request.actual is None else request.actual)

        day_start, day_end, month_start, month_end = utc_windows(int(clock.now))
        for guild in (GUILD, OTHER_GUILD):
            report = await services[1].usage(guild, top=1)
            assert report.total.month == independent_spent(rows, guild, month_start, month_end)
            assert report.total.today == independent_spent(rows, guild, day_start, day_end)
            assert (await services[2].daily_spend(guild, days=1))[0][1] == report.total.today
            for member in (ALICE, BOB, CAROL):
                status = await services[0].status(guild, member)
                assert status.limits == limits[guild]
                assert status.guild_today.spent == independent_spent(rows, guild, day_start, day_end)
                assert status.guild_month.spent == independent_spent(rows, guild, month_start, month_end)
                assert status.member_today.spent == independent_spent(rows, guild, day_start, day_end, member)
    finally:
        for database in databases:
            await database.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    defaults=limits_strategy,
    override=overrides,
    start=starts,
    plan=st.lists(requests, min_size=1, max_size=24),
)
def test_concurrent_ledger_never_overspends(
    tmp_path_factory: pytest.TempPathFactory,
    defaults: Limits,
    override: dict[str, int | None],
    start: int,
    plan: list[Request],
) -> None:
    path = tmp_path_factory.mktemp("ledger") / "soracord.sqlite3"
    asyncio.run(run_scenario(path, defaults, override, start, plan))
