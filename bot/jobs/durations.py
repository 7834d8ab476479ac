"""How long each model's jobs took lately (submission to seen completed), learned as they end and kept
across restarts in `bot_state`, so that the first jobs after a start are paced like the ones before it.

What is learned is a model's time per second of clip: a model takes about twice as long for a clip
twice as long, so a 12 s clip is not expected as soon as the 4 s ones before it. It paces the polls
of a job whose provider reports no progress yet (`JobRunner._remaining`). Until one of a model's jobs
has finished, its pace is guessed from the progress its jobs in flight report (a job 25 % done after
5 s takes about 20 s), so that a burst of jobs sent to a model the bot has not seen finish yet is
not polled blind while queued; a guess is never saved. The learned
values are written at most every `SAVE_EVERY` seconds, when a job ends, and at shutdown; a process that
dies loses what it learned since. With several processes each learns from its own jobs, and the last
one to write is read at the next start.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable

from bot.jobs.store import JobStore
from bot.state import read_state, write_state

log = logging.getLogger(__name__)

KEY = "model_seconds_per_clip_second"
#: How much one finished job moves a model's usual duration (a moving average of the recent ones).
LEARN_RATE = 0.2
#: Progress below this says too little of a job's whole (one per cent, rounded, may be half or two).
MIN_TELLING_PROGRESS = 10
#: Seconds between two writes of what was learned (each a write of a few hundred bytes).
SAVE_EVERY = 300.0


class UsualDurations:
    def __init__(self, store: JobStore, *, clock: Callable[[], float]) -> None:
        self._store = store  # its `db` is used only to load and save
        self._clock = clock
        self._pace: dict[str, float] = {}  # per model: seconds it takes per second of clip
        self._guessed: dict[str, float] = {}  # the same, from jobs in flight, for models without one
        self._saved_at = clock()
        self._unsaved = False

    def get(self, model: str, seconds: int) -> float | None:
        """How long a job of this model for a clip of `seconds` usually takes (None: not known)."""
        pace = self._pace.get(model, self._guessed.get(model))
        return None if pace is None else pace * seconds

    def learn(self, model: str, seconds: int, took: float) -> None:
        """A job of this model for a clip of `seconds` took `took` seconds."""
        _average_in(self._pace, model, took / max(1, seconds))
        self._guessed.pop(model, None)  # what a finished job took is better than any guess
        self._unsaved = True

    def guess(self, model: str, seconds: int, elapsed: float, progress: int) -> None:
        """A job of this model for a clip of `seconds`, sent `elapsed` seconds ago, is `progress` % done:
        a guess at the model's pace while none of its jobs has been seen finishing."""
        if model not in self._pace and MIN_TELLING_PROGRESS <= progress < 100:
            _average_in(self._guessed, model, elapsed * 100 / progress / max(1, seconds))

    async def load(self) -> None:
        """Take up what an earlier run learned (a value that is not a positive number is left out)."""
        text = await read_state(self._store.db, KEY)
        if text is None:
            return
        try:
            saved = json.loads(text)
        except ValueError:
            saved = None
        if not isinstance(saved, dict):
            log.warning("Ignoring the saved paces of models: not a JSON object")
            return
        for model, pace in saved.items():
            if type(pace) in (int, float) and math.isfinite(pace) and pace > 0:
                self._pace[model] = float(pace)

    async def save_if_due(self) -> None:
        if self._unsaved and self._clock() - self._saved_at >= SAVE_EVERY:
            await self.save()

    async def save(self) -> None:
        """Write what was learned since the last write (nothing when nothing was)."""
        if not self._unsaved:
            return
        self._saved_at = self._clock()
        self._unsaved = False
        try:
            await write_state(self._store.db, KEY, json.dumps(self._pace, sort_keys=True))
        except Exception as error:  # a hint for the next start, not worth failing a job for
            self._unsaved = True
            log.warning("Could not save the paces of models: %s", error)


def _average_in(paces: dict[str, float], model: str, pace: float) -> None:
    """Move the model's pace towards `pace` (a moving average of the recent ones), or start it there."""
    known = paces.get(model)
    paces[model] = pace if known is None else known + LEARN_RATE * (pace - known)
