"""What every CLI command shares: common options, opening the runtime, and friendly errors.

This module is imported by every command's module, so it imports nothing heavy at the top:
``twinloop --help`` must not pay for the runtime, the store or numpy (see ``tests/unit/cli``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from twinloop.runtime.settings import Settings
    from twinloop.runtime.wiring import Runtime

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="where embedded data lives [env TWINLOOP_DATA_DIR]")
]
StoreUrl = Annotated[
    str | None,
    typer.Option("--store", help="store URL, e.g. duckdb:///x.duckdb [env TWINLOOP_STORE_URL]"),
]
PlantFile = Annotated[
    Path | None, typer.Option("--plant", help="plant file that seeds a new store [env TWINLOOP_PLANT]")
]


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn twinloop errors into one red line and an exit code, never a traceback."""
    from twinloop.core.errors import ConfigError, TwinloopError

    try:
        yield
    except TwinloopError as err:
        err_console.print(f"[bold red]error:[/] {err.message}")
        if err.hint:
            err_console.print(f"[dim]hint: {err.hint}[/]")
        raise typer.Exit(2 if isinstance(err, ConfigError) else 1) from None


def settings_from(
    data_dir: Path | None = None, store: str | None = None, plant: Path | None = None
) -> Settings:
    from twinloop.runtime.settings import load_settings

    return load_settings(data_dir=data_dir, store_url=store, plant=plant)


def open_runtime(settings: Settings, *, bootstrap: bool = False, analytics: bool = True) -> Runtime:
    """Open the runtime, explaining the usual cause when the DuckDB file is taken.

    Only the commands that hand out access to a new store (``init``, ``serve``, ``demo``) pass
    ``bootstrap=True``; inspection commands pass ``analytics=False`` and so start fast.
    """
    from twinloop.core.errors import StoreError
    from twinloop.runtime.wiring import Runtime

    try:
        return Runtime.open(settings, bootstrap=bootstrap, analytics=analytics)
    except StoreError as err:
        if "lock" in err.message.lower():
            raise StoreError(
                err.message,
                hint="another twinloop process (serve/demo) holds this store; stop it, "
                "use the API, or point --data-dir elsewhere",
            ) from err
        raise


def print_bootstrap_key(token: str | None) -> None:
    """Show the first admin key, once, where a person will see it."""
    if token:
        console.print("\n[bold yellow]Bootstrap admin key[/] (shown once, store it now):")
        console.print(f"  [bold]{token}[/]\n", soft_wrap=True)
        sys.stdout.flush()


__all__ = [
    "DataDir", "PlantFile", "StoreUrl", "console", "err_console", "friendly_errors",
    "open_runtime", "print_bootstrap_key", "settings_from",
]
