"""`IngestJournal`: an append-only, fsync'd log of ingest commits, in segment files in one folder.

Why: a DuckDB commit stalls for 25-80 ms whenever DuckDB checkpoints its WAL (every 16 MB, so
every few seconds at 100 k readings/s), and a commit that upserts the dedupe table costs several
ms on its own. Acknowledging a broker message must not wait for either. The journal makes an
ingest commit one sequential write plus ``fdatasync`` (~0.3 ms); `JournaledStore` applies the
entries to the real store in larger transactions in the background.

Format: a segment ``{first_seq:016d}.tlj`` holds frames ``magic | body length | crc32 | body``;
a body is ``seq`` followed by length-prefixed Arrow IPC streams (readings, dedupe rows, digests,
quarantine) and the digest expiry. A frame cut short by a crash was never acknowledged (the ack
waits for the sync), so recovery drops a torn tail of the *last* segment; a bad frame anywhere else
is corruption and recovery refuses with the file and offset.

Entries are validated when they are written (`seen_rows`, `quarantine_record`), so the store cannot
reject an acknowledged entry later for what it holds.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from twinloop.core.errors import StoreError
from twinloop.core.readings import SCHEMA, ReadingBatch
from twinloop.store.protocol import (
    QuarantineEntry,
    QuarantineRecord,
    SeenDeltaLike,
    SeenDigest,
    SeenSeq,
    quarantine_record,
    seen_rows,
)

_MAGIC = b"TLJ1"
_FRAME = struct.Struct("<4sII")  # magic, body length, crc32 of the body
_HEAD = struct.Struct("<qqB")  # seq, digest expiry (or -1), parts present (bit mask)
_SUFFIX = ".tlj"
_SEEN_SCHEMA = pa.schema([
    ("source", pa.string()), ("device", pa.string()), ("watermark", pa.int64()),
    ("above", pa.list_(pa.int64())), ("max_ts_ns", pa.int64()),
])
_DIGEST_SCHEMA = pa.schema([("source", pa.string()), ("digest", pa.string()), ("received_ns", pa.int64())])
_QUARANTINE_SCHEMA = pa.schema([
    # per-reading rejects of one message share its payload: stored once per entry, not per reading
    ("reason", pa.string()), ("message", pa.string()), ("payload", pa.dictionary(pa.int32(), pa.binary())),
    ("topic", pa.string()),
    ("source", pa.string()), ("received_ns", pa.int64()), ("twin_id", pa.string()),
    ("channel", pa.string()), ("value", pa.float64()), ("ts_ns", pa.int64()), ("item", pa.string()),
])


@dataclass
class JournalEntry:
    """One ingest commit: what `Store.append_ingested` would have stored, checked and concrete."""

    seq: int
    batch: ReadingBatch
    seqs: list[SeenSeq] = field(default_factory=list)
    digests: list[SeenDigest] = field(default_factory=list)
    expire_before_ns: int | None = None
    quarantine: list[QuarantineRecord] = field(default_factory=list)

    @property
    def readings(self) -> int:
        return len(self.batch)


def merge(entries: Sequence[JournalEntry]) -> JournalEntry:
    """Consecutive entries as one: readings in order, the newest dedupe row per device, all
    digests and quarantine records, the latest expiry. Storing the merge equals storing each."""
    if len(entries) == 1:
        return entries[0]
    seqs: dict[tuple[str, str], SeenSeq] = {}
    digests: list[SeenDigest] = []
    quarantine: list[QuarantineRecord] = []
    expire: int | None = None
    for e in entries:
        for row in e.seqs:
            seqs.pop((row.source, row.device), None)  # re-insert: keep the order of last change
            seqs[(row.source, row.device)] = row
        digests.extend(e.digests)
        quarantine.extend(e.quarantine)
        if e.expire_before_ns is not None:
            expire = e.expire_before_ns if expire is None else max(expire, e.expire_before_ns)
    return JournalEntry(entries[-1].seq, ReadingBatch.concat(e.batch for e in entries), list(seqs.values()),
                        digests, expire, quarantine)


class IngestJournal:
    """The log itself: `recover` once, then `append` (durable on return) and `release`."""

    def __init__(self, folder: str | Path, *, segment_bytes: int = 64 * 2**20, sync: bool = True) -> None:
        self.folder = Path(folder)
        self.segment_bytes = segment_bytes
        self.sync = sync
        self._file: io.BufferedWriter | None = None
        self._active: Path | None = None
        self._closed: list[tuple[Path, int]] = []  # finished segments and their last seq
        self._next = 1
        self._last = 0

    @property
    def last_seq(self) -> int:
        """The seq of the newest entry written (0 when none)."""
        return self._last

    def recover(self, applied: int) -> list[JournalEntry]:
        """Entries after ``applied`` from the segments on disk, oldest first; later appends go on
        from the highest seq seen. A torn tail of the last segment is cut off."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            segments = sorted(p for p in self.folder.iterdir() if p.suffix == _SUFFIX)
        except OSError as err:
            raise StoreError(f"cannot read the ingest journal in {self.folder}: {err}",
                             hint="check the folder's permissions and free space") from err
        out: list[JournalEntry] = []
        last = applied
        for i, path in enumerate(segments):
            entries = _read_segment(path, tail_ok=i == len(segments) - 1)
            if entries:
                last = max(last, entries[-1].seq)
                self._closed.append((path, entries[-1].seq))
            else:
                self._closed.append((path, 0))
            out.extend(e for e in entries if e.seq > applied)
        self._last = last
        self._next = last + 1
        return out

    def append(
        self,
        batch: ReadingBatch,
        seen: SeenDeltaLike | None = None,
        quarantine: Sequence[QuarantineEntry] = (),
    ) -> JournalEntry:
        """Check, write and sync one entry; it is durable when this returns."""
        seqs, digests, expire = seen_rows(seen)
        records = [quarantine_record(e, 0) for e in quarantine]
        entry = JournalEntry(self._next, batch, seqs, digests, expire, records)
        body = _encode(entry)
        frame = _FRAME.pack(_MAGIC, len(body), zlib.crc32(body)) + body
        try:
            f = self._writer(len(frame))
            f.write(frame)
            f.flush()
            if self.sync:
                _datasync(f.fileno())
        except OSError as err:
            self._abandon()
            raise StoreError(f"cannot write the ingest journal in {self.folder}: {err}",
                             hint="free disk space; nothing of this batch was acknowledged") from err
        self._next += 1
        self._last = entry.seq
        return entry

    def release(self, applied: int) -> int:
        """Delete finished segments whose entries are all applied (and the active one once it is
        large and fully applied); returns how many files were deleted."""
        if (self._active is not None and self._last <= applied and self._file is not None
                and self._file.tell() >= self.segment_bytes // 8):
            self._finish_active()
        keep, gone = [], 0
        for path, last in self._closed:
            if last <= applied:
                try:
                    path.unlink(missing_ok=True)
                    gone += 1
                except OSError:
                    keep.append((path, last))  # tried again on the next release
            else:
                keep.append((path, last))
        self._closed = keep
        return gone

    def close(self, applied: int | None = None) -> None:
        """Close the active segment; with ``applied``, delete every segment whose entries are all
        applied (the rest stay on disk for the next `recover`)."""
        self._finish_active()
        if applied is not None:
            self.release(applied)

    # --- segments -------------------------------------------------------------------------------
    def _writer(self, size: int) -> io.BufferedWriter:
        if self._file is not None and self._file.tell() + size > self.segment_bytes and self._file.tell():
            self._finish_active()
        if self._file is None:
            self._active = self.folder / f"{self._next:016d}{_SUFFIX}"
            self._file = open(self._active, "ab")  # noqa: SIM115 - held open across appends
            if self.sync:  # the new file's name must survive a crash too
                _sync_folder(self.folder)
        return self._file

    def _finish_active(self) -> None:
        if self._file is not None and self._active is not None:
            self._file.close()
            self._closed.append((self._active, self._last))
        self._file, self._active = None, None

    def _abandon(self) -> None:
        """After a failed write: start a new segment, so a half-written frame is never followed by
        good ones (recovery only forgives a torn tail)."""
        if self._file is not None and self._active is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._closed.append((self._active, self._last))
        self._file, self._active = None, None


_datasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


def _sync_folder(folder: Path) -> None:
    """Make a new file's directory entry durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows: directory entries are durable with the file
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- encoding -------------------------------------------------------------------------------------
def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _tables(entry: JournalEntry) -> list[pa.Table | None]:
    seqs = pa.table({
        "source": [r.source for r in entry.seqs], "device": [r.device for r in entry.seqs],
        "watermark": [r.watermark for r in entry.seqs], "above": [list(r.above) for r in entry.seqs],
        "max_ts_ns": [r.max_ts_ns for r in entry.seqs],
    }, schema=_SEEN_SCHEMA) if entry.seqs else None
    digests = pa.table({
        "source": [d.source for d in entry.digests], "digest": [d.digest for d in entry.digests],
        "received_ns": [d.received_ns for d in entry.digests],
    }, schema=_DIGEST_SCHEMA) if entry.digests else None
    quarantine = pa.table({
        name: pa.array([r.payload for r in entry.quarantine], pa.binary()).dictionary_encode()
        if name == "payload" else [getattr(r, name) for r in entry.quarantine]
        for name in _QUARANTINE_SCHEMA.names
    }, schema=_QUARANTINE_SCHEMA) if entry.quarantine else None
    return [entry.batch.table if len(entry.batch) else None, seqs, digests, quarantine]


def _encode(entry: JournalEntry) -> bytes:
    parts = _tables(entry)
    mask = sum(1 << i for i, t in enumerate(parts) if t is not None)
    expire = -1 if entry.expire_before_ns is None else entry.expire_before_ns
    out = [_HEAD.pack(entry.seq, expire, mask)]
    for table in parts:
        if table is not None:
            data = _ipc(table)
            out.append(struct.pack("<I", len(data)))
            out.append(data)
    return b"".join(out)


def _decode(body: bytes) -> JournalEntry:
    seq, expire, mask = _HEAD.unpack_from(body, 0)
    pos = _HEAD.size
    tables: list[pa.Table | None] = []
    for i in range(4):
        if not mask & (1 << i):
            tables.append(None)
            continue
        (n,) = struct.unpack_from("<I", body, pos)
        pos += 4
        tables.append(pa.ipc.open_stream(pa.py_buffer(body[pos:pos + n])).read_all())
        pos += n
    readings, seqs, digests, quarantine = tables
    return JournalEntry(
        seq=seq,
        batch=ReadingBatch(readings.cast(SCHEMA)) if readings is not None else ReadingBatch.empty(),
        seqs=[SeenSeq(r["source"], r["device"], r["watermark"], tuple(r["above"]), r["max_ts_ns"])
              for r in seqs.to_pylist()] if seqs is not None else [],
        digests=[SeenDigest(r["source"], r["digest"], r["received_ns"])
                 for r in digests.to_pylist()] if digests is not None else [],
        expire_before_ns=None if expire < 0 else expire,
        quarantine=[QuarantineRecord(id=0, **r) for r in quarantine.to_pylist()]
        if quarantine is not None else [],
    )


def _read_segment(path: Path, *, tail_ok: bool) -> list[JournalEntry]:
    """The entries of one segment; a torn or corrupt frame ends the last segment (it is cut off
    there) and is an error in any other."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StoreError(f"cannot read ingest journal segment {path}: {err}") from err
    entries: list[JournalEntry] = []
    pos = 0
    while pos < len(data):
        problem = _frame_problem(data, pos)
        if problem is None:
            _, n, _ = _FRAME.unpack_from(data, pos)
            try:
                entries.append(_decode(data[pos + _FRAME.size:pos + _FRAME.size + n]))
            except (pa.ArrowException, struct.error, KeyError, TypeError, ValueError) as err:
                problem = f"undecodable entry ({err})"
            else:
                pos += _FRAME.size + n
                continue
        if not tail_ok:
            raise StoreError(f"ingest journal segment {path} is corrupt at byte {pos}: {problem}",
                             hint="restore the file, or move it away to start without its entries")
        with open(path, "r+b") as f:  # a crash mid-write: that entry was never acknowledged
            f.truncate(pos)
        break
    return entries


def _frame_problem(data: bytes, pos: int) -> str | None:
    if len(data) - pos < _FRAME.size:
        return "truncated frame header"
    magic, n, crc = _FRAME.unpack_from(data, pos)
    if magic != _MAGIC:
        return "bad frame marker"
    body = data[pos + _FRAME.size:pos + _FRAME.size + n]
    if len(body) < n:
        return "truncated frame"
    if zlib.crc32(body) != crc:
        return "checksum mismatch"
    return None


__all__ = ["IngestJournal", "JournalEntry", "merge"]
