"""Time as an injected dependency, so pure code and tests never read the wall clock themselves."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time in UTC nanoseconds since the epoch."""

    def now_ns(self) -> int:
        """Current time, UTC, nanoseconds since 1970-01-01."""
        ...


class SystemClock:
    """The real wall clock."""

    def now_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock that only moves when told to, for deterministic tests.

    >>> c = ManualClock(1_000)
    >>> c.advance(seconds=2)
    >>> c.now_ns()
    2000001000
    """

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self._now = int(start_ns)

    def now_ns(self) -> int:
        return self._now

    def advance(self, *, seconds: float = 0.0, ns: int = 0) -> None:
        """Move time forward; it never goes back."""
        step = int(round(seconds * 1e9)) + ns
        if step < 0:
            raise ValueError("a clock does not go backwards")
        self._now += step


def ns_to_datetime(ns: int) -> datetime:
    """UTC datetime from epoch nanoseconds (microsecond precision)."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def datetime_to_ns(value: datetime) -> int:
    """Epoch nanoseconds from a datetime; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


__all__ = ["Clock", "ManualClock", "SystemClock", "datetime_to_ns", "ns_to_datetime"]
