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
from typing import Any

from twinloop.connectors.broker import EmbeddedBroker
from twinloop.connectors.mqtt_sink import MqttSink
from twinloop.connectors.mqtt_source import MqttSource
from twinloop.connectors.opcua_source import OpcUaSource
from twinloop.connectors.urls import port_open
from twinloop.core.clock import Clock, SystemClock
from twinloop.core.commands import AddRelationship, CreateTwin
from twinloop.core.errors import ConfigError
from twinloop.runtime.access import KeyService
from twinloop.runtime.bus import EventBus
from twinloop.runtime.connections import CommandDispatcher, ConnectionTable, ManagedSource
from twinloop.runtime.pipeline import NormalizerLike, Pipeline
from twinloop.runtime.settings import Settings, load_settings
from twinloop.runtime.state_service import StateService
from twinloop.runtime.supervisor import Supervisor
from twinloop.runtime.twin_service import TwinService
from twinloop.store.factory import open_store
from twinloop.store.protocol import Store
from twinloop.twins.graph import TwinGraph
from twinloop.twins.plant import Plant, load_plant
from twinloop.twins.registry import TypeRegistry

SEED_ACTOR = "system:seed"
_log = logging.getLogger(__name__)


def example_plant_path(name: str = "pump-station") -> Path:
    """The plant file of a shipped example (``examples/<name>/plant.yaml`` in the source tree)."""
    here = Path(__file__).resolve()
    for root in here.parents:
        candidate = root / "examples" / name / "plant.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"example plant {name!r} not found",
        hint="run from a twinloop source checkout, or pass --plant PATH",
    )


class Ingestion:
    """What ``Runtime.start`` brings up: broker (embedded unless ``mqtt_url``), supervisors, pipeline, sink.

    Without a mapping file nothing is ingested (a warning says so); commands still go out when there
    is a plant.
    """

    def __init__(self, settings: Settings, store: Store, registry: TypeRegistry, graph: TwinGraph,
                 bus: EventBus, clock: Clock, connections: ConnectionTable, plant: Plant | None) -> None:
        self.settings = settings
        self._store, self._registry, self._graph = store, registry, graph
        self._bus, self._clock, self._connections, self._plant = bus, clock, connections, plant
        self.broker: EmbeddedBroker | None = None
        self.mqtt_url: str | None = None
        self.pipeline: Pipeline | None = None
        self.supervisors: list[Supervisor] = []
        self.sink: MqttSink | None = None

    async def start(self) -> None:
        s = self.settings
        self.mqtt_url = s.mqtt_url or await asyncio.to_thread(self._start_broker)
        mapping = s.resolved_mapping
        if mapping is None:
            _log.warning("ingestion is off: no mapping file (set TWINLOOP_MAPPING, or put mapping.yaml "
                         "beside the plant file)")
        else:
            self.pipeline = Pipeline(
                self._store, build_normalizer(mapping, self._registry, self._graph, self._store, self._clock),
                self._bus, self._clock, graph=self._graph, connections=self._connections,
                max_batch=s.ingest_batch_size, max_delay_s=s.ingest_batch_ms / 1000, queue_size=max(
                    s.ingest_queue, s.ingest_batch_size), events_interval_s=s.events_interval_s,
            )
            self.pipeline.start()
            self._supervise("mqtt", "mqtt", self.mqtt_url, self._mqtt_source)
            for endpoint in s.opcua_endpoints:
                self._supervise(f"opcua:{endpoint}", "opcua", endpoint,
                                lambda e=endpoint: self._opcua_source(e))  # type: ignore[misc]
        if self._plant is not None:
            self.sink = MqttSink(self.mqtt_url, self._plant.name, timeout=s.command_timeout_s,
                                 protocol=self._protocol(), **self._mqtt_auth())
            await self.sink.start()

    async def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once every connection is up (False after ``timeout``): for tests and readiness checks."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(self._connections.get(sup.name).connected for sup in self.supervisors):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def stop(self) -> None:
        for sup in self.supervisors:
            await sup.stop_reading()
        if self.pipeline is not None:
            await self.pipeline.stop()  # commits and acks what was queued, over still-open connections
        for sup in self.supervisors:
            await sup.close()
        if self.sink is not None:
            await self.sink.stop()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)

    def _start_broker(self) -> str:
        port = self.settings.embedded_broker_port
        if port and port_open("127.0.0.1", port):
            port = 0
        self.broker = EmbeddedBroker(port=port).start()
        _log.info("embedded MQTT broker at %s", self.broker.url)
        return self.broker.url

    def _supervise(self, name: str, kind: str, url: str, factory: Any) -> None:
        assert self.pipeline is not None
        sup = Supervisor(name, factory, self._connections, self.pipeline.offer, kind=kind, url=url)
        self.pipeline.register_acker(name, sup.ack)
        self.supervisors.append(sup)
        sup.start()

    def _protocol(self) -> Any:
        return self.settings.mqtt_protocol or ("3.1.1" if self.broker is not None else "5")

    def _mqtt_auth(self) -> dict[str, Any]:
        s = self.settings
        return {
            "username": s.mqtt_username,
            "password": s.mqtt_password.get_secret_value() if s.mqtt_password else None,
            "ca_file": str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
            "cert_file": str(s.mqtt_cert_file) if s.mqtt_cert_file else None,
            "key_file": str(s.mqtt_key_file) if s.mqtt_key_file else None,
            "tls_insecure": s.mqtt_tls_insecure,
        }

    def _topics(self) -> list[str]:
        if self.settings.mqtt_topics:
            return list(self.settings.mqtt_topics)
        plant = self._plant.name if self._plant is not None else "+"
        return [f"twinloop/{plant}/+/telemetry"]

    def _mqtt_source(self) -> ManagedSource:
        s = self.settings
        assert self.mqtt_url is not None
        return MqttSource(self.mqtt_url, self._topics(), name="mqtt", client_id=s.mqtt_client_id,
                          qos=s.mqtt_qos, protocol=self._protocol(), **self._mqtt_auth())

    def _opcua_source(self, endpoint: str) -> ManagedSource:
        paths = [f"{twin.id}.{name}" for twin in self._graph.twins()
                 for name, _ in self._registry.component_channels(twin.type_id)]
        s = self.settings
        return OpcUaSource(endpoint, paths, name=f"opcua:{endpoint}", namespace=s.opcua_namespace,
                           queuesize=s.opcua_queuesize, deadband=s.opcua_deadband, strict=False)


