"""Benchmark: many videos in flight through the real bot, against the official SDK polling the same jobs.

Run from the repository root:

    python -m bench.jobs --jobs 1000 --interval 1 --job-seconds 20
    python -m bench.jobs --jobs 20 --job-seconds 2 --big-clip-mb 0     # quick look, ~10 s

Both sides run on 127.0.0.1 against the fake Videos API (tests/fakes/videos_fake.py), whose jobs
take ``--job-seconds`` of wall time each. Every side runs in its own spawned process, so the CPU and
memory printed are that side's alone:

- this process: the fake Discord (tests/fakes/discord_fake.py), which dispatches the `/video generate`
  interactions and records every request and message;
- ``videos``: the fake Videos API (one fresh process per side); it serves one prepared clip for every
  job instead of encoding one per job (see `BenchVideosAPI`);
- ``bot``: the real `bot.app.SoraBot` with production timing built from its settings (poll every
  ``--interval`` s, card edits at most every 3 s), logging at INFO to a file;
- ``baseline``: `openai.AsyncOpenAI` doing ``videos.create_and_poll(poll_interval_ms=interval*1000)``
  then ``videos.download_content(...).write_to_file(...)`` for every job, all concurrently.

With two or more cores the measured process (bot or baseline) is pinned to the first core and the
fakes to the others, so the fakes cannot steal its core ("on one core"). CPU is user+system time of
the measured process (and any children it waited for) from the first dispatch until the last job is
done; peak RSS is the kernel's high-water mark (VmHWM) of that process.

The jobs are spread over ``--guilds`` servers x ``--members`` members and dispatched at
``--dispatch-rate`` per second (the SDK side starts its jobs at the same rate); the bot's budgets and
in-flight caps are raised so that none is refused. After the run, unless ``--big-clip-mb 0``, one big
noisy clip (made once and cached in the temp folder) goes through each side, the bot posting it to a
server with a 100 MiB upload limit (so it is posted as is, not re-encoded); printed is the growth of
the process's peak RSS from just before the request until the clip is delivered.

Times: "completion" is the moment the fake marked the video completed (it does so lazily, on the
first status request after the job's time is up, so this leaves out the polling delay); "ready" is
when the job's time was up (creation + job seconds), so ready→posted includes the wait for the next
poll. "Posted" is when the fake Discord created the clip message; for the baseline, when the file was
written. All are CLOCK_MONOTONIC readings, which every process on the machine shares.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import multiprocessing
import os
import re
import resource
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bot import event_loop as bot_event_loop
from tests.fakes.discord_fake import FakeDiscord, FakeMessage, peak_in_one_second
from tests.fakes.mp4 import make_mp4
from tests.fakes.videos_fake import FakeVideo, FakeVideosAPI

MiB = 1024 * 1024
MODEL, SIZE, SECONDS = "sora-2", "720x1280", 4
PROMPT = "bench job {}"
BIG_PROMPT = "bench big clip"
PROMPT_NUMBER = re.compile(r"bench job (\d+)")
FINAL_CARD = re.compile(r"Done|Failed|not postable")  # bot/cards.py status_line for posted and failed jobs
OTHERS_WARNING = 0.05  # share of a core other processes may use before the figures are called disturbed
DISCORD_GLOBAL_LIMIT = 50  # Discord's global limit for a bot, requests per second
CACHE = Path(tempfile.gettempdir()) / "soracord-bench-media"
BOT_LOG = "bot.log"
CHILD_START_TIMEOUT = 60.0


# -- measuring a process --------------------------------------------------------------------------------


def usage() -> dict[str, float]:
    """This process's CPU seconds (itself + waited-for children), RSS and peak RSS (bytes), and the time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    status = Path("/proc/self/status").read_text()
    memory = {
        key: int(value) * 1024 for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)
    }
    return {"cpu": cpu, "rss": memory.get("VmRSS", 0), "hwm": memory.get("VmHWM", 0), "t": time.monotonic()}


def machine_cpu() -> dict[str, float]:
    """CPU seconds the whole machine's processes have run, in all ("cpu") and per core ("cpu0", …),
    from /proc/stat: user, nice and system time. Interrupt time is left out: most of it is the
    loopback traffic of our own processes, which their own CPU figures do not include."""
    tick = os.sysconf("SC_CLK_TCK")
    busy = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu"):
            user, nice, system = (int(value) for value in fields[:3])
            busy[name] = (user + nice + system) / tick
    return busy | {"t": time.monotonic()}


