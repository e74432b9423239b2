"""The conformance battery every `Source` passes: it streams `RawMessage`s, acks idempotently, stops cleanly.

A source under test is described by a `SourceHarness`: ``prepare(n)`` returns a *started* source
that will deliver at least ``n`` messages (the harness makes its peer send them: a broker publish,
a file written beforehand, a fake's ``push``). ``tests/conformance/test_sources.py`` runs every
check over the fake, MQTT and file sources; a new connector adds one harness there.

Besides `core.protocols.Source` (``stream``, ``ack``), a managed source has ``name``, ``start`` and
``stop`` — what the runtime's supervisor needs to own its lifecycle.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from twinloop.core.protocols import RawMessage, Source


@dataclass(frozen=True)
class SourceHarness:
    """How the battery obtains a source: ``prepare(n)`` → a started source with ``n`` messages coming."""

    name: str
    prepare: Callable[[int], Awaitable[Any]]
    timeout_s: float = 10.0


class CheckFailed(AssertionError):
    """A source broke the contract; the message says which rule and how."""


async def _take(stream: AsyncIterator[RawMessage], n: int, timeout: float) -> list[RawMessage]:
    got: list[RawMessage] = []

    async def collect() -> None:
        async for message in stream:
            got.append(message)
            if len(got) >= n:
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise CheckFailed(f"stream delivered {len(got)} of {n} messages within {timeout:g} s") from None
    return got


async def check_stream_yields_raw_messages(h: SourceHarness) -> None:
    """Every item is a `RawMessage` named after the source, with bytes, a topic and a receive time."""
    source = await h.prepare(5)
    try:
        if not isinstance(source, Source):
            raise CheckFailed(f"{type(source).__name__} does not implement core.protocols.Source")
        for attr in ("name", "start", "stop"):
            if not hasattr(source, attr):
                raise CheckFailed(f"{type(source).__name__} has no {attr!r}; the supervisor needs it")
        for m in await _take(source.stream(), 5, h.timeout_s):
            if not isinstance(m, RawMessage):
                raise CheckFailed(f"stream yielded {type(m).__name__}, not RawMessage")
            if m.source != source.name:
                raise CheckFailed(f"message source {m.source!r} is not the source's name {source.name!r}")
            if not isinstance(m.payload, bytes) or not isinstance(m.topic, str) or not m.topic:
                raise CheckFailed(f"payload must be bytes and topic a non-empty str: {m!r}")
            if not isinstance(m.received_ns, int) or m.received_ns <= 0:
                raise CheckFailed(f"received_ns must be positive epoch ns, got {m.received_ns!r}")
    finally:
        await source.stop()


async def check_ack_is_idempotent(h: SourceHarness) -> None:
    """Acking a message twice, or after ``stop``, raises nothing."""
    source = await h.prepare(3)
    messages = await _take(source.stream(), 3, h.timeout_s)
    try:
        for m in messages:
            await source.ack(m)
            await source.ack(m)
    finally:
        await source.stop()
    await source.ack(messages[0])


async def check_stop_is_clean(h: SourceHarness) -> None:
    """After ``stop`` the stream ends on its own (no hang, no error), and ``stop`` may be called again."""
    source = await h.prepare(2)
    stream = source.stream()
    await _take(stream, 1, h.timeout_s)
    await source.stop()

    async def drain() -> None:
        async for _ in stream:
            pass

    try:
        await asyncio.wait_for(drain(), h.timeout_s)
    except TimeoutError:
        raise CheckFailed(f"stream did not end within {h.timeout_s:g} s of stop()") from None
    await source.stop()


CHECKS: tuple[Callable[[SourceHarness], Awaitable[None]], ...] = (
    check_stream_yields_raw_messages,
    check_ack_is_idempotent,
    check_stop_is_clean,
)
"""Every check, in the order the conformance test runs them."""


async def run_checks(h: SourceHarness) -> None:
    """Run the whole battery; the first broken rule raises `CheckFailed`."""
    for check in CHECKS:
        await check(h)


__all__ = [
    "CHECKS", "CheckFailed", "SourceHarness", "check_ack_is_idempotent", "check_stop_is_clean",
    "check_stream_yields_raw_messages", "run_checks",
]
