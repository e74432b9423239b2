"""``twinloop alerts …``: list, acknowledge and resolve alerts in the local store."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from twinloop.cli.context import DataDir, StoreUrl, console, friendly_errors, open_runtime, settings_from

if TYPE_CHECKING:
    from twinloop.runtime.alert_service import AlertService
    from twinloop.runtime.wiring import Runtime

app = typer.Typer(help="List, acknowledge and resolve alerts.", no_args_is_help=True)
Actor = Annotated[str, typer.Option("--as", help="who you are, for the audit trail")]


def _service(rt: Runtime) -> AlertService:
    from twinloop.runtime.alert_service import AlertService

    service = getattr(rt, "alerts", None)
    return service if service is not None else AlertService(rt.store, rt.twins, rt.bus, rt.clock)


def _actor(name: str) -> str:
    return f"cli:{name}"


@app.command("list")
def list_alerts(
    state: Annotated[str | None, typer.Option(help="open, acknowledged, resolved or active")] = None,
    twin: Annotated[str | None, typer.Option("--twin", "-t", help="only this twin")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """List alerts, newest first."""
    from twinloop.core.clock import ns_to_datetime

    with friendly_errors(), open_runtime(settings_from(data_dir, store)) as rt:
        alerts = _service(rt).list(state, twin)
        if as_json:
            console.print_json(json.dumps([
                {"id": a.alert_id, "twin_id": a.twin_id, "state": a.state, "severity": a.severity,
                 "detector": a.detector, "channels": a.channels, "occurrences": a.occurrences,
                 "raised_ns": a.raised_ns, "message": a.message} for a in alerts
            ]))
            return
        from rich.table import Table
        table = Table(title=f"{len(alerts)} alerts")
        table.add_column("id", no_wrap=True)
        for col in ("twin", "state", "severity", "channels", "seen", "raised"):
            table.add_column(col)
        for a in alerts:
            table.add_row(a.alert_id, a.twin_id, a.state, a.severity, ", ".join(a.channels),
                          str(a.occurrences), ns_to_datetime(a.raised_ns).isoformat(timespec="seconds"))
        console.print(table)


@app.command("ack")
def ack(
    alert_id: Annotated[str, typer.Argument(help="alert id (from `alerts list`)")],
    note: Annotated[str, typer.Option(help="why, or what you will do")] = "",
    actor: Actor = "operator",
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Acknowledge an open alert."""
    with friendly_errors(), open_runtime(settings_from(data_dir, store)) as rt:
        a = _service(rt).acknowledge(alert_id, actor=_actor(actor), note=note)
        console.print(f"{a.alert_id} on {a.twin_id}: {a.state}")


@app.command("resolve")
def resolve(
    alert_id: Annotated[str, typer.Argument(help="alert id (from `alerts list`)")],
    reason: Annotated[str, typer.Option(help="what fixed it, or why it was a false alarm")] = "",
    actor: Actor = "operator",
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Resolve an open or acknowledged alert."""
    with friendly_errors(), open_runtime(settings_from(data_dir, store)) as rt:
        a = _service(rt).resolve(alert_id, actor=_actor(actor), reason=reason)
        console.print(f"{a.alert_id} on {a.twin_id}: {a.state}")


__all__ = ["app"]
