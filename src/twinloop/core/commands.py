"""Typed commands: imperative requests, each naming the revision it expects (optimistic checks).

``expected_revision=None`` means "whatever the current revision is"; a number means "only if the
twin is still at that revision", otherwise the handler raises `RevisionConflict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from twinloop.core.ids import new_id


@dataclass(frozen=True, kw_only=True)
class Command:
    """Base of all commands."""

    kind: ClassVar[str] = "Command"
    twin_id: str
    expected_revision: int | None = None
    command_id: str = field(default_factory=new_id)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__


@dataclass(frozen=True, kw_only=True)
class CreateTwin(Command):
    type_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, Any] = field(default_factory=dict)
    desired: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class UpdateTwin(Command):
    """Merge-patch: keys set to ``None`` are removed."""

    attributes: dict[str, Any] | None = None
    reported: dict[str, Any] | None = None
    desired: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class DeleteTwin(Command):
    pass


@dataclass(frozen=True, kw_only=True)
class AddRelationship(Command):
    """Add an edge ``twin_id --name--> target``."""

    name: str
    target: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RemoveRelationship(Command):
    name: str
    target: str


@dataclass(frozen=True, kw_only=True)
class InvokeCommand(Command):
    """Ask the asset to do something declared in its asset type (e.g. ``setSpeed``)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


__all__ = [
    "AddRelationship",
    "Command",
    "CreateTwin",
    "DeleteTwin",
    "InvokeCommand",
    "RemoveRelationship",
    "UpdateTwin",
]
