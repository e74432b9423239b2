"""Ingestion as the runtime runs it: the broker (embedded unless configured), one supervised source
per connection, the pipeline, and the command sink.

Without a mapping file nothing is ingested (a warning says so); commands still go out when there is a
plant. `build_normalizer` resumes the dedupe state persisted in the store, so redeliveries after a
restart are recognised.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from twinloop.connectors.broker import EmbeddedBroker
from twinloop.connectors.mqtt import MqttClient
from twinloop.connectors.mqtt_sink import MqttSink
from twinloop.connectors.mqtt_source import MqttSource
from twinloop.connectors.opcua_source import OpcUaSource
from twinloop.connectors.urls import ConnectorError, port_open
from twinloop.core.clock import Clock
from twinloop.runtime.bus import EventBus
from twinloop.runtime.connections import ConnectionTable, ManagedSource
from twinloop.runtime.pipeline import NormalizerLike, Pipeline
from twinloop.runtime.settings import Settings
from twinloop.runtime.supervisor import Supervisor
from twinloop.store.protocol import Store
from twinloop.twins.graph import TwinGraph
from twinloop.twins.plant import Plant
from twinloop.twins.registry import TypeRegistry

_log = logging.getLogger(__name__)


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
        self._negotiated: str | None = None

    async def start(self) -> None:
        s = self.settings
        if s.mqtt_enabled:
            self.mqtt_url = s.mqtt_url or await asyncio.to_thread(self._start_broker)
            await self._negotiate_protocol()
        mapping = s.resolved_mapping
        self._mapping = None
        if mapping is None:
            _log.warning("ingestion is off: no mapping file (set TWINLOOP_MAPPING, or put mapping.yaml "
                         "beside the plant file)")
        else:
            normalizer = build_normalizer(mapping, self._registry, self._graph, self._store, self._clock,
                                          s.ingest_max_future_s)
            self._mapping = getattr(normalizer, "mapping", None)
            self.pipeline = Pipeline(
                self._store, normalizer,
                self._bus, self._clock, graph=self._graph, connections=self._connections,
                max_batch=s.ingest_batch_size, max_delay_s=s.ingest_batch_ms / 1000, queue_size=max(
                    s.ingest_queue, s.ingest_batch_size), events_interval_s=s.events_interval_s,
            )
            self.pipeline.start()
            if self.mqtt_url is not None:
                self._supervise("mqtt", "mqtt", self.mqtt_url, self._mqtt_source)
            for endpoint in s.opcua_endpoints:
                self._supervise(f"opcua:{endpoint}", "opcua", endpoint,
                                lambda e=endpoint: self._opcua_source(e))  # type: ignore[misc]
        if self._plant is not None and self.mqtt_url is not None:
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
            st = self.pipeline.stats
            _log.info("ingestion stopped: %d messages, %d readings stored, %d rejected, %d duplicates",
                      st.messages, st.readings, st.rejected, st.duplicates)
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
        s = self.settings
        return s.mqtt_protocol or self._negotiated or ("3.1.1" if self.broker is not None else "5")

    async def _negotiate_protocol(self) -> None:
        """An external broker and no ``mqtt_protocol``: MQTT 5 where the broker speaks it, else 3.1.1
        (``twinloop simulate --embedded-broker`` runs amqtt, which speaks only 3.1.1)."""
        if self.settings.mqtt_protocol or self.broker is not None or self.mqtt_url is None:
            return
        probe = MqttClient(self.mqtt_url, protocol="5", **self._mqtt_auth())
        try:
            await probe.connect(timeout=5)
        except ConnectorError as err:  # unreachable: the supervisor says so, and retries
            if "protocol version" in str(err).lower():
                self._negotiated = "3.1.1"
                _log.info("the broker at %s speaks MQTT 3.1.1, not 5: using 3.1.1", self.mqtt_url)
            return
        await probe.disconnect()

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
        if self._mapping is not None and self._mapping.mqtt_filters():
            return list(self._mapping.mqtt_filters())
        plant = self._plant.name if self._plant is not None else "+"
        return [f"twinloop/{plant}/+/telemetry"]

    def _mqtt_source(self) -> ManagedSource:
        s = self.settings
        assert self.mqtt_url is not None
        return MqttSource(self.mqtt_url, self._topics(), name="mqtt", client_id=s.mqtt_client_id,
                          qos=s.mqtt_qos, protocol=self._protocol(), **self._mqtt_auth())

    def _opcua_source(self, endpoint: str) -> ManagedSource:
        channels = {twin.id: [name for name, _ in self._registry.component_channels(twin.type_id)]
                    for twin in self._graph.twins()}
        nodes = self._mapping.opcua_nodes(channels) if self._mapping is not None else []
        paths = nodes or [f"{twin}.{name}" for twin, names in channels.items() for name in names]
        s = self.settings
        return OpcUaSource(endpoint, paths, name=f"opcua:{endpoint}", namespace=s.opcua_namespace,
                           queuesize=s.opcua_queuesize, deadband=s.opcua_deadband, strict=False)


def build_normalizer(mapping_path: Path, registry: TypeRegistry, graph: TwinGraph, store: Store,
                     clock: Clock, max_future_s: float = 300.0) -> NormalizerLike:
    """The ingest normalizer for a mapping file, resuming the dedupe state persisted in ``store``."""
    from twinloop.ingest.mapping import load_mapping
    from twinloop.ingest.normalizer import NormalizePolicy, Normalizer

    policy = NormalizePolicy(max_future_ns=int(max_future_s * 1e9))
    normalizer = Normalizer(load_mapping(mapping_path), registry,
                            {t.id: t.type_id for t in graph.twins()}, clock, policy)
    normalizer.load_seen(store.seen_keys())
    return normalizer


__all__ = ["Ingestion", "build_normalizer"]
