"""Remaining useful life of live twins: recomputed as readings arrive, stored, and served.

Storage needs no schema change. Each update appends one `RulUpdated` event (the distribution's
summary: mean, std, quantiles on a fine grid, P(fail) at the standard horizons, drivers) and
readings on the twin's ``rul.mean_h``, ``rul.p10_h``, ``rul.p50_h``, ``rul.p90_h`` and
``rul.p_fail_7d`` channels, so RUL has a history next to the sensors (``GET /twins/{id}/history``).
P(fail within any horizon) is read off the stored quantile grid.

Which twins get an RUL is set by ``prognosers`` (asset type → `TwinPrognoser`); by default Pump
twins get the physics-based bearing prognoser, which needs no training data.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twinloop.analytics.rul import SUMMARY_LEVELS, RulDistribution, cdf_from_quantiles
from twinloop.analytics.rul.live import PumpPhysicsTwinPrognoser, TwinPrognoser
from twinloop.core.clock import Clock
from twinloop.core.errors import NotFoundError, TwinloopError, ValidationError
from twinloop.core.events import Event, ReadingsApplied
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.bus import EventBus
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Store

HORIZONS_H: dict[str, float] = {"24h": 24.0, "48h": 48.0, "7d": 168.0}
HISTORY_H = 24 * 90  # bucketed history handed to trajectory prognosers
RUL_CHANNELS = ("rul.mean_h", "rul.p10_h", "rul.p50_h", "rul.p90_h", "rul.p_fail_7d")


@dataclass(frozen=True, kw_only=True)
class RulUpdated(Event):
    """A twin's RUL was recomputed; times in ``unit`` (hours for live twins)."""

    model: str = ""
    unit: str = "h"
    mean: float = 0.0
    std: float = 0.0
    quantiles: dict[str, float] = field(default_factory=dict)
    p_fail: dict[str, float] = field(default_factory=dict)
    drivers: list[dict[str, Any]] = field(default_factory=list)
    as_of_ns: int = 0

    def p_fail_within(self, horizon: float) -> float:
        """P(RUL <= horizon) from the stored quantile grid."""
        return cdf_from_quantiles(self.quantiles, horizon)

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        tail = f"{(1 - level) / 2:g}", f"{1 - (1 - level) / 2:g}"
        if tail[0] not in self.quantiles or tail[1] not in self.quantiles:
            raise ValidationError(f"no stored {level:g} interval", hint="use 0.8, 0.9 or 0.98")
        return self.quantiles[tail[0]], self.quantiles[tail[1]]


def default_prognosers() -> dict[str, TwinPrognoser]:
    """Pump twins get the physics-based bearing prognoser."""
    return {"Pump": PumpPhysicsTwinPrognoser()}


_log = logging.getLogger(__name__)


