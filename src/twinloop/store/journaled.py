"""`JournaledStore`: a `Store` whose ingest commits are durable in an `IngestJournal` first.

The ingest pipeline calls ``journal_ingested`` instead of ``append_ingested``: the entry is written
and synced to the journal (well under a millisecond), so the pipeline can acknowledge the broker at
once; an applier thread stores journaled entries in the inner store, several per transaction, and
records the last applied seq in the same transaction (``meta['ingest_journal_applied']``). A
crash loses nothing acknowledged: on open, entries after that seq are applied before anything
else runs, and then their segments are deleted.

Every other method is the inner store's, called after the entries journaled before it were applied
(read-your-writes: a reader never misses a reading that was acknowledged before it asked); ``latest``
does not wait: it overlays the entries still pending on the inner store's answer.
``append`` is journaled too; ``append_ingested`` stays synchronous, for callers that need the
quarantine ids back. Model artifacts go straight to the inner store: the journal holds only
ingested data, so they need not wait for it (a retrain is not held up by a busy applier).

::

    pipeline ──journal_ingested──► IngestJournal (fsync) ──► ack
                                       │ applier thread, merged entries
                                       ▼
                       inner.append_ingested(..., meta={applied: seq}) ──► reads see them
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twinloop.core.errors import StoreError
from twinloop.core.readings import ReadingBatch
from twinloop.store.journal import IngestJournal, JournalEntry, merge
from twinloop.store.protocol import Artifact, QuarantineEntry, SeenDeltaLike, Store

_log = logging.getLogger(__name__)
APPLIED_KEY = "ingest_journal_applied"
AppliedListener = Callable[[Sequence[JournalEntry], int], None]


class _Delta:
    """A merged entry's dedupe change in the shape `Store.append_ingested` takes."""

    def __init__(self, entry: JournalEntry) -> None:
        self.seqs = entry.seqs
        self.digests = entry.digests
        self.expire_before_ns = entry.expire_before_ns


