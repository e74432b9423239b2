"""The model-artifact part of the store conformance battery (`twinloop.store.checks` runs it).

What a user would notice: versions counted 1, 2, … per (kind, key) and never reused, even by
writers racing each other; the latest version is what a restart loads; metadata and payload come
back exactly; a bad artifact is refused before anything is stored; and, for a persistent store,
all of it survives a restart and numbering goes on where it stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from twinloop.core.errors import ValidationError
from twinloop.store.protocol import Artifact, Store

T0 = 1_700_000_000 * 1_000_000_000
META = {"twins": ["p1"], "window": [T0, T0 + 3600], "metrics": {"loss": 0.25}, "model": "pca"}


@contextmanager
def _refused() -> Iterator[None]:
    try:
        yield
    except ValidationError:
        return
    raise AssertionError("expected ValidationError, nothing was raised")


def _summary(a: Artifact) -> tuple[str, str, int, int]:
    return a.kind, a.key, a.version, a.created_ns


def check_artifact_versions(store: Store) -> None:
    assert store.artifact("detector", "p1") is None and store.artifacts() == []
    a1 = store.put_artifact("detector", "p1", b"\x00one", META, T0)
    a2 = store.put_artifact("detector", "p1", b"two\xff", {"model": "pca", "n": 2}, T0 + 1)
    other = store.put_artifact("detector", "p2", b"p2", {}, T0 + 2)
    cal = store.put_artifact("calibration", "p1", b"cal", {}, T0 + 3)
    assert (a1.version, a2.version, other.version, cal.version) == (1, 2, 1, 1)
    latest = store.artifact("detector", "p1")
    assert latest is not None and (latest.version, latest.payload) == (2, b"two\xff")
    first = store.artifact("detector", "p1", 1)
    assert first is not None and first.payload == b"\x00one" and first.meta == META
    assert first.created_ns == T0
    assert store.artifact("detector", "p1", 3) is None
    assert store.artifact("detector", "p3") is None and store.artifact("prognoser", "p1") is None


def check_artifact_listing(store: Store) -> None:
    store.put_artifact("detector", "p2", b"x", {"n": 1}, T0)
    store.put_artifact("detector", "p1", b"y", {"n": 2}, T0 + 1)
    store.put_artifact("detector", "p1", b"z", {"n": 3}, T0 + 2)
    store.put_artifact("prognoser", "Pump", b"w", {"n": 4}, T0 + 3)
    everything = store.artifacts()
    assert [_summary(a) for a in everything] == [
        ("detector", "p1", 1, T0 + 1), ("detector", "p1", 2, T0 + 2), ("detector", "p2", 1, T0),
        ("prognoser", "Pump", 1, T0 + 3)]
    assert [a.meta["n"] for a in everything] == [2, 3, 1, 4]  # listings carry the metadata
    assert [a.version for a in store.artifacts(kind="detector", key="p1")] == [1, 2]
    assert [a.key for a in store.artifacts(kind="detector")] == ["p1", "p1", "p2"]
    assert [a.kind for a in store.artifacts(key="Pump")] == ["prognoser"]
    assert store.artifacts(kind="calibration") == []


def check_artifact_refuses_bad_input(store: Store) -> None:
    with _refused():
        store.put_artifact("", "p1", b"x", {}, T0)
    with _refused():
        store.put_artifact("detector", "", b"x", {}, T0)
    with _refused():
        store.put_artifact("detector", "p1", "not bytes", {}, T0)  # type: ignore[arg-type]
    with _refused():
        store.put_artifact("detector", "p1", b"x", {"bad": object()}, T0)
    with _refused():
        store.put_artifact("detector", "p1", b"x", {"nan": float("nan")}, T0)
    assert store.artifacts() == []  # nothing of a refused artifact was stored
    kept = store.put_artifact("detector", "p1", bytearray(b"ok"), {"t": (1, 2)}, T0)
    assert kept.version == 1 and kept.meta == {"t": [1, 2]}  # stored as JSON gives it back
    got = store.artifact("detector", "p1")
    assert got is not None and got.payload == b"ok" and got.meta == {"t": [1, 2]}


def check_artifact_meta_is_a_copy(store: Store) -> None:
    meta = {"metrics": {"loss": 1.0}}
    store.put_artifact("detector", "p1", b"x", meta, T0)
    meta["metrics"]["loss"] = 9.0
    got = store.artifact("detector", "p1")
    assert got is not None and got.meta == {"metrics": {"loss": 1.0}}
    got.meta["metrics"]["loss"] = 5.0
    again = store.artifact("detector", "p1")
    assert again is not None and again.meta == {"metrics": {"loss": 1.0}}


def check_concurrent_artifact_versions(store: Store) -> None:
    errors: list[BaseException] = []
    versions: list[int] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        try:
            for i in range(5):
                v = store.put_artifact("detector", "p1", f"{k}:{i}".encode(), {"k": k}, T0 + i).version
                with lock:
                    versions.append(v)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(versions) == list(range(1, 21))  # each version given exactly once
    assert [a.version for a in store.artifacts("detector", "p1")] == list(range(1, 21))


def check_reopen_keeps_artifacts(store: Store, reopen: Callable[[Store], Store]) -> None:
    store.put_artifact("detector", "p1", b"\x00v1", META, T0)
    store.put_artifact("detector", "p1", b"\x00v2", {"n": 2}, T0 + 1)
    store = reopen(store)
    try:
        latest = store.artifact("detector", "p1")
        assert latest is not None and (latest.version, latest.payload) == (2, b"\x00v2")
        first = store.artifact("detector", "p1", 1)
        assert first is not None and first.meta == META and first.payload == b"\x00v1"
        nxt = store.put_artifact("detector", "p1", b"v3", {}, T0 + 2)
        assert nxt.version == 3  # numbering goes on after a restart
    finally:
        store.close()


ARTIFACT_CHECKS: list[Callable[[Store], None]] = [
    check_artifact_versions,
    check_artifact_listing,
    check_artifact_refuses_bad_input,
    check_artifact_meta_is_a_copy,
    check_concurrent_artifact_versions,
]
ARTIFACT_PERSISTENCE_CHECKS: list[Callable[[Store, Callable[[Store], Store]], None]] = [
    check_reopen_keeps_artifacts,
]

__all__ = ["ARTIFACT_CHECKS", "ARTIFACT_PERSISTENCE_CHECKS"] + [
    c.__name__ for c in [*ARTIFACT_CHECKS, *ARTIFACT_PERSISTENCE_CHECKS]
]
