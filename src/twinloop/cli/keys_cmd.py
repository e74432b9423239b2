"""``twinloop keys …``: API keys for the local store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from twinloop.cli.context import (
    DataDir,
    StoreUrl,
    console,
    friendly_errors,
    open_runtime,
    settings_from,
)

if TYPE_CHECKING:
    pass


app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def create_key(
    role: Annotated[str, typer.Option(help="viewer, operator, engineer or admin")],
    name: Annotated[str, typer.Option(help="who or what the key is for")] = "cli",
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Create a key; its token is printed once and cannot be shown again."""
    with friendly_errors(), open_runtime(settings_from(data_dir, store), analytics=False) as rt:
        record, token = rt.keys.create(name, role, actor="cli")
        console.print(f"created key {record.key_id} ({record.role}) for {record.name!r}")
        console.print(token)


@app.command("list")
def list_keys(data_dir: DataDir = None, store: StoreUrl = None) -> None:
    """List keys (never their secrets)."""
    from twinloop.core.clock import ns_to_datetime

    with friendly_errors(), open_runtime(settings_from(data_dir, store), analytics=False) as rt:
        from rich.table import Table
        table = Table()
        for col in ("key id", "name", "role", "created", "revoked"):
            table.add_column(col)
        for k in rt.keys.list():
            table.add_row(k.key_id, k.name, k.role, ns_to_datetime(k.created_ns).isoformat(),
                          "yes" if k.revoked else "")
        console.print(table)


@app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="the key id from `keys list`")],
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Revoke a key at once."""
    with friendly_errors(), open_runtime(settings_from(data_dir, store), analytics=False) as rt:
        rt.keys.revoke(key_id, actor="cli")
        console.print(f"revoked {key_id}")


__all__ = ["app"]
