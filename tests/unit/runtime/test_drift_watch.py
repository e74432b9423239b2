"""The live drift watch: reads a learned twin's stored readings (operating rows only), hands due
twins to the retrain worker, and makes the alerts use an accepted retrain; off unless asked for."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from twinloop.analytics.anomaly import ChannelFrame, build_detector
from twinloop.analytics.drift import fit_model
from twinloop.analytics.operating import OperatingGate
from twinloop.core.clock import ManualClock
from twinloop.core.commands import CreateTwin
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.artifacts import ArtifactService
from twinloop.runtime.bus import EventBus
from twinloop.runtime.drift_watch import DriftWatch
from twinloop.runtime.retrain_service import RetrainService
from twinloop.runtime.twin_service import TwinService
from twinloop.runtime.wiring import example_plant_path
from twinloop.store.memory import MemoryStore
from twinloop.twins.asset_type import Analytics
from twinloop.twins.plant import load_plant
from twinloop.twins.registry import TypeRegistry

T0 = 1_767_225_600 * 10**9
PERIOD = 10 * 10**9
CHANNELS = ("flow", "discharge_pressure", "power", "bearing.temperature")
ATTRS = {"manufacturer": "KSB", "model": "Etanorm", "serial": "X-1", "rated_flow": 100.0,
         "rated_head": 40.0}
LEARNED = (T0, T0 + 400 * PERIOD)


@dataclass
class Model:
    """Shaped like the alert service's per-twin model."""

    detector: Any
    threshold: Any
    channels: tuple[str, ...]
    period_ns: int | None
    cursor_ns: int | None = None


class Alerts:
    """The three things the watch asks of the alert side, over a dict."""

    def __init__(self, gate: OperatingGate | None) -> None:
        self.models: dict[str, Model] = {}
        self.adopted: list[Model] = []
        self.gate = gate

    def model(self, twin_id: str) -> Model | None:
        return self.models.get(twin_id)

    def adopt(self, twin_id: str, model: Model) -> None:
        self.models[twin_id] = model
        self.adopted.append(model)

    def spec(self, type_id: str) -> Any:
        return SimpleNamespace(gate=self.gate)


def pump(n: int, seed: int, start_ns: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    load = rng.normal(0, 1, n)
    x = np.column_stack([50 + 5 * load + rng.normal(0, 1.5, n), 2.3 - 0.2 * load + rng.normal(0, 0.06, n),
                         30 + 3 * load + rng.normal(0, 0.9, n), 45 + rng.normal(0, 0.5, n)])
    return start_ns + PERIOD * np.arange(n), x


class World:
    def __init__(self, *, live: bool = False) -> None:
        self.store = MemoryStore()
        clock, bus = ManualClock(T0), EventBus()
        self.registry = TypeRegistry.from_paths(load_plant(example_plant_path()).type_paths)
        self.twins = TwinService(self.store, self.registry, bus, clock)
        self.twins.create(CreateTwin(twin_id="pump-1", type_id="Pump", attributes=ATTRS), actor="t")
        self.artifacts = ArtifactService(self.store, clock)
        self.retrain = RetrainService(self.store, self.twins, bus, clock, self.artifacts)
        self.alerts = Alerts(OperatingGate("speed", 100.0, 300.0))
        self.watch = DriftWatch(self.retrain, self.alerts, self.store, self.twins, live=live,
                                every_s=600, recent_s=12 * 3600)

    def record(self, ts: np.ndarray, x: np.ndarray, speed: np.ndarray) -> None:
        batches = [ReadingBatch.from_arrays("pump-1", c, ts, x[:, j]) for j, c in enumerate(CHANNELS)]
        batches.append(ReadingBatch.from_arrays("pump-1", "speed", ts, speed))
        self.store.append(ReadingBatch.concat(batches))

    def learn(self) -> Model:
        """What the alert monitor does: learn the first stretch and keep it as an artifact."""
        ts, x = pump(400, 0, T0)
        self.record(ts, x, np.full(400, 2150.0))
        frame = ChannelFrame.from_array(x, CHANNELS, ts, "pump-1")
        guarded = fit_model(build_detector("pca"), frame, {"quantile": 0.99})
        model = Model(guarded.detector, guarded.threshold, CHANNELS, PERIOD, cursor_ns=LEARNED[1] - PERIOD)
        self.alerts.models["pump-1"] = model
        self.artifacts.save("detector", "pump-1", model, {"window_ns": list(LEARNED)})
        return model

    def run(self) -> int:
        handed = self.watch.tick()
        assert self.retrain.wait_idle(120)
        return handed


def test_a_changed_operating_point_is_retrained_and_the_alerts_use_the_new_detector() -> None:
    world = World(live=True)
    old = world.learn()
    ts, x = pump(900, 2, LEARNED[1])
    x[100:] += [15.0, -0.6, 9.0, 0.0]  # the station settled at a new operating point
    world.record(ts, x, np.full(900, 2400.0))
    old.cursor_ns = int(ts[-1])  # the alerts have evaluated all of it
    assert world.run() == 1
    assert len(world.alerts.adopted) == 1
    new = world.alerts.models["pump-1"]
    assert new is not old and new.detector is not old.detector and new.cursor_ns == int(ts[-1])
    assert [a.version for a in world.store.artifacts("detector", "pump-1")] == [1, 2]
    assert [r.event.kind for r in world.store.events(kinds=["ModelRetrained"])] == ["ModelRetrained"]
    assert world.run() == 0  # not due again until another `every_s` of evaluated plant time


def test_a_pump_that_stops_is_not_a_changed_process() -> None:
    world = World(live=True)
    old = world.learn()
    ts, x = pump(900, 3, LEARNED[1])
    speed = np.full(900, 2150.0)
    x[500:], speed[500:] = [0.0, 0.4, 0.0, 25.0], 0.0  # stopped (standby) since row 500, and settled
    world.record(ts, x, speed)
    old.cursor_ns = int(ts[-1])
    world.run()
    assert world.alerts.adopted == [] and [a.version for a in world.store.artifacts()] == [1]
    assert world.store.events(kinds=["ModelRetrained", "RetrainRejected"]) == []


@pytest.mark.parametrize("declared", [False, True], ids=["default", "declared-live"])
def test_the_watch_is_off_unless_a_type_or_the_runtime_asks(declared: bool) -> None:
    world = World(live=False)
    if declared:
        world.registry.declare_analytics("Pump", Analytics(alerts={"retrain": {"live": True}}))
    old = world.learn()
    ts, x = pump(900, 2, LEARNED[1])
    x[100:] += [15.0, -0.6, 9.0, 0.0]
    world.record(ts, x, np.full(900, 2400.0))
    old.cursor_ns = int(ts[-1])
    assert world.run() == (1 if declared else 0)
    assert len(world.alerts.adopted) == (1 if declared else 0)
