"""The registry of asset types: lookup by id, inheritance flattened, references checked.

Types may ``extend`` others and hold components of other types; the registry is where those
references are resolved, so everything above it sees one flat type per id.

>>> reg = TypeRegistry([
...     AssetType(id="Rotating", channels=[{"name": "speed", "unit": "rpm"}]),
...     AssetType(id="Bearing", channels=[{"name": "temperature", "unit": "degC"}]),
...     AssetType(id="Pump", extends=["Rotating"], components={"bearing": "Bearing"}),
... ])
>>> reg.check()
>>> [name for name, _ in reg.component_channels("Pump")]
['speed', 'bearing.temperature']
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from twinloop.core.errors import ConflictError, DeclarationError, NotFoundError
from twinloop.twins.asset_type import Analytics, AssetType, Channel
from twinloop.twins.loader import load_asset_types

_WORD = {"channels": "channel", "attributes": "attribute", "properties": "property",
         "commands": "command", "relationships": "relationship", "components": "component"}
_MERGED = ("channels", "attributes", "properties", "commands", "relationships")


class TypeRegistry:
    """Asset types by id, with inheritance and components resolved on demand (and cached)."""

    def __init__(self, types: Iterable[AssetType] = ()) -> None:
        self._types: dict[str, AssetType] = {}
        self._resolved: dict[str, AssetType] = {}
        self._analytics_over: dict[str, Analytics] = {}
        for t in types:
            self.add(t)

    @classmethod
    def from_paths(
        cls, paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]
    ) -> TypeRegistry:
        """A checked registry of every type in the given YAML files and directories."""
        reg = cls(load_asset_types(paths))
        reg.check()
        return reg

    def add(self, asset_type: AssetType) -> None:
        """Register a type; an id that is taken by a different declaration is a conflict."""
        known = self._types.get(asset_type.id)
        if known is not None and known != asset_type:
            raise ConflictError(
                f"asset type {asset_type.id!r} is already registered with another declaration",
                hint="give the new type another id, or remove the old one first",
            )
        self._types[asset_type.id] = asset_type
        self._resolved.clear()

    def get(self, type_id: str) -> AssetType:
        """The type as declared (``extends`` not flattened); see `resolve`."""
        try:
            return self._types[type_id]
        except (KeyError, TypeError):
            raise NotFoundError(
                f"unknown asset type {type_id!r}",
                hint="known types: " + (", ".join(self.ids()) or "none"),
            ) from None

    def __contains__(self, type_id: object) -> bool:
        return type_id in self._types

    def __iter__(self) -> Iterator[AssetType]:
        return iter(self._types.values())

    def __len__(self) -> int:
        return len(self._types)

    def ids(self) -> list[str]:
        """Registered type ids, sorted."""
        return sorted(self._types)

    def lineage(self, type_id: str) -> list[str]:
        """``type_id`` and the registered types it extends, nearest first, each once; settings keyed by
        type (estimators, operating gates) take the first entry they have."""
        out: list[str] = []
        todo = [type_id]
        while todo:
            t = todo.pop(0)
            if t in out:
                continue
            out.append(t)
            if t in self._types:
                todo.extend(self._types[t].extends)
        return out

    def declare_analytics(self, type_id: str, analytics: Analytics) -> None:
        """Put a plant file's analytics declaration for ``type_id`` over the type file's own."""
        self.get(type_id)
        known = self._analytics_over.get(type_id, Analytics())
        self._analytics_over[type_id] = known.merged(analytics)

    def analytics(self, type_id: str, section: str) -> tuple[str, dict[str, Any]] | None:
        """The nearest declaration of one analytics section (``estimator``, ``alerts``,
        ``prognoser``) for ``type_id``: ``(declaring type, mapping)``, or None when no type in its
        lineage declares it or the nearest declaration says ``enabled: false``.

        >>> reg = TypeRegistry([AssetType(id="Pump", analytics={"alerts": {"operating": "speed > 100"}}),
        ...                     AssetType(id="BigPump", extends=["Pump"])])
        >>> reg.analytics("BigPump", "alerts")
        ('Pump', {'operating': 'speed > 100'})
        >>> reg.analytics("BigPump", "prognoser") is None
        True
        """
        for t in self.lineage(type_id):
            if t not in self._types:
                continue
            declared = self._types[t].analytics.merged(self._analytics_over.get(t, Analytics()))
            found = declared.section(section)
            if found is not None:
                return None if found.get("enabled", True) is False else (t, dict(found))
        return None

    def resolve(self, type_id: str) -> AssetType:
        """The type with everything it extends merged in, parents first; ``extends`` is emptied.

        A member declared both in a type and in one of its ancestors with different definitions
        is an error (DTDL forbids redefinition too); identical ones (diamonds) merge.
        """
        if type_id not in self._resolved:
            self._resolved[type_id] = self._flatten(type_id, ())
        return self._resolved[type_id]

    def _flatten(self, type_id: str, chain: tuple[str, ...]) -> AssetType:
        if type_id in chain:
            cycle = " -> ".join((*chain[chain.index(type_id):], type_id))
            raise DeclarationError(f"asset type inherits from itself: {cycle}",
                                   path=f"{chain[-1]}.extends")
        own = self.get(type_id)
        if not own.extends:
            return own
        merged: dict[str, dict[str, Any]] = {key: {} for key in (*_MERGED, "components")}
        for parent_id in own.extends:
            if parent_id not in self._types:
                raise DeclarationError(f"extends unknown asset type {parent_id!r}",
                                       path=f"{type_id}.extends",
                                       hint="known types: " + ", ".join(self.ids()))
            parent = self._flatten(parent_id, (*chain, type_id))
            _merge(merged, parent, type_id)
        _merge(merged, own, type_id)
        fields = {key: tuple(merged[key].values()) for key in _MERGED}
        return own.model_copy(
            update={**fields, "components": merged["components"], "extends": ()}
        )

    def check(self) -> None:
        """Verify every ``extends``, component type and relationship target exists, and that
        inheritance has no cycles and no conflicting redefinitions."""
        for t in self._types.values():
            for i, parent in enumerate(t.extends):
                self._require(parent, t.id, f"extends[{i}]")
            for name, comp in t.components.items():
                self._require(comp, t.id, f"components.{name}")
            for i, rel in enumerate(t.relationships):
                if rel.target is not None:
                    self._require(rel.target, t.id, f"relationships[{i}].target")
        for type_id in self._types:
            self.resolve(type_id)
            self._component_types(type_id, ())

    def _require(self, type_id: str, owner: str, path: str) -> None:
        if type_id not in self._types:
            raise DeclarationError(
                f"refers to unknown asset type {type_id!r}", path=f"{owner}.{path}",
                hint="known types: " + ", ".join(self.ids()),
            )

    def _component_types(self, type_id: str, chain: tuple[str, ...]) -> list[tuple[str, str]]:
        if type_id in chain:
            cycle = " -> ".join((*chain, type_id))
            raise DeclarationError(f"asset type contains itself through components: {cycle}",
                                   path=f"{chain[0]}.components")
        out: list[tuple[str, str]] = []
        for name, comp in self.resolve(type_id).components.items():
            out.append((name, comp))
            out.extend((f"{name}.{sub}", t) for sub, t in
                       self._component_types(comp, (*chain, type_id)))
        return out

    def component_channels(self, type_id: str) -> list[tuple[str, Channel]]:
        """Every channel a twin of this type reports: its own, then ``component.channel`` ones."""
        out = [(c.name, c) for c in self.resolve(type_id).channels]
        for prefix, comp in self._component_types(type_id, ()):
            out.extend((f"{prefix}.{c.name}", c) for c in self.resolve(comp).channels)
        return out


def _merge(merged: dict[str, dict[str, Any]], t: AssetType, owner: str) -> None:
    for key in (*_MERGED, "components"):
        members = t.components.items() if key == "components" else (
            (m.name, m) for m in getattr(t, key)
        )
        for name, member in members:
            known = merged[key].get(name)
            if known is not None and known != member:
                how = "redefines an inherited" if t.id == owner else f"is inherited from {t.id!r} as"
                raise DeclarationError(
                    f"{_WORD[key]} {name!r} {how} {_WORD[key]} with another definition",
                    path=f"{owner}.{key}",
                    hint="rename it, or declare it once in the common parent type",
                )
            merged[key][name] = member


__all__ = ["TypeRegistry"]
