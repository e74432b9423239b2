"""The edge protocols of the pipeline: where bytes come in (`Source`) and commands go out (`Sink`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class RawMessage:
    """Bytes as received from a connection, before any decoding."""

    source: str
    topic: str
    payload: bytes
    received_ns: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceCommand:
    """A command addressed to a device, as a sink sends it."""

    command_id: str
    twin_id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Ack:
    """A device's answer to a command."""

    command_id: str
    ok: bool
    message: str = ""


@runtime_checkable
class Source(Protocol):
    """A connector end that brings raw messages in; ``ack`` only after they are durably stored."""

    def stream(self) -> AsyncIterator[RawMessage]: ...

    async def ack(self, message: RawMessage) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """A connector end that sends commands to devices."""

    async def send(self, command: DeviceCommand) -> Ack: ...


__all__ = ["Ack", "DeviceCommand", "RawMessage", "Sink", "Source"]
