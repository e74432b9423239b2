"""A job that runs a synchronous pass every few seconds on a worker thread, from the event loop.

The alert monitor and the drift watch both run this way: the pass may take seconds (learning,
scoring, retraining), so it never runs on the loop, and one failing pass is logged and the next
one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable


class PeriodicJob:
    """Runs ``work`` every ``interval_s`` wall seconds in a worker thread until `stop`."""

    def __init__(self, name: str, interval_s: float, work: Callable[[], object], log: logging.Logger) -> None:
        self.name, self.interval_s = name, interval_s
        self._work, self._log = work, log
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start from the running event loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await asyncio.to_thread(self._work)
            except Exception:  # noqa: BLE001 - the job must outlive one bad pass
                self._log.exception("%s pass failed; trying again in %.0f s", self.name, self.interval_s)


__all__ = ["PeriodicJob"]
