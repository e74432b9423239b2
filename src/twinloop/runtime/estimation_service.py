"""Live estimation: one fleet estimator per asset type, fed by the pipeline, stored as readings.

The pipeline calls `EstimationService.update` with each batch after it is stored. Readings are
routed to their twin's type; each type with a spec has one estimator (all its twins as rows),
and the estimates of the twins just updated are appended to the store as readings —
``est.<state>``, ``est.<state>_std``, ``innov.<channel>``, ``est.nis`` with quality SUBSTITUTED
(see `twinloop.estimate.result`) — so history, the API and analytics read them like any channel.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from twinloop.core.errors import NotFoundError
from twinloop.core.readings import ReadingBatch
from twinloop.estimate import make_estimator
from twinloop.estimate.fleet import FleetEstimator
from twinloop.estimate.presets import pump_spec
from twinloop.estimate.result import FleetEstimate, UpdateReport
from twinloop.estimate.spec import EstimatorSpec
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Store


def default_specs() -> dict[str, EstimatorSpec]:
    """Specs for the shipped asset types: the example pump station's ``Pump``."""
    return {"Pump": pump_spec()}


class EstimationService:
    """Keeps one estimator per asset type and the twins' estimated states up to date."""

    def __init__(
        self,
        store: Store,
        twins: TwinService,
        specs: Mapping[str, EstimatorSpec] | None = None,
        kind: str = "ukf",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._store = store
        self._twins = twins
        self.specs = dict(default_specs() if specs is None else specs)
        self.kind = kind
        self._options = dict(options or {})
        self._filters: dict[str, FleetEstimator] = {}
        self._lock = threading.Lock()

    def spec_for(self, type_id: str) -> tuple[str, EstimatorSpec] | None:
        """The spec of a type, or of the nearest type it extends; None if it has none."""
        found = next((t for t in self._twins.registry.lineage(type_id) if t in self.specs), None)
        return None if found is None else (found, self.specs[found])

    def update(self, batch: ReadingBatch) -> dict[str, UpdateReport]:
        """Apply a stored batch to the estimators and store the new estimates; reports per type."""
        if len(batch) == 0:
            return {}
        graph = self._twins.graph
        assets = batch.asset_ids
        uniq, inverse = np.unique(assets, return_inverse=True)
        keys = np.array([self._key(str(a), graph) for a in uniq], dtype=object)[inverse]
        reports: dict[str, UpdateReport] = {}
        with self._lock:
            for key in sorted({k for k in keys.tolist() if k is not None}):
                mine = keys == key
                part = batch.filter(mine)
                est = self._filter(key)
                new = [str(t) for t in np.unique(part.asset_ids) if t not in est]
                if new:
                    est.add_twins(new)
                before = est.ts_ns.copy()
                reports[key] = est.update(part)
                changed = est.ts_ns != np.concatenate([before, np.full(len(est) - len(before), -1)])
                out = est.estimate().to_batch(changed)
                if len(out):
                    self._store.append(out)
        return reports

    def _key(self, asset_id: str, graph: Any) -> str | None:
        if asset_id not in graph:
            return None  # readings of unknown twins are ingest's concern; nothing to estimate
        found = self.spec_for(graph.get(asset_id).type_id)
        return found[0] if found else None

    def _filter(self, key: str) -> FleetEstimator:
        if key not in self._filters:
            self._filters[key] = make_estimator(self.kind, self.specs[key], **self._options)
        return self._filters[key]

    def fleet(self, type_id: str) -> FleetEstimate:
        """Estimates and innovations of every estimated twin of a type (for analytics)."""
        found = self.spec_for(type_id)
        if found is None:
            raise NotFoundError(f"asset type {type_id!r} has no estimator",
                                hint="types with one: " + (", ".join(self.specs) or "none"))
        with self._lock:
            return self._filter(found[0]).estimate()

    def estimate(self, twin_id: str) -> dict[str, Any]:
        """One twin's estimated states (mean, std), last innovations and consistency."""
        twin = self._twins.get(twin_id)
        found = self.spec_for(twin.type_id)
        if found is None:
            raise NotFoundError(f"twin {twin_id!r} (type {twin.type_id}) has no estimator",
                                hint="types with one: " + (", ".join(self.specs) or "none"))
        with self._lock:
            est = self._filters.get(found[0])
            if est is None or twin_id not in est:
                raise NotFoundError(f"no estimate for twin {twin_id!r} yet",
                                    hint="the estimator starts with the twin's first readings")
            return est.estimate().twin(twin_id)


__all__ = ["EstimationService", "default_specs"]
