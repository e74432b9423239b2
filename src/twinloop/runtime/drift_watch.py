"""The live job that wires drift to retraining: now and then, each learned twin's recent operation is
checked for drift against the stretch its detector learned from, and a guarded retrain that is
accepted replaces the detector the alerts use (`RetrainService` decides and keeps the versions).

It reads what the alert side keeps anyway, so the alert monitor needs no change: the twin's model
(``alerts.model(twin_id)``: detector, threshold, channels, grid, evaluation cursor), the stretch it
learned from (``window_ns`` in the meta of its latest ``detector`` artifact) and the type's operating
gate (``alerts.spec(type_id).gate``): only settled operating rows are compared, so a standby pump
that stops is not a "changed process". Only rows already evaluated for alerts are looked at, so a
retrain never gets ahead of alerting.

Unsupervised retraining can absorb a slow fault, so the watch is off unless a type asks for it
(``analytics.alerts.retrain.live: true``) or the runtime turns it on for all (``live=True``); the
retrain service's own guards (no open alert, a settled change, the validation) apply either way.
Time is the readings' own; a check per twin at most every ``every_s`` plant seconds.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from twinloop.analytics.anomaly import ChannelFrame
from twinloop.core.errors import TwinloopError
from twinloop.runtime.periodic import PeriodicJob
from twinloop.runtime.retrain_service import DETECTOR, RetrainResult, RetrainService
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Store

_log = logging.getLogger(__name__)


class AlertModels(Protocol):
    """What the watch needs of the alert side (`AlertService` has it)."""

    def model(self, twin_id: str) -> Any: ...

    def adopt(self, twin_id: str, model: Any) -> None: ...

    def spec(self, type_id: str) -> Any: ...


class DriftWatch:
    """Checks learned twins for drift on a wall-clock interval and adopts accepted retrains."""

    def __init__(
        self,
        retrain: RetrainService,
        alerts: AlertModels,
        store: Store,
        twins: TwinService,
        *,
        live: bool = False,
        every_s: float = 3600.0,
        recent_s: float = 7200.0,
        interval_s: float = 30.0,
    ) -> None:
        self._retrain, self._alerts, self._store, self._twins = retrain, alerts, store, twins
        self._live = live
        self._every_ns = int(every_s * 1e9)
        self._recent_ns = int(recent_s * 1e9)
        self._checked_ns: dict[str, int] = {}  # evaluation cursor at the last check, per twin
        self._failing: set[str] = set()
        self._job = PeriodicJob("drift watch", interval_s, self.tick, _log)

    def _wanted(self, twin_id: str) -> bool:
        cfg = self._retrain.config(twin_id)
        return bool(cfg["enabled"]) and bool(cfg.get("live", self._live))

    def tick(self) -> int:
        """One pass: hand every learned twin that is due to the retrain worker; returns how many."""
        handed = 0
        for twin in self._twins.list():
            model = self._alerts.model(twin.id)
            cursor = getattr(model, "cursor_ns", None)
            if model is None or cursor is None:
                continue
            if cursor - self._checked_ns.get(twin.id, -(2**62)) < self._every_ns:
                continue
            try:
                if not self._wanted(twin.id):
                    continue
                frames = self._frames(twin.id, twin.type_id, model, int(cursor))
            except TwinloopError as err:
                if twin.id not in self._failing:
                    _log.warning("drift check of %s: %s", twin.id, err)
                    self._failing.add(twin.id)
                continue
            self._failing.discard(twin.id)
            self._checked_ns[twin.id] = int(cursor)
            if frames is None:
                continue
            reference, recent = frames
            if self._retrain.check_later(twin.id, model, reference, recent, self._adopter(twin.id)):
                handed += 1
        return handed

    def _adopter(self, twin_id: str) -> Any:
        def adopt(result: RetrainResult | None) -> None:
            if result is None or not result.accepted:
                return
            live = self._alerts.model(twin_id)
            new = result.model
            if live is not None and hasattr(new, "cursor_ns"):  # evaluation went on meanwhile
                new.cursor_ns = max(int(getattr(live, "cursor_ns", 0) or 0), int(new.cursor_ns or 0))
            self._alerts.adopt(twin_id, new)
            _log.info("%s: alerts now use the retrained detector (version %d)", twin_id,
                      result.artifact.version if result.artifact else 0)

        return adopt

    def _frames(self, twin_id: str, type_id: str, model: Any,
                cursor: int) -> tuple[ChannelFrame, ChannelFrame] | None:
        """The operating rows of the learned stretch and of the recent evaluated stretch."""
        kept = self._store.artifacts(DETECTOR, twin_id)
        window = kept[-1].meta.get("window_ns") if kept else None
        if not (isinstance(window, list) and len(window) == 2):
            return None  # nothing says what it learned from: nothing to compare with
        period = int(getattr(model, "period_ns", 0) or 0) or None
        channels = list(getattr(model, "channels", ()) or ())
        if not channels:
            return None
        spec = self._alerts.spec(type_id)
        gate = getattr(spec, "gate", None)
        reference = self._frame(twin_id, channels, int(window[0]), int(window[1]), period, gate)
        recent = self._frame(twin_id, channels, max(cursor - self._recent_ns, int(window[1])), cursor + 1,
                             period, gate)
        if len(reference) < 16 or len(recent) < 24:
            return None
        return reference, recent

    def _frame(self, twin_id: str, channels: list[str], start: int, end: int, period: int | None,
               gate: Any) -> ChannelFrame:
        settle = int(float(getattr(gate, "settle_s", 0.0)) * 1e9) if gate is not None else 0
        wanted = channels + ([gate.channel] if gate is not None and gate.channel not in channels else [])
        batch = self._store.history(twin_id, wanted, start - settle, end, None)
        frame = ChannelFrame.from_readings(batch, asset_id=twin_id, channels=wanted)
        if period:
            frame = frame.on_grid(period, start - settle, end - 1)
        keep = frame.ts_ns >= start
        if gate is not None:
            keep &= gate.mask(frame.ts_ns, frame.values[:, wanted.index(gate.channel)])
        keep &= np.isfinite(frame.values[:, : len(channels)]).any(axis=1)
        return frame.where(keep).select(channels)

    # --- the background job ---------------------------------------------------------------------
    def start(self) -> None:
        """Run a pass every ``interval_s`` in a worker thread, from the running event loop."""
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()



__all__ = ["AlertModels", "DriftWatch"]
