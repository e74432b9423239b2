"""`open_store` URL parsing and backend registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinloop.core.errors import ConfigError
from twinloop.store import factory
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.factory import open_store, register_backend
from twinloop.store.journaled import JournaledStore
from twinloop.store.memory import MemoryStore


def test_memory_url() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_duckdb_absolute_url(tmp_path: Path) -> None:
    path = tmp_path / "abs.duckdb"
    store = open_store(f"duckdb://{path}")  # duckdb:// + /abs/path = duckdb:///abs/path
    assert isinstance(store, JournaledStore) and isinstance(store.inner, DuckDBStore)
    assert store.path == str(path)
    store.close()
    assert path.exists()
    assert (tmp_path / "abs.duckdb.journal").is_dir()  # the ingest journal lives beside the file


def test_duckdb_relative_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("duckdb://data/rel.duckdb")
    assert isinstance(store, JournaledStore) and store.path == "data/rel.duckdb"
    store.close()
    assert (tmp_path / "data" / "rel.duckdb").exists()


def test_duckdb_in_memory_url() -> None:
    store = open_store("duckdb://:memory:")
    assert isinstance(store, DuckDBStore) and store.path == ":memory:"
    store.close()


def test_bare_duckdb_path(tmp_path: Path) -> None:
    store = open_store(tmp_path / "bare.duckdb")
    assert isinstance(store, JournaledStore) and isinstance(store.inner, DuckDBStore)
    store.close()


@pytest.mark.parametrize("url", ["sqlite:///x.db", "store.db", "", "duckdb://", "postgres://h/db"])
def test_unsupported_urls_name_the_supported_schemes(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        open_store(url)
    text = str(err.value)
    assert url in text if url else "store URL" in text
    if url != "duckdb://":
        assert "memory://" in text and "duckdb://" in text


def test_register_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "_BACKENDS", dict(factory._BACKENDS))
    seen: list[str] = []

    def make(url: str) -> MemoryStore:
        seen.append(url)
        return MemoryStore()

    register_backend("postgresql", make)
    assert isinstance(open_store("postgresql://user@host/db"), MemoryStore)
    assert seen == ["postgresql://user@host/db"]
    with pytest.raises(ConfigError, match="already registered"):
        register_backend("postgresql", make)
    register_backend("postgresql", make, replace=True)
