"""HTTP batch ingestion and the quarantine, as one service the API and the CLI share.

A posted batch takes the pipeline's path: it becomes `RawMessage`\\ s, goes through the ingest
`Normalizer` (units converted, values validated, duplicates removed) and lands with
`Store.append_ingested` (readings, dedupe state and quarantine records in one transaction).
Bodies the service understands:

- JSON records: ``{"readings": [{"twin_id", "channel", "ts", "value", "unit"?, "quality"?}]}``
  (or the bare list), ``ts`` in ISO 8601 or epoch ns;
- the simulator's flat device payloads, ``{"device", "seq", "ts", "values": {...}}``, one or a
  list (a list may mix them with records);
- CSV (``text/csv``) with the header ``twin_id,channel,ts,value[,unit][,quality]``.

A rejected reading is quarantined with its reason and its own raw record (not the whole body),
so it can be replayed once the cause is fixed; a body that cannot be read at all is quarantined
whole. An ``Idempotency-Key`` makes a retried request return the first answer instead of storing
anything twice. Every call is audited.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from twinloop.core.clock import Clock
from twinloop.core.errors import ConflictError, StoreError, ValidationError
from twinloop.core.events import ReadingsApplied
from twinloop.core.protocols import RawMessage
from twinloop.core.readings import ReadingBatch
from twinloop.ingest.decode import PayloadError, loads
from twinloop.ingest.mapping import RECORDS_TOPIC, Mapping, load_mapping, parse_mapping
from twinloop.ingest.normalizer import NormalizePolicy, Normalizer
from twinloop.ingest.rejected import Rejected
from twinloop.ingest.replay import ReplayReport, replay_quarantine
from twinloop.runtime.bus import EventBus
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import AuditRecord, QuarantineRecord, QuarantineStatus, Store

HTTP_SOURCE = "http"
FLAT_TOPIC = "twinloop/ingest/flat"
CSV_TOPIC = "twinloop/ingest/csv"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_PROBLEMS = 5
CSV_REQUIRED = ("twin_id", "channel", "ts", "value")
CSV_OPTIONAL = ("unit", "quality")
#: HTTP is also how history is backfilled, so readings of any age are taken (the future limit stays).
HTTP_POLICY = NormalizePolicy(max_payload_bytes=DEFAULT_MAX_BODY_BYTES, max_age_ns=None)
_IDEMPOTENCY = re.compile(r"^[\x21-\x7e]{1,200}$")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestReport:
    """What became of one posted batch; ``parsed`` is false when nothing in it could be read."""

    accepted: int
    rejected: int
    duplicates: int
    quarantine_ids: list[int]
    problems: list[str]
    parsed: bool = True
    idempotent_replay: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReplaySummary:
    """What a quarantine replay did: records now stored, records still failing (first reasons in
    ``problems``), readings stored, and new one-reading records split off whole-message ones."""

    replayed: list[int]
    still_failing: list[int]
    readings: int
    new_records: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- splitting a body into messages -----------------------------------------------------------------
@dataclass
class _Split:
    """A body cut into raw messages, with what is needed to say where each reading came from."""

    messages: list[RawMessage] = field(default_factory=list)
    rows: dict[int, list[Any]] = field(default_factory=dict)  # records message -> its rows
    labels: dict[int, list[str]] = field(default_factory=dict)  # records message -> row labels
    flat_labels: dict[int, str] = field(default_factory=dict)  # flat message -> its label
    early: list[tuple[Rejected, str]] = field(default_factory=list)  # refused before normalizing


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _is_flat(item: Any) -> bool:
    return isinstance(item, dict) and "values" in item and "twin_id" not in item


def split_json(body: bytes, received_ns: int) -> _Split:
    """Records and flat payloads of a JSON body; unreadable JSON goes on whole (and is refused)."""
    out = _Split()
    try:
        obj = loads(body)  # the ingest decoder's parser (orjson when installed)
    except PayloadError:
        obj = None
    if isinstance(obj, dict) and _is_flat(obj):
        out.messages.append(RawMessage(HTTP_SOURCE, FLAT_TOPIC, body, received_ns))
        out.flat_labels[0] = "payload"
        return out
    if isinstance(obj, dict) and isinstance(obj.get("readings"), list):
        _records(out, body, obj["readings"], [f"readings[{i}]" for i in range(len(obj["readings"]))],
                 received_ns)
        return out
    if not isinstance(obj, list):  # not JSON, or a shape we do not know: the normalizer says why
        out.messages.append(RawMessage(HTTP_SOURCE, RECORDS_TOPIC, body, received_ns))
        return out
    flat = [i for i, item in enumerate(obj) if _is_flat(item)]
    if not flat:
        _records(out, body, obj, [f"[{i}]" for i in range(len(obj))], received_ns)
        return out
    flat_set = set(flat)
    rows = [item for i, item in enumerate(obj) if i not in flat_set]
    if rows:
        _records(out, _dumps({"readings": rows}), rows,
                 [f"[{i}]" for i in range(len(obj)) if i not in flat_set], received_ns)
    for i in flat:
        out.flat_labels[len(out.messages)] = f"[{i}]"
        out.messages.append(RawMessage(HTTP_SOURCE, FLAT_TOPIC, _dumps(obj[i]), received_ns))
    return out


def _records(out: _Split, payload: bytes, rows: list[Any], labels: list[str], received_ns: int) -> None:
    index = len(out.messages)
    out.messages.append(RawMessage(HTTP_SOURCE, RECORDS_TOPIC, payload, received_ns))
    out.rows[index] = rows
    out.labels[index] = labels


def _csv_value(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text  # the normalizer refuses it as wrong_type, with the text in the record


def split_csv(body: bytes, received_ns: int) -> _Split:
    """CSV rows as records; a row of the wrong width is refused here, naming its line."""
    out = _Split()

    def refuse(message: str, payload: bytes = body, label: str = "body") -> _Split:
        out.early.append((Rejected("malformed", f"CSV: {message}", payload, CSV_TOPIC, HTTP_SOURCE,
                                   received_ns), label))
        return out

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return refuse(f"the body is not UTF-8 ({err.reason} at byte {err.start})")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as err:
        return refuse(f"unreadable header: {err}")
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_REQUIRED + CSV_OPTIONAL]
    if missing or unknown or len(set(header)) != len(header):
        what = (f"missing column(s) {', '.join(missing)}" if missing else
                f"unknown column(s) {', '.join(unknown)}" if unknown else "a column appears twice")
        return refuse(f"header {','.join(header)!r} has {what}; "
                      f"expected {','.join(CSV_REQUIRED)}[,unit][,quality]")
    rows: list[dict[str, Any]] = []
    labels: list[str] = []
    head_line = (",".join(header) + "\n").encode()
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or fields == [""]:
                continue
            if len(fields) != len(header):
                raw = head_line + ",".join(fields).encode()
                refuse(f"line {line} has {len(fields)} fields, the header {len(header)}", raw, f"line {line}")
                continue
            row: dict[str, Any] = dict(zip(header, (f.strip() for f in fields), strict=True))
            row["value"] = _csv_value(row["value"])
            if row.get("unit") == "":
                del row["unit"]
            q = row.get("quality")
            if q is not None:
                row["quality"] = int(q) if q.isdigit() else (q or None)
            row["line"] = line
            rows.append(row)
            labels.append(f"line {line}")
    except csv.Error as err:
        return refuse(f"line {reader.line_num}: {err}")
    if rows:
        _records(out, _dumps({"readings": rows}), rows, labels, received_ns)
    return out


def media_kind(content_type: str | None) -> Literal["json", "csv"] | None:
    """``csv`` for ``text/csv``, ``json`` for JSON (or no content type), ``None`` for anything else.

    >>> media_kind("text/csv; charset=utf-8"), media_kind(None), media_kind("image/png")
    ('csv', 'json', None)
    """
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return "csv"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    return None


def split_body(body: bytes, content_type: str | None, received_ns: int) -> _Split:
    """Pick the decoder by content type; `ValidationError` for one that is neither JSON nor CSV."""
    kind = media_kind(content_type)
    if kind is None:
        raise ValidationError(f"cannot ingest content type {content_type!r}",
                              hint="send application/json or text/csv")
    return split_csv(body, received_ns) if kind == "csv" else split_json(body, received_ns)


# --- the service ------------------------------------------------------------------------------------
class IngestService:
    """Ingests posted batches and manages the quarantine; see the module docstring."""

    def __init__(self, store: Store, twins: TwinService, bus: EventBus, clock: Clock, *,
                 mapping_path: Path | None = None, policy: NormalizePolicy | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._store = store
        self._twins = twins
        self._bus = bus
        self._clock = clock
        self._mapping_path = mapping_path
        self._policy = policy or replace(HTTP_POLICY, max_payload_bytes=max_body_bytes)
        self.max_body_bytes = max_body_bytes
        self._normalizer: Normalizer | None = None
        self._twin_types: dict[str, str] = {}
        self._lock = threading.Lock()  # one normalizer: its dedupe and rate state are not shared

    # --- ingestion ----------------------------------------------------------------------------
    def ingest(self, body: bytes, content_type: str | None, *, actor: str,
               idempotency_key: str | None = None) -> IngestReport:
        """Normalize and store a posted batch; `ConflictError` if the key came with another body."""
        if len(body) > self.max_body_bytes:
            raise ValidationError(f"the body has {len(body)} bytes, over the limit of {self.max_body_bytes}",
                                  hint="split the batch")
        with self._lock:
            slot = self._idempotency_slot(actor, idempotency_key)
            digest = hashlib.sha256(body).hexdigest()
            if slot is not None:
                earlier = self._store.get_meta(slot)
                if earlier is not None:
                    return self._repeat(json.loads(earlier), digest, idempotency_key or "")
            report = self._ingest(body, content_type, slot)
            if slot is not None:
                self._store.set_meta(slot, json.dumps({"sha256": digest, "report": report.to_dict()}))
        self._audit(actor, "ingest.http", "", "ok" if report.parsed else "refused", {
            "bytes": len(body), "content_type": content_type or "", "accepted": report.accepted,
            "rejected": report.rejected, "duplicates": report.duplicates,
            "quarantine_ids": report.quarantine_ids[:100], "idempotency_key": idempotency_key or ""})
        return report

    def _ingest(self, body: bytes, content_type: str | None, slot: str | None) -> IngestReport:
        now = self._clock.now_ns()
        split = split_body(body, content_type, now)
        if slot is not None:  # the key, not the body, identifies the request to dedupe
            split.messages = [replace(m, meta={"idempotency_key": f"{slot}:{i}"})
                              for i, m in enumerate(split.messages)]
        normalizer = self._current_normalizer()
        result = normalizer.normalize(split.messages)
        rejected = [(self._own_record(r, split), self._label(r, split)) for r in result.rejected]
        rejected = split.early + rejected
        try:
            ids = self._store.append_ingested(result.batch, result.seen, [r for r, _ in rejected])
        except Exception:
            normalizer.revert(result)
            raise
        self._announce(result.batch)
        whole = [r for r, _ in rejected if r.item is None]
        parsed = bool(len(result.batch) or result.duplicates or len(whole) < len(rejected)
                      or not rejected)
        return IngestReport(accepted=len(result.batch), rejected=len(rejected),
                            duplicates=int(result.duplicates), quarantine_ids=list(ids),
                            problems=_problems(rejected), parsed=parsed)

    def _repeat(self, earlier: dict[str, Any], digest: str, key: str) -> IngestReport:
        if earlier.get("sha256") != digest:
            raise ConflictError(f"Idempotency-Key {key!r} was used before with a different body",
                                hint="use a new key for a new batch")
        return IngestReport(**{**earlier["report"], "idempotent_replay": True})

    def _idempotency_slot(self, actor: str, key: str | None) -> str | None:
        if key is None:
            return None
        if not _IDEMPOTENCY.fullmatch(key):
            raise ValidationError("an Idempotency-Key is 1-200 printable ASCII characters, no spaces")
        scoped = hashlib.sha256(f"{actor}\x00{key}".encode()).hexdigest()[:32]
        return f"ingest.idempotency.{scoped}"

    # --- quarantine ---------------------------------------------------------------------------
    def list_quarantine(self, *, reason: str | None = None, twin_id: str | None = None,
                        after: int = 0, limit: int = 100,
                        status: QuarantineStatus | None = "open") -> list[QuarantineRecord]:
        """Quarantine records after the ``after`` id, oldest first."""
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit must be between 1 and 10000")
        return self._store.quarantine(after_id=after, reason=reason, twin_id=twin_id, limit=limit,
                                      status=status)

    def count_quarantine(self, reason: str | None = None) -> int:
        return self._store.count_quarantine(reason)

    def replay(self, ids: Sequence[int] | None = None, *, reason: str | None = None,
               twin_id: str | None = None, actor: str, limit: int = 1000) -> ReplaySummary:
        """Re-normalize open records (by id, or every one matching the filter) with the current
        mapping, types and twins; those that pass are stored and resolved as ``replayed``."""
        if ids is not None and (reason is not None or twin_id is not None):
            raise ValidationError("replay either ids or a filter (reason, twin), not both")
        if ids is not None and not ids:
            raise ValidationError("name at least one quarantine id, or replay by filter")
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit must be between 1 and 10000")
        if ids is not None:
            records = self._store.quarantine(limit=len(ids), ids=list(ids))
        else:
            records = self._store.quarantine(reason=reason, twin_id=twin_id, limit=limit)
        # a CSV row that could not be split into fields means nothing to a normalizer: say so
        unreadable = [r for r in records if r.topic == CSV_TOPIC]
        todo = [r.id for r in records if r.topic != CSV_TOPIC]
        capture = _Capture(self._store)
        report = ReplayReport()
        if todo:
            with self._lock:
                report = replay_quarantine(capture, self._current_normalizer(), todo, limit=len(todo))
        self._announce(capture.batch)
        failed = {**report.failed, **{r.id: (r.reason, f"{r.message} (a CSV line that cannot be read "
                                                       "is not replayable: discard it, post it again)")
                                       for r in unreadable}}
        summary = ReplaySummary(
            replayed=report.replayed, still_failing=sorted(failed), readings=report.readings,
            new_records=report.new_records,
            problems=[f"#{i}: {r}: {m}" for i, (r, m) in sorted(failed.items())[:MAX_PROBLEMS]])
        self._audit(actor, "quarantine.replay", "", "ok", {
            "ids": list(ids or [])[:1000], "reason": reason or "", "twin_id": twin_id or "",
            "replayed": summary.replayed[:1000], "still_failing": summary.still_failing[:1000],
            "readings": summary.readings})
        return summary

    def discard(self, ids: Sequence[int], *, actor: str) -> int:
        """Resolve open records as ``discarded`` (kept for audit); returns how many changed."""
        if not ids:
            raise ValidationError("name the quarantine ids to discard")
        changed = self._store.resolve_quarantine(list(ids), "discarded", self._clock.now_ns())
        self._audit(actor, "quarantine.discard", "", "ok", {"ids": list(ids)[:1000], "discarded": changed})
        return changed

    # --- pieces -------------------------------------------------------------------------------
    def _current_normalizer(self) -> Normalizer:
        """The service's normalizer, told about twins added or removed since the last call."""
        twin_types = {t.id: t.type_id for t in self._twins.graph.twins()}
        if self._normalizer is None:
            self._normalizer = Normalizer(self._mapping(), self._twins.registry, twin_types, self._clock,
                                          self._policy)
            self._normalizer.load_seen(self._store.seen_keys(HTTP_SOURCE))
        elif twin_types != self._twin_types:
            self._normalizer.reconfigure(registry=self._twins.registry, twin_types=twin_types)
        self._twin_types = twin_types
        return self._normalizer

    def _mapping(self) -> Mapping:
        """The runtime's mapping file (for replays of what the pipeline quarantined) plus a rule
        for posted flat payloads; the built-in records rule comes with every mapping."""
        flat = parse_mapping({"rules": [{"name": "http flat", "topic": FLAT_TOPIC, "format": "flat"}]})
        base = load_mapping(self._mapping_path) if self._mapping_path is not None else flat
        ours = {FLAT_TOPIC, RECORDS_TOPIC}  # first, so no catch-all rule of the file can shadow them
        records = [r for r in base.rules if r.pattern == RECORDS_TOPIC]
        rules = [flat.rules[0], *records, *(r for r in base.rules if r.pattern not in ours)]
        return Mapping(rules, base.file)

    def _own_record(self, r: Rejected, split: _Split) -> Rejected:
        """A rejected record keeps only its own row as raw payload, not the whole body."""
        rows = split.rows.get(r.index)
        if rows is None or r.item is None or not r.item.startswith("readings["):
            return r
        pos = int(r.item[9:-1])
        return replace(r, payload=_dumps({"readings": [rows[pos]]}), item="readings[0]")

    def _label(self, r: Rejected, split: _Split) -> str:
        if r.index in split.labels and r.item and r.item.startswith("readings["):
            return split.labels[r.index][int(r.item[9:-1])]
        label = split.flat_labels.get(r.index, "body")
        return f"{label}.values.{r.item}" if r.item else label

    def _announce(self, batch: ReadingBatch) -> None:
        """One `ReadingsApplied` per twin, persisted and published, as the pipeline does."""
        if len(batch) == 0:
            return
        grouped = batch.table.group_by("asset_id").aggregate([("channel", "count"), ("channel", "distinct")])
        now = self._clock.now_ns()
        graph = self._twins.graph
        events = [
            ReadingsApplied(twin_id=a, revision=graph.get(a).revision if a in graph else 0, ts_ns=now,
                            count=int(n), channels=sorted(chs))
            for a, n, chs in zip(grouped.column("asset_id").to_pylist(),
                                 grouped.column("channel_count").to_pylist(),
                                 grouped.column("channel_distinct").to_pylist(), strict=True)
        ]
        try:
            self._store.append_events(events)
        except StoreError as err:  # the readings are stored; only the announcement is lost
            _log.warning("could not store %d ReadingsApplied events: %s", len(events), err)
        self._bus.publish(events)

    def _audit(self, actor: str, action: str, target: str, outcome: str, detail: dict[str, Any]) -> None:
        self._store.append_audit(AuditRecord(ts_ns=self._clock.now_ns(), actor=actor, action=action,
                                             target=target, outcome=outcome, detail=detail))


class _Capture:
    """The store as replay sees it, keeping the batch it stores so the service can announce it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.batch = ReadingBatch.empty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def append_ingested(self, batch: ReadingBatch, seen: Any = None, quarantine: Sequence[Any] = (),
                        replayed: Sequence[int] = ()) -> list[int]:
        ids = self._store.append_ingested(batch, seen, quarantine, replayed)
        self.batch = batch
        return ids


def _problems(rejected: Sequence[tuple[Rejected, str]]) -> list[str]:
    return [f"{label}: {r.reason}: {r.message}" for r, label in rejected[:MAX_PROBLEMS]]


__all__ = [
    "CSV_TOPIC", "DEFAULT_MAX_BODY_BYTES", "FLAT_TOPIC", "HTTP_POLICY", "HTTP_SOURCE", "IngestReport",
    "IngestService", "ReplaySummary", "media_kind", "split_body", "split_csv", "split_json",
]
