"""The periodic job that turns live readings into alerts: learn each twin's normal operation from
its first stretch of operation, then score everything that arrives after it, raising (or
repeating) alerts per episode.

Which types are watched and how comes from their ``analytics: {alerts: …}`` declarations
(`AlertService.spec`); settings may name the types and override the learning period and grid.

Why it keeps up, or says it does not:

* **learning is anchored in plant time**: a twin is learned from the first ``learn_s`` of its
  readings (or, for a standby that runs later, from the stretch where it first operates), never
  from "the latest" data, so a slow pass learns the same stretch as a fast one, and a fault that
  began while the monitor was behind is never learned as normal;
* **every due twin of every watched type is learned in one pass**, and learning is cheap (the
  detector's own out-of-sample scores calibrate its threshold), so a fleet learns in seconds;
* **evaluation works through the backlog** since the last evaluated row, in bounded chunks, never
  skipping; `lag_s` says how far (in plant seconds) evaluation is behind ingestion, and
  `progress` says which twins are learned and why the others wait.

A learned model is kept as an artifact (kind ``detector``, key the twin id, with the window it
learned from) and its evaluation cursor in the store's meta, so after a restart the twin is not
learned again and evaluation resumes where it stopped. Without an artifact service, the stretch
learned is kept in the meta and learned again (the same stretch, not recent data).

Time is the readings' own time, not the wall clock. One twin failing to learn or score is logged
once and never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from twinloop.analytics.alert_spec import AlertSpec
from twinloop.core.errors import ConflictError, TwinloopError
from twinloop.runtime.alert_service import AlertService, TwinModel
from twinloop.runtime.artifacts import ArtifactService
from twinloop.runtime.periodic import PeriodicJob
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Store

_log = logging.getLogger(__name__)
_WINDOW_KEY = "alerts.learned."
_CURSOR_KEY = "alerts.cursor."
ARTIFACT_KIND = "detector"
#: Plant time scored per call at most while working through a backlog (bounds memory per read).
CHUNK_S = 6 * 3600.0


@dataclass(frozen=True)
class LearningStatus:
    """Where one watched twin stands: learned (and evaluated up to ``evaluated_ns``) or waiting, why."""

    twin_id: str
    type_id: str
    learned: bool
    reason: str
    window: tuple[int, int] | None = None
    evaluated_ns: int | None = None


class AlertMonitor:
    """Learns, then evaluates, every twin of the watched asset types, one pass every ``interval_s``."""

    def __init__(
        self,
        alerts: AlertService,
        store: Store,
        twins: TwinService,
        type_ids: Iterable[str] | None = None,
        learn_s: float | None = None,
        period_s: float | None = None,
        interval_s: float = 5.0,
        artifacts: ArtifactService | None = None,
    ) -> None:
        self._alerts, self._store, self._twins = alerts, store, twins
        self._types = tuple(type_ids) if type_ids is not None else None
        self._learn_s, self._period_s = learn_s, period_s
        self._artifacts = artifacts
        self._from: dict[str, int] = {}  # start of the stretch a twin will be learned from
        self._reason: dict[str, str] = {}
        self._windows: dict[str, tuple[int, int]] = {}
        self._learned: set[str] = set()
        self._failing: set[str] = set()
        self._waiting: set[str] = set()  # tried, but did not operate long enough: logged once
        self._newest_ns: int | None = None
        self._job = PeriodicJob("alert monitor", interval_s, self._tick_in_worker, _log)
        self.last_pass_s: float = 0.0

    # --- what it reports ---------------------------------------------------------------------------
    @property
    def learned(self) -> frozenset[str]:
        """Twins whose normal operation has been learned (they are being evaluated)."""
        return frozenset(self._learned)

    def lag_s(self) -> float | None:
        """Plant seconds between the newest reading ingested for a watched twin and the oldest
        point up to which a learned twin has been evaluated; None before anything is learned."""
        cursors = [m.cursor_ns for t in self._learned if (m := self._alerts.model(t)) is not None
                   and m.cursor_ns is not None]
        if not cursors or self._newest_ns is None:
            return None
        return max(0.0, (self._newest_ns - min(cursors)) / 1e9)

    def progress(self) -> list[LearningStatus]:
        """Every watched twin: learned (with its window and how far it is evaluated) or why it waits."""
        out = []
        for twin_id, type_id, _ in self._watched():
            model = self._alerts.model(twin_id)
            learned = twin_id in self._learned
            out.append(LearningStatus(
                twin_id, type_id, learned,
                "learned" if learned else self._reason.get(twin_id, "waiting for readings"),
                self._windows.get(twin_id), model.cursor_ns if model is not None and learned else None,
            ))
        return out

    # --- one pass ------------------------------------------------------------------------------------
    def _watched(self) -> list[tuple[str, str, AlertSpec]]:
        registry = self._twins.registry
        types = self._types if self._types is not None else registry.ids()
        out: list[tuple[str, str, AlertSpec]] = []
        for type_id in types:
            if type_id not in registry:
                continue
            spec = self._alerts.spec(type_id)
            if spec is None:
                if self._types is None:
                    continue  # nothing declared: not watched
                spec = AlertSpec()
            # every type is visited when none are named: each twin once, under its own type
            twins = self._twins.list(type_id, include_subtypes=self._types is not None)
            out.extend((t.id, t.type_id, spec) for t in twins)
        return out

    def tick(self) -> int:
        """One pass: learn every twin that is due, then evaluate every learned twin up to its newest
        complete row, through any backlog; returns how many alerts it raised or repeated."""
        began = time.perf_counter()
        watched = self._watched()
        if not watched:
            return 0
        latest = self._store.latest([twin_id for twin_id, _, _ in watched])
        last_ts: dict[str, int] = {}
        for twin_id, ts in zip(latest.asset_ids, latest.ts_ns, strict=True):
            last_ts[twin_id] = max(int(ts), last_ts.get(twin_id, np.iinfo(np.int64).min))
        if last_ts:
            self._newest_ns = max(last_ts.values())
        raised = 0
        for phase in ("learn", "evaluate"):
            for twin_id, _, spec in watched:
                end = last_ts.get(twin_id)
                if end is None or (phase == "learn") == (twin_id in self._learned):
                    continue
                try:
                    raised += self._learn(twin_id, end, spec) if phase == "learn" else \
                        self._evaluate(twin_id, end, spec)
                except TwinloopError as err:
                    self._reason[twin_id] = str(err)
                    if twin_id not in self._failing:  # "not yet" (a standby not run enough) is no fault
                        _log.log(logging.INFO if isinstance(err, ConflictError) else logging.WARNING,
                                 "alerts for %s: %s", twin_id, err)
                        self._failing.add(twin_id)
                else:
                    if twin_id not in self._waiting:  # a standby between two tries is still waiting
                        self._failing.discard(twin_id)
        self.last_pass_s = time.perf_counter() - began
        return raised

    def _ns(self, spec: AlertSpec) -> tuple[int, int]:
        learn = self._learn_s if self._learn_s is not None else spec.learn_s
        period = self._period_s if self._period_s is not None else spec.period_s
        return int(learn * 1e9), int(period * 1e9)

    def _evaluate(self, twin_id: str, end_ns: int, spec: AlertSpec) -> int:
        """Score from the cursor to the newest complete grid row, a chunk at a time."""
        _, period = self._ns(spec)
        model = self._alerts.model(twin_id)
        if model is None:
            raise ConflictError(f"{twin_id} has no learned model")
        stop = end_ns - period + 1  # the newest row may still be filling: it is judged next time
        chunk = int(CHUNK_S * 1e9)
        raised = 0
        while model.cursor_ns is None or model.cursor_ns < stop - period:
            before = model.cursor_ns
            upto = stop if before is None else min(stop, before + chunk)
            raised += len(self._alerts.evaluate(twin_id, upto))
            if model.cursor_ns == before:
                break  # nothing new in the store for this stretch
        if model.cursor_ns is not None:
            self._store.set_meta(_CURSOR_KEY + twin_id, str(model.cursor_ns))
        return raised

    def _learn(self, twin_id: str, end_ns: int, spec: AlertSpec) -> int:
        if self._restore(twin_id, end_ns, spec):
            return 0
        learn, period = self._ns(spec)
        start = self._from.get(twin_id)
        if start is None:
            oldest = self._store.history(twin_id, None, None, None, 1)
            start = int(oldest.ts_ns[0]) if len(oldest) else end_ns
            self._from[twin_id] = start
        stop = start + learn
        if end_ns < stop:
            before = "did not operate long enough in the stretch before; " if twin_id in self._waiting else ""
            self._reason[twin_id] = (f"{before}collecting normal operation: "
                                     f"{max(end_ns - start, 0) / 60e9:.0f} of {learn / 60e9:.0f} min")
            return 0
        min_rows = int(0.5 * learn / period)  # operating half the stretch, at least
        try:
            model = self._alerts.learn(twin_id, start, stop, period, min_rows=min_rows)
        except ConflictError:
            self._from[twin_id] = self._next_start(twin_id, start, stop, period, spec)
            self._waiting.add(twin_id)
            raise
        self._waiting.discard(twin_id)
        self._adopted(twin_id, model, (start, stop))
        self._store.set_meta(_WINDOW_KEY + twin_id, f"{start},{stop}")
        if self._artifacts is not None:
            self._artifacts.save(ARTIFACT_KIND, twin_id, model, {
                "window_ns": [start, stop], "period_s": period / 1e9, "level": model.threshold.level_,
                "median": model.threshold.median_, "detector": model.detector.name,
                "channels": list(model.channels)})
        _log.info("learned normal operation of %s from %.0f min of readings", twin_id, learn / 60e9)
        return 0

    def _next_start(self, twin_id: str, start: int, stop: int, period: int, spec: AlertSpec) -> int:
        """Where to look next for a stretch to learn from: just before the first run in the stretch
        tried, else near its end (a run may be starting); always later than ``start``."""
        settle = int(spec.gate.settle_s * 1e9) if spec.gate is not None else 0
        first = self._alerts.operating_since(twin_id, start, stop, period)
        nxt = (first if first is not None else stop) - settle - period
        return nxt if nxt > start else start + (stop - start) // 4

    def _restore(self, twin_id: str, end_ns: int, spec: AlertSpec) -> bool:
        """Take the model kept from an earlier run (artifact, else relearn its stored stretch)."""
        if twin_id in self._from:
            return False
        cursor_text = self._store.get_meta(_CURSOR_KEY + twin_id)
        cursor = int(cursor_text) if cursor_text else None
        kept = None
        if self._artifacts is not None:
            try:
                kept = self._artifacts.load(ARTIFACT_KIND, twin_id, expect=TwinModel)
            except TwinloopError as err:  # damaged or from an incompatible version: learn again
                _log.warning("cannot reload the learned model of %s (%s); learning it again", twin_id, err)
            if kept is not None:
                model, artifact = kept
                if cursor is not None:
                    model.cursor_ns = cursor
                window = artifact.meta.get("window_ns")
                self._adopted(twin_id, model, (int(window[0]), int(window[1])) if window else None)
                _log.info("reloaded the learned model of %s (version %d)", twin_id, artifact.version)
                return True
        window = self._learned_window(twin_id)
        if window is None:
            return False
        learn, period = self._ns(spec)
        start, stop = window  # the same stretch again, never a later one (it might hold a fault)
        try:
            resume = cursor if cursor is not None else max(stop - 1, end_ns - learn)
            model = self._alerts.learn(twin_id, start, stop, period, resume_ns=resume)
        except TwinloopError:
            self._store.set_meta(_WINDOW_KEY + twin_id, "")  # gone or changed: learn afresh
            raise
        self._adopted(twin_id, model, window)
        _log.info("relearned normal operation of %s from its stored learning period", twin_id)
        return True

    def _adopted(self, twin_id: str, model: TwinModel, window: tuple[int, int] | None) -> None:
        if self._alerts.model(twin_id) is not model:
            self._alerts.adopt(twin_id, model)
        self._learned.add(twin_id)
        self._from.setdefault(twin_id, window[0] if window else 0)
        if window is not None:
            self._windows[twin_id] = window
        self._reason.pop(twin_id, None)

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

    # --- the background job ---------------------------------------------------------------------
    def start(self) -> None:
        """Run a pass every ``interval_s`` in a worker thread, from the running event loop."""
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    def _tick_in_worker(self) -> int:
        """`tick` with linear algebra on one thread: beside ingestion, a broker and a simulator on
        a small machine, multi-threaded BLAS spins against them (a 200×200 pseudo-inverse measured
        1 s with threads against 7 ms without), which alone kept learning from finishing."""
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - installed with scikit-learn
            return self.tick()
        with threadpool_limits(limits=1):
            return self.tick()



__all__ = ["ARTIFACT_KIND", "AlertMonitor", "LearningStatus"]
