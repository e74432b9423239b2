"""Every store backend passes the whole `twinloop.store.checks` battery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from twinloop.store.checks import CHECKS, PERSISTENCE_CHECKS, Check, PersistenceCheck
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.journaled import JournaledStore
from twinloop.store.memory import MemoryStore
from twinloop.store.protocol import Store

# name -> (open a fresh store in a directory, whether its data survives close/reopen)
BACKENDS: dict[str, tuple[Callable[[Path], Store], bool]] = {
    "memory": (lambda _: MemoryStore(), False),
    "duckdb": (lambda d: DuckDBStore(d / "store.duckdb"), True),
    "duckdb-inmemory": (lambda _: DuckDBStore(":memory:"), False),
    "duckdb-journaled": (lambda d: JournaledStore(DuckDBStore(d / "j.duckdb"), d / "j.duckdb.journal"), True),  # type: ignore[dict-item]
}
PERSISTENT = [name for name, (_, persists) in BACKENDS.items() if persists]


@pytest.fixture
def open_backend(tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    opened: list[Store] = []

    def open_(name: str) -> Store:
        store = BACKENDS[name][0](tmp_path)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_store(check: Check, backend: str, open_backend: Callable[[str], Store]) -> None:
    store = open_backend(backend)
    assert isinstance(store, Store)
    check(store)


@pytest.mark.parametrize("backend", PERSISTENT)
@pytest.mark.parametrize("check", PERSISTENCE_CHECKS, ids=lambda c: c.__name__)
def test_store_persistence(
    check: PersistenceCheck, backend: str, open_backend: Callable[[str], Store]
) -> None:
    def reopen(store: Store) -> Store:
        store.close()
        return open_backend(backend)

    check(open_backend(backend), reopen)
