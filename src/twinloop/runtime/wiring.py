"""The composition root: opens the store, loads asset types and the plant, builds the services.

Everything the faces (API, CLI) need hangs off one `Runtime`; nothing else constructs services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twinloop.core.clock import Clock, SystemClock
from twinloop.core.commands import AddRelationship, CreateTwin
from twinloop.core.errors import ConfigError
from twinloop.runtime.access import KeyService
from twinloop.runtime.bus import EventBus
from twinloop.runtime.settings import Settings
from twinloop.runtime.state_service import StateService
from twinloop.runtime.twin_service import TwinService
from twinloop.store.factory import open_store
from twinloop.store.protocol import Store
from twinloop.twins.plant import Plant, load_plant
from twinloop.twins.registry import TypeRegistry

SEED_ACTOR = "system:seed"


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
                keys=KeyService(store, clock), plant=plant,
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

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Runtime", "example_plant_path"]
