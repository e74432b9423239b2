"""``twinloop demo``: the whole mirroring loop on one machine with no configuration.

An embedded MQTT broker (its own process), the pump-station simulator (a separate process that
talks to twinloop only over MQTT, as a real plant would), the runtime ingesting it, and the API —
with a live table of the fleet in the terminal. Ctrl-C stops everything in the order that loses
nothing: the simulator first, then ingestion (commit and acknowledge what is queued), then the API.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from twinloop.cli.context import console, friendly_errors, open_runtime, print_bootstrap_key

if TYPE_CHECKING:
    import asyncio

    from rich.table import Table


if TYPE_CHECKING:  # the API server and the runtime load when the demo runs, not for `--help`
    import uvicorn

    from twinloop.runtime.wiring import Runtime

#: Faults the demo plant suffers (simulated time): twinloop learns normal operation from the first
#: two hours, then these start and the alerts name the sensors that drove them.
DEMO_FAULTS = (
    "bearing_wear:pump-C3:factor=20000,start=2h15m",
    "drift:pump-A2:channel=bearing.temperature,rate_per_h=6,start=2h15m",
    "stuck_at:pump-B1:channel=flow,start=2h20m",
)
PUMP_COLUMNS = (
    ("flow", "flow m³/h", "{:.0f}"),
    ("discharge_pressure", "p bar", "{:.2f}"),
    ("speed", "rpm", "{:.0f}"),
    ("power", "kW", "{:.1f}"),
    ("bearing.temperature", "brg °C", "{:.1f}"),
    ("bearing.vibration_rms", "vib mm/s", "{:.2f}"),
)


def _quiet_server(config: uvicorn.Config) -> uvicorn.Server:
    """A uvicorn server that leaves signal handling to the demo, which stops things in order."""
    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer(config)


def _fmt(value: float | None, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return pattern.format(value)


def fleet_table(rt: Runtime, started: float) -> Table:
    """The live fleet view: every pump's latest readings, its filter's health, P(fail within 72 h),
    alerts with the sensors that drove them, and how far the analytics are behind ingestion."""
    from twinloop.core.errors import TwinloopError

    latest = rt.state.fleet_latest("Pump")
    from rich.table import Table
    table = Table(title=f"pump station, mirrored live · {time.monotonic() - started:.0f} s",
                  caption=_caption(rt), expand=False)
    alerts = _alerts_by_twin(rt)
    waiting = _learning(rt)
    table.add_column("pump")
    table.add_column("status")
    for _, header, _ in PUMP_COLUMNS:
        table.add_column(header, justify="right")
    table.add_column("filter")
    table.add_column("P(72h)", justify="right")
    table.add_column("alert: sensors that drove it")
    for twin in rt.twins.list("Pump"):
        values = latest.get(twin.id, {})
        status = rt.connections.twin_status(twin.id)
        colour = {"online": "green", "offline": "red"}.get(status, "yellow")
        p72, rul = None, rt.rul
        if rul is not None:
            try:
                p72 = rul.get(twin.id).p_fail.get("72h")
            except TwinloopError:
                p72 = None
        p72_text = "—" if p72 is None else f"[bold red]{p72:.2f}[/]" if p72 >= 0.5 else f"{p72:.2f}"
        table.add_row(twin.id, f"[{colour}]{status}[/]",
                      *(_fmt(values.get(ch), pattern) for ch, _, pattern in PUMP_COLUMNS),
                      _filter(rt, twin.id), p72_text, alerts.get(twin.id, waiting.get(twin.id, "")))
    return table


def _alerts_by_twin(rt: Runtime) -> dict[str, str]:
    if rt.alerts is None:
        return {}
    out: dict[str, str] = {}
    for alert in rt.alerts.list(state="active"):
        if alert.twin_id not in out:
            drivers = ", ".join(alert.channels[:2])
            out[alert.twin_id] = f"[bold red]{alert.severity}[/] {drivers}"
    return out


def _learning(rt: Runtime) -> dict[str, str]:
    """Per watched twin: "normal" once learned, else why the monitor is still waiting."""
    if rt.monitor is None:
        return {}
    return {p.twin_id: "[green]normal[/]" if p.learned else f"[dim]learning: {p.reason}[/]"
            for p in rt.monitor.progress()}


def _filter(rt: Runtime, twin_id: str) -> str:
    """The estimator's verdict on itself: consistent with the readings, not (and why), or not judged yet."""
    from twinloop.core.errors import TwinloopError

    if rt.estimation is None:
        return ""
    try:
        health = rt.estimation.health(twin_id)
    except TwinloopError:
        return "[dim]—[/]"
    if health.get("consistent") is None:
        return "[dim]judging…[/]"
    if health["consistent"]:
        return "[green]ok[/]"
    return "[bold red]flagged[/]" if health.get("flagged") else "[yellow]recalibrating[/]"


def _caption(rt: Runtime) -> str:
    ingestion = rt.ingestion
    if ingestion is None or ingestion.pipeline is None:
        return "ingestion starting…"
    st = ingestion.pipeline.stats
    lag = " · ".join(f"{stage} {'—' if v is None else _duration(v)}"
                     for stage, v in rt.analytics_lag().items())
    return (f"{st.messages:,} messages · {st.readings:,} readings stored · {st.rejected:,} quarantined · "
            f"{st.duplicates:,} duplicates · broker {ingestion.mqtt_url}\n"
            f"analytics behind ingestion (plant time): {lag}")


