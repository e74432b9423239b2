"""`IngestJournal`: entries survive a reopen byte for byte; a torn tail is cut, corruption refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twinloop.core.errors import StoreError, ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.store.journal import IngestJournal, JournalEntry, merge
from twinloop.store.protocol import QuarantineRecord, SeenDigest, SeenKeys, SeenSeq, seen_rows

T0 = 1_700_000_000 * 10**9


def _batch(k: int, n: int = 4) -> ReadingBatch:
    return ReadingBatch.from_arrays(["p1"] * n, "flow", T0 + k * 1000 + np.arange(n), np.arange(n) + k)


def _rejected(reason: str = "out_of_range") -> QuarantineRecord:
    return QuarantineRecord(0, reason, "flow 9e9 is above 500", b'{"flow": 9e9}', "t/p1", "mqtt", T0,
                            "p1", "flow", 9e9, T0, "flow")


def _write(folder: Path, count: int) -> IngestJournal:
    journal = IngestJournal(folder)
    journal.recover(0)
    for k in range(count):
        journal.append(_batch(k), SeenKeys([SeenSeq("mqtt", "p1", k + 1, (k + 3,), T0 + k)],
                                           [SeenDigest("http", f"d{k}", T0 + k)]), [_rejected()])
    return journal


def test_entries_come_back_as_written(tmp_path: Path) -> None:
    _write(tmp_path, 3).close()
    entries = IngestJournal(tmp_path).recover(0)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[2].batch == _batch(2)
    assert entries[2].seqs == [SeenSeq("mqtt", "p1", 3, (5,), T0 + 2)]
    assert entries[2].digests == [SeenDigest("http", "d2", T0 + 2)]
    assert entries[2].quarantine == [_rejected()]


def test_recover_skips_applied_entries_and_continues_the_count(tmp_path: Path) -> None:
    _write(tmp_path, 3).close()
    journal = IngestJournal(tmp_path)
    assert [e.seq for e in journal.recover(2)] == [3]
    assert journal.append(_batch(9)).seq == 4


def test_torn_tail_is_cut_off(tmp_path: Path) -> None:
    _write(tmp_path, 2).close()
    (segment,) = tmp_path.glob("*.tlj")
    whole = segment.stat().st_size
    with open(segment, "ab") as f:  # a crash in the middle of writing a third entry
        f.write(b"TLJ1\x40\x00\x00\x00partial")
    journal = IngestJournal(tmp_path)
    assert [e.seq for e in journal.recover(0)] == [1, 2]
    assert segment.stat().st_size == whole
    assert journal.append(_batch(3)).seq == 3


def test_corruption_before_the_tail_is_refused(tmp_path: Path) -> None:
    journal = IngestJournal(tmp_path, segment_bytes=1)  # one entry per segment
    journal.recover(0)
    for k in range(3):
        journal.append(_batch(k))
    journal.close()
    first = sorted(tmp_path.glob("*.tlj"))[0]
    data = bytearray(first.read_bytes())
    data[-5] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt at byte 0: checksum mismatch"):
        IngestJournal(tmp_path).recover(0)


def test_invalid_entries_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    journal = IngestJournal(tmp_path)
    journal.recover(0)
    with pytest.raises(ValidationError):
        journal.append(_batch(0), SeenKeys([SeenSeq("mqtt", "p1", 5, (3,))]))
    assert journal.last_seq == 0 and not list(tmp_path.glob("*.tlj"))


def test_release_deletes_applied_segments_only(tmp_path: Path) -> None:
    journal = IngestJournal(tmp_path, segment_bytes=1)
    journal.recover(0)
    for k in range(4):
        journal.append(_batch(k))
    assert len(list(tmp_path.glob("*.tlj"))) == 4
    journal.release(2)
    assert [e.seq for e in IngestJournal(tmp_path).recover(0)] == [3, 4]
    journal.close(applied=4)
    assert not list(tmp_path.glob("*.tlj"))


def test_merge_keeps_order_newest_dedupe_row_and_everything_else() -> None:
    entries = []
    for k in range(3):
        seen = SeenKeys([SeenSeq("mqtt", "p1", k + 1), SeenSeq("mqtt", f"other{k}", 1)],
                        [SeenDigest("http", f"d{k}", T0)], expire_before_ns=T0 + k if k != 1 else None)
        seqs, digests, expire = seen_rows(seen)
        entries.append(JournalEntry(k + 1, _batch(k), seqs, digests, expire, [_rejected()]))
    merged = merge(entries)
    assert merged.seq == 3 and merged.batch == ReadingBatch.concat([_batch(0), _batch(1), _batch(2)])
    assert [(r.device, r.watermark) for r in merged.seqs] == [("other0", 1), ("other1", 1), ("p1", 3),
                                                              ("other2", 1)]
    assert len(merged.digests) == 3 and len(merged.quarantine) == 3 and merged.expire_before_ns == T0 + 2


def test_a_payload_shared_by_many_rejected_readings_is_written_once(tmp_path: Path) -> None:
    journal = IngestJournal(tmp_path)
    journal.recover(0)
    payload = b"x" * 10_000  # one message, 100 of its readings rejected
    rejected = [QuarantineRecord(0, "unit_mismatch", "degF?", payload, "t/p1", "mqtt", T0, "p1", "flow",
                                 float(i), T0, f"flow[{i}]") for i in range(100)]
    journal.append(ReadingBatch.empty(), None, rejected)
    journal.close()
    assert sum(p.stat().st_size for p in tmp_path.glob("*.tlj")) < 3 * len(payload)  # not 100x
    (entry,) = IngestJournal(tmp_path).recover(0)
    assert entry.quarantine == rejected
