"""Benchmark: fit a ~20 MB 12 s 1280x720 clip with sound under Discord's 10 MiB limit.

Run from the repository root:  python -m bench.fit_video  [--seconds 12] [--limit-mib 10]

The fit runs in a fresh worker process (spawned, as a ProcessPoolExecutor in the bot could),
so the peak memory printed is that of the process doing the work and nothing else.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bot.media.fit import FitResult, fit_video
from tests.fakes.mp4 import make_mp4

MiB = 1024 * 1024


def timed_fit(source: Path, limit_bytes: int, workdir: Path) -> tuple[FitResult, float, int]:
    """Run in the worker: the result, its wall time, and the worker's peak RSS in bytes."""
    started = time.perf_counter()
    result = fit_video(source, limit_bytes, workdir)
    elapsed = time.perf_counter() - started
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return result, elapsed, peak_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--limit-mib", type=float, default=10.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.mp4"
        started = time.perf_counter()
        # ~13.5 Mbit/s of noisy picture + AAC: about 20 MB for 12 s, hard work for the encoder.
        make_mp4(source, 1280, 720, args.seconds, seed=1, noise=0.3, bit_rate=13_000_000)
        print(
            f"source: 1280x720, {args.seconds:g} s, {source.stat().st_size / 1e6:.1f} MB "
            f"(made in {time.perf_counter() - started:.1f} s)"
        )

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            limit = int(args.limit_mib * MiB)
            result, elapsed, peak_rss = pool.submit(timed_fit, source, limit, Path(tmp)).result()

        print(f"limit: {limit} bytes ({args.limit_mib:g} MiB)")
        print(
            f"output: {result.size_bytes} bytes ({result.size_bytes / MiB:.2f} MiB), "
            f"{result.width}x{result.height}, {result.duration:.2f} s"
        )
        print(f"wall time: {elapsed:.2f} s = {elapsed / result.duration:.2f}x real time")
        print(f"peak RSS of the worker: {peak_rss / MiB:.0f} MiB")


if __name__ == "__main__":
    main()
