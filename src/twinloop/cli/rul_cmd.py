"""``twinloop rul …``: remaining useful life of twins — one twin, or which ones are likely to fail next."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from twinloop.cli.context import DataDir, StoreUrl, console, friendly_errors, open_runtime, settings_from
from twinloop.core.clock import ns_to_datetime
from twinloop.runtime.rul_service import HORIZONS_H, RulService, RulUpdated, parse_horizons
from twinloop.runtime.wiring import Runtime

app = typer.Typer(help="Remaining useful life: per twin, and across the fleet.", no_args_is_help=True)

HorizonOpt = Annotated[
    list[str] | None,
    typer.Option("--horizon", "-H", help="extra P(fail within) horizon: 36h, 10d; repeat"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _service(rt: Runtime) -> RulService:
    return getattr(rt, "rul", None) or RulService(rt.store, rt.twins, rt.bus, rt.clock)


def _as_dict(e: RulUpdated, extra: dict[str, float]) -> dict:
    return {"twin_id": e.twin_id, "model": e.model, "unit": e.unit, "mean": e.mean, "std": e.std,
            "interval80": list(e.interval(0.8)),
            "p_fail": {**e.p_fail, **{k: e.p_fail_within(h) for k, h in extra.items()}},
            "drivers": e.drivers, "as_of": ns_to_datetime(e.as_of_ns).isoformat()}


@app.command("show")
def show(
    twin_id: Annotated[str, typer.Argument(help="twin id")],
    horizon: HorizonOpt = None,
    update: Annotated[bool, typer.Option("--update", help="recompute from stored readings first")] = False,
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """One twin's RUL: mean, 80 % interval, P(fail within 24 h / 48 h / 7 d), and what drove it."""
    with friendly_errors(), open_runtime(settings_from(data_dir, store)) as rt:
        extra = parse_horizons(horizon or [])
        service = _service(rt)
        e = service.update(twin_id) if update else service.get(twin_id)
        if as_json:
            console.print_json(json.dumps(_as_dict(e, extra)))
            return
        lo, hi = e.interval(0.8)
        console.print(f"[bold]{e.twin_id}[/]: RUL {e.mean:,.0f} {e.unit} (80 % interval {lo:,.0f}–{hi:,.0f} "
                      f"{e.unit}), model {e.model}, as of {ns_to_datetime(e.as_of_ns).isoformat()}")
        p_fail = {**e.p_fail, **{k: e.p_fail_within(h) for k, h in extra.items()}}
        console.print("P(fail within): " + ", ".join(f"{k} {v:.1%}" for k, v in p_fail.items()))
        if e.drivers:
            table = Table(title="what drove it")
            for col in ("driver", f"effect ({e.unit})", "value"):
                table.add_column(col)
            for d in e.drivers:
                value = "" if d.get("value") is None else f"{d['value']:.4g}"
                table.add_row(d["name"], f"{d['contribution']:+.4g}", value)
            console.print(table)


@app.command("fleet")
def fleet(
    horizon: Annotated[str, typer.Option("--horizon", "-H", help="rank by P(fail within this)")] = "7d",
    type_id: Annotated[str | None, typer.Option("--type", "-t", help="asset type id")] = None,
    update: Annotated[bool, typer.Option("--update", help="recompute every twin first")] = False,
    limit: Annotated[int, typer.Option(help="show at most this many")] = 20,
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Which machines are likely to fail next (week): twins ranked by P(fail within --horizon)."""
    with friendly_errors(), open_runtime(settings_from(data_dir, store)) as rt:
        (label, hours), = parse_horizons([horizon]).items()
        service = _service(rt)
        skipped: dict[str, str] = {}
        if update:
            _, skipped = service.update_fleet(type_id)
        ranked = service.fleet(hours, type_id)[:limit]
        extra = {} if label in HORIZONS_H else {label: hours}
        if as_json:
            rows = [_as_dict(e, extra) for e, _ in ranked]
            console.print_json(json.dumps({"horizon_h": hours, "twins": rows, "skipped": skipped}))
            return
        table = Table(title=f"{len(ranked)} twins by P(fail within {label})")
        for col in ("twin", f"P(fail ≤ {label})", "RUL mean (h)", "80 % interval (h)", "top driver"):
            table.add_column(col)
        for e, p in ranked:
            lo, hi = e.interval(0.8)
            top = e.drivers[0]["name"] if e.drivers else ""
            table.add_row(e.twin_id, f"{p:.1%}", f"{e.mean:,.0f}", f"{lo:,.0f}–{hi:,.0f}", top)
        console.print(table)
        for twin_id, why in skipped.items():
            console.print(f"[dim]skipped {twin_id}: {why}[/]")
        if not ranked:
            console.print("[dim]no twin has an RUL yet; run with --update once readings are stored[/]")


__all__ = ["app"]
