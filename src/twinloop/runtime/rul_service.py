"""Remaining useful life of live twins: recomputed when it matters, stored, and served.

Which twins get an RUL, and how, is declared per asset type (``analytics: {prognoser: {model: …}}``,
read with `TypeRegistry.analytics`); the names are `twinloop.analytics.rul.models`. Nothing here
knows pumps. A declaration may name a ``second_opinion`` (a trained model, e.g. ``pump-bearing-gbm``):
when it is trained, both are served with their disagreement.

When a twin is recomputed — all in *plant* time, the time of its readings, so it behaves the same
at any simulation speed and after a backlog:

* it has no RUL yet, or an alert was raised for it (`AlertRaised`);
* its degradation state moved materially: the prognoser's state (the wear mean) moved by more
  than ``material_sigma`` of its std since the last RUL (at most once per ``material_interval_s``;
  three std, so that sensor noise on a steady state does not count);
* otherwise at most once per ``interval_s`` (per type: ``prognoser: {interval: 1h}``).

Readings and alerts only mark twins; a worker thread (`run_in_background`, started by the runtime)
takes every marked twin, groups them by asset type and predicts each group in one batch, so the
event loop never waits. Nothing is dropped: a twin marked while a pass runs is in the next pass.
Without the worker (tests, the CLI) the same happens in the publisher's thread.

Each update appends one `RulUpdated` event and readings on ``rul.mean_h``, ``rul.p10_h``,
``rul.p50_h``, ``rul.p90_h``, ``rul.p_fail_24h``, ``rul.p_fail_72h`` and ``rul.p_fail_7d`` at the
time of the newest reading used, so RUL has a history next to the sensors. A twin that cannot
get an RUL (no readings, a stopped pump, an untrained model) is logged once per reason and the
reason is served (`skipped`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from twinloop.analytics.alerts import AlertRaised
from twinloop.analytics.rul import models
from twinloop.analytics.rul.distribution import SUMMARY_LEVELS, RulDistribution, cdf_from_quantiles
from twinloop.analytics.rul.live import TwinInputs, TwinPrognoser
from twinloop.core.clock import Clock
from twinloop.core.errors import NotFoundError, TwinloopError, ValidationError
from twinloop.core.events import Event, ReadingsApplied
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.bus import EventBus
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Store

HORIZONS_H: dict[str, float] = {"24h": 24.0, "72h": 72.0, "7d": 168.0}
RUL_CHANNELS = ("rul.mean_h", "rul.p10_h", "rul.p50_h", "rul.p90_h",
                "rul.p_fail_24h", "rul.p_fail_72h", "rul.p_fail_7d")
ARTIFACT_KIND = "prognoser"
NS = 10**9
_DERIVED = ("rul.", "est.", "innov.")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RulUpdated(Event):
    """A twin's RUL was recomputed; times in ``unit`` (hours for live twins). ``ts_ns`` is when it
    was computed (wall clock), ``as_of_ns`` the time of the newest reading it used (plant clock)."""

    model: str = ""
    unit: str = "h"
    mean: float = 0.0
    std: float = 0.0
    quantiles: dict[str, float] = field(default_factory=dict)
    p_fail: dict[str, float] = field(default_factory=dict)
    drivers: list[dict[str, Any]] = field(default_factory=list)
    as_of_ns: int = 0
    basis: str = ""
    reason: str = ""
    state: list[float] = field(default_factory=list)  # [mean, std] of the degradation state used
    second_opinion: dict[str, Any] | None = None
    disagreement: float | None = None

    def p_fail_within(self, horizon: float) -> float:
        """P(RUL <= horizon) from the stored quantile grid."""
        return cdf_from_quantiles(self.quantiles, horizon)

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        tail = f"{(1 - level) / 2:g}", f"{1 - (1 - level) / 2:g}"
        if tail[0] not in self.quantiles or tail[1] not in self.quantiles:
            raise ValidationError(f"no stored {level:g} interval", hint="use 0.8, 0.9 or 0.98")
        return self.quantiles[tail[0]], self.quantiles[tail[1]]


@dataclass
class _Type:
    """A declared prognoser of one asset type, built once."""

    prognoser: TwinPrognoser
    interval_ns: int
    second: TwinPrognoser | None = None
    second_missing: str = ""


Health = Callable[[str], Mapping[str, Any] | None]


class RulService:
    """Computes, stores and answers RUL per twin (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        twins: TwinService,
        bus: EventBus,
        clock: Clock,
        prognosers: Mapping[str, TwinPrognoser] | None = None,
        interval_s: float = 3600.0,
        material_sigma: float = 3.0,
        material_interval_s: float = 300.0,
        health: Health | None = None,
        artifacts: Any | None = None,
        pace_s: float = 0.5,
    ) -> None:
        self._store, self._twins, self._bus, self._clock = store, twins, bus, clock
        self._fixed = dict(prognosers) if prognosers is not None else None
        self._interval_ns = int(interval_s * NS)
        self._material_sigma = material_sigma
        self._material_ns = int(material_interval_s * NS)
        self._health = health
        self._artifacts = artifacts
        self._pace_s = pace_s
        self._types: dict[str, _Type | None] = {}
        self._latest: dict[str, RulUpdated] = {}
        self._newest_ns: dict[str, int] = {}
        self._skipped: dict[str, str] = {}
        self._lock = threading.Lock()
        self._compute_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._dirty: set[str] = set()
        self._urgent: set[str] = set()
        self._worker: threading.Thread | None = None
        self._stopping = False

    # --- which prognoser ------------------------------------------------------------------------
    def _declared(self, type_id: str) -> _Type | None:
        """The prognoser declared for ``type_id`` (or the nearest type it extends); built once."""
        if type_id in self._types:
            return self._types[type_id]
        found: _Type | None = None
        if self._fixed is not None:
            key = next((t for t in self._twins.registry.lineage(type_id) if t in self._fixed), None)
            found = None if key is None else _Type(self._fixed[key], self._interval_ns)
        else:
            declared = self._twins.registry.analytics(type_id, "prognoser")
            if declared is not None and declared[1].get("model"):
                found = self._build(declared[0], declared[1])
        self._types[type_id] = found
        return found

    def _build(self, declaring: str, config: Mapping[str, Any]) -> _Type:
        interval = config.get("interval")
        interval_ns = self._interval_ns if interval is None else \
            int(next(iter(parse_horizons([str(interval)]).values())) * 3600 * NS)
        typ = _Type(models.build(config), interval_ns)
        second = config.get("second_opinion")
        if second:
            spec = {"model": second} if isinstance(second, str) else dict(second)
            typ.second, typ.second_missing = self._trained(spec)
        _log.info("RUL of %s twins: %s%s", declaring, typ.prognoser.name,
                  f", second opinion {typ.second.name}" if typ.second else "")
        return typ

    def _trained(self, spec: Mapping[str, Any]) -> tuple[TwinPrognoser | None, str]:
        name = str(spec.get("model", ""))
        if not models.is_trained(name):
            return models.build(spec), ""
        loaded = self._artifacts.load(ARTIFACT_KIND, name) if self._artifacts is not None else None
        if loaded is None:
            return None, f"{name} is not trained yet (twinloop rul train RUNS.parquet)"
        return models.build(spec, loaded[0]), ""

    def supports(self, twin_id: str) -> bool:
        return self._declared(self._twins.get(twin_id).type_id) is not None

    def _typ(self, twin_id: str) -> _Type:
        twin = self._twins.get(twin_id)
        typ = self._declared(twin.type_id)
        if typ is None:
            known = sorted({t.type_id for t in self._twins.list() if self._declared(t.type_id)})
            raise ValidationError(f"no prognoser for asset type {twin.type_id!r}",
                                  hint="declare one: analytics: {prognoser: {model: ...}}; RUL is computed "
                                  f"for: {', '.join(known) or 'none'}")
        return typ

    # --- computing ------------------------------------------------------------------------------
    def update(self, twin_id: str) -> RulUpdated:
        """Recompute one twin's RUL now from its stored readings, store it and announce it."""
        self._typ(twin_id)
        done, skipped = self._run([twin_id], force=True)
        if twin_id in skipped:
            raise ValidationError(f"cannot compute the RUL of {twin_id!r}: {skipped[twin_id]}",
                                  hint="RUL needs recent readings of a running asset")
        return done[0]

    def update_fleet(self, type_id: str | None = None) -> tuple[list[RulUpdated], dict[str, str]]:
        """Recompute every supported twin (of a type); returns the updates and why others were skipped."""
        ids = [t.id for t in self._twins.list(type_id) if self._declared(t.type_id) is not None]
        return self._run(ids, force=True)

    def _run(self, twin_ids: Iterable[str], force: bool = False,
             urgent: frozenset[str] = frozenset()) -> tuple[list[RulUpdated], dict[str, str]]:
        """One pass: group by type, read latest values in one call per type, predict the due twins."""
        groups: dict[int, tuple[_Type, list[str]]] = {}
        skipped: dict[str, str] = {}
        for twin_id in twin_ids:
            try:
                typ = self._typ(twin_id)
            except NotFoundError:
                continue  # deleted meanwhile
            except TwinloopError as err:
                skipped[twin_id] = err.message
                continue
            groups.setdefault(id(typ), (typ, []))[1].append(twin_id)
        done: list[RulUpdated] = []
        with self._compute_lock:
            for typ, ids in groups.values():
                d, s = self._run_type(typ, ids, force, urgent)
                done += d
                skipped.update(s)
        for twin_id, why in skipped.items():
            self._note_skip(twin_id, why)
        return done, skipped

    def _run_type(self, typ: _Type, ids: list[str], force: bool,
                  urgent: frozenset[str]) -> tuple[list[RulUpdated], dict[str, str]]:
        prognoser = typ.prognoser
        channels = sorted({*prognoser.channels, *(typ.second.channels if typ.second else ())})
        batch = self._store.latest(ids, channels)
        latest: dict[str, dict[str, float]] = {t: {} for t in ids}
        as_of: dict[str, int] = dict.fromkeys(ids, 0)
        for a, c, ts, v in zip(batch.asset_ids, batch.channels, batch.ts_ns, batch.values, strict=True):
            latest[str(a)][str(c)] = float(v)
            as_of[str(a)] = max(as_of[str(a)], int(ts))
        for t in ids:
            for key, target, channel in self._related(prognoser, t):
                found = self._store.latest([target], [channel])
                if len(found):
                    latest[t][key] = float(found.values[0])
        skipped: dict[str, str] = {}
        due: list[str] = []
        for t in ids:
            if not as_of[t]:
                skipped[t] = f"no readings of {', '.join(prognoser.channels[:3])}, … yet"
                continue
            with self._lock:
                self._newest_ns[t] = max(self._newest_ns.get(t, 0), as_of[t])
            if force or self._due(t, prognoser, latest[t], as_of[t], typ.interval_ns, t in urgent):
                due.append(t)
        if not due:
            return [], skipped
        inputs = [TwinInputs(t, latest[t], self._history(prognoser, t, as_of[t]), self._health_of(t))
                  for t in due]
        answers = prognoser.predict_twins(inputs)
        second = self._second(typ, due, latest, as_of)
        done = []
        for t, answer, other in zip(due, answers, second, strict=True):
            if isinstance(answer, TwinloopError):
                skipped[t] = answer.message
                continue
            done.append(self._record(t, answer, as_of[t], prognoser.state_of(latest[t]), other,
                                     typ.second_missing))
        return done, skipped

    def _due(self, twin_id: str, prognoser: TwinPrognoser, latest: Mapping[str, float], as_of: int,
             interval_ns: int, urgent: bool) -> bool:
        with self._lock:
            last = self._latest.get(twin_id)
        if last is None:
            try:
                last = self.get(twin_id)  # a restart: throttle against the stored RUL
            except NotFoundError:
                return True
        since = as_of - last.as_of_ns
        if urgent or since >= interval_ns:
            return since > 0 or urgent
        if since < self._material_ns or len(last.state) != 2:
            return False
        now = prognoser.state_of(latest)
        if now is None:
            return False
        spread = max(last.state[1], now[1], 1e-3)
        return abs(now[0] - last.state[0]) > self._material_sigma * spread

    def _history(self, prognoser: TwinPrognoser, twin_id: str, as_of: int) -> Any:
        if prognoser.bucket_ns is None or not prognoser.history_channels:
            return None
        start = as_of - int(prognoser.history_h * 3600 * NS)
        own = self._store.history_buckets(twin_id, prognoser.bucket_ns, list(prognoser.history_channels),
                                          start, as_of + 1)
        parts = [own]
        for key, target, channel in self._related(prognoser, twin_id):
            theirs = self._store.history_buckets(target, prognoser.bucket_ns, [channel], start, as_of + 1)
            if theirs.num_rows:
                names = pa.array([key] * theirs.num_rows, theirs.schema.field("channel").type)
                parts.append(theirs.set_column(theirs.schema.get_field_index("channel"), "channel", names))
        return pa.concat_tables(parts) if len(parts) > 1 else own

    def _related(self, prognoser: TwinPrognoser, twin_id: str) -> list[tuple[str, str, str]]:
        """(key, target twin, channel) for each related channel the prognoser declares."""
        out = []
        for name, channel in getattr(prognoser, "related", ()):
            edges = self._twins.graph.relationships(source=twin_id, name=name)
            if edges:
                out.append((f"{name}.{channel}", edges[0].target, channel))
        return out

    def _health_of(self, twin_id: str) -> Mapping[str, Any] | None:
        if self._health is None:
            return None
        try:
            return self._health(twin_id)
        except TwinloopError:
            return None  # no estimate yet: the prognoser judges from the readings

    def _second(self, typ: _Type, due: Sequence[str], latest: Mapping[str, dict[str, float]],
                as_of: Mapping[str, int]) -> list[RulDistribution | None]:
        if typ.second is None:
            return [None] * len(due)
        other = typ.second
        inputs = [TwinInputs(t, latest[t], self._history(other, t, as_of[t]), None) for t in due]
        return [a if isinstance(a, RulDistribution) else None for a in other.predict_twins(inputs)]

    def _record(self, twin_id: str, dist: RulDistribution, as_of_ns: int,
                state: tuple[float, float] | None, second: RulDistribution | None,
                second_missing: str) -> RulUpdated:
        twin = self._twins.get(twin_id)
        summary = dist.summary(SUMMARY_LEVELS)
        p_fail = {k: dist.p_fail_within(h) for k, h in HORIZONS_H.items()}
        opinion, disagreement = None, None
        if second is not None:
            opinion = {"model": second.model, "mean": second.mean, "p50": second.quantile(0.5),
                       "interval80": list(second.interval(0.8)),
                       "p_fail": {k: second.p_fail_within(h) for k, h in HORIZONS_H.items()}}
            a, b = dist.quantile(0.5), second.quantile(0.5)
            disagreement = abs(a - b) / max(a, b, 1e-9)
        elif second_missing:
            opinion = {"missing": second_missing}
        basis, _, reason = dist.basis.partition(": ")
        event = RulUpdated(
            twin_id=twin_id, revision=twin.revision, ts_ns=self._clock.now_ns(), model=dist.model,
            unit=dist.unit, mean=dist.mean, std=dist.std, quantiles=summary["quantiles"], p_fail=p_fail,
            drivers=summary["drivers"], as_of_ns=as_of_ns, basis=basis, reason=reason,
            state=list(state) if state else [], second_opinion=opinion, disagreement=disagreement,
        )
        values = [dist.mean, dist.quantile(0.1), dist.quantile(0.5), dist.quantile(0.9),
                  p_fail["24h"], p_fail["72h"], p_fail["7d"]]
        self._store.append(ReadingBatch.from_arrays(twin_id, list(RUL_CHANNELS), as_of_ns, values))
        self._store.append_events([event])
        with self._lock:
            self._latest[twin_id] = event
            cleared = self._skipped.pop(twin_id, None)
        if cleared is not None:
            _log.info("RUL of %s is computed again (was skipped: %s)", twin_id, cleared)
        self._bus.publish([event])
        return event

    def _note_skip(self, twin_id: str, why: str) -> None:
        with self._lock:
            before = self._skipped.get(twin_id)
            self._skipped[twin_id] = why
        if before != why:
            _log.info("RUL of %s skipped: %s", twin_id, why)

    # --- live -------------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """Bus handler: new readings mark a twin, an alert marks it urgent; the work is done on the
        worker (or right here when there is none)."""
        if isinstance(event, AlertRaised):
            urgent = True
        elif isinstance(event, ReadingsApplied):
            if event.channels and all(c.startswith(_DERIVED) for c in event.channels):
                return
            urgent = False
        else:
            return
        twin_id = event.twin_id
        if twin_id not in self._twins.graph or self._declared(self._twins.graph.get(twin_id).type_id) is None:
            return
        with self._wake:
            if self._worker is not None:
                self._dirty.add(twin_id)
                if urgent:
                    self._urgent.add(twin_id)
                self._wake.notify()
                return
        self._run([twin_id], urgent=frozenset([twin_id]) if urgent else frozenset())

    def attach(self) -> None:
        """Recompute live as readings are applied and alerts raised."""
        self._bus.on_event(self.on_event)

    def run_in_background(self) -> None:
        """From now on recompute on a worker thread: live ingestion and the API never wait for it."""
        with self._wake:
            if self._worker is not None:
                return
            self._stopping = False
            self._worker = threading.Thread(target=self._work, name="rul-service", daemon=True)
            self._worker.start()

    def stop_background(self, timeout_s: float = 10.0) -> None:
        """Finish the pass under way and go back to computing in the publisher's thread."""
        with self._wake:
            worker = self._worker
            if worker is None:
                return
            self._stopping = True
            self._wake.notify_all()
        worker.join(timeout_s)
        with self._wake:
            self._worker = None
            self._dirty.clear()
            self._urgent.clear()

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._dirty and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                dirty, urgent = sorted(self._dirty), frozenset(self._urgent)
                self._dirty.clear()
                self._urgent.clear()
            try:
                self._run(dirty, urgent=urgent)
            except Exception:  # noqa: BLE001 - one bad pass must not end live RUL; the next one retries
                _log.exception("RUL pass over %d twins failed", len(dirty))
            with self._wake:  # pace the passes; an alert does not wait
                if not self._urgent and not self._stopping:
                    self._wake.wait(self._pace_s)

    def lag_s(self) -> float:
        """Plant seconds between the newest reading seen and the newest RUL ``as_of`` (0 before any)."""
        with self._lock:
            newest = max(self._newest_ns.values(), default=0)
            done = max((e.as_of_ns for e in self._latest.values()), default=0)
        return max(newest - done, 0) / NS if newest and done else 0.0

    def pending(self) -> int:
        """Twins marked for a recompute and not yet taken by the worker."""
        with self._lock:
            return len(self._dirty)

    # --- training ---------------------------------------------------------------------------------
    def train(self, table: Any, model: str = "pump-bearing-gbm", config: Mapping[str, Any] | None = None,
              source: str = "") -> Any:
        """Fit a trained model on a run-to-failure table and keep it as the next artifact version;
        twins whose type names it as ``second_opinion`` use it from the next recompute on."""
        if self._artifacts is None:
            raise ValidationError("this runtime keeps no artifacts", hint="open it with a store")
        fitted = models.train(model, table, config)
        units = len(set(table.column("unit").to_pylist())) if "unit" in table.column_names else None
        meta = {"model": model, "source": source, "rows": table.num_rows, "units": units}
        saved = self._artifacts.save(ARTIFACT_KIND, model, fitted, meta)
        with self._lock:
            self._types.clear()
        return saved

    # --- answering --------------------------------------------------------------------------------
    def skipped(self, twin_id: str) -> str | None:
        """Why the twin's RUL was last not computed (None when it was)."""
        with self._lock:
            return self._skipped.get(twin_id)

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
            why = self.skipped(twin_id)
            raise NotFoundError(f"no RUL for {twin_id!r} yet" + (f": {why}" if why else ""),
                                hint="it is computed as readings arrive; or run `twinloop rul update`")
        with self._lock:
            self._latest.setdefault(twin_id, found)
        return found

    def fleet(self, horizon_h: float = 168.0, type_id: str | None = None) -> list[tuple[RulUpdated, float]]:
        """Latest RUL of every twin that has one, most likely to fail within ``horizon_h`` first
        (stored RULs count even when this process was opened without the types' declarations)."""
        out = []
        for twin in self._twins.list(type_id):
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
                                  hint="use e.g. 24h, 72h, 7d or plain hours") from err
        if not hours >= 0 or hours == float("inf"):
            raise ValidationError(f"horizon {text!r} must be a finite number >= 0")
        out[text] = hours
    return out


__all__ = ["ARTIFACT_KIND", "HORIZONS_H", "RUL_CHANNELS", "RulService", "RulUpdated", "parse_horizons"]