def _news(rt: Runtime, told: set[str]) -> list[str]:
    """Lines for a log-reading operator (no live table): each alert once, each twin whose
    P(fail within 72 h) passed 0.5 once; ``told`` remembers what was said."""
    from twinloop.core.errors import TwinloopError

    out = []
    for alert in rt.alerts.list(state="active") if rt.alerts is not None else []:
        if alert.alert_id not in told:
            told.add(alert.alert_id)
            out.append(f"ALERT {alert.twin_id} {alert.severity}: {', '.join(alert.channels[:3])}")
    rul = rt.rul
    for twin in rt.twins.list("Pump") if rul is not None else []:
        key = f"p72:{twin.id}"
        try:
            p72 = rul.get(twin.id).p_fail.get("72h", 0.0)
        except TwinloopError:
            continue
        if p72 > 0.5 and key not in told:
            told.add(key)
            out.append(f"RISK {twin.id}: P(fail within 72 h) = {p72:.2f}")
    return out


def _duration(seconds: float) -> str:
    """Plant seconds as a short text: 40 s, 12 min, 3.5 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


async def _start_simulator(url: str, speed: float, seed: int,
                           faults: tuple[str, ...]) -> asyncio.subprocess.Process:
    import asyncio

    fault_args = [arg for fault in faults for arg in ("--fault", fault)]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "twinloop", "simulate", "pump-station", "--mqtt", url,
        "--speed", str(speed), "--seed", str(seed), "--qos", "1", *fault_args,
        "--parent-pid", str(os.getpid()),  # a killed demo leaves no simulator running
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def _stop_simulator(sim: asyncio.subprocess.Process | None) -> None:
    import asyncio

    if sim is None or sim.returncode is not None:
        return
    sim.send_signal(signal.SIGINT)  # it publishes offline statuses and deaths on the way out
    try:
        await asyncio.wait_for(sim.wait(), 10)
    except TimeoutError:
        sim.kill()
        await sim.wait()


async def run_demo(rt: Runtime, host: str, port: int, speed: float, seed: int, live: bool,
                   faults: tuple[str, ...] = DEMO_FAULTS) -> None:
    """Serve the API with ingestion, start the simulator, show the fleet until Ctrl-C."""
    import asyncio

    import uvicorn
    from rich.live import Live

    from twinloop.api.app import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = _quiet_server(uvicorn.Config(create_app(rt, ingest=True), host=host, port=port,
                                          log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    sim = None
    try:
        while not (server.started and rt.ingestion is not None and rt.ingestion.mqtt_url):
            if serving.done():
                await serving  # surfaces a bind error
                return
            await asyncio.sleep(0.05)
        await rt.ingestion.wait_connected()
        sim = await _start_simulator(rt.ingestion.mqtt_url, speed, seed, faults)
        console.print(f"simulator running at {speed:g}× real time, publishing to {rt.ingestion.mqtt_url}; "
                      "Ctrl-C stops", soft_wrap=True)
        sys.stdout.flush()
        started = time.monotonic()
        if live:
            with Live(fleet_table(rt, started), console=console, refresh_per_second=2) as view:
                while not stop.is_set() and not serving.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
                    view.update(fleet_table(rt, started))
        else:
            told: set[str] = set()
            while not stop.is_set() and not serving.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 10.0)
                for line in [_caption(rt), *_news(rt, told)]:
                    console.print(line, soft_wrap=True)
                sys.stdout.flush()
    finally:
        console.print("stopping: simulator, ingestion (committing what is queued), API …")
        await _stop_simulator(sim)
        server.should_exit = True
        await serving
        console.print("stopped cleanly")


def demo(
    host: Annotated[str | None, typer.Option(help="bind address [env TWINLOOP_API_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port [env TWINLOOP_API_PORT]")] = None,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 60.0,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
    table: Annotated[bool, typer.Option(help="live fleet table (off when not a terminal)")] = True,
    faults: Annotated[
        bool, typer.Option(help="inject the demo's faults (bearing wear, sensor drift, stuck sensor)")
    ] = True,
    data_dir: Annotated[
        Path, typer.Option(help="where the demo's throwaway store lives")
    ] = Path(".twinloop/demo"),
) -> None:
    """Mirror the simulated pump station live: broker, simulator, ingestion and API, no config."""
    from twinloop.runtime.settings import load_settings
    from twinloop.runtime.wiring import example_plant_path

    with friendly_errors():
        if data_dir.exists():
            shutil.rmtree(data_dir)
        settings = load_settings(api_host=host, api_port=port, data_dir=data_dir,
                                 plant=example_plant_path(), store_url=None, mqtt_url=None,
                                 ingest=True)
        rt = open_runtime(settings, bootstrap=True)
        try:
            print_bootstrap_key(rt.bootstrap_token)
            base = f"http://{settings.api_host}:{settings.api_port}"
            auth = f"curl -H 'Authorization: Bearer {rt.bootstrap_token}'"
            console.print(f"try:\n  {auth} '{base}/twins?type=Pump'\n"
                          f"  {auth} '{base}/twins/pump-A1/state'\n"
                          f"  {auth} '{base}/twins/pump-A1/history?channel=flow&bucket=1m'\n"
                          f"  {auth} '{base}/alerts?state=active'\n"
                          f"  {auth} '{base}/graph/mcc-2/impact'\n", soft_wrap=True)
            console.print(f"serving the API on [bold]{base}[/] (docs: {base}/docs)", soft_wrap=True)
            sys.stdout.flush()
            if faults:
                console.print("faults to come (plant time): " + "; ".join(DEMO_FAULTS), soft_wrap=True)
            import asyncio

            asyncio.run(run_demo(rt, settings.api_host, settings.api_port, speed, seed,
                                 live=table and console.is_terminal,
                                 faults=DEMO_FAULTS if faults else ()))
        finally:
            rt.close()


__all__ = ["demo", "fleet_table", "run_demo"]
