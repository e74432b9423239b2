"""`Normalizer`: raw messages in, one clean `ReadingBatch` out, and every refusal accounted for.

Per message it only parses JSON, finds the rule (cached), checks the idempotency key and
extends column lists. Conversion and validation then run once over numpy arrays of the whole
batch, in this order (the first failing check names the reason): route (unknown twin, unknown
channel, unit mismatch, ignored), type, conversion to the channel's unit, NaN/Inf, range,
timestamp skew (against the clock the rule names: its arrival, or the plant's announced clock,
see `twinloop.ingest.clock`; announcements are taken before the batch is judged, and a message
whose plant clock was never heard waits for it, up to ``clock_wait_ns``); then the reorder
window; then the rate of change (per twin-channel, against the last accepted reading, in time
order).

Accounting: every value of every message ends up in exactly one of ``batch``, ``rejected``
(with ``item`` set), ``duplicates``, ``ignored`` or held (in the reorder window, or waiting for
its plant's clock: ``held``); a message that cannot be read at all is one `Rejected` without
``item``. Messages whose readings
are all accounted for are listed in ``completed``: acknowledge exactly those, after
``store.append_ingested(result.batch, result.seen, result.rejected)`` returned.

>>> from twinloop.core.clock import ManualClock
>>> from twinloop.core.protocols import RawMessage
>>> from twinloop.twins.asset_type import AssetType
>>> from twinloop.ingest.mapping import parse_mapping
>>> reg = TypeRegistry([AssetType(id="Pump", channels=[{"name": "temp", "unit": "degC", "max": 150}])])
>>> m = parse_mapping({"rules": [{"mqtt": "p/{device}", "channels": {"temp": {"unit": "degF"}}}]})
>>> n = Normalizer(m, reg, {"p1": "Pump"}, ManualClock(10**18))
>>> body = b'{"seq": 1, "ts": 1000000000000000000, "values": {"temp": 212}}'
>>> raw = RawMessage("mqtt", "p/p1", body, 10**18)
>>> r = n.normalize([raw, raw])
>>> r.batch.values.round(9).tolist(), r.duplicates, len(r.completed)
([100.0], 1, 2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

from twinloop.core.clock import Clock
from twinloop.core.protocols import RawMessage
from twinloop.core.readings import SCHEMA, TS_TYPE, ReadingBatch
from twinloop.ingest import validate as ck
from twinloop.ingest.clock import AnnouncementError, ClockPolicy, PlantClocks
from twinloop.ingest.decode import Decoded, PayloadError, decode_payload
from twinloop.ingest.dedupe import DedupeDelta, IdempotencyKey, SeenStateLike, SeenTable, digest_of
from twinloop.ingest.mapping import Mapping, Rule
from twinloop.ingest.rejected import Rejected
from twinloop.ingest.reorder import Columns, ReorderBuffer, concat
from twinloop.ingest.routes import RouteTable
from twinloop.twins.registry import TypeRegistry

S = 1_000_000_000


@dataclass(frozen=True)
class NormalizePolicy:
    """The knobs of normalization; the defaults suit a live plant with synchronized clocks.

    ``max_future_ns``/``max_age_ns`` are the tolerances of rules whose ``clock`` names none.
    """

    max_payload_bytes: int = 256 * 1024
    max_future_ns: int = 5 * 60 * S
    max_age_ns: int | None = 7 * 86_400 * S
    skew_action: Literal["reject", "restamp"] = "reject"  # restamp: receive time, UNCERTAIN
    range_action: Literal["reject", "flag"] = "reject"  # flag: keep it, quality BAD
    range_margin: float = 0.02  # sensor noise: tolerated beyond min/max, as a fraction of the span
    rate_full_range_s: float | None = 1.0  # derived max rate: the whole range in this long
    reorder_window_ns: int = 0
    clock_wait_ns: int = 5 * S  # readings wait this long for their plant's clock, then the wall judges
    dedupe_window: int = 256
    digest_ttl_ns: int = 120 * S


@dataclass
class NormalizeResult:
    """What one `normalize` (or `flush`) call made of its messages; see the module docstring."""

    batch: ReadingBatch
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0
    keys: list[IdempotencyKey] = field(default_factory=list)
    seen: DedupeDelta = field(default_factory=DedupeDelta)
    completed: list[RawMessage] = field(default_factory=list)
    ignored: int = 0
    held: int = 0
    _undo: tuple[object, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class ReplayOutcome:
    """A replay normalization: the result plus, per reading of its batch, the input message
    index and the raw item it came from."""

    result: NormalizeResult
    origin: np.ndarray
    items: list[str]


@dataclass
class _Msg:
    raw: RawMessage
    index: int
    rule: Rule
    twin: str | None
    key: IdempotencyKey | None
    n: int = 0
    names: tuple[str, ...] = ()
    repeats: list[int] | None = None
    item_index: list[int] | None = None


class Normalizer:
    """Maps, converts, validates, dedupes and orders raw messages into reading batches."""

    def __init__(self, mapping: Mapping, registry: TypeRegistry, twin_types: MappingABC[str, str],
                 clock: Clock, policy: NormalizePolicy | None = None) -> None:
        self.mapping = mapping
        self.clock = clock
        self.policy = policy or NormalizePolicy()
        self.routes = RouteTable(registry, twin_types, self.policy.rate_full_range_s)
        self.seen = SeenTable(self.policy.dedupe_window, self.policy.digest_ttl_ns)
        self._reorder = ReorderBuffer(self.policy.reorder_window_ns)
        self.clocks = PlantClocks(mapping.clocks())
        self._judges: dict[ClockPolicy, tuple[str | None, float, float, int]] = {}
        self._clockless: list[RawMessage] = []  # readings whose announced clock was not heard yet
        self._clockless_since = 0
        self._clock_gave_up = False
        self._next_msg = 0
        self._held: dict[int, _Msg] = {}
        self._waiting: dict[IdempotencyKey, list[RawMessage]] = {}
        self._dict_cache: tuple[int, pa.Array, pa.Array] | None = None

    # --- configuration -----------------------------------------------------------------------
    def load_seen(self, state: SeenStateLike) -> None:
        """Resume dedupe from persisted state: ``normalizer.load_seen(store.seen_keys())``."""
        self.seen.load(state)

    def reconfigure(self, mapping: Mapping | None = None, registry: TypeRegistry | None = None,
                    twin_types: MappingABC[str, str] | None = None) -> None:
        """Swap the mapping, types or twins (e.g. a twin was added); cached routes are dropped."""
        if mapping is not None:
            self.mapping = mapping
            self.clocks.configure(mapping.clocks())
            self._judges.clear()
        if registry is not None:
            self.routes.registry = registry
        if twin_types is not None:
            self.routes.twin_types = twin_types
        self.routes.clear_routes()

    @property
    def held(self) -> int:
        """Readings waiting in the reorder window, plus messages waiting for their plant's clock."""
        return self._reorder.held_readings + len(self._clockless)

    # --- the pipeline ------------------------------------------------------------------------
    def normalize(self, messages: Sequence[RawMessage]) -> NormalizeResult:
        """Normalize a micro-batch; never raises for bad input (see the module docstring)."""
        return self._run(messages, replay=False)[0]

    def flush(self) -> NormalizeResult:
        """Release everything held in the reorder window."""
        result, _, _ = self._run([], replay=False, flush=True)
        return result

    def replay(self, messages: Sequence[RawMessage]) -> ReplayOutcome:
        """Normalize quarantined messages again: no dedupe, no holding; says where readings came from."""
        result, origin, items = self._run(messages, replay=True)
        return ReplayOutcome(result, origin, items)

    def revert(self, result: NormalizeResult) -> None:
        """The store refused ``result``: forget its keys so redeliveries are not taken for duplicates."""
        if result._undo:
            rows, digests = result._undo
            self.seen.restore(rows, digests)  # type: ignore[arg-type]

    def _run(self, messages: Sequence[RawMessage], replay: bool,
             flush: bool = False) -> tuple[NormalizeResult, np.ndarray, list[str]]:
        rejected: list[Rejected] = []
        completed: list[RawMessage] = []
        msgs: dict[int, _Msg] = {}
        duplicates = ignored = 0
        parts: list[np.ndarray] = []
        values: list[object] = []
        ts: list[int] = []
        quality: list[int] = []
        counts: list[int] = []
        ids: list[int] = []
        bad: list[tuple[int, str, str]] = []
        limit = self.policy.max_payload_bytes
        messages = self._with_clocks(messages, replay)
        for index, raw in enumerate(messages):
            payload = raw.payload
            if len(payload) > limit:
                rejected.append(Rejected("oversized", f"payload of {len(payload)} bytes is over the "
                                         f"limit of {limit}; the first {limit} bytes are kept",
                                         bytes(payload[:limit]), raw.topic, raw.source,
                                         raw.received_ns, index=index))
                completed.append(raw)
                continue
            if self.clocks.is_clock(raw.topic):  # heard in `_with_clocks`; a bad one is quarantined
                try:
                    self.clocks.check(raw.topic, payload)
                except AnnouncementError as err:
                    rejected.append(_whole(raw, index, "malformed", str(err)))
                completed.append(raw)
                continue
            found = self.mapping.match(raw.topic)
            if found is None:
                rejected.append(_whole(raw, index, "unmapped",
                                       f"no mapping rule matches topic {raw.topic!r}"))
                completed.append(raw)
                continue
            rule, caps = found
            if rule.ignore:
                completed.append(raw)
                continue
            if rule.clock.announced and not replay and not self._clock_gave_up \
                    and not self.clocks.heard(rule.clock.announced):
                self._hold_for_clock(raw)
                continue
            try:
                d = decode_payload(payload, rule, caps, rule.timestamp)
            except PayloadError as err:
                rejected.append(_whole(raw, index, err.reason, f"{rule.name}: {err.message}"))
                completed.append(raw)
                continue
            twin = rule.twin_for(caps, d.device) if d.item_twins is None else None
            key = None if replay else _key(raw, rule, d, twin)
            if key is not None and self.seen.is_duplicate(key):
                duplicates += len(d.values)
                if self._is_held(key):
                    self._waiting.setdefault(key, []).append(raw)
                else:
                    completed.append(raw)
                continue
            n = len(d.values)
            mid = self._next_msg
            self._next_msg += 1
            msgs[mid] = _Msg(raw, index, rule, twin, key, n, d.names, d.repeats, d.item_index)
            start = len(values)
            parts.append(self._routes(rule, twin, d))
            values.extend(d.values)
            ts.extend(d.item_ts if d.item_ts is not None else
                      [raw.received_ns if d.ts_ns is None else d.ts_ns] * n)
            quality.extend(d.item_quality if d.item_quality is not None else [d.quality] * n)
            counts.append(n)
            ids.append(mid)
            if d.item_bad is not None:
                bad.extend((start + i, b[0], b[1]) for i, b in enumerate(d.item_bad) if b is not None)

        cols, rej_rows, n_ignored = self._validate(parts, values, ts, quality, counts, ids, msgs, bad)
        ignored += n_ignored
        all_msgs = {**self._held, **msgs}
        rejected.extend(self._rejections(rej_rows, all_msgs))
        if replay:
            released = cols
        else:
            released = self._reorder.flush() if flush else self._reorder.push(cols, self.clock.now_ns())
            if flush:
                released = concat(released, cols) if released else cols
        released, rate_rows = ck.rate_of_change(released, self.routes)
        rejected.extend(self._rejections(rate_rows, all_msgs))
        # which messages are complete now, and which keys become durable
        still_held = set(self._reorder.held_messages().tolist()) if not replay else set()
        keys: list[IdempotencyKey] = []
        touched: set[tuple[str, str]] = set()
        new_digests = []
        for mid, m in all_msgs.items():
            if mid in still_held:
                self._held[mid] = m
                continue
            self._held.pop(mid, None)
            completed.append(m.raw)
            if m.key is not None:
                keys.append(m.key)
                completed.extend(self._waiting.pop(m.key, ()))
                if m.key.seq is None:
                    new_digests.append(m.key)
                else:
                    touched.add((m.key.source, m.key.device))
        undo: tuple[object, ...] = ()
        if keys:
            rows = self.seen.snapshot(touched)
            self.seen.commit(keys)
            delta = self.seen.delta()
            undo = (rows, delta.digests)
        else:
            delta = self.seen.delta() if not replay else DedupeDelta()
        origin = np.array([all_msgs[int(m)].index for m in released["msg"]], np.int64) if replay \
            else np.zeros(0, np.int64)
        items = [self._item(all_msgs[int(m)], int(p)) for m, p in zip(released["msg"], released["pos"],
                                                                       strict=True)] if replay else []
        result = NormalizeResult(self._batch(released), rejected, duplicates, keys, delta, completed,
                                 ignored, self._reorder.held_readings, undo)
        return result, origin, items

    # --- pieces ------------------------------------------------------------------------------
    def _with_clocks(self, messages: Sequence[RawMessage], replay: bool) -> Sequence[RawMessage]:
        """Hear the batch's clock announcements first; then release the messages that waited for a
        clock when it has been heard or they waited ``clock_wait_ns`` (the wall clock judges them)."""
        if self.clocks.listening:
            for raw in messages:
                if self.clocks.is_clock(raw.topic):
                    try:
                        self.clocks.hear(raw.topic, raw.payload)
                    except AnnouncementError:
                        pass  # rejected as malformed below
        if replay or not self._clockless:
            return messages
        needed = {r.clock.announced for r in self.mapping.rules if r.clock.announced}
        heard = all(self.clocks.heard(name) for name in needed)  # type: ignore[arg-type]
        if not heard:
            if self.clock.now_ns() - self._clockless_since < self.policy.clock_wait_ns:
                return messages
            self._clock_gave_up = True  # never heard: the wall clock judges, strictly, from now on
        released, self._clockless = self._clockless, []
        return [*released, *messages]

    def _hold_for_clock(self, raw: RawMessage) -> None:
        if not self._clockless:
            self._clockless_since = self.clock.now_ns()
        self._clockless.append(raw)

    def _is_held(self, key: IdempotencyKey) -> bool:
        return any(m.key == key for m in self._held.values()) if self._held else False

    def _routes(self, rule: Rule, twin: str | None, d: Decoded) -> np.ndarray:
        if d.item_twins is None and d.item_units is None:
            ids = self.routes.routes(rule, twin, d.names)
            return ids if d.repeats is None else np.repeat(ids, d.repeats)
        twins = d.item_twins or [twin or ""] * len(d.names)
        units = d.item_units or [None] * len(d.names)
        return np.fromiter((self.routes.route(rule, t or None, n, u)
                            for t, n, u in zip(twins, d.names, units, strict=True)),
                           np.int64, len(d.names))

    def _validate(self, parts: list[np.ndarray], values: list[object], ts: list[int],
                  quality: list[int], counts: list[int], ids: list[int], msgs: dict[int, _Msg],
                  bad: list[tuple[int, str, str]]) -> tuple[Columns, list[ck.Row], int]:
        n = len(values)
        route = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        mid = np.repeat(np.array(ids, np.int64), counts)
        received = [msgs[i].raw.received_ns for i in ids]
        recv = np.repeat(np.array(received, np.int64), counts)
        starts = np.repeat(np.cumsum([0, *counts[:-1]]).astype(np.int64), counts) if counts else mid
        pos = np.arange(n, dtype=np.int64) - starts
        judged = [self._judge(msgs[i].rule.clock, r) for i, r in zip(ids, received, strict=True)]
        ref, fut, age, judge = zip(*judged, strict=True) if judged else ((), (), (), ())
        cols: Columns = {
            "route": route, "ts": np.array(ts, np.int64) if n else np.zeros(0, np.int64),
            "quality": np.array(quality, np.uint8), "msg": mid, "recv": recv, "pos": pos,
            "ref": np.repeat(np.array(ref, np.int64), counts),
            "fut": np.repeat(np.array(fut, np.float64), counts),
            "age": np.repeat(np.array(age, np.float64), counts),
            "judge": np.repeat(np.array(judge, np.int64), counts),
        }
        return ck.validate(cols, values, bad, self.routes, self.policy, self.judges)

    @property
    def judges(self) -> tuple[str, ...]:
        """What judged a reading's time, by the ``judge`` index of `_judge` (0: its arrival)."""
        return ("", *(f"the plant clock announced on {name}" for _, name in self.mapping.clocks()))

    def _judge(self, clock: ClockPolicy, received_ns: int) -> tuple[int, float, float, int]:
        """(reference time, future and age tolerance in ns, judge index) of one message.

        A plant clock not heard yet leaves the arrival time to judge, as for a real plant.
        """
        known = self._judges.get(clock)
        if known is None:
            p = self.policy
            fut = float(p.max_future_ns) if clock.max_future_s is None else clock.max_future_s * S
            age = (float(p.max_age_ns) if p.max_age_ns is not None else math.inf) \
                if clock.max_age_s is None else clock.max_age_s * S
            index = 1 + [name for _, name in self.mapping.clocks()].index(clock.announced) \
                if clock.announced else 0
            known = self._judges[clock] = (clock.announced, fut, age, index)
        name, fut, age, index = known
        if name is None:
            return received_ns, fut, age, 0
        now = self.clocks.now(name, received_ns)
        if now is None:
            return received_ns, fut, age, 0
        return now, fut if self.clocks.bounded(name) else math.inf, age, index

    def _rejections(self, rows: list[ck.Row], msgs: dict[int, _Msg]) -> list[Rejected]:
        out = []
        for row in rows:
            m = msgs[row.msg]
            twin, channel, _, _ = self.routes.describe(row.route) if row.route >= 0 else (
                m.twin, None, "", None)
            out.append(Rejected(row.reason, f"{m.rule.name}: {row.message}",  # type: ignore[arg-type]
                                bytes(m.raw.payload), m.raw.topic, m.raw.source, m.raw.received_ns,
                                twin or None, channel, row.value, row.ts, self._item(m, row.pos), m.index))
        return out

    def _item(self, m: _Msg, pos: int) -> str:
        if m.rule.format == "sparkplug":
            return f"metrics[{pos}]"
        if m.rule.format == "records":
            return f"readings[{pos}]"
        if m.repeats is not None:  # multi-sample: "flow[3]" is the 4th sample of flow
            ends = np.cumsum(m.repeats)
            i = int(np.searchsorted(ends, pos, side="right"))
            if i < len(m.names):
                sample = m.item_index[pos] if m.item_index is not None else pos - int(ends[i] - m.repeats[i])
                return f"{m.names[i]}[{sample}]"
        return m.names[pos] if pos < len(m.names) else str(pos)

    def _batch(self, cols: Columns) -> ReadingBatch:
        if not cols or len(cols["msg"]) == 0:
            return ReadingBatch.empty()
        slots = self.routes.array("slot")[cols["route"]]
        n_slots = len(self.routes.slot_twin)
        if self._dict_cache is None or self._dict_cache[0] != n_slots:
            self._dict_cache = (n_slots, pa.array(self.routes.slot_twin, pa.string()),
                                pa.array(self.routes.slot_channel, pa.string()))
        _, twins, channels = self._dict_cache
        idx = pa.array(slots.astype(np.int32))
        table = pa.Table.from_arrays([
            pa.DictionaryArray.from_arrays(idx, twins).cast(pa.string()),
            pa.DictionaryArray.from_arrays(idx, channels).cast(pa.string()),
            pa.array(cols["ts"], pa.int64()).cast(TS_TYPE),
            pa.array(cols["value"], pa.float64()),
            pa.array(cols["quality"], pa.uint8()),
        ], schema=SCHEMA)
        return ReadingBatch(table)


def _whole(raw: RawMessage, index: int, reason: str, message: str) -> Rejected:
    return Rejected(reason, message, bytes(raw.payload), raw.topic, raw.source,  # type: ignore[arg-type]
                    raw.received_ns, index=index)


def _key(raw: RawMessage, rule: Rule, d: Decoded, twin: str | None) -> IdempotencyKey | None:
    if rule.dedupe == "none":
        return None
    explicit = raw.meta.get("idempotency_key") if raw.meta else None
    device = d.device or twin or ""
    if d.seq is not None and rule.dedupe == "auto" and explicit is None:
        return IdempotencyKey(raw.source, device, d.seq, None, d.ts_ns, raw.received_ns)
    digest = digest_of(raw.topic, str(explicit).encode() if explicit is not None else raw.payload)
    return IdempotencyKey(raw.source, device, None, digest, d.ts_ns, raw.received_ns)


__all__ = ["NormalizePolicy", "NormalizeResult", "Normalizer", "ReplayOutcome"]
