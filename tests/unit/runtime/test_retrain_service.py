"""Drift wired to guarded retraining: a process change retrains the twin's detector and keeps the new
one as the next artifact version (with the guard's metrics); a drifting sensor or a worse candidate
does not replace the model; a restart resumes with the kept version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from twinloop.analytics.alerts import AlertRaised, AlertResolved
from twinloop.analytics.anomaly import ChannelFrame, build_detector
from twinloop.analytics.drift import GuardedModel, fit_model
from twinloop.core.clock import ManualClock
from twinloop.core.commands import CreateTwin
from twinloop.core.errors import ValidationError
from twinloop.runtime.artifacts import ArtifactService
from twinloop.runtime.bus import EventBus
from twinloop.runtime.retrain_service import ModelRetrained, RetrainRejected, RetrainResult, RetrainService
from twinloop.runtime.twin_service import TwinService
from twinloop.runtime.wiring import example_plant_path
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.memory import MemoryStore
from twinloop.store.protocol import Store
from twinloop.twins.asset_type import Analytics
from twinloop.twins.plant import load_plant
from twinloop.twins.registry import TypeRegistry

T0 = 1_767_225_600 * 10**9
PERIOD = 10 * 10**9
CHANNELS = ("flow", "discharge_pressure", "power", "bearing.temperature")
ATTRS = {"manufacturer": "KSB", "model": "Etanorm", "serial": "X-1", "rated_flow": 100.0,
         "rated_head": 40.0}


def plant(n: int, seed: int, start_ns: int = T0) -> ChannelFrame:
    """A pump's channels: hydraulics coupled through one load, an independent bearing temperature."""
    rng = np.random.default_rng(seed)
    load = rng.normal(0, 1, n)
    x = np.column_stack([50 + 5 * load + rng.normal(0, 1.5, n), 2.3 - 0.2 * load + rng.normal(0, 0.06, n),
                         30 + 3 * load + rng.normal(0, 0.9, n), 45 + rng.normal(0, 0.5, n)])
    return ChannelFrame.from_array(x, CHANNELS, start_ns + PERIOD * np.arange(n), "pump-1")


def shifted(frame: ChannelFrame, rows: slice, by: list[float]) -> ChannelFrame:
    x = frame.values.copy()
    x[rows] += np.asarray(by)
    return ChannelFrame(frame.ts_ns, frame.channels, x, frame.asset_id)


class Setup:
    def __init__(self, store: Store, registry: TypeRegistry | None = None) -> None:
        self.store = store
        self.clock = ManualClock(T0)
        self.bus = EventBus()
        self.registry = registry or TypeRegistry.from_paths(load_plant(example_plant_path()).type_paths)
        self.twins = TwinService(store, self.registry, self.bus, self.clock)
        if "pump-1" not in self.twins.graph:
            self.twins.create(CreateTwin(twin_id="pump-1", type_id="Pump", attributes=ATTRS), actor="t")
        self.artifacts = ArtifactService(store, self.clock)
        self.retrain = RetrainService(store, self.twins, self.bus, self.clock, self.artifacts)

    def kinds(self) -> list[str]:
        return [r.event.kind for r in self.store.events(kinds=["ModelRetrained", "RetrainRejected"])]


@pytest.fixture
def setup() -> Setup:
    return Setup(MemoryStore())


def incumbent(reference: ChannelFrame) -> GuardedModel:
    return fit_model(build_detector("pca"), reference, {"quantile": 0.99})


def test_no_drift_does_nothing(setup: Setup) -> None:
    reference = plant(400, 0)
    recent = plant(600, 1, T0 + 400 * PERIOD)
    assert setup.retrain.check("pump-1", incumbent(reference), reference, recent) is None
    assert setup.kinds() == [] and setup.store.artifacts() == []


