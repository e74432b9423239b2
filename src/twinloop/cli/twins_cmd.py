"""``twinloop twins …``: look at the twins in the local store."""

from __future__ import annotations

import json
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


app = typer.Typer(help="List and inspect twins.", no_args_is_help=True)


@app.command("list")
def list_twins(
    type_id: Annotated[str | None, typer.Option("--type", "-t", help="asset type id")] = None,
    where: Annotated[
        str | None, typer.Option(help='attribute filter as JSON, e.g. \'{"line": "A"}\'')
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """List twins, optionally of one type (subtypes included) and matching an attribute filter."""
    with friendly_errors():
        from twinloop.core.errors import ValidationError

        try:
            filt = json.loads(where) if where else None
        except json.JSONDecodeError as err:
            raise ValidationError(f"--where is not valid JSON: {err.msg}") from err
        with open_runtime(settings_from(data_dir, store), analytics=False) as rt:
            twins = rt.twins.list(type_id, filt)
            if as_json:
                console.print_json(json.dumps([t.to_dict() for t in twins]))
                return
            from rich.table import Table
            table = Table(title=f"{len(twins)} twins")
            for col in ("id", "type", "rev", "attributes"):
                table.add_column(col)
            for t in twins:
                attrs = ", ".join(f"{k}={v}" for k, v in sorted(t.attributes.items()))
                table.add_row(t.id, t.type_id, str(t.revision), attrs)
            console.print(table)


@app.command("show")
def show_twin(
    twin_id: Annotated[str, typer.Argument(help="twin id")],
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Show one twin: properties, relationships and latest readings."""
    from twinloop.core.clock import ns_to_datetime

    with friendly_errors(), open_runtime(settings_from(data_dir, store), analytics=False) as rt:
        twin = rt.twins.get(twin_id)
        console.print(f"[bold]{twin.id}[/] ({twin.type_id}), revision {twin.revision}, "
                      f"updated {ns_to_datetime(twin.updated_ns).isoformat()}")
        for section in ("attributes", "reported", "desired"):
            values = getattr(twin, section)
            if values:
                console.print(f"[cyan]{section}[/]: " + json.dumps(values, sort_keys=True))
        g = rt.twins.graph
        rels = g.relationships(source=twin_id) + g.relationships(target=twin_id)
        if rels:
            console.print("[cyan]relationships[/]:")
            for r in rels:
                console.print(f"  {r.source} --{r.name}--> {r.target}")
        latest = rt.state.latest(twin_id)
        if latest:
            from rich.table import Table
            table = Table(title="latest readings")
            for col in ("channel", "value", "unit", "time", "quality"):
                table.add_column(col)
            for c in latest:
                table.add_row(c.channel, f"{c.value:.4g}", c.unit or "",
                              ns_to_datetime(c.ts_ns).isoformat(), str(c.quality))
            console.print(table)


__all__ = ["app"]
