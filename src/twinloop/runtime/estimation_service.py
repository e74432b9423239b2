"""Live estimation: one fleet estimator per asset type, configured by the type, fed off the event loop.

A type is estimated when its ``analytics.estimator`` section (`TypeRegistry.analytics`) names a
preset; the section also says where each input comes from — a channel of the twin, a channel of
a related twin (a pump's line header pressure via ``feeds``), a constant, or nothing (a latent
input the filter estimates). Per-twin parameters come from the twin's attributes (the preset
turns a pump's rated point into its curve) and, once the twin is calibrated, from its
``model_parameters`` attribute (`CalibrationService` writes it as a new revision).

The pipeline hands committed batches to `submit`; a worker thread applies them (`update`),
merging a backlog into one bigger batch when it falls behind, never skipping one. `lag_s` is
how far (plant seconds) estimation trails the newest committed reading. Estimates are appended
as readings — ``est.<state>``, ``est.<state>_std``, ``innov.<channel>``, ``est.nis``, and the
filter health ``est.consistent`` (1 consistent, 0 not) and ``est.nis_in_band_share`` — with
quality SUBSTITUTED. `health` says per twin whether its filter is consistent and why not.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from twinloop.core.errors import NotFoundError
from twinloop.core.readings import Quality, ReadingBatch
from twinloop.estimate import make_estimator
from twinloop.estimate.declaration import EstimatorDeclaration, derive_inputs
from twinloop.estimate.fleet import FleetEstimator
from twinloop.estimate.health import HealthWindow
from twinloop.estimate.result import EST_PREFIX, FleetEstimate, UpdateReport
from twinloop.estimate.spec import EstimatorSpec
from twinloop.physics.model import names
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Store

if TYPE_CHECKING:
    from twinloop.runtime.artifacts import ArtifactService
    from twinloop.runtime.calibration_service import CalibrationService

MODEL_PARAMETERS = "model_parameters"  # the twin attribute a calibration writes
_log = logging.getLogger(__name__)


@dataclass
class TypeEstimator:
    """The estimator of one declaring type: declaration, spec, filter, and who feeds whose inputs."""

    type_id: str
    declaration: EstimatorDeclaration
    spec: EstimatorSpec
    filter: FleetEstimator
    targets: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # input → source → readers
    sources: set[str] = field(default_factory=set)  # twins of other types whose readings we read
    # each twin's health as of its last update: readers (RUL, the API) take it without waiting for
    # the filters' lock, which a large backlog batch holds for a long time on a slow machine
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def parameters_of(self, attributes: Mapping[str, Any]) -> np.ndarray:
        """``(1, n_parameters)``: spec defaults, the preset's per-twin ones, then calibrated ones."""
        p = self.spec.default_parameters(1)
        declared = names(self.spec.model.parameters)
        fitted = attributes.get(MODEL_PARAMETERS) or {}
        for key, value in {**self.declaration.preset.twin_parameters(attributes), **fitted}.items():
            if key in declared and key not in self.declaration.parameters:
                p[0, declared.index(key)] = float(value)
        return p