def test_a_process_change_retrains_and_keeps_the_new_model_as_the_next_version(setup: Setup) -> None:
    reference = plant(400, 0)
    old = incumbent(reference)
    # the station moved to a new operating point (same physics): flow, pressure and power together
    recent = shifted(plant(900, 2, T0 + 400 * PERIOD), slice(100, None), [15.0, -0.6, 9.0, 0.0])
    result = setup.retrain.check("pump-1", old, reference, recent)
    assert result is not None and result.accepted and result.reason == "accepted"
    assert result.model is not old and result.reference is not None
    assert [f.kind for f in result.findings] == ["process"]
    versions = setup.store.artifacts("detector", "pump-1")
    assert [a.version for a in versions] == [1, 2]  # the incumbent kept first, then the retrained one
    kept = versions[1].meta
    assert kept["metrics"]["after"]["loss"] <= kept["metrics"]["before"]["loss"]
    assert kept["metrics"]["before"]["false_alarm_rate"] > 0.5  # the old model alarms on the new normal
    assert kept["twins"] == ["pump-1"] and kept["window_ns"][0] >= int(recent.ts_ns[100])
    assert kept["drift"][0]["kind"] == "process" and kept["previous_version"] == 1
    events = setup.store.events(kinds=["ModelRetrained"])
    assert len(events) == 1
    event = events[0].event
    assert isinstance(event, ModelRetrained) and event.version == 2 and event.twin_id == "pump-1"
    assert setup.store.audit(actor="system:retrain")[0].action == "model.retrain"
    loaded = setup.retrain.load("pump-1")
    assert loaded is not None and loaded[1].version == 2
    probe = recent.rows(500)
    np.testing.assert_allclose(loaded[0].detector.score(probe)[0], result.model.detector.score(probe)[0])
    # the same stretch again, within the cool-down: no second retrain
    assert setup.retrain.check("pump-1", result.model, reference, recent) is None


def test_a_drifting_sensor_is_not_retrained_on_and_is_told_once(setup: Setup) -> None:
    reference = plant(400, 0)
    old = incumbent(reference)
    recent = plant(900, 3, T0 + 400 * PERIOD)
    ramp = np.clip(np.arange(900) - 300, 0, None) / 600 * 6.0
    recent = ChannelFrame(recent.ts_ns, recent.channels,
                          recent.values + np.outer(ramp, [0, 0, 0, 1.0]), "pump-1")
    result = setup.retrain.check("pump-1", old, reference, recent)
    assert result is not None and not result.accepted and result.reason == "sensor_drift"
    assert result.model is old and setup.store.artifacts() == []
    again = setup.retrain.check("pump-1", old, reference, recent)
    assert again is not None and again.reason == "sensor_drift"
    events = setup.store.events(kinds=["RetrainRejected"])
    assert len(events) == 1  # told once, not on every check
    event = events[0].event
    assert isinstance(event, RetrainRejected) and event.reason == "sensor_drift"
    assert event.drift[0]["channels"] == ["bearing.temperature"] and "sensor" in event.message


def test_a_worse_candidate_is_rejected_by_the_guard_and_the_incumbent_stays(setup: Setup) -> None:
    reference = plant(400, 0)
    old = incumbent(reference)
    # drift reported while a transient upset filled the training part; normal again in the holdout
    recent = shifted(plant(600, 4, T0 + 400 * PERIOD), slice(0, 420), [20.0, 0.0, 0.0, 3.0])
    result = setup.retrain.on_drift("pump-1", old, recent)
    assert not result.accepted and result.reason == "guard" and result.model is old
    assert result.outcome is not None and result.outcome.after.loss > result.outcome.before.loss
    assert [a.version for a in setup.store.artifacts("detector", "pump-1")] == [1]  # only the incumbent
    assert setup.kinds() == ["RetrainRejected"]
    event = setup.store.events(kinds=["RetrainRejected"])[0].event
    assert isinstance(event, RetrainRejected) and event.reason == "guard" and event.version == 1
    assert event.after["loss"] > event.before["loss"]


def test_too_little_data_since_the_change_waits_without_an_event(setup: Setup) -> None:
    reference = plant(400, 0)
    result = setup.retrain.on_drift("pump-1", incumbent(reference), plant(12, 5))
    assert result.reason == "too_little_data" and not result.accepted
    assert setup.kinds() == []


def test_the_asset_type_can_switch_retraining_off(setup: Setup) -> None:
    setup.registry.declare_analytics("Pump", Analytics(alerts={"retrain": {"enabled": False}}))
    reference = plant(400, 0)
    recent = shifted(plant(900, 2, T0 + 400 * PERIOD), slice(100, None), [15.0, -0.6, 9.0, 0.0])
    assert setup.retrain.check("pump-1", incumbent(reference), reference, recent) is None
    assert setup.retrain.on_drift("pump-1", incumbent(reference), recent).reason == "disabled"
    assert setup.kinds() == [] and setup.store.artifacts() == []