class JournaledStore:
    """``inner`` plus an ingest journal in ``folder``; see the module docstring.

    ``max_pending_readings`` bounds the readings journaled but not yet applied (``journal_ingested``
    waits beyond it, which pushes back on the pipeline); ``apply_readings`` caps one apply transaction;
    ``failing_wait_s`` is how long a reader waits for a failing store before it is told so.
    """

    def __init__(
        self,
        inner: Store,
        folder: str | Path,
        *,
        max_pending_readings: int = 2_000_000,
        apply_readings: int = 500_000,
        sync: bool = True,
        segment_bytes: int = 64 * 2**20,
        failing_wait_s: float = 2.0,
    ) -> None:
        self.inner = inner
        self.failing_wait_s = failing_wait_s
        self.max_pending_readings = max_pending_readings
        self.apply_readings = apply_readings
        self._journal = IngestJournal(folder, segment_bytes=segment_bytes, sync=sync)
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._pending: deque[JournalEntry] = deque()
        self._pending_readings = 0
        self._failure: str | None = None
        self._failing_since = 0.0
        self._closing = False
        self._closed = False
        self._listeners: list[AppliedListener] = []
        applied = int(inner.get_meta(APPLIED_KEY) or 0)
        recovered = self._journal.recover(applied)
        if recovered:
            _log.info("applying %d ingest journal entries (%d readings) left by the last run",
                      len(recovered), sum(e.readings for e in recovered))
        for chunk in self._chunks(recovered):
            entry = merge(chunk)
            self._apply(entry)
            applied = entry.seq
        self._applied = applied
        self._journal.release(self._applied)
        self._thread = threading.Thread(target=self._run, name="store-journal-applier", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"JournaledStore({self.inner!r})"

    # --- the ingest path --------------------------------------------------------------------------
    def journal_ingested(
        self,
        batch: ReadingBatch,
        seen: SeenDeltaLike | None = None,
        quarantine: Sequence[QuarantineEntry] = (),
    ) -> int:
        """Like ``append_ingested`` (readings, dedupe rows and quarantine records, all or nothing),
        durable when it returns; stored in the inner store shortly after. Returns the entry's seq
        (for a commit with nothing in it, the seq of the newest entry: nothing is written)."""
        if not len(batch) and not quarantine and (seen is None or not (
                seen.seqs or seen.digests or seen.expire_before_ns is not None)):
            return self._journal.last_seq
        with self._cond:
            while self._pending_readings >= self.max_pending_readings and not self._closing:
                self._cond.wait(0.5)
            if self._closing:
                raise StoreError("the store is closing; nothing of this batch was stored")
        with self._write_lock:
            entry = self._journal.append(batch, seen, quarantine)
            with self._cond:
                self._pending.append(entry)
                self._pending_readings += entry.readings
                self._cond.notify_all()
        return entry.seq

    def on_applied(self, listener: AppliedListener) -> None:
        """Call ``listener(entries, applied_ns)`` on the applier thread after entries reach the inner
        store (benchmarks measure publish-to-queryable latency with it); it must be quick."""
        self._listeners.append(listener)

    def append(self, batch: ReadingBatch) -> int:
        """`Store.append` through the journal: durable on return, without waiting for the inner store
        (the runtime appends estimates right after each ingest commit, on its event loop)."""
        self.journal_ingested(batch)
        return len(batch)

    @property
    def pending_readings(self) -> int:
        """Readings journaled (and acknowledgeable) but not yet in the inner store."""
        return self._pending_readings

    @property
    def applied_seq(self) -> int:
        return self._applied

    def wait_applied(self, seq: int | None = None, timeout: float | None = None) -> bool:
        """Wait until entry ``seq`` (default: every entry journaled so far) is in the inner store;
        False after ``timeout``.

        While applying fails, `StoreError` says why: after ``timeout``, or (without one) once the
        failure is ``failing_wait_s`` old; the entries stay journaled and are applied later.
        """
        target = self._journal.last_seq if seq is None else seq
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._applied < target:
                now = time.monotonic()
                waited_enough = (now >= deadline if deadline is not None
                                 else now - self._failing_since >= self.failing_wait_s)
                if self._failure is not None and waited_enough:
                    raise StoreError(f"the store is failing: {self._failure}",
                                     hint="ingested readings are kept in the journal and applied when "
                                          "it works again")
                if self._closed:
                    return False
                if deadline is not None and now >= deadline:
                    return False
                self._cond.wait(0.1)
        return True

    # --- reads --------------------------------------------------------------------------------------
    def latest(
        self, asset_ids: Sequence[str] | None = None, channels: Sequence[str] | None = None
    ) -> ReadingBatch:
        """The inner store's latest values overlaid with the journaled entries not yet applied: twin
        state is current as soon as a batch is acknowledged, without waiting for the applier (nor
        for a failing store)."""
        with self._cond:
            pending = [e.batch for e in self._pending if len(e.batch)]
        base = self.inner.latest(asset_ids, channels)  # includes whatever was applied meanwhile
        if not pending:
            return base
        tail = ReadingBatch.concat(pending).of(asset_ids, channels)
        return ReadingBatch.concat([base, tail]).newest()

    # --- model artifacts: the inner store's, without waiting for the journal ----------------------
    def put_artifact(
        self, kind: str, key: str, payload: bytes, meta: Mapping[str, Any], created_ns: int
    ) -> Artifact:
        return self.inner.put_artifact(kind, key, payload, meta, created_ns)

    def artifact(self, kind: str, key: str, version: int | None = None) -> Artifact | None:
        return self.inner.artifact(kind, key, version)

    def artifacts(self, kind: str | None = None, key: str | None = None) -> list[Artifact]:
        return self.inner.artifacts(kind, key)

    # --- everything else: the inner store, after the journal ---------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "inner":  # copy/pickle probes, or before __init__ set it
            raise AttributeError(name)
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def after_journal(*args: Any, **kwargs: Any) -> Any:
            self.wait_applied()
            return attr(*args, **kwargs)

        after_journal.__name__ = name
        after_journal.__doc__ = attr.__doc__
        return after_journal

    def close(self, timeout_s: float = 30.0) -> None:
        """Apply what is journaled (up to ``timeout_s``), stop the applier, close both; idempotent.
        Entries the inner store would not take stay in the journal for the next open."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        with self._cond:
            self._closed = True
            left = self._pending_readings
            self._cond.notify_all()
        if left:
            _log.warning("%d ingested readings stay in the journal %s and are stored at the next open",
                         left, self._journal.folder)
        with self._write_lock:
            self._journal.close(self._applied)
        self.inner.close()

    def __enter__(self) -> JournaledStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the applier ------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.05
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                take = self._take()
            entry = merge(take)
            try:
                self._apply(entry)
            except Exception as err:  # noqa: BLE001 - acknowledged data: keep it, retry, never drop
                with self._cond:
                    first = self._failure is None
                    if first:
                        self._failing_since = time.monotonic()
                    self._failure = str(err)
                    self._cond.notify_all()
                    if self._closing:
                        return  # stays journaled; applied at the next open
                if first:
                    _log.error("storing journaled readings failed: %s; retrying (they stay journaled)", err)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            with self._cond:
                if self._failure is not None:
                    _log.info("storing journaled readings works again")
                    self._failure = None
                for _ in take:
                    done = self._pending.popleft()
                    self._pending_readings -= done.readings
                self._applied = entry.seq
                self._cond.notify_all()
            applied_ns = time.time_ns()
            for listener in self._listeners:
                try:
                    listener(take, applied_ns)
                except Exception:  # an observer must not stop the applier
                    _log.exception("journal listener %r failed", listener)
            with self._write_lock:
                self._journal.release(entry.seq)

    def _take(self) -> list[JournalEntry]:
        """The oldest pending entries, up to ``apply_readings`` readings (at least one entry)."""
        take, n = [], 0
        for e in self._pending:
            if take and n + e.readings > self.apply_readings:
                break
            take.append(e)
            n += e.readings
        return take

    def _apply(self, entry: JournalEntry) -> None:
        self.inner.append_ingested(entry.batch, _Delta(entry), entry.quarantine,
                                   meta={APPLIED_KEY: str(entry.seq)})

    def _chunks(self, entries: list[JournalEntry]) -> list[list[JournalEntry]]:
        out: list[list[JournalEntry]] = []
        n = 0
        for e in entries:
            if not out or n + e.readings > self.apply_readings:
                out.append([])
                n = 0
            out[-1].append(e)
            n += e.readings
        return out


__all__ = ["APPLIED_KEY", "AppliedListener", "JournaledStore"]