class RulService:
    """Computes, stores and answers RUL per twin (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        twins: TwinService,
        bus: EventBus,
        clock: Clock,
        prognosers: Mapping[str, TwinPrognoser] | None = None,
        min_interval_s: float = 3600.0,
    ) -> None:
        self._store, self._twins, self._bus, self._clock = store, twins, bus, clock
        self._prognosers = dict(default_prognosers() if prognosers is None else prognosers)
        self._min_interval_ns = int(min_interval_s * 1e9)
        self._latest: dict[str, RulUpdated] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] | None = None
        self._pending: set[str] = set()
        self._worker: threading.Thread | None = None

    # --- computing ----------------------------------------------------------------------------
    def supports(self, twin_id: str) -> bool:
        return self._twins.get(twin_id).type_id in self._prognosers

    def update(self, twin_id: str) -> RulUpdated:
        """Recompute one twin's RUL from its stored readings, store it and announce it."""
        twin = self._twins.get(twin_id)
        prognoser = self._prognosers.get(twin.type_id)
        if prognoser is None:
            known = ", ".join(sorted(self._prognosers)) or "none"
            raise ValidationError(f"no prognoser for asset type {twin.type_id!r}",
                                  hint=f"RUL is computed for: {known}")
        batch = self._store.latest([twin_id], list(prognoser.channels))
        latest = {str(c): float(v) for c, v in zip(batch.channels, batch.values, strict=True)}
        as_of = int(batch.ts_ns.max()) if len(batch) else 0
        history = None
        if prognoser.bucket_ns is not None:
            start = as_of - HISTORY_H * 3600 * 10**9 if as_of else None
            history = self._store.history_buckets(twin_id, prognoser.bucket_ns, list(prognoser.channels),
                                                  start, as_of + 1 if as_of else None)
        try:
            dist = prognoser.predict_twin(latest, history)
        except TwinloopError as err:
            raise ValidationError(f"cannot compute the RUL of {twin_id!r}: {err.message}",
                                  hint=err.hint) from err
        return self._record(twin_id, twin.revision, dist, as_of)

    def _record(self, twin_id: str, revision: int, dist: RulDistribution, as_of_ns: int) -> RulUpdated:
        now = self._clock.now_ns()
        summary = dist.summary(SUMMARY_LEVELS, tuple(HORIZONS_H.values()))
        event = RulUpdated(
            twin_id=twin_id, revision=revision, ts_ns=now, model=dist.model, unit=dist.unit,
            mean=dist.mean, std=dist.std, quantiles=summary["quantiles"],
            p_fail={k: dist.p_fail_within(h) for k, h in HORIZONS_H.items()},
            drivers=summary["drivers"], as_of_ns=as_of_ns or now,
        )
        values = [dist.mean, dist.quantile(0.1), dist.quantile(0.5), dist.quantile(0.9), event.p_fail["7d"]]
        self._store.append(ReadingBatch.from_arrays(twin_id, list(RUL_CHANNELS), event.as_of_ns, values))
        self._store.append_events([event])
        with self._lock:
            self._latest[twin_id] = event
        self._bus.publish([event])
        return event

    def update_fleet(self, type_id: str | None = None) -> tuple[list[RulUpdated], dict[str, str]]:
        """Recompute every supported twin (of a type); returns the updates and why others were skipped."""
        done, skipped = [], {}
        for twin in self._twins.list(type_id):
            if twin.type_id not in self._prognosers:
                continue
            try:
                done.append(self.update(twin.id))
            except TwinloopError as err:
                skipped[twin.id] = err.message
        return done, skipped

    def on_event(self, event: Event) -> None:
        """Bus handler: recompute after new readings, at most once per ``min_interval_s`` per twin."""
        if not isinstance(event, ReadingsApplied) or any(c.startswith("rul.") for c in event.channels):
            return
        twin_id = event.twin_id
        with self._lock:
            last = self._latest.get(twin_id)
        if last is not None and event.ts_ns - last.ts_ns < self._min_interval_ns:
            return
        if self._queue is not None:
            with self._lock:
                if twin_id in self._pending:
                    return
                self._pending.add(twin_id)
            self._queue.put(twin_id)
            return
        self._compute(twin_id)

    def _compute(self, twin_id: str) -> None:
        try:
            if self.supports(twin_id):
                self.update(twin_id)
        except TwinloopError:
            pass  # not enough data yet (e.g. a stopped pump): the next readings try again

    def attach(self) -> None:
        """Recompute live as readings are applied (in the publisher's thread until `run_in_background`)."""
        self._bus.on_event(self.on_event)

    def run_in_background(self) -> None:
        """From now on recompute on a worker thread: a prognosis takes up to a second per twin, and
        live ingestion and the API must never wait for it."""
        if self._worker is not None:
            return
        self._queue = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="rul-service", daemon=True)
        self._worker.start()

    def stop_background(self, timeout_s: float = 5.0) -> None:
        """Finish the prognosis under way and go back to computing in the publisher's thread."""
        worker, q = self._worker, self._queue
        if worker is None or q is None:
            return
        q.put(None)
        worker.join(timeout_s)
        self._worker, self._queue = None, None
        with self._lock:
            self._pending.clear()

    def _work(self) -> None:
        q = self._queue
        assert q is not None
        while (twin_id := q.get()) is not None:
            try:
                self._compute(twin_id)
            except Exception:  # noqa: BLE001 - one bad prognosis must not end live RUL
                _log.exception("RUL update of %s failed", twin_id)
            finally:
                # Only now may the twin queue again: readings that arrived meanwhile are throttled
                # against the update just made instead of repeating it at the same instant.
                with self._lock:
                    self._pending.discard(twin_id)

    # --- answering ----------------------------------------------------------------------------
    def get(self, twin_id: str) -> RulUpdated:
        """The newest RUL of a twin; `NotFoundError` when none was computed yet."""
        self._twins.get(twin_id)
        with self._lock:
            cached = self._latest.get(twin_id)
        if cached is not None:
            return cached
        found: RulUpdated | None = None
        after = 0
        while True:
            page = self._store.events(after, twin_id, [RulUpdated.kind], 1000)
            if not page:
                break
            after = page[-1].seq
            last = page[-1].event
            found = last if isinstance(last, RulUpdated) else found
        if found is None:
            raise NotFoundError(f"no RUL for {twin_id!r} yet",
                                hint="it is computed as readings arrive; or run `twinloop rul update`")
        with self._lock:
            self._latest.setdefault(twin_id, found)
        return found

    def fleet(self, horizon_h: float = 168.0, type_id: str | None = None) -> list[tuple[RulUpdated, float]]:
        """Latest RUL of every twin that has one, most likely to fail within ``horizon_h`` first."""
        out = []
        for twin in self._twins.list(type_id):
            if twin.type_id not in self._prognosers:
                continue
            try:
                event = self.get(twin.id)
            except NotFoundError:
                continue
            out.append((event, event.p_fail_within(horizon_h)))
        return sorted(out, key=lambda t: (-t[1], t[0].mean))


def parse_horizons(values: Sequence[str]) -> dict[str, float]:
    """Horizons like '24h', '7d', '90m' or plain hours → {label: hours}.

    >>> parse_horizons(["36h", "2d", "12"])
    {'36h': 36.0, '2d': 48.0, '12': 12.0}
    """
    scale = {"m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}
    out: dict[str, float] = {}
    for text in values:
        t = text.strip().lower()
        unit = t[-1] if t and t[-1] in scale else "h"
        number = t[:-1] if t and t[-1] in scale else t
        try:
            hours = float(number) * scale[unit]
        except ValueError as err:
            raise ValidationError(f"invalid horizon {text!r}",
                                  hint="use e.g. 24h, 48h, 7d or plain hours") from err
        if not hours >= 0 or hours == float("inf"):
            raise ValidationError(f"horizon {text!r} must be a finite number >= 0")
        out[text] = hours
    return out


__all__ = ["HORIZONS_H", "RUL_CHANNELS", "RulService", "RulUpdated", "default_prognosers", "parse_horizons"]