def test_after_a_restart_the_retrained_version_is_the_one_loaded(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    reference = plant(400, 0)
    recent = shifted(plant(900, 2, T0 + 400 * PERIOD), slice(100, None), [15.0, -0.6, 9.0, 0.0])
    with DuckDBStore(path) as store:
        result = Setup(store).retrain.check("pump-1", incumbent(reference), reference, recent)
        assert result is not None and result.accepted
    with DuckDBStore(path) as store:
        again = Setup(store)
        loaded = again.retrain.load("pump-1")
        assert loaded is not None and loaded[1].version == 2
        probe = recent.rows(500)
        np.testing.assert_allclose(loaded[0].detector.score(probe)[0], result.model.detector.score(probe)[0])
        assert again.kinds() == ["ModelRetrained"]  # the event is read back from the file too


@dataclass
class OwnedModel:
    """Shaped like the alert service's per-twin model: more than a detector and a threshold."""

    detector: object
    threshold: object
    channels: tuple[str, ...]
    cursor_ns: int | None = None


def test_the_owners_model_type_is_kept_with_only_detector_and_threshold_replaced(setup: Setup) -> None:
    reference = plant(400, 0)
    guarded = incumbent(reference)
    owned = OwnedModel(guarded.detector, guarded.threshold, CHANNELS, cursor_ns=T0 + 7)
    recent = shifted(plant(900, 2, T0 + 400 * PERIOD), slice(100, None), [15.0, -0.6, 9.0, 0.0])
    result = setup.retrain.check("pump-1", owned, reference, recent)
    assert result is not None and result.accepted
    assert isinstance(result.model, OwnedModel) and result.model.cursor_ns == T0 + 7
    assert result.model.detector is not owned.detector
    loaded = setup.retrain.load("pump-1")
    assert loaded is not None and isinstance(loaded[0], OwnedModel) and loaded[1].version == 2
    assert isinstance(setup.artifacts.load("detector", "pump-1", 1)[0], OwnedModel)  # type: ignore[index]
    with pytest.raises(ValidationError, match="no learned detector"):
        setup.retrain.on_drift("pump-1", object(), recent)


def test_a_change_still_moving_away_is_not_learned_as_normal(setup: Setup) -> None:
    reference = plant(400, 0)
    old = incumbent(reference)
    # a developing fault: flow, pressure and power keep moving away, they do not settle
    recent = plant(900, 5, T0 + 400 * PERIOD)
    ramp = np.clip(np.arange(900) - 100, 0, None) / 800
    recent = ChannelFrame(recent.ts_ns, recent.channels,
                          recent.values + np.outer(ramp, [25.0, -1.0, 15.0, 0.0]), "pump-1")
    result = setup.retrain.check("pump-1", old, reference, recent)
    assert result is not None and result.reason == "still_changing" and result.model is old
    assert setup.kinds() == [] and setup.store.artifacts() == []


def test_no_retrain_while_an_alert_of_the_twin_is_open(setup: Setup) -> None:
    reference = plant(400, 0)
    recent = shifted(plant(900, 2, T0 + 400 * PERIOD), slice(100, None), [15.0, -0.6, 9.0, 0.0])
    setup.store.append_events([AlertRaised(twin_id="pump-1", ts_ns=T0, alert_id="a1", detector="pca")])
    result = setup.retrain.check("pump-1", incumbent(reference), reference, recent)
    assert result is not None and result.reason == "alert_open" and setup.store.artifacts() == []
    setup.store.append_events([AlertResolved(twin_id="pump-1", ts_ns=T0 + 1, alert_id="a1")])
    result = setup.retrain.check("pump-1", incumbent(reference), reference, recent)
    assert result is not None and result.accepted


def test_checks_handed_to_the_worker_run_in_order_and_a_newer_request_replaces_a_waiting_one(
        setup: Setup) -> None:
    setup.twins.create(CreateTwin(twin_id="pump-2", type_id="Pump", attributes=ATTRS), actor="t")
    reference = plant(400, 0)
    old = incumbent(reference)
    changed = shifted(plant(900, 2, T0 + 400 * PERIOD), slice(100, None), [15.0, -0.6, 9.0, 0.0])
    gate = threading.Event()
    seen: list[tuple[str, str | None]] = []

    def blocked(result: RetrainResult | None) -> None:
        gate.wait(60)  # holds the worker until both requests for pump-1 are queued
        seen.append(("pump-2", None if result is None else result.reason))

    def record(tag: str) -> Callable[[RetrainResult | None], None]:
        return lambda result: seen.append((tag, None if result is None else result.reason))

    assert setup.retrain.check_later("pump-2", old, reference, plant(600, 1, T0 + 400 * PERIOD), blocked)
    assert setup.retrain.check_later("pump-1", old, reference, plant(600, 1, T0 + 400 * PERIOD),
                                     record("first"))
    assert setup.retrain.check_later("pump-1", old, reference, changed, record("newer"))
    gate.set()
    assert setup.retrain.wait_idle(120)
    assert seen == [("pump-2", None), ("newer", "accepted")]  # the waiting request was replaced
    assert [a.version for a in setup.store.artifacts("detector", "pump-1")] == [1, 2]
    setup.retrain.close()
    assert not setup.retrain.check_later("pump-1", old, reference, changed, record("late"))
