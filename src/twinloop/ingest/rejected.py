"""`Rejected`: a reading or message ingest refused, with a reason code a program can filter on,
a message a person can act on, and the raw payload, so it can be quarantined and replayed.

Duplicates are not rejects: a redelivered message is already stored, so it is counted
(`NormalizeResult.duplicates`) and acknowledged, not quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Reason = Literal[
    "malformed", "oversized", "unmapped", "unknown_twin", "unknown_channel", "unit_mismatch",
    "wrong_type", "not_finite", "out_of_range", "rate_of_change", "ts_invalid", "ts_future",
    "ts_too_old",
]

#: Every reason code and what it means; the API and CLI show these next to the code.
REASONS: dict[str, str] = {
    "malformed": "the payload could not be read: not JSON, or a field missing or of the wrong type",
    "oversized": "the payload is larger than the configured limit",
    "unmapped": "no mapping rule matches the topic or node id",
    "unknown_twin": "the mapped twin does not exist (or its asset type is unknown)",
    "unknown_channel": "the twin's asset type has no such channel",
    "unit_mismatch": "the source unit cannot be converted to the channel's unit",
    "wrong_type": "the value is not a number (or a boolean for a boolean channel)",
    "not_finite": "the value is NaN or infinite",
    "out_of_range": "the value is outside the channel's declared min/max",
    "rate_of_change": "the value changed faster than the channel's maximum rate",
    "ts_invalid": "the timestamp is missing or not a time",
    "ts_future": "the timestamp is further in the future than the allowed clock skew",
    "ts_too_old": "the timestamp is older than the allowed age",
}

MESSAGE_REASONS = frozenset({"malformed", "oversized", "unmapped", "ts_invalid"})


@dataclass(frozen=True)
class Rejected:
    """One rejected reading (``item`` set: its raw name in the payload) or whole message.

    ``index`` is the message's position in the input of the `Normalizer.normalize` call that
    received it. Fields that were not known when it was rejected are ``None``.
    """

    reason: Reason
    message: str
    payload: bytes
    topic: str
    source: str
    received_ns: int
    twin_id: str | None = None
    channel: str | None = None
    value: float | None = None
    ts_ns: int | None = None
    item: str | None = None
    index: int = -1


__all__ = ["MESSAGE_REASONS", "REASONS", "Reason", "Rejected"]
