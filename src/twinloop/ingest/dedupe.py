"""Dedupe by idempotency key, with a compact state that is persisted next to the readings.

A key is (source, device, seq) when the payload carries an unbounded sequence number, else a
hash of (topic, payload) (or of an explicit ``idempotency_key`` in `RawMessage.meta`).

Per (source, device) the state is a *watermark* (every seq <= it was seen) plus the sparse set of
seqs seen above it, which is non-empty only while there is a gap: reordering, or loss. A gap is
declared lost, and the watermark jumps over it, once it is ``window`` seqs behind the newest or
``sparse`` seqs have piled up above it, so a row never holds more than ``sparse`` numbers. A
device's first message opens a gap of ``sparse`` seqs below it, so messages reordered at first
contact are not mistaken for duplicates. A seq that was seen but comes with a *newer* device
time than any seen before is not a redelivery (those repeat the payload byte for byte) but a
device that restarted its count: the state of that device starts over. Digests are kept for
``digest_ttl_ns`` of arrival time.

Keys of a message count as *pending* until the readings they vouch for are released (see
`reorder`); only released keys go into the `DedupeDelta` that the store commits with them.

>>> t = SeenTable()
>>> k = IdempotencyKey("mqtt", "p1", 5, None, 100, 0)
>>> t.is_duplicate(k), t.is_duplicate(k)
(False, True)
>>> t.commit([k]); t.delta().seqs
[SeqRow(source='mqtt', device='p1', watermark=-28, above=(5,), max_ts_ns=100)]
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class IdempotencyKey(NamedTuple):
    """What makes a message the same message when it is delivered again (a tuple: cheap per message)."""

    source: str
    device: str
    seq: int | None
    digest: str | None
    ts_ns: int | None
    received_ns: int


def digest_of(topic: str, payload: bytes) -> str:
    """A 128-bit hash of topic and payload: collisions are not a practical concern."""
    h = hashlib.blake2b(payload, digest_size=16, person=b"twinloop-ingest")
    h.update(b"\x00" + topic.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class SeqRow(NamedTuple):
    """Persisted state of one device on one source (the store's ``SeenSeq`` shape)."""

    source: str
    device: str
    watermark: int
    above: tuple[int, ...] = ()
    max_ts_ns: int = 0


class DigestRow(NamedTuple):
    source: str
    digest: str
    received_ns: int


@dataclass(frozen=True)
class DedupeDelta:
    """Changed rows to commit with the readings (the store's ``SeenDeltaLike`` shape)."""

    seqs: list[SeqRow] = field(default_factory=list)
    digests: list[DigestRow] = field(default_factory=list)
    expire_before_ns: int | None = None

    def __bool__(self) -> bool:
        return bool(self.seqs or self.digests or self.expire_before_ns is not None)


class SeenStateLike(Protocol):
    """What `SeenTable.load` reads: the store's ``SeenKeys`` (or a `DedupeDelta`)."""

    @property
    def seqs(self) -> Sequence[Any]: ...
    @property
    def digests(self) -> Sequence[Any]: ...


class _Device:
    __slots__ = ("above", "max_ts", "pending", "seen_ts", "top", "watermark")

    def __init__(self, watermark: int, above: Iterable[int] = (), max_ts: int = 0) -> None:
        self.watermark = watermark
        self.above = set(above)
        self.top = max(self.above, default=watermark)
        self.max_ts = max_ts  # newest device time of a stored message (persisted)
        self.seen_ts = max_ts  # ... of any accepted message, stored or pending
        self.pending: set[int] = set()

    def seen(self, seq: int) -> bool:
        return seq <= self.watermark or seq in self.above or seq in self.pending

    def add(self, seq: int, window: int, sparse: int) -> None:
        if seq <= self.watermark:
            return
        self.above.add(seq)
        self.top = max(self.top, seq)
        while self.above:
            nxt = self.watermark + 1
            if nxt in self.above:
                self.above.discard(nxt)
                self.watermark = nxt
            elif self.top - nxt >= window or len(self.above) >= sparse:  # gap declared lost
                self.watermark = min(self.above) - 1
            else:
                break

    def row(self, source: str, device: str) -> SeqRow:
        above = tuple(sorted(self.above)) if self.above else ()
        return SeqRow(source, device, self.watermark, above, self.max_ts)


class SeenTable:
    """The in-memory dedupe state of one normalizer; `delta` says what to persist."""

    def __init__(self, window: int = 256, digest_ttl_ns: int = 120 * 1_000_000_000,
                 sparse: int = 32) -> None:
        self.window = int(window)
        self.sparse = max(1, int(sparse))
        self.digest_ttl_ns = int(digest_ttl_ns)
        self._devices: dict[tuple[str, str], _Device] = {}
        self._digests: dict[tuple[str, str], int] = {}
        self._digest_order: deque[tuple[int, tuple[str, str]]] = deque()
        self._pending_digests: set[tuple[str, str]] = set()
        self._dirty: set[tuple[str, str]] = set()
        self._new_digests: list[DigestRow] = []
        self._newest_ns = 0

    def __len__(self) -> int:
        return len(self._devices) + len(self._digests)

    def load(self, state: SeenStateLike) -> None:
        """Take over persisted state (``store.seen_keys()``), e.g. after a restart."""
        for r in state.seqs:
            self._devices[(r.source, r.device)] = _Device(int(r.watermark), r.above, int(r.max_ts_ns))
        for d in sorted(state.digests, key=lambda d: d.received_ns):
            self._remember_digest((d.source, d.digest), int(d.received_ns))

    def _remember_digest(self, k: tuple[str, str], received_ns: int) -> None:
        self._digests[k] = received_ns
        self._digest_order.append((received_ns, k))
        self._newest_ns = max(self._newest_ns, received_ns)

    def is_duplicate(self, key: IdempotencyKey) -> bool:
        """True if ``key`` was seen (stored or pending); else it becomes pending."""
        if key.seq is None:
            k = (key.source, key.digest or "")
            if k in self._digests or k in self._pending_digests:
                return True
            self._pending_digests.add(k)
            return False
        dk = (key.source, key.device)
        dev = self._devices.get(dk)
        if dev is None:
            dev = self._devices[dk] = _Device(key.seq - 1 - self.sparse)
        elif dev.seen(key.seq):
            if key.ts_ns is None or key.ts_ns <= dev.seen_ts:
                return True
            # a seen seq with a newer device time: the device restarted its count
            dev.watermark, dev.above, dev.top = key.seq - 1 - self.sparse, set(), key.seq - 1
            self._dirty.add(dk)
        dev.pending.add(key.seq)
        if key.ts_ns is not None and key.ts_ns > dev.seen_ts:
            dev.seen_ts = key.ts_ns
        return False

    def commit(self, keys: Iterable[IdempotencyKey]) -> None:
        """Keys whose readings are released: they join the persisted state."""
        for key in keys:
            if key.seq is None:
                k = (key.source, key.digest or "")
                self._pending_digests.discard(k)
                self._remember_digest(k, key.received_ns)
                self._new_digests.append(DigestRow(k[0], k[1], key.received_ns))
                continue
            dk = (key.source, key.device)
            dev = self._devices[dk]
            dev.pending.discard(key.seq)
            dev.add(key.seq, self.window, self.sparse)
            if key.ts_ns is not None and key.ts_ns > dev.max_ts:
                dev.max_ts = key.ts_ns
            self._dirty.add(dk)

    def forget(self, keys: Iterable[IdempotencyKey]) -> None:
        """Un-mark pending keys (their message was not accepted after all)."""
        for key in keys:
            if key.seq is None:
                self._pending_digests.discard((key.source, key.digest or ""))
            else:
                dev = self._devices.get((key.source, key.device))
                if dev is not None:
                    dev.pending.discard(key.seq)

    def delta(self) -> DedupeDelta:
        """Rows changed since the last call, new digests, and the digest expiry threshold."""
        rows = [self._devices[k].row(*k) for k in sorted(self._dirty)]
        self._dirty.clear()
        digests, self._new_digests = self._new_digests, []
        expire = None
        if self._digest_order:
            expire = self._newest_ns - self.digest_ttl_ns
            while self._digest_order and self._digest_order[0][0] < expire:
                ts, k = self._digest_order.popleft()
                if self._digests.get(k) == ts:
                    del self._digests[k]
        return DedupeDelta(rows, digests, expire)

    def snapshot(self, devices: Iterable[tuple[str, str]]) -> dict[tuple[str, str], SeqRow | None]:
        """Current rows of some devices, so a failed store can be undone with `restore`."""
        out: dict[tuple[str, str], SeqRow | None] = {}
        get = self._devices.get
        for k in devices:
            dev = get(k)
            out[k] = None if dev is None else SeqRow(k[0], k[1], dev.watermark, tuple(dev.above), dev.max_ts)
        return out

    def restore(self, rows: dict[tuple[str, str], SeqRow | None], digests: Iterable[DigestRow]) -> None:
        for k, row in rows.items():
            pending = self._devices[k].pending if k in self._devices else set()
            if row is None:
                self._devices.pop(k, None)
                continue
            self._devices[k] = _Device(row.watermark, row.above, row.max_ts_ns)
            self._devices[k].pending = pending
            self._dirty.add(k)
        for d in digests:
            self._digests.pop((d.source, d.digest), None)


__all__ = [
    "DedupeDelta",
    "DigestRow",
    "IdempotencyKey",
    "SeenStateLike",
    "SeenTable",
    "SeqRow",
    "digest_of",
]
