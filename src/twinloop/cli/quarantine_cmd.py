"""``twinloop quarantine …``: rejected readings, replayed after a fix or discarded (kept for audit)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from twinloop.cli.context import DataDir, PlantFile, StoreUrl, console, friendly_errors, open_runtime

if TYPE_CHECKING:
    from twinloop.runtime.ingest_service import IngestService
    from twinloop.runtime.wiring import Runtime
    from twinloop.store.protocol import QuarantineRecord

app = typer.Typer(help="List, replay and discard quarantined readings.", no_args_is_help=True)

MappingFile = Annotated[
    Path | None,
    typer.Option("--mapping", help="ingest mapping file used to replay [env TWINLOOP_MAPPING]"),
]
Ids = Annotated[list[int] | None, typer.Argument(help="quarantine ids, from `quarantine list`")]
STATUSES = ("open", "replayed", "discarded", "all")


def _open(data_dir: Path | None, store: str | None, mapping: Path | None = None,
          plant: Path | None = None, *, analytics: bool = False) -> Runtime:
    """Listing and discarding need no analytics; a replay feeds them what it stores."""
    from twinloop.runtime.settings import load_settings

    return open_runtime(load_settings(data_dir=data_dir, store_url=store, mapping=mapping, plant=plant,
                                      ingest=False), analytics=analytics)


def _service(rt: Runtime) -> IngestService:
    return rt.ingest  # type: ignore[attr-defined, no-any-return]


def _payload(r: QuarantineRecord) -> dict[str, str]:
    try:
        return {"payload": r.payload.decode("utf-8"), "payload_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"payload": base64.b64encode(r.payload).decode(), "payload_encoding": "base64"}


def _plain(r: QuarantineRecord) -> dict[str, Any]:
    from twinloop.core.clock import ns_to_datetime

    return {
        "id": r.id, "status": r.status, "reason": r.reason, "message": r.message, "twin_id": r.twin_id,
        "channel": r.channel, "value": r.value,
        "ts": None if r.ts_ns is None else ns_to_datetime(r.ts_ns).isoformat(), "item": r.item,
        "source": r.source, "topic": r.topic, "received": ns_to_datetime(r.received_ns).isoformat(),
        "attempts": r.attempts, **_payload(r),
    }


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("list")
def list_records(
    reason: Annotated[str | None, typer.Option(help="only this reason code, e.g. unknown_twin")] = None,
    twin: Annotated[str | None, typer.Option(help="only records of this twin")] = None,
    status: Annotated[str, typer.Option(help="open, replayed, discarded or all")] = "open",
    after: Annotated[int, typer.Option(help="only ids above this one (paging)")] = 0,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, with the raw payloads")] = False,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """List quarantined records with their reason, twin, channel and where they came from."""
    from twinloop.core.clock import ns_to_datetime
    from twinloop.core.errors import ValidationError
    from twinloop.ingest.rejected import REASONS

    with friendly_errors():
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}", hint=f"use one of {', '.join(STATUSES)}")
        if reason is not None and reason not in REASONS:
            raise ValidationError(f"unknown reason {reason!r}", hint=f"use one of {', '.join(REASONS)}")
        with _open(data_dir, store) as rt:
            service = _service(rt)
            records = service.list_quarantine(reason=reason, twin_id=twin, after=after, limit=limit,
                                              status=None if status == "all" else status)  # type: ignore[arg-type]
            total = service.count_quarantine(reason)
        if as_json:
            console.print_json(json.dumps([_plain(r) for r in records]))
            return
        from rich.table import Table
        table = Table(title=f"quarantine: {len(records)} shown, {total} open", caption=(
            "source, topic and raw payload: --json" if records else None))
        table.add_column("id", justify="right", no_wrap=True)
        table.add_column("received (UTC)")
        table.add_column("reason", no_wrap=True)
        table.add_column("twin / channel", overflow="fold")
        table.add_column("value", justify="right", no_wrap=True)
        table.add_column("message", ratio=1, min_width=16, overflow="fold")
        for r in records:
            where = "/".join(p for p in (r.twin_id, r.channel) if p)
            table.add_row(str(r.id), ns_to_datetime(r.received_ns).strftime("%m-%d %H:%M:%S"), r.reason,
                          escape(where), "" if r.value is None else f"{r.value:g}",
                          escape(_short(r.message, 200)))
        console.print(table)
        if len(records) == limit:
            console.print(f"[dim]more: --after {records[-1].id}[/]")


@app.command("replay")
def replay(
    ids: Ids = None,
    all_: Annotated[bool, typer.Option("--all", help="every open record (up to --limit)")] = False,
    reason: Annotated[str | None, typer.Option(help="every open record with this reason")] = None,
    twin: Annotated[str | None, typer.Option(help="every open record of this twin")] = None,
    limit: Annotated[int, typer.Option(help="at most this many records by filter")] = 1000,
    plant: PlantFile = None,
    mapping: MappingFile = None,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Ingest records again with the current mapping, types and twins (after fixing the cause).

    Replay needs the asset types: pass the plant file (or set TWINLOOP_PLANT); the mapping file
    defaults to the mapping.yaml beside it.
    """
    from twinloop.core.errors import ConfigError, ValidationError

    with friendly_errors():
        if not ids and not (all_ or reason or twin):
            raise ValidationError("name the records to replay",
                                  hint="give ids, --reason/--twin, or --all")
        if ids and (all_ or reason or twin):
            raise ValidationError("give either ids or --all/--reason/--twin, not both")
        with _open(data_dir, store, mapping, plant, analytics=True) as rt:
            if len(rt.registry) == 0:
                raise ConfigError("no asset types are loaded, so no reading could pass a replay",
                                  hint="pass --plant PLANT.yaml (or set TWINLOOP_PLANT or TWINLOOP_TYPES)")
            summary = _service(rt).replay(ids or None, reason=reason, twin_id=twin, actor="cli",
                                          limit=limit)
        console.print(f"replayed {len(summary.replayed)} record(s), {summary.readings} reading(s) stored; "
                      f"{len(summary.still_failing)} still failing")
        for problem in summary.problems:
            console.print(f"  [yellow]{escape(problem)}[/]", soft_wrap=True)
        if summary.new_records:
            console.print(f"new one-reading records: {', '.join(map(str, summary.new_records))}")


@app.command("discard")
def discard(
    ids: Annotated[list[int], typer.Argument(help="quarantine ids, from `quarantine list`")],
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Mark records discarded: they stay in the store for audit but leave the open list."""
    with friendly_errors(), _open(data_dir, store) as rt:
        changed = _service(rt).discard(ids, actor="cli")
        skipped = len(set(ids)) - changed
        console.print(f"discarded {changed} record(s)"
                      + (f"; {skipped} were not open (unknown, or already resolved)" if skipped else ""))


__all__ = ["app"]