class EstimationService:
    """Keeps one estimator per asset type and the twins' estimated states up to date."""

    def __init__(self, store: Store, twins: TwinService, kind: str | None = None,
                 options: Mapping[str, Any] | None = None, artifacts: ArtifactService | None = None,
                 calibrate: bool = True) -> None:
        from twinloop.runtime.calibration_service import CalibrationService

        self._store = store
        self._twins = twins
        self.kind = kind
        self._options = dict(options or {})
        self._types: dict[str, TypeEstimator] = {}
        self._declarations: dict[str, EstimatorDeclaration | None] = {}
        self._lock = threading.RLock()
        self._failing: set[str] = set()
        self.calibration: CalibrationService = CalibrationService(store, twins, self, artifacts,
                                                                  lock=self._lock)
        self.auto_calibrate = calibrate
        # the worker
        self._queue: deque[ReadingBatch] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False
        self._committed_ns: int | None = None
        self._estimated_ns: int | None = None

    # --- configuration -------------------------------------------------------------------------
    def declaration(self, type_id: str) -> tuple[str, EstimatorDeclaration] | None:
        """The estimator declaration of a type or the nearest type it extends; None if none."""
        found = self._twins.registry.analytics(type_id, "estimator")
        if found is None:
            return None
        owner, section = found
        if owner not in self._declarations:
            self._declarations[owner] = (EstimatorDeclaration.from_dict(section)
                                         if section.get("preset") else None)
        decl = self._declarations[owner]
        return None if decl is None else (owner, decl)

    def spec_for(self, type_id: str) -> tuple[str, EstimatorSpec] | None:
        """The spec of a type, or of the nearest type it extends; None if it has none."""
        found = self.declaration(type_id)
        if found is None:
            return None
        return found[0], self._type(found[0]).spec

    def _type(self, owner: str) -> TypeEstimator:
        if owner not in self._types:
            found = self.declaration(owner)
            if found is None:
                raise NotFoundError(f"asset type {owner!r} has no estimator")
            decl = found[1]
            spec = decl.spec()
            est = make_estimator(self.kind or decl.kind, spec, **self._options)
            h = decl.health
            if h:
                est.health = HealthWindow(spec.channel_names, int(h.get("window", 600)),
                                          int(h.get("min_steps", 120)), float(h.get("min_share", 0.8)),
                                          float(h.get("max_bias", 1.5)))
            gate, above = decl.preset.operating or ("", 0.0)
            gate = str(decl.calibration.get("input", gate))
            if gate in names(spec.model.inputs):
                above = float(decl.calibration.get("above", above))
                est.judge_when = (names(spec.model.inputs).index(gate), above)
            self._types[owner] = TypeEstimator(owner, decl, spec, est)
        return self._types[owner]

    def type_of(self, twin_id: str) -> TypeEstimator:
        """The type estimator a twin belongs to (a clear error if its type has none)."""
        twin = self._twins.get(twin_id)
        found = self.declaration(twin.type_id)
        if found is None:
            raise NotFoundError(f"twin {twin_id!r} (type {twin.type_id}) has no estimator",
                                hint="declare analytics.estimator with a preset for the type")
        return self._type(found[0])

    def _add(self, te: TypeEstimator, twin_ids: list[str]) -> None:
        graph = self._twins.graph
        p = np.concatenate([te.parameters_of(graph.get(t).attributes) for t in twin_ids])
        te.filter.add_twins(twin_ids, p)
        for name, rule in te.declaration.rules.items():
            table = te.targets.setdefault(name, {})
            for t in twin_ids:
                if rule.via is None:
                    table.setdefault(t, []).append(t)
                    continue
                for rel in graph.relationships(source=t, name=rule.via):
                    table.setdefault(rel.target, []).append(t)
                    te.sources.add(rel.target)

    # --- the live path -------------------------------------------------------------------------
    def update(self, batch: ReadingBatch) -> dict[str, UpdateReport]:
        """Apply a committed batch to the estimators and store the new estimates; reports per type.

        A type whose update fails is logged once (with the trace) and skipped; the others go on.
        """
        if len(batch) == 0:
            return {}
        graph = self._twins.graph
        uniq, inverse = np.unique(batch.asset_ids, return_inverse=True)
        owners = np.array([self._owner(str(a), graph) for a in uniq], dtype=object)
        keys = owners[inverse]
        reports: dict[str, UpdateReport] = {}
        with self._lock:
            wanted = {k for k in owners.tolist() if k is not None}
            for owner in sorted(wanted | {t for t, te in self._types.items() if te.sources}):
                te = self._type(owner)
                mine = keys == owner
                if not mine.any() and not np.isin(uniq, list(te.sources)).any():
                    continue
                try:
                    reports[owner] = self._apply(te, batch, mine)
                except Exception:  # noqa: BLE001 - logged once per type with its trace, others go on
                    if owner not in self._failing:
                        _log.exception("estimation of %s failed; other types go on", owner)
                        self._failing.add(owner)
                else:
                    if owner in self._failing:
                        _log.info("estimation of %s recovered", owner)
                        self._failing.discard(owner)
        return reports

    def replay(self, twin_id: str, start_ns: int, end_ns: int) -> UpdateReport:
        """Run a twin's filter over its stored history without storing estimates (a CLI calibration
        in a process of its own starts from the filter's state at the window's end)."""
        te = self.type_of(twin_id)
        with self._lock:
            if twin_id not in te.filter:
                self._add(te, [twin_id])
            history = self.calibration.history(te, twin_id, start_ns, end_ns)
            return te.filter.update(history.filter(history.asset_ids == twin_id))

    def _apply(self, te: TypeEstimator, batch: ReadingBatch, mine: np.ndarray) -> UpdateReport:
        est = te.filter
        part = batch.filter(mine)
        new = [str(t) for t in np.unique(part.asset_ids) if t not in est]
        if new:
            self._add(te, new)
        if te.declaration.rules:
            part = ReadingBatch.concat([part, derive_inputs(batch, te.declaration.rules, te.targets)])
        before = est.ts_ns.copy()
        report = est.update(part)
        changed = est.ts_ns != before
        out = est.estimate().to_batch(changed)
        health = self._health_batch(te, np.flatnonzero(changed))
        if len(out) or len(health):
            self._store.append(ReadingBatch.concat([out, health]))
        if self.auto_calibrate:  # fits go to their own worker while this one runs
            self.calibration.after_update(te, inline=self._thread is None)
        return report

    def _health_batch(self, te: TypeEstimator, rows: np.ndarray) -> ReadingBatch:
        """``est.consistent`` and ``est.nis_in_band_share`` of judged twins, at their last update."""
        est = te.filter
        ids, chans, ts, vals = [], [], [], []
        share = est.health.share()
        for r in rows.tolist():
            verdict = self._verdict(te, r)
            te.verdicts[est.twin_ids[r]] = verdict
            if verdict["consistent"] is None:
                continue
            ids += [est.twin_ids[r]] * 2
            chans += [f"{EST_PREFIX}consistent", f"{EST_PREFIX}nis_in_band_share"]
            ts += [int(est.ts_ns[r])] * 2
            vals += [1.0 if verdict["consistent"] else 0.0, float(share[r])]
        if not ids:
            return ReadingBatch.empty()
        return ReadingBatch.from_arrays(np.array(ids, object), np.array(chans, object),
                                        np.array(ts, np.int64), np.array(vals),
                                        np.full(len(ids), Quality.SUBSTITUTED, np.uint8))

    def _owner(self, asset_id: str, graph: Any) -> str | None:
        if asset_id not in graph:
            return None  # readings of unknown twins are ingest's concern; nothing to estimate
        found = self.declaration(graph.get(asset_id).type_id)
        return found[0] if found else None

    # --- off the event loop --------------------------------------------------------------------
    def submit(self, batch: ReadingBatch) -> None:
        """Queue a committed batch for the worker thread (started on first use); never blocks long."""
        if len(batch) == 0:
            return
        newest = int(batch.ts_ns.max())
        with self._wake:
            self._committed_ns = newest if self._committed_ns is None else max(self._committed_ns, newest)
            self._queue.append(batch)
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="estimation", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if not self._queue:
                    return
                batches = list(self._queue)
                self._queue.clear()
                self._busy = True
            merged = batches[0] if len(batches) == 1 else ReadingBatch.concat(batches)
            try:
                self.update(merged)
            except Exception:  # noqa: BLE001 - never let the worker die; logged once
                if "worker" not in self._failing:
                    _log.exception("estimation worker: an update failed; it goes on with the next batch")
                    self._failing.add("worker")
            newest = int(merged.ts_ns.max())
            with self._wake:
                self._estimated_ns = newest if self._estimated_ns is None else max(self._estimated_ns, newest)
                self._busy = False
                self._wake.notify_all()

    def lag_s(self) -> float | None:
        """Plant seconds between the newest committed reading and the newest one estimated; None
        before anything was submitted."""
        with self._wake:
            if self._committed_ns is None:
                return None
            if self._estimated_ns is None:
                return None if self._thread is None else 0.0 if not (self._queue or self._busy) else None
            return max(self._committed_ns - self._estimated_ns, 0) / 1e9

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every submitted batch is estimated (tests, shutdown); False on timeout."""
        with self._wake:
            if not self._wake.wait_for(lambda: not self._queue and not self._busy, timeout):
                return False
        return self.calibration.wait_idle(timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish the queued batches and stop the worker; idempotent."""
        with self._wake:
            self._stopping = True
            thread = self._thread
            self._wake.notify_all()
        if thread is not None:
            thread.join(timeout)
        self.calibration.stop(timeout)
        with self._wake:
            self._thread, self._stopping = None, False

    # --- what comes out ------------------------------------------------------------------------
    def fleet(self, type_id: str) -> FleetEstimate:
        """Estimates and innovations of every estimated twin of a type (for analytics)."""
        found = self.declaration(type_id)
        if found is None:
            raise NotFoundError(f"asset type {type_id!r} has no estimator")
        with self._lock:
            return self._type(found[0]).filter.estimate()

    def estimate(self, twin_id: str) -> dict[str, Any]:
        """One twin's estimated states (mean, std), last innovations, consistency and health."""
        te = self.type_of(twin_id)
        with self._lock:
            if twin_id not in te.filter:
                raise NotFoundError(f"no estimate for twin {twin_id!r} yet",
                                    hint="the estimator starts with the twin's first readings")
            out = te.filter.estimate().twin(twin_id)
            out["health"] = self._verdict(te, int(te.filter.rows([twin_id])[0]))
            return out

    def health(self, twin_id: str) -> dict[str, Any]:
        """Whether a twin's filter is consistent with its readings (RUL gates on ``consistent``).

        ``consistent``: True, False, or None while fewer steps than the window's minimum were seen
        (not yet to be trusted); ``flagged``: inconsistent after its bounded recalibrations;
        ``reason``; ``nis_in_band_share``; per-channel ``ν/σ`` mean and std; ``calibrations``.
        """
        te = self.type_of(twin_id)
        snapshot = te.verdicts.get(twin_id)
        if snapshot is not None:
            return dict(snapshot)
        with self._lock:
            if twin_id not in te.filter:
                raise NotFoundError(f"no estimate for twin {twin_id!r} yet",
                                    hint="the estimator starts with the twin's first readings")
            return self._verdict(te, int(te.filter.rows([twin_id])[0]))

    def fleet_health(self, type_id: str) -> list[dict[str, Any]]:
        """`health` of every estimated twin of a type (and its subtypes), ordered by twin id."""
        found = self.declaration(type_id)
        if found is None:
            raise NotFoundError(f"asset type {type_id!r} has no estimator")
        te = self._type(found[0])
        wanted = {t.id for t in self._twins.list(type_id)}
        with self._lock:
            return [{"twin_id": t, **self._verdict(te, r)} for r, t in enumerate(te.filter.twin_ids)
                    if t in wanted]

    def _verdict(self, te: TypeEstimator, row: int) -> dict[str, Any]:
        out = te.filter.health.summary(row)
        twin_id = te.filter.twin_ids[row]
        out.update(self.calibration.status(twin_id))
        out["flagged"] = bool(out["consistent"] is False and out["flagged"])
        if out["flagged"]:
            out["reason"] = (f"{out['reason']}; flagged: still inconsistent after "
                             f"{out['calibrations']} calibrations")
        return out


__all__ = ["MODEL_PARAMETERS", "EstimationService", "TypeEstimator"]
