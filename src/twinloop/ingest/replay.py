"""Quarantine replay: run quarantined payloads through the current mapping and types again.

After the cause is fixed (the twin registered, the mapping corrected), replay re-normalizes each
record's raw payload, without dedupe (the message was seen, but its reading never stored) and
without holding. A record of one reading (``item`` set) takes only that reading from its
message, since the others were stored the first time. Readings that pass are stored and their
records marked ``replayed`` in one transaction; a record that fails again stays open with its
new reason. A whole-message record (``item`` unset) that now decodes is resolved, and those of
its readings that still fail become new one-reading records.

The store is typed structurally (`QuarantineStore`), as ``ingest`` may not import ``store``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from twinloop.core.protocols import RawMessage
from twinloop.core.readings import ReadingBatch
from twinloop.ingest.normalizer import Normalizer
from twinloop.ingest.rejected import Rejected


class QuarantinedLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def topic(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def received_ns(self) -> int: ...
    @property
    def item(self) -> str | None: ...


class QuarantineStore(Protocol):
    """The part of ``store.Store`` that replay uses."""

    def quarantine(self, after_id: int = 0, reason: str | None = None, twin_id: str | None = None,
                   limit: int = 100, status: Any = "open",
                   ids: Sequence[int] | None = None) -> Sequence[QuarantinedLike]: ...

    def append_ingested(self, batch: ReadingBatch, seen: Any = None, quarantine: Sequence[Any] = (),
                        replayed: Sequence[int] = ()) -> list[int]: ...

    def update_quarantine(self, updates: Mapping[int, tuple[str, str]]) -> None: ...


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did: records resolved, records still failing (id -> (reason, message)),
    readings stored, and ids of new records split off whole-message ones."""

    replayed: list[int] = field(default_factory=list)
    failed: dict[int, tuple[str, str]] = field(default_factory=dict)
    readings: int = 0
    new_records: list[int] = field(default_factory=list)


def replay_quarantine(
    store: QuarantineStore,
    normalizer: Normalizer,
    ids: Sequence[int] | None = None,
    *,
    reason: str | None = None,
    twin_id: str | None = None,
    limit: int = 1000,
) -> ReplayReport:
    """Replay open records (by ``ids`` or by filter, at most ``limit``); see the module docstring."""
    records = list(store.quarantine(reason=reason, twin_id=twin_id, limit=limit, ids=ids))
    if not records:
        return ReplayReport()
    messages = [RawMessage(r.source, r.topic, bytes(r.payload), int(r.received_ns)) for r in records]
    out = normalizer.replay(messages)
    wanted = [r.item for r in records]
    keep = np.fromiter(
        (wanted[o] is None or wanted[o] == it for o, it in zip(out.origin.tolist(), out.items, strict=True)),
        bool, len(out.items),
    )
    batch = out.result.batch.filter(keep) if len(keep) else out.result.batch
    failed: dict[int, tuple[str, str]] = {}
    split: list[Rejected] = []
    for rej in out.result.rejected:
        rec = records[rej.index]
        if rec.item is not None:
            if rej.item == rec.item or rej.item is None:
                failed[rec.id] = (rej.reason, rej.message)
        elif rej.item is None:
            failed[rec.id] = (rej.reason, rej.message)  # the message still cannot be read
        else:
            split.append(rej)  # one reading of a now readable message: its own record
    split = [s for s in split if records[s.index].id not in failed]
    replayed = [r.id for r in records if r.id not in failed]
    new_ids = store.append_ingested(batch, None, split, replayed=replayed)
    if failed:
        store.update_quarantine(failed)
    return ReplayReport(replayed, failed, len(batch), new_ids)


__all__ = ["QuarantineStore", "QuarantinedLike", "ReplayReport", "replay_quarantine"]
