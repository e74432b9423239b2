"""``twinloop models …``: which learned models (detectors, calibrations, prognosers) the store keeps.

Imports only typer and the CLI context at the top (``twinloop --help`` stays fast); the runtime is
opened inside each command, without the analytics (listing needs none of them).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from twinloop.cli.context import DataDir, StoreUrl, console, friendly_errors, open_runtime, settings_from

app = typer.Typer(help="List the learned models kept in the store, with their versions.",
                  no_args_is_help=True)


def _when(ns: int) -> str:
    from twinloop.core.clock import ns_to_datetime

    return ns_to_datetime(ns).isoformat(timespec="seconds")


def _learned_from(meta: dict[str, Any]) -> str:
    twins = ", ".join(str(t) for t in meta.get("twins", []))
    window = meta.get("window_ns")
    if isinstance(window, list) and len(window) == 2:
        twins += f" {_when(int(window[0]))} … {_when(int(window[1]))}"
    return twins.strip()


@app.command("list")
def list_models(
    kind: Annotated[str | None, typer.Option(help="only this kind: detector, calibration …")] = None,
    key: Annotated[str | None, typer.Option(help="only this twin or asset type")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Every kept version, by kind, key and version."""
    with friendly_errors(), open_runtime(settings_from(data_dir, store), analytics=False) as rt:
        versions = rt.artifacts.versions(kind, key)
        if as_json:
            console.print_json(json.dumps([
                {"kind": a.kind, "key": a.key, "version": a.version, "created_ns": a.created_ns,
                 "meta": a.meta} for a in versions]))
            return
        from rich.table import Table

        table = Table(title=f"{len(versions)} kept model versions")
        for col in ("kind", "key", "version", "model", "learned from", "created"):
            table.add_column(col)
        for a in versions:
            table.add_row(a.kind, a.key, str(a.version), str(a.meta.get("model", "")),
                          _learned_from(a.meta), _when(a.created_ns))
        console.print(table)


@app.command("show")
def show_model(
    kind: Annotated[str, typer.Argument(help="detector, calibration, prognoser …")],
    key: Annotated[str, typer.Argument(help="the twin or asset type")],
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Every version of one model with its metadata (what it learned from, metrics), newest last."""
    with friendly_errors(), open_runtime(settings_from(data_dir, store), analytics=False) as rt:
        versions = rt.artifacts.get(kind, key)
        for a in versions:
            mark = " (in force)" if a is versions[-1] else ""
            console.print(f"[bold]{a.kind} {a.key} version {a.version}[/]{mark}, kept {_when(a.created_ns)}")
            console.print_json(json.dumps(a.meta, sort_keys=True))


__all__ = ["app"]
