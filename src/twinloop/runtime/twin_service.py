"""The twin registry service: create, change, delete and query twins and relationships.

One service used by the API and the CLI alike. Every change is validated against the twin's
asset type, written to the store with an optimistic revision check, mirrored into the in-memory
`TwinGraph`, recorded as a typed event and in the audit trail, then published on the bus.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from twinloop.core.clock import Clock
from twinloop.core.commands import (
    AddRelationship,
    CreateTwin,
    DeleteTwin,
    InvokeCommand,
    RemoveRelationship,
    UpdateTwin,
)
from twinloop.core.errors import NotFoundError, RevisionConflict, ValidationError
from twinloop.core.events import (
    CommandSent,
    Event,
    RelationshipAdded,
    RelationshipRemoved,
    TwinCreated,
    TwinDeleted,
    TwinUpdated,
)
from twinloop.core.ids import validate_id
from twinloop.runtime.bus import EventBus
from twinloop.store.protocol import AuditRecord, Store
from twinloop.twins.graph import TwinGraph
from twinloop.twins.registry import TypeRegistry
from twinloop.twins.twin import Relationship, Twin

SECTIONS = ("attributes", "reported", "desired")


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396-style merge: ``None`` removes a key, dicts merge recursively.

    >>> merge_patch({"a": 1, "b": {"c": 2}}, {"a": None, "b": {"d": 3}})
    {'b': {'c': 2, 'd': 3}}
    """
    out = dict(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


class TwinService:
    """Validated, audited, event-producing changes to the twin graph."""

    def __init__(
        self, store: Store, registry: TypeRegistry, bus: EventBus, clock: Clock
    ) -> None:
        self._store = store
        self._registry = registry
        self._bus = bus
        self._clock = clock
        self._lock = threading.RLock()
        self._graph = TwinGraph(store.list_twins(), store.list_relationships())

    @property
    def registry(self) -> TypeRegistry:
        return self._registry

    @property
    def graph(self) -> TwinGraph:
        """The live graph; treat it as read-only, change it through this service."""
        return self._graph

    # --- queries --------------------------------------------------------------------------
    def get(self, twin_id: str, revision: int | None = None) -> Twin:
        if revision is not None:
            return self._store.get_twin(twin_id, revision)
        try:
            return self._graph.get(twin_id)
        except (KeyError, NotFoundError) as err:
            raise NotFoundError(f"no twin {twin_id!r}", hint="list twins with GET /twins") from err

    def revisions(self, twin_id: str) -> list[int]:
        revs = self._store.twin_revisions(twin_id)
        if not revs:
            raise NotFoundError(f"no twin {twin_id!r}")
        return revs

    def subtypes(self, type_id: str) -> set[str]:
        """``type_id`` and every type that extends it, directly or not."""
        self._registry.get(type_id)
        found = {type_id}
        changed = True
        while changed:
            changed = False
            for t in self._registry:
                if t.id not in found and any(e in found for e in t.extends):
                    found.add(t.id)
                    changed = True
        return found

    def list(
        self,
        type_id: str | None = None,
        where: dict[str, Any] | None = None,
        include_subtypes: bool = True,
    ) -> list[Twin]:
        """Twins of a type (and its subtypes) whose attributes match ``where``, ordered by id."""
        if type_id is not None and include_subtypes and type_id in self._registry:
            types: Iterable[str] | None = self.subtypes(type_id)
            twins = self._graph.by_type(type_id, types=types)
            if where:
                keep = {t.id for t in self._graph.filter(where=where)}
                twins = [t for t in twins if t.id in keep]
        else:
            twins = self._graph.filter(type_id=type_id, where=where)
        return sorted(twins, key=lambda t: t.id)

    # --- commands -------------------------------------------------------------------------
    def create(self, cmd: CreateTwin, *, actor: str) -> Twin:
        validate_id(cmd.twin_id, what="twin id")
        asset_type = self._registry.resolve(cmd.type_id)
        now = self._clock.now_ns()
        twin = Twin(
            id=cmd.twin_id,
            type_id=cmd.type_id,
            attributes=asset_type.validate_attributes(dict(cmd.attributes)),
            reported=asset_type.validate_reported(dict(cmd.reported)),
            desired=asset_type.validate_desired(dict(cmd.desired)),
            revision=1,
            created_ns=now,
            updated_ns=now,
        )
        with self._lock:
            self._store.put_twin(twin, expected_revision=0)
            self._graph.add_twin(twin)
        self._record(actor, "twin.create", twin.id,
                     [TwinCreated(twin_id=twin.id, revision=1, ts_ns=now, type_id=twin.type_id)])
        return twin

    def update(self, cmd: UpdateTwin, *, actor: str) -> Twin:
        with self._lock:
            current = self.get(cmd.twin_id)
            if cmd.expected_revision is not None and cmd.expected_revision != current.revision:
                raise RevisionConflict(cmd.twin_id, cmd.expected_revision, current.revision)
            asset_type = self._registry.resolve(current.type_id)
            changes: dict[str, list[str]] = {}
            new: dict[str, dict[str, Any]] = {}
            validators = {
                "attributes": asset_type.validate_attributes,
                "reported": asset_type.validate_reported,
                "desired": asset_type.validate_desired,
            }
            for section in SECTIONS:
                patch = getattr(cmd, section)
                old = getattr(current, section)
                if patch is None:
                    new[section] = old
                    continue
                merged = validators[section](merge_patch(old, patch))
                new[section] = merged
                changed = sorted(k for k in set(old) | set(merged) if old.get(k) != merged.get(k))
                if changed:
                    changes[section] = changed
            if not changes:
                return current
            now = self._clock.now_ns()
            twin = current.evolve(revision=current.revision + 1, updated_ns=now, **new)
            self._store.put_twin(twin, expected_revision=current.revision)
            self._graph.add_twin(twin)
        self._record(actor, "twin.update", twin.id, [
            TwinUpdated(twin_id=twin.id, revision=twin.revision, ts_ns=now, changes=changes)
        ])
        return twin

    def delete(self, cmd: DeleteTwin, *, actor: str) -> None:
        with self._lock:
            current = self.get(cmd.twin_id)
            if cmd.expected_revision is not None and cmd.expected_revision != current.revision:
                raise RevisionConflict(cmd.twin_id, cmd.expected_revision, current.revision)
            self._store.delete_twin(cmd.twin_id)
            self._graph.remove_twin(cmd.twin_id)
        self._record(actor, "twin.delete", cmd.twin_id, [
            TwinDeleted(twin_id=cmd.twin_id, revision=current.revision,
                        ts_ns=self._clock.now_ns())
        ])

    def add_relationship(self, cmd: AddRelationship, *, actor: str) -> Relationship:
        rel = Relationship(cmd.twin_id, cmd.name, cmd.target, dict(cmd.properties))
        with self._lock:
            source = self.get(rel.source)
            target = self.get(rel.target)
            self._check_relationship(source, rel, target)
            self._store.put_relationship(rel)
            self._graph.add_relationship(rel)
        self._record(actor, "relationship.add", f"{rel.source}/{rel.name}/{rel.target}", [
            RelationshipAdded(twin_id=rel.source, revision=source.revision,
                              ts_ns=self._clock.now_ns(), kind_name=rel.name, target=rel.target)
        ])
        return rel

    def remove_relationship(self, cmd: RemoveRelationship, *, actor: str) -> None:
        with self._lock:
            source = self.get(cmd.twin_id)
            self._store.delete_relationship(cmd.twin_id, cmd.name, cmd.target)
            self._graph.remove_relationship(cmd.twin_id, cmd.name, cmd.target)
        self._record(actor, "relationship.remove", f"{cmd.twin_id}/{cmd.name}/{cmd.target}", [
            RelationshipRemoved(twin_id=cmd.twin_id, revision=source.revision,
                                ts_ns=self._clock.now_ns(), kind_name=cmd.name,
                                target=cmd.target)
        ])

    def invoke(self, cmd: InvokeCommand, *, actor: str) -> CommandSent:
        """Validate a device command against the asset type and record it as sent.

        Dispatch to the device goes through a connector `Sink`, wired in by the ingestion stage.
        """
        twin = self.get(cmd.twin_id)
        args = self._registry.resolve(twin.type_id).validate_command(cmd.name, dict(cmd.args))
        event = CommandSent(twin_id=twin.id, revision=twin.revision, ts_ns=self._clock.now_ns(),
                            name=cmd.name, args=args, command_id=cmd.command_id)
        self._record(actor, "twin.command", twin.id, [event])
        return event

    # --- internals ------------------------------------------------------------------------
    def _check_relationship(self, source: Twin, rel: Relationship, target: Twin) -> None:
        declared = {r.name: r for r in self._registry.resolve(source.type_id).relationships}
        spec = declared.get(rel.name)
        if spec is None:
            raise ValidationError(
                f"asset type {source.type_id!r} declares no relationship {rel.name!r}",
                hint=f"declared: {', '.join(sorted(declared)) or 'none'}",
            )
        if spec.target and spec.target not in self._ancestors(target.type_id):
            raise ValidationError(
                f"{rel.name!r} from {source.type_id} must point at a {spec.target}, "
                f"not at {target.id!r} ({target.type_id})"
            )
        limit = getattr(spec, "max_multiplicity", None)
        if limit:
            existing = [r for r in self._graph.relationships(source=source.id, name=rel.name)
                        if r.target != rel.target]
            if len(existing) >= limit:
                raise ValidationError(
                    f"{source.id!r} already has {len(existing)} {rel.name!r} relationship(s); "
                    f"its type allows at most {limit}"
                )

    def _ancestors(self, type_id: str) -> set[str]:
        return {t for t in self._registry.lineage(type_id) if t in self._registry}

    def _record(self, actor: str, action: str, target: str, events: list[Event]) -> None:
        self._store.append_events(events)
        self._store.append_audit(AuditRecord(
            ts_ns=self._clock.now_ns(), actor=actor, action=action, target=target,
            detail={"events": [e.kind for e in events]},
        ))
        self._bus.publish(events)


__all__ = ["TwinService", "merge_patch"]
