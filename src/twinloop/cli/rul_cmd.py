"""``twinloop rul …``: remaining useful life of twins — one twin, which ones are likely to fail next,
and training the data-driven second opinion. Every command calls the runtime's `RulService`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from twinloop.cli.context import DataDir, StoreUrl, console, friendly_errors, open_runtime, settings_from

if TYPE_CHECKING:
    pass


if TYPE_CHECKING:  # the RUL service (scipy, scikit-learn) is imported by the commands that use it
    from twinloop.runtime.rul_service import RulService, RulUpdated
    from twinloop.runtime.wiring import Runtime

app = typer.Typer(help="Remaining useful life: per twin, and across the fleet.", no_args_is_help=True)

HorizonOpt = Annotated[
    list[str] | None,
    typer.Option("--horizon", "-H", help="extra P(fail within) horizon: 36h, 10d; repeat"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _service(rt: Runtime) -> RulService:
    from twinloop.core.errors import ConfigError

    if rt.rul is None:
        raise ConfigError("this runtime computes no RUL", hint="open it with analytics")
    return rt.rul


def _as_dict(e: RulUpdated, extra: dict[str, float]) -> dict:
    from twinloop.core.clock import ns_to_datetime

    return {"twin_id": e.twin_id, "model": e.model, "unit": e.unit, "mean": e.mean, "std": e.std,
            "interval80": list(e.interval(0.8)),
            "p_fail": {**e.p_fail, **{k: e.p_fail_within(h) for k, h in extra.items()}},
            "drivers": e.drivers, "as_of": ns_to_datetime(e.as_of_ns).isoformat(),
            "basis": e.basis, "reason": e.reason, "second_opinion": e.second_opinion,
            "disagreement": e.disagreement}


def _p_fail_line(e: RulUpdated, extra: dict[str, float]) -> str:
    p_fail = {**e.p_fail, **{k: e.p_fail_within(h) for k, h in extra.items()}}
    return "P(fail within): " + ", ".join(f"{k} {v:.1%}" for k, v in p_fail.items())


@app.command("show")
def show(
    twin_id: Annotated[str, typer.Argument(help="twin id")],
    horizon: HorizonOpt = None,
    update: Annotated[bool, typer.Option("--update", help="recompute from stored readings first")] = False,
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """One twin's RUL: mean, 80 % interval, P(fail within 24 h / 72 h / 7 d), and what drove it."""
    from twinloop.core.clock import ns_to_datetime
    from twinloop.runtime.rul_service import parse_horizons

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
        console.print(_p_fail_line(e, extra))
        if e.basis:
            console.print(f"from the {e.basis}" + (f" ({e.reason})" if e.reason else ""))
        second = e.second_opinion or {}
        if "mean" in second:
            console.print(f"second opinion ({second['model']}): RUL {second['mean']:,.0f} {e.unit}, "
                          f"P(fail within 72h) {second['p_fail']['72h']:.1%}; disagreement "
                          f"{e.disagreement or 0.0:.0%}")
        elif "missing" in second:
            console.print(f"[dim]no second opinion: {second['missing']}[/]")
        why = service.skipped(twin_id)
        if why:
            console.print(f"[yellow]latest recompute skipped: {why}[/]")
        if e.drivers:
            from rich.table import Table
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
    from twinloop.runtime.rul_service import HORIZONS_H, parse_horizons

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
        from rich.table import Table
        table = Table(title=f"{len(ranked)} twins by P(fail within {label})")
        columns = ("twin", f"P(fail ≤ {label})", "P(24h)", "P(72h)", "P(7d)", "RUL mean (h)",
                   "80 % interval (h)", "basis", "top driver")
        for col in columns:
            table.add_column(col)
        for e, p in ranked:
            lo, hi = e.interval(0.8)
            top = e.drivers[0]["name"] if e.drivers else ""
            standard = [f"{e.p_fail_within(h):.1%}" for h in (24.0, 72.0, 168.0)]
            table.add_row(e.twin_id, f"{p:.1%}", *standard, f"{e.mean:,.0f}", f"{lo:,.0f}–{hi:,.0f}",
                          e.basis, top)
        console.print(table)
        for twin_id, why in skipped.items():
            console.print(f"[dim]skipped {twin_id}: {why}[/]")
        if not ranked:
            console.print("[dim]no twin has an RUL yet; run with --update once readings are stored[/]")


@app.command("train")
def train(
    runs: Annotated[str, typer.Argument(help="run-to-failure Parquet (twinloop simulate … --until-failure)")],
    model: Annotated[str, typer.Option("--model", "-m", help="trained model to fit")] = "pump-bearing-gbm",
    trees: Annotated[int, typer.Option(help="boosting rounds per model (fewer: faster)", min=10)] = 300,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Train the data-driven second opinion on run-to-failure histories and keep it in the store."""
    from pathlib import Path

    import pyarrow.parquet as pq

    from twinloop.core.errors import ValidationError

    path = Path(runs)
    with friendly_errors(), open_runtime(settings_from(data_dir, store)) as rt:
        if not path.is_file():
            raise ValidationError(f"no such file: {path}",
                                  hint="make one: twinloop simulate pump-station --out runs.parquet "
                                  "--units 200 --until-failure")
        table = pq.read_table(path)
        saved = _service(rt).train(table, model, {"tree_params": {"n_estimators": trees}}, source=str(path))
        console.print(f"trained [bold]{model}[/] on {saved.meta.get('units')} units "
                      f"({table.num_rows:,} rows): artifact version {saved.version}")


__all__ = ["app"]
