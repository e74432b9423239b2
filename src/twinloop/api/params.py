"""Parsing of human-friendly query parameters: times and durations.

>>> parse_duration("15m"), parse_duration("2.5s"), parse_duration("1d") == 86_400 * 10**9
(900000000000, 2500000000, True)
>>> parse_time("2026-01-01T00:00:00Z")
1767225600000000000
>>> parse_time("1767225600000000000")
1767225600000000000
"""

from __future__ import annotations

import re
from datetime import datetime

from twinloop.core.clock import datetime_to_ns
from twinloop.core.errors import ValidationError

_UNITS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86_400 * 10**9}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(text: str) -> int:
    """'500ms', '15s', '5m', '1h', '1d' or plain seconds → nanoseconds."""
    m = _DURATION.match(text or "")
    if not m:
        raise ValidationError(
            f"invalid duration {text!r}", hint="use a number with ms, s, m, h or d, e.g. '5m'"
        )
    ns = int(round(float(m.group(1)) * _UNITS[m.group(2) or "s"]))
    if ns <= 0:
        raise ValidationError(f"duration {text!r} must be positive")
    return ns


def parse_time(text: str | None) -> int | None:
    """ISO 8601 (naive means UTC) or integer epoch nanoseconds → epoch nanoseconds."""
    if text is None or text == "":
        return None
    if re.fullmatch(r"-?\d+", text.strip()):
        return int(text)
    try:
        return datetime_to_ns(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError as err:
        raise ValidationError(
            f"invalid time {text!r}", hint="use ISO 8601 like 2026-01-01T00:00:00Z or epoch ns"
        ) from err


__all__ = ["parse_duration", "parse_time"]
