"""``twinloop calibrate TWIN``: fit a twin's model parameters to its recorded history."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from twinloop.cli.context import DataDir, StoreUrl, console, friendly_errors, open_runtime, settings_from

if TYPE_CHECKING:  # estimation (scipy) is imported by the command, not by `twinloop --help`
    from twinloop.estimate.calibration import CalibrationReport

#: A pump's parameters that history pins down well (thermal paths, efficiency, wear rate).
DEFAULT_PARAMS = {"Pump": ("bearing_nominal_rise", "bearing_time_constant", "max_efficiency")}


def _since(text: str, now_ns: int) -> int:
    """A duration back from now ('24h') or an absolute time (ISO 8601, epoch ns)."""
    from twinloop.api.params import parse_duration, parse_time
    from twinloop.core.errors import ValidationError

    try:
        return now_ns - parse_duration(text)
    except ValidationError:
        start = parse_time(text)
        assert start is not None
        return start


def _fmt(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _print(twin_id: str, report: CalibrationReport) -> None:
    fit = Table(title=f"{twin_id}: fit over {report.epochs} epochs ({report.evaluations} model runs)")
    for col in ("channel", "RMSE before", "RMSE after"):
        fit.add_column(col, justify="left" if col == "channel" else "right")
    for c, b, a in zip(report.channels, report.rmse_before, report.rmse_after, strict=True):
        if math.isfinite(b):
            fit.add_row(c, _fmt(b), _fmt(a))
    console.print(fit)
    params = Table(title="parameters")
    for col in ("parameter", "before", "after", "± std", "bounds"):
        params.add_column(col, justify="left" if col == "parameter" else "right")
    for q in report.parameters:
        bounds = f"{_fmt(q.lower)} … {_fmt(q.upper)}"
        params.add_row(q.name, _fmt(q.before), _fmt(q.after), _fmt(q.std), bounds)
    console.print(params)
    console.print(("converged: " if report.success else "[yellow]did not converge:[/] ") + report.message)


def calibrate_twin(
    twin_id: Annotated[str, typer.Argument(help="twin to calibrate, e.g. pump-A1")],
    since: Annotated[str, typer.Option(help="start: a duration back from now ('24h') or ISO time")] = "24h",
    until: Annotated[str | None, typer.Option(help="end (ISO time or epoch ns); default now")] = None,
    params: Annotated[
        str | None, typer.Option(help="comma-separated parameters to fit; default per type")
    ] = None,
    settle: Annotated[str, typer.Option(help="ignore this long at the start while states settle")] = "1h",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Fit model parameters to a twin's history and show the fit before and after."""
    from twinloop.api.params import parse_duration, parse_time
    from twinloop.core.errors import NotFoundError
    from twinloop.core.readings import ReadingBatch
    from twinloop.estimate.calibration import calibrate, window
    from twinloop.runtime.estimation_service import default_specs

    with friendly_errors():
        with open_runtime(settings_from(data_dir, store)) as rt:
            twin = rt.twins.get(twin_id)
            service = getattr(rt, "estimation", None)
            specs = service.specs if service is not None else default_specs()
            spec = specs.get(twin.type_id)
            if spec is None:
                raise NotFoundError(f"asset type {twin.type_id!r} has no model to calibrate",
                                    hint="types with one: " + ", ".join(specs))
            names = [p.strip() for p in params.split(",") if p.strip()] if params else list(
                DEFAULT_PARAMS.get(twin.type_id, ()))
            now = rt.clock.now_ns()
            end = parse_time(until) if until else None
            table = rt.state.history(twin_id, None, _since(since, now), end, None, None)
            w = window(ReadingBatch(table), twin_id, spec)
            report = calibrate(spec, w, names, settle_s=parse_duration(settle) / 1e9)
        if as_json:
            console.print_json(json.dumps({"twin_id": twin_id, **asdict(report)}, default=str))
        else:
            _print(twin_id, report)


__all__ = ["DEFAULT_PARAMS", "calibrate_twin"]
