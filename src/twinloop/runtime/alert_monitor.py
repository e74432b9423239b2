"""The periodic job that turns live readings into alerts: learn each twin's normal operation from
its first stretch of operation, then score what arrives, raising (or repeating) alerts per episode.
The stretch learned is kept in the store's meta, so after a restart the twin is learned again from
the same stretch (not from recent data, which may hold a fault that was developing meanwhile), and
evaluation resumes at most one learning period back.

Time is the readings' own time, not the wall clock, so a plant replayed or simulated faster than
real time is judged on its own clock. One twin failing to learn or score is logged once and never
stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import numpy as np

from twinloop.core.errors import ConflictError, TwinloopError
from twinloop.runtime.alert_service import AlertService
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Store

_log = logging.getLogger(__name__)
_WINDOW_KEY = "alerts.learned."


class AlertMonitor:
    """Learns, then evaluates, every twin of the watched asset types on a fixed wall-clock interval."""

    def __init__(
        self,
        alerts: AlertService,
        store: Store,
        twins: TwinService,
        type_ids: Iterable[str] = ("Pump",),
        learn_s: float = 1800.0,
        period_s: float = 10.0,
        interval_s: float = 5.0,
    ) -> None:
        self._alerts, self._store, self._twins = alerts, store, twins
        self._types = tuple(type_ids)
        self._learn_ns = int(learn_s * 1e9)
        self._period_ns = int(period_s * 1e9)
        self._interval_s = interval_s
        self._first: dict[str, int] = {}
        self._retry_ns: dict[str, int] = {}  # readings-time before which learning is not tried again
        self._learned: set[str] = set()
        self._failing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def learned(self) -> frozenset[str]:
        """Twins whose normal operation has been learned (they are being evaluated)."""
        return frozenset(self._learned)

    def tick(self) -> int:
        """One pass over the watched twins; returns how many alerts it raised or repeated."""
        ids = [t.id for type_id in self._types if type_id in self._twins.registry
               for t in self._twins.list(type_id)]
        if not ids:
            return 0
        latest = self._store.latest(ids)
        if len(latest) == 0:
            return 0
        last_ts: dict[str, int] = {}
        for twin_id, ts in zip(latest.asset_ids, latest.ts_ns, strict=True):
            last_ts[twin_id] = max(int(ts), last_ts.get(twin_id, np.iinfo(np.int64).min))
        raised = 0
        for twin_id, end in last_ts.items():
            try:
                raised += self._one(twin_id, end)
            except TwinloopError as err:
                if twin_id not in self._failing:  # "not yet" (a standby not run enough) is no fault
                    _log.log(logging.INFO if isinstance(err, ConflictError) else logging.WARNING,
                             "alerts for %s: %s", twin_id, err)
                    self._failing.add(twin_id)
            else:
                self._failing.discard(twin_id)
        return raised

    def _one(self, twin_id: str, end_ns: int) -> int:
        if twin_id in self._learned:
            return len(self._alerts.evaluate(twin_id, end_ns + 1))
        window = self._learned_window(twin_id)
        if window is not None:  # learned before a restart: the same stretch again, never a later one
            start, stop = window  # (a later one might hold a fault that was developing meanwhile)
            try:
                self._alerts.learn(twin_id, start, stop, self._period_ns,
                                   resume_ns=max(stop - 1, end_ns - self._learn_ns))
            except TwinloopError:
                self._store.set_meta(_WINDOW_KEY + twin_id, "")  # gone or changed: learn afresh
                raise
            self._learned.add(twin_id)
            _log.info("relearned normal operation of %s from its stored learning period", twin_id)
            return 0
        first = self._first.get(twin_id)
        if first is None:
            oldest = self._store.history(twin_id, None, None, None, 1)
            first = int(oldest.ts_ns[0]) if len(oldest) else end_ns
            self._first[twin_id] = first
        if end_ns - first < self._learn_ns or end_ns < self._retry_ns.get(twin_id, first):
            return 0
        # the latest stretch, at most twice the learning time: a machine that starts operating late
        # (a standby) is learned from its recent operation, and a retry reads a bounded history
        start = max(first, end_ns - 2 * self._learn_ns)
        min_rows = int(0.5 * self._learn_ns / self._period_ns)  # operating half the stretch, at least
        try:
            self._alerts.learn(twin_id, start, end_ns + 1, self._period_ns, min_rows=min_rows)
        except TwinloopError:
            self._retry_ns[twin_id] = end_ns + self._learn_ns // 4
            raise
        self._learned.add(twin_id)
        self._store.set_meta(_WINDOW_KEY + twin_id, f"{start},{end_ns + 1}")
        _log.info("learned normal operation of %s from %.0f s of readings", twin_id, (end_ns - start) / 1e9)
        return 0

    def _learned_window(self, twin_id: str) -> tuple[int, int] | None:
        """The period a previous run learned this twin from (kept in the store's meta)."""
        text = self._store.get_meta(_WINDOW_KEY + twin_id)
        if not text:
            return None
        try:
            start, stop = (int(x) for x in text.split(","))
        except ValueError:
            return None
        return start, stop

    def start(self) -> None:
        """Run `tick` every ``interval_s`` in a worker thread, from the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="alert-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await asyncio.to_thread(self.tick)
            except Exception:  # noqa: BLE001 - the monitor must outlive one bad pass
                _log.exception("alert pass failed; trying again in %.0f s", self._interval_s)


__all__ = ["AlertMonitor"]
