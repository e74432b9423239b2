"""``twinloop types …``: validate asset type files and convert them to and from DTDL v3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from twinloop.cli.context import console, friendly_errors

if TYPE_CHECKING:
    pass


app = typer.Typer(help="Validate asset types; import and export DTDL v3.", no_args_is_help=True)
Files = Annotated[list[Path], typer.Argument(help="files or directories", exists=True)]


@app.command("validate")
def validate(files: Files) -> None:
    """Check asset type YAML files; errors name the file, the path inside it and the fix."""
    from twinloop.twins.registry import TypeRegistry

    with friendly_errors():
        registry = TypeRegistry.from_paths(files)
        registry.check()
        from rich.table import Table
        table = Table(title=f"{len(registry.ids())} asset types valid")
        for col in ("id", "channels", "properties", "commands", "relationships", "components"):
            table.add_column(col)
        for type_id in registry.ids():
            t = registry.resolve(type_id)
            table.add_row(t.id, str(len(t.channels)), str(len(t.properties)),
                          str(len(t.commands)), ", ".join(r.name for r in t.relationships),
                          ", ".join(sorted(t.components)))
        console.print(table)


@app.command("import-dtdl")
def import_dtdl(
    files: Files,
    out: Annotated[Path, typer.Option("--out", "-o", help="directory for the YAML files")] = Path(
        "types"
    ),
) -> None:
    """Convert DTDL v2/v3 interfaces (JSON) into twinloop asset type YAML, one file per type."""
    import yaml

    from twinloop.twins.dtdl import load_dtdl
    from twinloop.twins.loader import load_asset_types

    with friendly_errors():
        types = load_dtdl(files)
        out.mkdir(parents=True, exist_ok=True)
        for t in types:
            path = out / f"{t.id}.yaml"
            data = t.model_dump(mode="json", exclude_defaults=True)
            path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
            console.print(f"wrote {path}")
        load_asset_types([out])  # what we wrote must load back


@app.command("export-dtdl")
def export(
    files: Files,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="JSON file; stdout if absent")
    ] = None,
) -> None:
    """Export asset type YAML as a DTDL v3 array of interfaces."""
    from twinloop.twins.dtdl import export_dtdl
    from twinloop.twins.registry import TypeRegistry

    with friendly_errors():
        registry = TypeRegistry.from_paths(files)
        registry.check()
        doc = json.dumps(export_dtdl([registry.get(i) for i in registry.ids()]), indent=2)
        if out is None:
            typer.echo(doc)
        else:
            out.write_text(doc + "\n")
            console.print(f"wrote {len(registry.ids())} interfaces to {out}")


__all__ = ["app"]