def build_normalizer(mapping_path: Path, registry: TypeRegistry, graph: TwinGraph, store: Store,
                     clock: Clock) -> NormalizerLike:
    """The ingest normalizer for a mapping file, resuming the dedupe state persisted in ``store``."""
    raise NotImplementedError  # filled in against twinloop.ingest


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
    plant: Plant | None = None
    bootstrap_token: str | None = field(default=None, repr=False)
    connections: ConnectionTable = field(default_factory=lambda: ConnectionTable(SystemClock()))
    ingestion: Ingestion | None = field(default=None, repr=False)
    _dispatcher: CommandDispatcher | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        """Wire everything up; on a new store, seed the plant's twins and create the admin key."""
        clock = clock or SystemClock()
        url = settings.resolved_store_url
        if url.startswith("duckdb:///") and settings.store_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        plant = load_plant(settings.plant) if settings.plant else None
        type_paths = [*settings.types, *(plant.type_paths if plant else [])]
        registry = TypeRegistry.from_paths(type_paths)
        registry.check()
        store = open_store(url)
        try:
            bus = EventBus()
            twins = TwinService(store, registry, bus, clock)
            runtime = cls(
                settings=settings, store=store, registry=registry, bus=bus, clock=clock,
                twins=twins, state=StateService(store, twins, bus, clock),
                keys=KeyService(store, clock), plant=plant, connections=ConnectionTable(clock),
            )
            if plant is not None and not store.get_meta("seeded"):
                runtime.seed(plant)
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
        ingestion = Ingestion(self.settings, self.store, self.registry, self.twins.graph, self.bus,
                              self.clock, self.connections, self.plant)
        await ingestion.start()
        self.ingestion = ingestion
        if ingestion.sink is not None:
            self._dispatcher = CommandDispatcher(ingestion.sink, self.store, self.bus, self.twins.graph,
                                                 self.clock, asyncio.get_running_loop())

    async def stop(self) -> None:
        """Stop reading, commit and acknowledge what is queued, then disconnect; idempotent."""
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            await dispatcher.close()
        ingestion, self.ingestion = self.ingestion, None
        if ingestion is not None:
            await ingestion.stop()

    def close(self) -> None:
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
