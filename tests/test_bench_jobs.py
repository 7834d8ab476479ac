"""Smoke test of `python -m bench.jobs` at a small size (no figures checked: it must finish, once per job)."""

from __future__ import annotations

from bench.jobs import parse_args, report, run


def test_small_benchmark_posts_every_clip_exactly_once() -> None:
    results = run(
        parse_args(["--jobs", "20", "--job-seconds", "2", "--big-clip-mb", "0", "--card-settle", "0"])
    )
    assert results.bot.done == 20 and results.bot.once, report(results)
    assert results.baseline is not None and results.baseline.done == 20 and results.baseline.once
    assert "delivered exactly once" in report(results)
