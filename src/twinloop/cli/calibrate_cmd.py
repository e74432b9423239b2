"""``twinloop calibrate TWIN``: fit a twin's model parameters to its recorded history."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from twinloop.cli.context import DataDir, StoreUrl, console, friendly_errors, open_runtime, settings_from

if TYPE_CHECKING:
    pass


if TYPE_CHECKING:  # estimation (scipy) is imported by the command, not by `twinloop --help`
    from twinloop.estimate.calibration import CalibrationReport


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
    from rich.table import Table
    fit = Table(title=f"{twin_id}: fit over {report.epochs} epochs ({report.evaluations} model runs)")
    for col in ("channel", "RMSE before", "RMSE after"):
        fit.add_column(col, justify="left" if col == "channel" else "right")
    for c, b, a in zip(report.channels, report.rmse_before, report.rmse_after, strict=True):
        if math.isfinite(b):
            fit.add_row(c, _fmt(b), _fmt(a))
    console.print(fit)
    from rich.table import Table
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
    settle: Annotated[str | None, typer.Option(
        help="ignore this long at the start while states settle, e.g. 1h")] = None,
    write: Annotated[bool, typer.Option(help="keep an improving fit on the twin (a new revision)")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    plant: Annotated[Path | None, typer.Option(help="plant file whose types declare the estimator "
                                                     "(default: TWINLOOP_PLANT)")] = None,
    data_dir: DataDir = None,
    store: StoreUrl = None,
) -> None:
    """Fit model parameters to a twin's history, show the fit before and after, and keep it."""
    from twinloop.api.params import parse_duration, parse_time
    from twinloop.core.errors import NotFoundError

    with friendly_errors():
        with open_runtime(settings_from(data_dir, store, plant)) as rt:
            if rt.estimation is None:
                raise NotFoundError("estimation is not enabled in this runtime")
            rt.estimation.auto_calibrate = False
            now = rt.clock.now_ns()
            start = _since(since, now)
            until_ns = parse_time(until) if until else None
            end = now if until_ns is None else until_ns
            rt.estimation.replay(twin_id, start, end)  # the filter the fit starts from
            outcome = rt.estimation.calibration.calibrate(
                twin_id, start, end, [p.strip() for p in params.split(",") if p.strip()] if params else None,
                settle_s=parse_duration(settle) / 1e9 if settle else 0.0, write=write)
        if as_json:
            data = {"twin_id": twin_id, "applied": outcome.applied, "revision": outcome.revision,
                    **asdict(outcome.report)}
            console.print_json(json.dumps(data, default=str))
        else:
            _print(twin_id, outcome.report)
            console.print(outcome.why)


__all__ = ["calibrate_twin"]
