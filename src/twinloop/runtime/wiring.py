"""The composition root: opens the store, loads asset types and the plant, builds the services.

Everything the faces (API, CLI) need hangs off one `Runtime`; nothing else constructs services.
``Runtime.open`` is synchronous and touches no network; ``await runtime.start()`` brings up
ingestion (the embedded broker when no ``mqtt_url`` is set, one supervised source per connection, the
pipeline, the command sink) in the running event loop, and ``await runtime.stop()`` takes it down
in the order that loses nothing: stop reading, commit and acknowledge what is queued, disconnect.

Run it without the API (tests, workers) with ``python -m twinloop.runtime.wiring``: settings come from
``TWINLOOP_*`` variables, SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinloop.core.clock import Clock, SystemClock
from twinloop.core.commands import AddRelationship, CreateTwin
from twinloop.core.errors import ConfigError
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.access import KeyService
from twinloop.runtime.artifacts import ArtifactService
from twinloop.runtime.bus import EventBus
from twinloop.runtime.connections import CommandDispatcher, ConnectionTable
from twinloop.runtime.ingest_service import IngestService
from twinloop.runtime.settings import Settings, load_settings
from twinloop.runtime.state_service import StateService
from twinloop.runtime.twin_service import TwinService
from twinloop.store.factory import open_store
from twinloop.store.protocol import Store
from twinloop.twins.plant import Plant, load_plant
from twinloop.twins.registry import TypeRegistry

if TYPE_CHECKING:  # imported where used: a CLI command that only reads twins never loads them
    from twinloop.runtime.alert_monitor import AlertMonitor
    from twinloop.runtime.alert_service import AlertService
    from twinloop.runtime.drift_watch import DriftWatch
    from twinloop.runtime.estimation_service import EstimationService
    from twinloop.runtime.ingestion import Ingestion
    from twinloop.runtime.retrain_service import RetrainService
    from twinloop.runtime.rul_service import RulService

SEED_ACTOR = "system:seed"
_log = logging.getLogger(__name__)


def example_plant_path(name: str = "pump-station") -> Path:
    """The plant file of a shipped example: ``twinloop/examples/<name>/plant.yaml``, package data
    (so ``twinloop demo`` works from a plain ``pip install``; ``examples/`` at the top of a source
    checkout links there)."""
    here = Path(__file__).resolve()
    for root in here.parents:
        candidate = root / "examples" / name / "plant.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"example plant {name!r} not found",
        hint="shipped examples: pump-station, building; or pass --plant PATH",
    )


@dataclass
class Runtime:
    """A running twinloop: store, asset types, twin graph, services, bus."""

    settings: Settings
    store: Store
    registry: TypeRegistry
    bus: EventBus
    clock: Clock
    twins: TwinService
    state: StateService
    keys: KeyService
    ingest: IngestService
    artifacts: ArtifactService
    estimation: EstimationService | None = None
    plant: Plant | None = None
    rul: RulService | None = None
    alerts: AlertService | None = None
    retrain: RetrainService | None = None
    bootstrap_token: str | None = field(default=None, repr=False)
    connections: ConnectionTable = field(default_factory=lambda: ConnectionTable(SystemClock()))
    ingestion: Ingestion | None = field(default=None, repr=False)
    _dispatcher: CommandDispatcher | None = field(default=None, repr=False)
    _failing: set[str] = field(default_factory=set, repr=False)
    monitor: AlertMonitor | None = field(default=None, repr=False)
    drift_watch: DriftWatch | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None, bootstrap: bool = False,
             analytics: bool = True) -> Runtime:
        """Wire everything up; on a new store, seed the plant's twins.

        ``bootstrap``: on a store without keys, mint the first admin key (`bootstrap_token`); only
        the commands that hand a new store to a person (``init``, ``serve``, ``demo``) ask for it.
        ``analytics=False`` leaves out estimation, alerts and RUL (and never imports them), for
        commands that only read twins, keys or the quarantine.
        """
        clock = clock or SystemClock()
        url = settings.resolved_store_url
        if url.startswith("duckdb:///") and settings.store_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        plant = load_plant(settings.plant) if settings.plant else None
        type_paths = [*settings.types, *(plant.type_paths if plant else [])]
        registry = TypeRegistry.from_paths(type_paths)
        registry.check()
        for type_id, declared in (plant.analytics if plant else {}).items():
            registry.declare_analytics(type_id, declared)
        store = open_store(url)
        try:
            bus = EventBus()
            twins = TwinService(store, registry, bus, clock)
            runtime = cls(
                settings=settings, store=store, registry=registry, bus=bus, clock=clock,
                twins=twins, state=StateService(store, twins, bus, clock),
                keys=KeyService(store, clock), plant=plant, connections=ConnectionTable(clock),
                ingest=IngestService(store, twins, bus, clock, mapping_path=settings.resolved_mapping),
                artifacts=ArtifactService(store, clock),
            )
            if analytics:
                from twinloop.analytics.operating import parse_gates
                from twinloop.runtime.alert_service import AlertService
                from twinloop.runtime.estimation_service import EstimationService
                from twinloop.runtime.retrain_service import RetrainService
                from twinloop.runtime.rul_service import RulService

                runtime.estimation = EstimationService(store, twins, artifacts=runtime.artifacts)
                runtime.alerts = AlertService(store, twins, bus, clock,
                                              gates=parse_gates(settings.alerts_operating))
                runtime.rul = RulService(store, twins, bus, clock, artifacts=runtime.artifacts,
                                         health=runtime.estimation.health)
                runtime.rul.attach()
                runtime.retrain = RetrainService(store, twins, bus, clock, runtime.artifacts)
            if plant is not None and not store.get_meta("seeded"):
                runtime.seed(plant)
            if bootstrap:
                runtime.bootstrap_token = runtime.keys.bootstrap()
        except BaseException:
            store.close()
            raise
        return runtime

    def seed(self, plant: Plant) -> None:
        """Create the plant's twins and relationships (once per store)."""
        for twin in plant.twins:
            if twin.id not in self.twins.graph:
                self.twins.create(
                    CreateTwin(twin_id=twin.id, type_id=twin.type_id, attributes=twin.attributes,
                               reported=twin.reported, desired=twin.desired),
                    actor=SEED_ACTOR,
                )
        for rel in plant.relationships:
            self.twins.add_relationship(
                AddRelationship(twin_id=rel.source, name=rel.name, target=rel.target,
                                properties=rel.properties),
                actor=SEED_ACTOR,
            )
        self.store.set_meta("seeded", plant.name)

    # --- ingestion ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start ingestion and command dispatch in the running loop (no-op when ``ingest`` is off)."""
        if not self.settings.ingest or self.ingestion is not None:
            return
        from twinloop.runtime.alert_monitor import AlertMonitor
        from twinloop.runtime.ingestion import Ingestion

        if self.rul is not None:
            self.rul.run_in_background()
        ingestion = Ingestion(self.settings, self.store, self.registry, self.twins.graph, self.bus,
                              self.clock, self.connections, self.plant)
        await ingestion.start()
        self.ingestion = ingestion
        if ingestion.pipeline is not None:
            ingestion.pipeline.on_commit(self._after_commit)
            if self.alerts is not None and self.settings.alerts_types != []:
                s = self.settings  # types, learning period and grid: as declared, unless set here
                self.monitor = AlertMonitor(self.alerts, self.store, self.twins, s.alerts_types,
                                            s.alerts_learn_s, s.alerts_period_s, s.alerts_interval_s,
                                            artifacts=self.artifacts)
                self.monitor.start()
                if self.retrain is not None:  # drift -> guarded retraining, for types that ask
                    from twinloop.runtime.drift_watch import DriftWatch

                    self.drift_watch = DriftWatch(self.retrain, self.alerts, self.store, self.twins)
                    self.drift_watch.start()
        if ingestion.sink is not None:
            self._dispatcher = CommandDispatcher(ingestion.sink, self.store, self.bus, self.twins.graph,
                                                 self.clock, asyncio.get_running_loop())

    def analytics_lag(self) -> dict[str, float | None]:
        """How far each live analytics stage is behind ingestion, in plant seconds (None: the stage
        is off or has nothing to judge yet). A slow machine makes these grow; the stages work the
        backlog off instead of skipping it, so the twin is late, never silently wrong."""
        return {
            "estimation": self.estimation.lag_s() if self.estimation is not None else None,
            "alerts": self.monitor.lag_s() if self.monitor is not None else None,
            "rul": self.rul.lag_s() if self.rul is not None else None,
        }

    def _after_commit(self, batch: ReadingBatch, committed_ns: int) -> None:
        """Hand committed readings to the live analytics' workers; the event loop never waits on
        them (estimation runs on its own thread, merges a backlog and logs its own failures)."""
        if self.estimation is not None:
            self.estimation.submit(batch)

    async def stop(self) -> None:
        """Stop reading, commit and acknowledge what is queued, then disconnect; idempotent."""
        monitor, self.monitor = self.monitor, None
        if monitor is not None:
            await monitor.stop()
        watch, self.drift_watch = self.drift_watch, None
        if watch is not None:
            await watch.stop()
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            await dispatcher.close()
        ingestion, self.ingestion = self.ingestion, None
        if ingestion is not None:
            await ingestion.stop()
        if self.estimation is not None:  # finish what was handed to the worker
            await asyncio.to_thread(self.estimation.stop)
        if self.rul is not None:
            await asyncio.to_thread(self.rul.stop_background)

    def close(self) -> None:
        if self.retrain is not None:  # a retrain under way finishes before the store goes
            self.retrain.close()
        self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def run_headless(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Open, start and run a runtime without the API until ``stop`` is set or SIGTERM/SIGINT."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with Runtime.open(settings) as runtime:
        await runtime.start()
        ingestion = runtime.ingestion
        if ingestion is not None and await ingestion.wait_connected():
            _log.info("runtime ready: ingesting from %s", ", ".join(s.name for s in ingestion.supervisors))
        try:
            await stop.wait()
        finally:
            await runtime.stop()


def main(argv: list[str] | None = None, **overrides: Any) -> None:
    """Entry point of ``python -m twinloop.runtime.wiring`` (settings from the environment)."""
    settings = load_settings(**overrides)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_headless(settings))


__all__ = ["Runtime", "example_plant_path", "main", "run_headless"]

if __name__ == "__main__":
    main()
