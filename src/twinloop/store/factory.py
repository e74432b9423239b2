"""`open_store(url)`: pick a backend from one settings string, and let new backends plug in.

>>> open_store("memory://")
MemoryStore()
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twinloop.core.errors import ConfigError
from twinloop.store.protocol import Store

#: A backend factory receives the whole URL (so a server backend can parse host, user, …).
BackendFactory = Callable[[str], Store]

_BACKENDS: dict[str, BackendFactory] = {}
_LOCK = threading.Lock()


def register_backend(scheme: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make ``scheme://…`` URLs open with ``factory``; refuses to shadow a scheme by accident."""
    scheme = scheme.lower().rstrip(":/")
    with _LOCK:
        if scheme in _BACKENDS and not replace:
            raise ConfigError(
                f"store scheme {scheme!r} is already registered",
                hint="pass replace=True to override it",
            )
        _BACKENDS[scheme] = factory


def supported_schemes() -> list[str]:
    """The schemes `open_store` understands right now."""
    with _LOCK:
        return list(_BACKENDS)


def _memory(url: str) -> Store:
    from twinloop.store.memory import MemoryStore

    return MemoryStore()


def _duckdb_path(url: str) -> str:
    if url.lower().startswith("duckdb://"):
        # duckdb:///abs/path -> /abs/path ; duckdb://rel/path -> rel/path ; duckdb://:memory:
        path = url[len("duckdb://") :]
    else:
        path = url
    if not path:
        raise ConfigError(
            f"store URL {url!r} has no file path",
            hint="use duckdb:///absolute/path.duckdb, duckdb://relative.duckdb or duckdb://:memory:",
        )
    return path if path == ":memory:" else str(Path(path).expanduser())


def _duckdb(url: str) -> Store:
    """A DuckDB file comes with its ingest journal beside it (``<file>.journal/``), so acknowledging
    ingested data never waits for a DuckDB checkpoint; see `twinloop.store.journaled`."""
    from twinloop.store.duckdb_store import DuckDBStore
    from twinloop.store.journaled import JournaledStore

    path = _duckdb_path(url)
    store = DuckDBStore(path)
    if path == ":memory:":
        return store
    try:
        journaled: Any = JournaledStore(store, f"{path}.journal")
    except BaseException:
        store.close()
        raise
    return journaled  # type: ignore[no-any-return]


register_backend("memory", _memory)
register_backend("duckdb", _duckdb)


def open_store(url: str | Path) -> Store:
    """Open the store named by ``url``: ``memory://``, ``duckdb:///abs.duckdb``,
    ``duckdb://relative.duckdb`` or a bare path ending in ``.duckdb``."""
    text = str(url).strip()
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
    elif text.lower().endswith(".duckdb"):
        scheme, text = "duckdb", f"duckdb://{text}"
    else:
        scheme = ""
    with _LOCK:
        factory = _BACKENDS.get(scheme)
        schemes = sorted(_BACKENDS)
    if factory is None:
        raise ConfigError(
            f"unsupported store URL {text!r}",
            hint=f"use one of the schemes {', '.join(s + '://' for s in schemes)} "
            "or a path ending in .duckdb",
        )
    return factory(text)


__all__ = ["BackendFactory", "open_store", "register_backend", "supported_schemes"]