def others_load(
    machine: tuple[dict[str, float], dict[str, float]], measured: float, ours: float, core: int
) -> tuple[float, float]:
    """What processes other than ours used during a window, as shares of one core: (on the measured
    core, in all). `measured` is the measured process's CPU seconds, `ours` all of ours (it included)."""
    start, end = machine
    wall = max(end["t"] - start["t"], 1e-9)
    on_core = end[f"cpu{core}"] - start[f"cpu{core}"] - measured
    in_all = end["cpu"] - start["cpu"] - ours
    return max(0.0, on_core / wall), max(0.0, in_all / wall)


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False if the kernel refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def split_cpus() -> tuple[set[int], set[int]]:
    """(the measured process's core, the fakes' cores); both all cores when there is only one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    return {cpus[0]}, set(cpus[1:])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def peak_overlap(spans: Iterable[tuple[float, float]]) -> int:
    """The most intervals [start, end) that overlap at one moment."""
    events = sorted(event for start, end in spans for event in ((start, 1), (end, -1)))
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


# -- media ------------------------------------------------------------------------------------------------


def prepared_clip() -> Path:
    """One 4 s 720x1280 clip with sound (~110 kB), made once and kept in the cache folder."""
    path = CACHE / f"clip-{SIZE}-{SECONDS}s.mp4"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        make_mp4(temp, 720, 1280, SECONDS, seed=1)
        temp.replace(path)
    return path


def prepared_big_clip(megabytes: int) -> Path:
    """A noisy 12 s 1280x720 clip of about `megabytes` MB (x264 cannot shrink noise), made once."""
    path = CACHE / f"big-{megabytes}MB.mp4"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        # At noise 1.0 the encoder hits its cap: bytes ~ bit_rate * 12 s / 8 * 1.034 (measured).
        make_mp4(temp, 1280, 720, 12, seed=7, noise=1.0, bit_rate=int(megabytes * 1e6 * 8 / 12 / 1.034))
        temp.replace(path)
    return path


class BenchVideosAPI(FakeVideosAPI):
    """The fake Videos API serving one prepared clip for every job (the big one for `BIG_PROMPT`),
    so that a thousand jobs do not make the fake encode a thousand clips."""

    def __init__(self, *, clip: Path, big_clip: Path | None, **options: Any) -> None:
        super().__init__(**options)
        self.clip, self.big_clip = clip, big_clip
        self.call_times: list[float] = []  # CLOCK_MONOTONIC arrival of each call, as `calls` holds them

    async def _record(self, request: Any) -> Any:
        call = await super()._record(request)
        self.call_times.append(time.monotonic())
        return call

    async def _media(self, video: FakeVideo, variant: str) -> Path:
        if variant == "video":
            return self.big_clip if video.prompt == BIG_PROMPT and self.big_clip else self.clip
        return await super()._media(video, variant)


# -- children -----------------------------------------------------------------------------------------------


class Commands:
    """Commands from the parent, read on the event loop (no thread taken from the default executor)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(conn.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                self.queue.put_nowait(self.conn.recv())
        except (EOFError, OSError):  # the parent is gone
            self.loop.remove_reader(self.conn.fileno())
            self.queue.put_nowait(("stop",))

    async def next(self) -> tuple[Any, ...]:
        return await self.queue.get()


def child(role: str, conn: Connection, config: dict[str, Any]) -> None:
    """Entry point of every spawned process."""
    cpus = config.get("cpus")
    if cpus:
        os.sched_setaffinity(0, cpus)  # before any thread starts, so every thread inherits it
    main = {"videos": _videos_child, "bot": _bot_child, "baseline": _baseline_child}[role]
    run = bot_event_loop.run if role == "bot" else asyncio.run  # the bot on its production loop
    code = 0
    try:
        run(main(conn, config))
    except BaseException:
        code = 1
        with contextlib.suppress(OSError):
            conn.send({"fatal": traceback.format_exc()})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # leftover non-daemon threads (e.g. a database's after a failed start) must not hang it


async def _videos_child(conn: Connection, config: dict[str, Any]) -> None:
    big = Path(config["big_clip"]) if config["big_clip"] else None
    fake = BenchVideosAPI(clip=Path(config["clip"]), big_clip=big, job_seconds=config["job_seconds"])
    async with fake:
        commands = Commands(conn)
        conn.send({"base_url": fake.base_url, "api_key": fake.api_key, "usage": usage()})
        while True:
            command = await commands.next()
            if command[0] == "stop":
                return
            if command[0] == "job_seconds":
                fake.job_seconds = command[1]
                conn.send(None)
            elif command[0] == "report":
                conn.send(_videos_report(fake))
            elif command[0] == "usage":
                conn.send(usage())


def _videos_report(fake: FakeVideosAPI) -> dict[str, Any]:
    """Every video (prompt, id, status, ready and completion times on the monotonic clock) and the calls."""
    offset = time.time() - time.monotonic()  # completed_at is wall-clock time
    videos = [
        {
            "id": video.id,
            "prompt": video.prompt,
            "status": video.status,
            "ready": video.started + fake.job_seconds,
            "started": video.started,
            "completed": video.completed_at - offset if video.completed_at else None,
        }
        for video in fake.videos.values()
    ]
    calls: Counter[str] = Counter()
    times: list[float] = []
    for call, at in zip(fake.calls, fake.call_times, strict=True):
        if call.dropped:
            continue
        times.append(at)
        if call.method == "POST" and call.path == "/videos":
            calls["create"] += 1
        elif call.method == "GET" and re.fullmatch(r"/videos/[^/]+", call.path):
            calls["status"] += 1
        elif call.method == "GET" and re.fullmatch(r"/videos/[^/]+/content", call.path):
            calls["content " + call.query.get("variant", "video")] += 1
        else:
            calls[f"{call.method} {call.path}"] += 1
    return {"videos": videos, "calls": dict(calls), "call_times": times, "usage": usage()}


async def _bot_child(conn: Connection, config: dict[str, Any]) -> None:
    import logging

    import discord

    from bot.app import SoraBot
    from bot.catalogue import Catalogue
    from bot.settings import Settings

    handler = logging.FileHandler(config["log"], encoding="utf-8")
    discord.utils.setup_logging(handler=handler, level=logging.INFO, root=True)
    settings = Settings(_env_file=None, **config["settings"])  # type: ignore[call-arg]
    catalogue = Catalogue.load(
        settings.video_provider, models_file=settings.models_file, prices_file=settings.prices_file
    )
    bot = SoraBot(settings, catalogue=catalogue, guild_ready_timeout=0.5)  # timing from the settings
    await bot.login(settings.discord_token.get_secret_value())
    connection = asyncio.create_task(bot.connect(reconnect=False))
    ready = asyncio.create_task(bot.wait_until_ready())
    await asyncio.wait({connection, ready}, timeout=CHILD_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        conn.send({"error": "the bot did not get ready: " + _outcome(connection)})
        await bot.close()
        return
    commands = Commands(conn)
    conn.send({"usage": usage()})
    profile = None
    while True:
        command = await commands.next()
        if command[0] == "stop":
            break
        if command[0] == "reset_peak":
            reset_peak()
        if command[0] == "profile_on":
            import cProfile

            profile = cProfile.Profile()
            profile.enable()
        if command[0] == "profile_off" and profile is not None:
            profile.disable()
            profile.dump_stats(command[1])
            profile = None
        if connection.done():
            conn.send({"error": "the bot's connection ended: " + _outcome(connection), "usage": usage()})
        else:
            conn.send({"usage": usage()})
    await bot.close()
    await asyncio.gather(connection, return_exceptions=True)


def _outcome(task: asyncio.Task[Any]) -> str:
    if not task.done():
        return "still running"
    if task.cancelled():
        return "cancelled"
    return repr(task.exception()) if task.exception() else "returned"


async def _baseline_child(conn: Connection, config: dict[str, Any]) -> None:
    import openai

    warnings.simplefilter("ignore", DeprecationWarning)  # the Sora API's shutdown notice on every call
    out = Path(config["out"])
    commands = Commands(conn)
    async with openai.AsyncOpenAI(base_url=config["base_url"], api_key=config["api_key"]) as client:

        async def one(prompt: str, delay: float, written: dict[str, float], errors: list[str]) -> None:
            await asyncio.sleep(delay)
            try:
                video = await client.videos.create_and_poll(
                    model=MODEL,
                    prompt=prompt,
                    size=SIZE,
                    seconds=str(SECONDS),  # type: ignore[arg-type]
                    poll_interval_ms=round(config["interval"] * 1000),
                )
                if video.status != "completed":
                    raise RuntimeError(f"video {video.id} ended {video.status}")
                content = await client.videos.download_content(video.id)
                content.write_to_file(out / f"{video.id}.mp4")
                written[video.id] = time.monotonic()
            except Exception as error:
                errors.append(f"{prompt}: {type(error).__name__}: {error}")

        conn.send({"usage": usage()})
        while True:
            command = await commands.next()
            if command[0] == "stop":
                return
            written: dict[str, float] = {}
            errors: list[str] = []
            if command[0] == "run":
                jobs, rate, timeout = command[1], command[2], command[3]
                before = usage()
                tasks = [one(PROMPT.format(i), i / rate, written, errors) for i in range(jobs)]
                try:
                    async with asyncio.timeout(timeout):
                        await asyncio.gather(*tasks)
                except TimeoutError:
                    errors.append(f"timed out after {timeout:.0f} s")
                conn.send({"before": before, "after": usage(), "written": written, "errors": errors})
            elif command[0] == "big":
                reset_peak()
                before = usage()
                try:
                    async with asyncio.timeout(command[1]):
                        await one(BIG_PROMPT, 0, written, errors)
                except TimeoutError:
                    errors.append("the big clip timed out")
                conn.send({"before": before, "after": usage(), "written": written, "errors": errors})


@dataclass
class Child:
    """A spawned process and the parent's end of its pipe."""

    process: multiprocessing.process.BaseProcess
    conn: Connection
    hello: dict[str, Any]

    async def ask(self, *command: Any, timeout: float = 60.0) -> Any:  # noqa: ASYNC109 (a plain deadline)
        self.conn.send(command)
        return await self.receive(timeout)

    async def receive(self, timeout: float) -> Any:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not self.conn.poll():
                if not self.process.is_alive():
                    raise RuntimeError(f"{self.process.name} exited with code {self.process.exitcode}")
                await asyncio.sleep(0.05)
        answer = self.conn.recv()
        if isinstance(answer, dict) and "fatal" in answer:
            raise RuntimeError(f"the {self.process.name} process failed:\n{answer['fatal']}")
        return answer

    async def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(("stop",))
        for _ in range(200):  # up to 10 s for a clean exit
            if not self.process.is_alive():
                break
            await asyncio.sleep(0.05)
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)
        self.conn.close()


async def start_child(role: str, config: dict[str, Any]) -> Child:
    context = multiprocessing.get_context("spawn")
    parent, end = context.Pipe()
    process = context.Process(target=child, args=(role, end, config), name=role, daemon=True)
    process.start()
    end.close()
    started = Child(process, parent, {})
    try:
        started.hello = await started.receive(CHILD_START_TIMEOUT)
    except BaseException:
        await started.stop()
        raise
    if "error" in started.hello:
        await started.stop()
        raise RuntimeError(f"{role}: {started.hello['error']}")
    return started


# -- results ---------------------------------------------------------------------------------------------


@dataclass
class Side:
    """Figures of one side (bot or baseline)."""

    name: str
    jobs: int
    done: int = 0  # clips posted / files written
    once: bool = False  # every job delivered exactly once
    provider_calls: dict[str, int] = field(default_factory=dict)
    provider_peak: int = 0  # the most provider requests in any one second
    videos_created: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss: int = 0
    marked_latency: list[float] = field(default_factory=list)  # completion -> posted
    ready_latency: list[float] = field(default_factory=list)  # ready -> posted
    in_flight_peak: int = 0
    fakes_busy: dict[str, float] = field(default_factory=dict)  # share of a core each fake used
    others: tuple[float, float] = (0.0, 0.0)  # other processes' CPU: (on the measured core, in all)
    big_clip_growth: int | None = None
    big_clip_bytes: int = 0
    big_clip_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def provider_per_job(self) -> float:
        return sum(self.provider_calls.values()) / self.jobs

    @property
    def cpu_ms_per_job(self) -> float:
        return self.cpu_seconds * 1000 / self.jobs


@dataclass
class Results:
    config: argparse.Namespace
    bot: Side
    baseline: Side | None
    settings_note: str


def latencies(side: Side, videos: list[dict[str, Any]], delivered: dict[str, float]) -> None:
    """Fill the latencies and the in-flight peak from the fake's videos and the delivery times by id."""
    for video in videos:
        at = delivered.get(video["id"])
        if at is None:
            continue
        side.ready_latency.append(at - video["ready"])
        if video["completed"] is not None:
            side.marked_latency.append(at - video["completed"])
    side.in_flight_peak = peak_overlap(
        (video["started"], delivered[video["id"]]) for video in videos if video["id"] in delivered
    )


def busy(before: dict[str, float], after: dict[str, float]) -> float:
    return (after["cpu"] - before["cpu"]) / max(after["t"] - before["t"], 1e-9)


# -- the bot side -----------------------------------------------------------------------------------------


def bot_settings(args: argparse.Namespace, fake: FakeDiscord, videos: Child, tmp: Path) -> tuple[dict, str]:
    """The bot's settings, and a note saying the request budgets they set."""
    values: dict[str, Any] = {
        "discord_token": fake.token,
        "video_provider": "openai",
        "video_api_key": videos.hello["api_key"],
        "video_api_base_url": videos.hello["base_url"],
        "video_models": "sora-2,sora-2-pro",
        "discord_api_base_url": fake.api_base,
        "discord_gateway_url": fake.gateway_url,
        "discord_guild_id": None,  # global commands, so every guild has /video
        "database_path": tmp / "bot.sqlite3",
        "work_dir": tmp / "work",
        "poll_interval_seconds": args.interval,
        "max_concurrent_jobs_per_guild": 1000,
        "quota_guild_daily_usd": "100000",
        "quota_member_daily_usd": "100000",
        "max_queued_jobs_per_guild": 1000,
        "provider_max_requests_per_second": args.provider_rps,
        "discord_max_requests_per_second": args.discord_rps,
        "log_level": "INFO",
    }
    note = (
        f"PROVIDER_MAX_REQUESTS_PER_SECOND={args.provider_rps:g}; "
        f"DISCORD_MAX_REQUESTS_PER_SECOND={args.discord_rps:g}"
    )
    return values, note


def is_clip(message: FakeMessage) -> bool:
    return not message.ephemeral and any(a.filename.endswith(".mp4") for a in message.attachments)


def job_prompt(message: FakeMessage) -> str | None:
    """The benchmark prompt a message shows ("bench job 17"), if any."""
    found = PROMPT_NUMBER.search(message.text())
    return PROMPT.format(found.group(1)) if found else None


def job_messages(
    fake: FakeDiscord, prompts: set[str]
) -> tuple[dict[str, FakeMessage], dict[str, list[FakeMessage]]]:
    """Each job's card and its clip posts (live or deleted), by prompt. A clip belongs to the card it
    replies to (or, failing that, to the prompt it shows)."""
    messages = [*fake.messages.values(), *fake.deleted_messages.values()]
    cards: dict[str, FakeMessage] = {}
    for message in messages:
        if not message.ephemeral and message.embeds and not is_clip(message):
            prompt = job_prompt(message)
            if prompt in prompts and prompt not in cards:
                cards[prompt] = message
    by_card = {card.id: prompt for prompt, card in cards.items()}
    clips: dict[str, list[FakeMessage]] = {}
    for message in messages:
        if is_clip(message):
            prompt = by_card.get(message.reply_to or 0) or job_prompt(message)
            if prompt in prompts:
                clips.setdefault(prompt, []).append(message)
    return cards, clips


def settled(fake: FakeDiscord, prompts: set[str]) -> tuple[int, int]:
    """(jobs whose clip is posted, jobs whose card says it failed) among `prompts`."""
    cards, clips = job_messages(fake, prompts)
    failed = [prompt for prompt, card in cards.items() if prompt not in clips and "Failed" in card.text()]
    return len(clips), len(failed)


async def wait_settled(fake: FakeDiscord, prompts: set[str], deadline: float) -> bool:
    """Wait until every job is posted or ended; False if the deadline came first."""
    while time.monotonic() < deadline:
        posted, failed = settled(fake, prompts)
        if posted + failed >= len(prompts):
            return True
        await asyncio.sleep(0.25)
    return False


async def run_bot_side(args: argparse.Namespace, tmp: Path, cpus: tuple[set[int], set[int]]) -> Side:
    measured, fakes_cpus = cpus
    core = min(measured)
    fake = FakeDiscord()
    guilds = [fake.add_guild(f"Bench {g}") for g in range(max(1, min(args.guilds, args.jobs)))]
    members = [
        [fake.add_member(guild, f"m{g}-{m}") for m in range(args.members)] for g, guild in enumerate(guilds)
    ]
    big_guild = fake.add_guild("Bench big", premium_tier=3)  # 100 MiB uploads
    big_member = fake.add_member(big_guild, "big")
    side = Side("bot", args.jobs)
    async with fake:
        videos = await start_child("videos", args.videos_config | {"cpus": fakes_cpus})
        bot = None
        try:
            settings, side.extra["settings_note"] = bot_settings(args, fake, videos, tmp)
            log = tmp / BOT_LOG
            bot_config = {"settings": settings, "log": str(log), "cpus": measured}
            bot = await start_child("bot", bot_config)
            first_call = len(fake.calls)
            mine, fake_videos, machine = usage(), await videos.ask("usage"), machine_cpu()
            if args.profile:
                await bot.ask("profile_on")
            before = (await bot.ask("usage"))["usage"]
            interactions = []
            started = time.monotonic()
            for i in range(args.jobs):
                await asyncio.sleep(max(0.0, started + i / args.dispatch_rate - time.monotonic()))
                guild = guilds[i % len(guilds)]
                member = members[i % len(guilds)][(i // len(guilds)) % args.members]
                options = {"prompt": PROMPT.format(i), "model": MODEL, "size": SIZE, "seconds": SECONDS}
                interactions.append(
                    await fake.dispatch_slash_command(
                        guild, guild.text_channels[0], member, "video", options, subcommand="generate"
                    )
                )
            prompts = {PROMPT.format(i) for i in range(args.jobs)}
            if not await wait_settled(fake, prompts, started + args.timeout):
                side.notes.append(f"not every job was posted or ended within --timeout {args.timeout:g} s")
            answer = await bot.ask("usage")
            after = answer["usage"]
            videos_end, mine_end, machine_end = await videos.ask("usage"), usage(), machine_cpu()
            side.cpu_seconds = after["cpu"] - before["cpu"]
            fakes_cpu = videos_end["cpu"] - fake_videos["cpu"] + mine_end["cpu"] - mine["cpu"]
            side.others = others_load(
                (machine, machine_end), side.cpu_seconds, side.cpu_seconds + fakes_cpu, core
            )
            side.fakes_busy = {
                "fake Discord + driver": busy(mine, mine_end),
                "fake Videos API": busy(fake_videos, videos_end),
            }
            if args.profile:
                await bot.ask("profile_off", args.profile)
            if "error" in answer:
                side.notes.append(answer["error"])
            side.wall_seconds = after["t"] - started
            side.peak_rss = after["hwm"]
            # Final card edits may lag behind the posts; a duplicate post would show up meanwhile too.
            side.extra["cards_final_after"] = await wait_cards_final(fake, prompts, args.card_settle)
            state = await videos.ask("report")
            bot_figures(side, fake, interactions, state, first_call, prompts)
            over_budget(side, args)
            if args.big_clip_mb:
                await big_clip_through_bot(side, fake, videos, bot, big_guild, big_member, args)
        finally:
            if bot is not None:
                await bot.stop()
            await videos.stop()
    side.notes += log_trouble(tmp / BOT_LOG)
    return side


def over_budget(side: Side, args: argparse.Namespace) -> None:
    """A note for each per-second peak above the budget the bot was given (budgets >= 1000 are off)."""
    for what, peak, rate in (
        ("provider", side.provider_peak, args.provider_rps),
        ("Discord (bot-token)", side.extra["discord_peak"], args.discord_rps),
    ):
        if rate < 1000 and peak > max(1, math.floor(rate)):
            side.notes.append(f"{what} requests went over the budget: {peak} in one second, allowed {rate:g}")


def bot_figures(
    side: Side,
    fake: FakeDiscord,
    interactions: list[Any],
    state: dict[str, Any],
    first_call: int,
    prompts: set[str],
) -> None:
    cards, clips = job_messages(fake, prompts)
    side.done = len(clips)
    side.once = side.done == side.jobs and all(len(posts) == 1 for posts in clips.values())
    duplicates = sum(len(posts) - 1 for posts in clips.values())
    if duplicates:
        side.notes.append(f"{duplicates} clip(s) posted more than once")
    videos = [video for video in state["videos"] if video["prompt"] in prompts]
    side.videos_created = len(videos)
    side.provider_calls = state["calls"]
    side.provider_peak = peak_in_one_second(state["call_times"])
    by_prompt: dict[str, dict[str, Any]] = {}
    for video in videos:
        if video["status"] == "completed":
            by_prompt.setdefault(video["prompt"], video)
    posted_at = {
        by_prompt[prompt]["id"]: min(post.history[0].time for post in posts)
        for prompt, posts in clips.items()
        if prompt in by_prompt
    }
    latencies(side, videos, posted_at)

    calls = fake.calls[first_call:]
    kinds = Counter(call_kind(call) for call in calls)
    gaps, throttled = [], []
    edits = 0
    for card in cards.values():
        times = fake.edits_of(card.id)
        edits += len(times)
        steps = [later - earlier for earlier, later in itertools.pairwise(times)]
        gaps += steps
        throttled += steps[:-1]  # the last edit is the final one, which skips the throttle
    answered = sum(1 for i in interactions if i.original is not None and not i.original.loading)
    side.extra |= {
        "discord_calls": dict(kinds),
        "discord_per_job": len(calls) / side.jobs,
        "discord_429": sum(1 for call in calls if call.status == 429),
        "discord_peak": fake.requests_per_second_peak(),
        "discord_peak_all": fake.requests_per_second_peak(exclude_interaction_callbacks=False),
        "busiest_second": busiest_second(fake, calls),
        "cards_final": sum(1 for card in cards.values() if FINAL_CARD.search(card.text())),
        "card_edits_per_job": edits / side.jobs,
        "shortest_gap": min(gaps, default=math.nan),
        "shortest_throttled_gap": min(throttled, default=math.nan),
        "answered": answered,
        "ended": sum(1 for prompt, card in cards.items() if prompt not in clips and "Failed" in card.text()),
        "cards": len(cards),
    }


def call_kind(call: Any) -> str:
    """What a request to the fake Discord was, in a few words."""
    if call.path.startswith("/interactions/"):
        return "interaction callbacks"
    if call.path.startswith("/webhooks/"):
        return "private answer edits (webhook)"
    if call.method == "POST" and re.fullmatch(r"/channels/\d+/messages", call.path):
        posted = call.payload if isinstance(call.payload, dict) else {}
        return "clip posts" if call.files or posted.get("attachments") else "card posts"
    if call.method == "PATCH" and re.fullmatch(r"/channels/\d+/messages/\d+", call.path):
        return "card edits"
    return f"other ({call.method} {re.sub(r'[0-9]{5,}', '{id}', call.path)})"


def busiest_second(fake: FakeDiscord, calls: list[Any]) -> dict[str, int]:
    """What made up the busiest second of bot-token requests (as `requests_per_second_peak` counts
    them: no interaction endpoints), by kind."""
    times = [
        c
        for c in calls
        if c.headers.get("Authorization") == f"Bot {fake.token}" and not c.interaction_endpoint
    ]
    times.sort(key=lambda call: call.time)
    best, first, span = 0, 0, (0, 0)
    for last, call in enumerate(times):
        while call.time - times[first].time >= 1.0:
            first += 1
        if last - first + 1 > best:
            best, span = last - first + 1, (first, last + 1)
    return dict(Counter(call_kind(call) for call in times[span[0] : span[1]]))


async def wait_cards_final(fake: FakeDiscord, prompts: set[str], within: float) -> float | None:
    """Seconds until every job's card shows its end (at least one second), or None after `within`."""
    started = time.monotonic()
    await asyncio.sleep(1.0)
    while True:
        cards, _ = job_messages(fake, prompts)
        if len(cards) == len(prompts) and all(FINAL_CARD.search(card.text()) for card in cards.values()):
            return time.monotonic() - started
        if time.monotonic() - started >= within:
            return None
        await asyncio.sleep(0.25)


async def big_clip_through_bot(
    side: Side,
    fake: FakeDiscord,
    videos: Child,
    bot: Child,
    guild: Any,
    member: Any,
    args: argparse.Namespace,
) -> None:
    """One big clip through the bot: its peak memory growth from just before the request to the post."""
    await videos.ask("job_seconds", 1.0)
    before = (await bot.ask("reset_peak"))["usage"]
    options = {"prompt": BIG_PROMPT, "model": MODEL, "size": SIZE, "seconds": SECONDS}
    await fake.dispatch_slash_command(
        guild, guild.text_channels[0], member, "video", options, subcommand="generate",
        attachment_size_limit=100 * MiB,
    )  # fmt: skip
    try:
        message = await fake.wait_for_message(
            lambda m: is_clip(m) and m.guild_id == guild.id, timeout=args.big_clip_timeout
        )
    except TimeoutError:
        side.notes.append(f"the big clip was not posted within {args.big_clip_timeout:g} s")
        return
    after = (await bot.ask("usage"))["usage"]
    side.big_clip_growth = after["hwm"] - before["rss"]
    side.big_clip_bytes = message.attachments[0].size
    side.big_clip_seconds = message.history[0].time - before["t"]
    if side.big_clip_bytes != args.big_clip_size:
        side.notes.append(f"the big clip was posted as {side.big_clip_bytes} bytes, not {args.big_clip_size}")


def log_trouble(log: Path) -> list[str]:
    """The bot log's ERROR and WARNING lines, counted, with the first few errors."""
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if " ERROR " in line]
    warning_count = sum(1 for line in lines if " WARNING " in line)
    notes = []
    if errors or warning_count:
        notes.append(f"bot log: {len(errors)} ERROR and {warning_count} WARNING line(s)")
    notes += [f"  {line[:300]}" for line in errors[:5]]
    return notes


# -- the baseline side -----------------------------------------------------------------------------------


async def run_baseline_side(args: argparse.Namespace, tmp: Path, cpus: tuple[set[int], set[int]]) -> Side:
    measured, fakes_cpus = cpus
    side = Side("baseline", args.jobs)
    videos = await start_child("videos", args.videos_config | {"cpus": fakes_cpus})
    baseline = None
    try:
        out = tmp / "baseline"
        baseline = await start_child(
            "baseline",
            {**videos.hello, "interval": args.interval, "out": str(out), "cpus": measured},
        )
        fake_before, mine, machine = await videos.ask("usage"), usage(), machine_cpu()
        outcome = await baseline.ask(
            "run", args.jobs, args.dispatch_rate, args.timeout, timeout=args.timeout + 30
        )
        fake_after, mine_end, machine_end = await videos.ask("usage"), usage(), machine_cpu()
        state = await videos.ask("report")
        side.fakes_busy = {"fake Videos API": busy(fake_before, fake_after)}
        side.cpu_seconds = outcome["after"]["cpu"] - outcome["before"]["cpu"]
        fakes_cpu = fake_after["cpu"] - fake_before["cpu"] + mine_end["cpu"] - mine["cpu"]
        side.others = others_load(
            (machine, machine_end), side.cpu_seconds, side.cpu_seconds + fakes_cpu, min(measured)
        )
        side.wall_seconds = outcome["after"]["t"] - outcome["before"]["t"]
        side.peak_rss = outcome["after"]["hwm"]
        side.done = len(outcome["written"])
        side.once = side.done == side.jobs == len(state["videos"])
        if outcome["errors"]:
            side.notes += [f"{len(outcome['errors'])} job(s) failed", *outcome["errors"][:5]]
        side.provider_calls = state["calls"]
        side.provider_peak = peak_in_one_second(state["call_times"])
        side.videos_created = len(state["videos"])
        latencies(side, state["videos"], outcome["written"])
        if args.big_clip_mb:
            await videos.ask("job_seconds", 1.0)
            answer = await baseline.ask("big", args.big_clip_timeout, timeout=args.big_clip_timeout + 10)
            if answer["written"]:
                side.big_clip_growth = answer["after"]["hwm"] - answer["before"]["rss"]
                side.big_clip_bytes = args.big_clip_size
                side.big_clip_seconds = answer["after"]["t"] - answer["before"]["t"]
            side.notes += answer["errors"]
    finally:
        if baseline is not None:
            await baseline.stop()
        await videos.stop()
    return side


# -- printing ----------------------------------------------------------------------------------------------


def ms(values: list[float]) -> str:
    return "/".join(f"{percentile(values, p) * 1000:.0f}" for p in (50, 95, 99)) + " ms"


def seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f} s"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def report(results: Results) -> str:
    args, bot, base = results.config, results.bot, results.baseline
    lines = [
        f"{args.jobs} jobs of {args.job_seconds:g} s, polled every {args.interval:g} s, dispatched at "
        f"{args.dispatch_rate:g}/s over {max(1, min(args.guilds, args.jobs))} guild(s) x "
        f"{args.members} members",
        f"rate limits: {results.settings_note}",
        f"cores: measured process on {sorted(args.cpus[0])}, fakes and driver on {sorted(args.cpus[1])}",
        "",
    ]
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, bot_value: str, base_value: str = "", ratio_value: str = "") -> None:
        rows.append((label, bot_value, base_value, ratio_value))

    b = base or Side("baseline", args.jobs)
    row("", "bot", "baseline (SDK)" if base else "", "bot/baseline" if base else "")
    row("delivered", f"{bot.done}/{bot.jobs}", f"{b.done}/{b.jobs}" if base else "")
    row("delivered exactly once", "yes" if bot.once else "NO", ("yes" if b.once else "NO") if base else "")
    row("jobs in flight at once (peak)", str(bot.in_flight_peak), str(b.in_flight_peak) if base else "")
    row(
        "provider requests per job",
        f"{bot.provider_per_job:.2f}",
        f"{b.provider_per_job:.2f}" if base else "",
        ratio(bot.provider_per_job, b.provider_per_job) if base else "",
    )
    row(
        "  of which status polls",
        f"{bot.provider_calls.get('status', 0) / bot.jobs:.2f}",
        f"{b.provider_calls.get('status', 0) / b.jobs:.2f}" if base else "",
    )
    row(
        "most provider requests in one second",
        str(bot.provider_peak),
        str(b.provider_peak) if base else "",
    )
    row(
        "CPU ms per job",
        f"{bot.cpu_ms_per_job:.1f}",
        f"{b.cpu_ms_per_job:.1f}" if base else "",
        ratio(bot.cpu_ms_per_job, b.cpu_ms_per_job) if base else "",
    )
    row(
        "CPU busy (share of one core)",
        f"{bot.cpu_seconds / bot.wall_seconds:.0%}" if bot.wall_seconds else "-",
        f"{b.cpu_seconds / b.wall_seconds:.0%}" if base and b.wall_seconds else "",
    )
    row("completion→delivered p50/95/99", ms(bot.marked_latency), ms(b.marked_latency) if base else "")
    row("ready→delivered p50/95/99", ms(bot.ready_latency), ms(b.ready_latency) if base else "")
    row(
        "peak RSS",
        f"{bot.peak_rss / MiB:.0f} MiB",
        f"{b.peak_rss / MiB:.0f} MiB" if base else "",
        ratio(bot.peak_rss, b.peak_rss) if base else "",
    )
    if bot.big_clip_growth is not None or b.big_clip_growth is not None:

        def growth(side: Side) -> str:
            if side.big_clip_growth is None:
                return "-"
            return f"+{side.big_clip_growth / MiB:.0f} MiB ({side.big_clip_seconds:.1f} s)"

        label = f"big clip ({max(bot.big_clip_bytes, b.big_clip_bytes) / 1e6:.1f} MB) peak RSS growth"
        row(label, growth(bot), growth(b) if base else "")
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += ["  ".join(cell.ljust(width[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    extra = bot.extra
    lines += [
        "",
        "bot, Discord side:",
        f"  requests per job: {extra['discord_per_job']:.2f} ("
        + ", ".join(f"{k} {v / bot.jobs:.2f}" for k, v in sorted(extra["discord_calls"].items()))
        + ")",
        f"  most requests in one second: {extra['discord_peak']} counted by Discord's global limit "
        f"(which is {DISCORD_GLOBAL_LIMIT}/s), {extra['discord_peak_all']} with interaction endpoints; "
        f"{extra['discord_429']} answered 429",
        f"  card edits per job: {extra['card_edits_per_job']:.2f}; shortest gap between two edits of one "
        f"card: {seconds(extra['shortest_gap'])} ({seconds(extra['shortest_throttled_gap'])} leaving out "
        "each card's final edit, which the bot may send sooner)",
        "  busiest second: "
        + ", ".join(f"{k} {v}" for k, v in sorted(extra["busiest_second"].items(), key=lambda kv: -kv[1])),
        f"  cards showing the job's end: {extra['cards_final']}/{bot.jobs} "
        + (
            f"({extra['cards_final_after']:.1f} s after the last post)"
            if extra["cards_final_after"] is not None
            else f"(still not all {args.card_settle:g} s after the last post)"
        ),
        f"  private answers settled: {extra['answered']}/{bot.jobs}; cards: {extra['cards']}/{bot.jobs}; "
        f"ended without a clip: {extra['ended']}; "
        f"provider videos created: {bot.videos_created}",
        "fakes' CPU (share of one core): "
        + ", ".join(f"{name} {share:.0%}" for name, share in bot.fakes_busy.items())
        + (
            f" (bot side); fake Videos API {b.fakes_busy.get('fake Videos API', 0):.0%} (baseline side)"
            if base
            else ""
        ),
    ]
    for side in (bot, b) if base else (bot,):
        on_core, in_all = side.others
        lines.append(
            f"other processes during the {side.name} run: {on_core:.0%} of the measured core, "
            f"{in_all:.0%} of a core in all"
        )
        if on_core > OTHERS_WARNING or in_all > 2 * OTHERS_WARNING:
            side.notes.append(
                "WARNING: other processes were busy on this machine during the run; these figures are "
                "disturbed (run again when it is quiet)"
            )
    for side in (bot, b):
        if side.notes:
            lines.append(f"{side.name} notes:")
            lines += [f"  {note}" for note in side.notes]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0, help="POLL_INTERVAL_SECONDS (and the SDK's)")
    parser.add_argument("--job-seconds", type=float, default=20.0, help="wall time of each fake job")
    parser.add_argument("--dispatch-rate", type=float, default=100.0, help="interactions (jobs) per second")
    parser.add_argument("--provider-rps", type=float, default=5000.0, help="PROVIDER_MAX_REQUESTS_PER_SECOND")
    parser.add_argument("--discord-rps", type=float, default=5000.0, help="DISCORD_MAX_REQUESTS_PER_SECOND")
    parser.add_argument("--guilds", type=int, default=10)
    parser.add_argument("--members", type=int, default=10, help="members per guild")
    parser.add_argument("--big-clip-mb", type=int, default=100, help="size of the big clip (0: skip it)")
    parser.add_argument("--big-clip-timeout", type=float, default=120.0)
    parser.add_argument(
        "--card-settle",
        type=float,
        default=30.0,
        help="how long to wait for final card edits after the posts",
    )
    parser.add_argument("--timeout", type=float, default=None, help="per side (default: generous)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the bot process from the first dispatch until every job is settled; write the "
        "stats to FILE (read them with python -m pstats FILE); inflates the bot's CPU figures",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.dispatch_rate <= 0 or args.interval <= 0 or args.job_seconds < 0:
        parser.error("--jobs, --dispatch-rate and --interval must be positive")
    if args.profile:
        args.profile = str(Path(args.profile).resolve())  # the bot process writes it
    if args.timeout is None:
        args.timeout = args.jobs / args.dispatch_rate + args.job_seconds + 60 + args.jobs * 0.1
    return args


async def run_async(args: argparse.Namespace, root: Path) -> Results:
    cpus = args.cpus
    bot = await run_bot_side(args, root / "bot", cpus)
    baseline = None if args.no_baseline else await run_baseline_side(args, root / "sdk", cpus)
    return Results(args, bot, baseline, bot.extra.get("settings_note", ""))


def run(args: argparse.Namespace) -> Results:
    """The whole benchmark; this process runs on the fakes' cores meanwhile (restored afterwards)."""
    clip = prepared_clip()
    big = prepared_big_clip(args.big_clip_mb) if args.big_clip_mb else None
    args.big_clip_size = big.stat().st_size if big else 0
    args.videos_config = {"clip": str(clip), "big_clip": str(big or ""), "job_seconds": args.job_seconds}
    affinity = os.sched_getaffinity(0)
    args.cpus = split_cpus()
    os.sched_setaffinity(0, args.cpus[1])
    try:
        with tempfile.TemporaryDirectory(prefix="soracord-bench-") as tmp:
            root = Path(tmp)
            for name in ("bot", "sdk", "sdk/baseline"):
                (root / name).mkdir()
            return asyncio.run(run_async(args, root))
    finally:
        os.sched_setaffinity(0, affinity)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    results = run(args)
    print(report(results))
    print(f"(benchmark took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
