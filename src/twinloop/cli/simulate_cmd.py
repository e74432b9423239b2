"""``twinloop simulate``: serve a simulated plant over MQTT and/or OPC UA, or write run-to-failure data.

Register with ``app.command("simulate")(simulate_cmd.simulate)``; ``simulate_cmd.app`` runs it alone.
"""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from twinloop.cli.context import console, friendly_errors

if TYPE_CHECKING:  # the simulators (numpy, physics) load when a plant is simulated, not for --help
    from twinloop.sim.faults import Fault
    from twinloop.sim.plant import SimPlant

_UNITS_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")

EXAMPLES = """Examples:

\b
  twinloop simulate pump-station --embedded-broker --speed 60
  twinloop simulate pump-station --mqtt mqtt://127.0.0.1:1883 --payload both --duration 1h
  twinloop simulate pump-station --opcua opc.tcp://127.0.0.1:4840/twinloop/ \\
      --fault 'bearing_wear:pump-A2:factor=20'
  twinloop simulate pump-station --out runs.parquet --units 1000 --until-failure
"""


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``1h30m``, ``2d``, ``1w``.

    >>> parse_duration("1h30m"), parse_duration("45")
    (5400.0, 45.0)
    """
    from twinloop.core.errors import ValidationError

    text = text.strip().lower()
    parts = _PART.findall(text)
    if not text or "".join(f"{n}{u}" for n, u in parts) != text.replace(" ", ""):
        raise ValidationError(f"cannot read duration {text!r}", hint="write e.g. 90s, 15m, 1h30m, 2d")
    return sum(float(n) * _UNITS_S[u] for n, u in parts)


def parse_fault(text: str) -> Fault:
    """A fault from ``KIND:DEVICE[:key=value,...]``.

    Keys are ``channel``, ``start``/``end`` (durations) or the kind's parameters.

    >>> parse_fault("drift:pump-A1:channel=bearing.temperature,rate_per_h=5,start=2h").start_s
    7200.0
    """
    from twinloop.core.errors import ValidationError
    from twinloop.sim.faults import Fault

    kind, _, rest = text.partition(":")
    device, _, params = rest.partition(":")
    if not kind or not device:
        raise ValidationError(f"cannot read fault {text!r}",
                              hint="write KIND:DEVICE[:key=value,...], e.g. bearing_wear:pump-A2:factor=20")
    channel, start, end, values = None, 0.0, None, {}
    for item in filter(None, params.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValidationError(f"fault parameter {item!r} needs a value", hint="write key=value")
        if key == "channel":
            channel = value
        elif key in ("start", "end"):
            start, end = (parse_duration(value), end) if key == "start" else (start, parse_duration(value))
        else:
            try:
                values[key] = float(value)
            except ValueError:
                raise ValidationError(f"fault parameter {key}={value!r} must be a number") from None
    return Fault(kind, device, channel, start_s=start, end_s=end, params=values)


def _plants() -> dict[str, Callable[..., SimPlant]]:
    """Plants this installation can simulate, by the name used on the command line and on the wire."""
    from twinloop.sim.pump_station import PumpStationPlant

    plants: dict[str, Callable[..., SimPlant]] = {"pump-station": PumpStationPlant}
    try:
        from twinloop.sim.building import BuildingPlant  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        plants["building"] = BuildingPlant
    return plants


def _make_plant(name: str, seed: int, faults: list[str]) -> SimPlant:
    from twinloop.core.errors import ConfigError
    from twinloop.sim.faults import FaultSchedule

    plants = _plants()
    if name not in plants:
        raise ConfigError(f"unknown plant {name!r}", hint=f"available: {', '.join(sorted(plants))}")
    schedule = [parse_fault(f) for f in faults]
    if not schedule:
        return plants[name](seed=seed)
    return plants[name](seed=seed, faults=FaultSchedule(schedule, seed=seed))


async def _serve(plant: SimPlant, mqtt: str | None, opcua: str | None, payload: str, qos: int,
                 speed: float, period: float, duration_s: float | None, samples_per_message: int = 1,
                 parent_pid: int | None = None, truth: tuple[Path, float] | None = None) -> None:
    from twinloop.connectors.broker import watch_parent
    from twinloop.connectors.mqtt import MqttClient
    from twinloop.connectors.opcua import OpcUaServer
    from twinloop.sim import wire
    from twinloop.sim.mqtt_transport import MqttTransport, set_last_will
    from twinloop.sim.opcua_transport import OpcUaTransport
    from twinloop.sim.runner import SimRunner

    runner = SimRunner(plant, speed=speed, sample_period_s=period)
    client, server = None, None
    import asyncio

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, runner.stop)
    if parent_pid:  # a thread of its own: it works while the loop waits on a broker that has gone
        watch_parent(parent_pid, lambda: loop.call_soon_threadsafe(runner.stop))
    try:
        if mqtt:
            client = MqttClient(mqtt, client_id=f"twinloop-sim-{plant.name}")
            if not set_last_will(client, plant.name):
                console.print("[dim]note: this MQTT client cannot carry a last will; a crash leaves "
                              "the retained status online[/]")
            await client.connect()
            transport = MqttTransport(client, plant.name, plant.devices, payload, qos,  # type: ignore[arg-type]
                                      samples_per_message=samples_per_message)
            runner.add_transport(transport)
            console.print(f"MQTT {mqtt}: {wire.topic_layout(plant.name)}", soft_wrap=True)
        if opcua:
            server = await OpcUaServer(opcua, name=f"twinloop {plant.name}").start()
            runner.add_transport(OpcUaTransport(server, plant))
            console.print(f"OPC UA {opcua}: objects per device, variables ns=2;s=<device>.<channel>, "
                          "methods ns=2;s=<device>.<command>", soft_wrap=True)
        if truth is not None:
            from twinloop.sim.truth import TruthRecorder

            runner.add_transport(TruthRecorder(plant, truth[0], every_s=truth[1]))
            console.print(f"ground truth to {truth[0]} every {truth[1]:g} simulated s", soft_wrap=True)
        pace = "as fast as possible" if math.isinf(speed) else f"{speed:g}x"
        until = "until Ctrl-C" if duration_s is None else f"for {duration_s:g} simulated s"
        console.print(f"simulating {plant.name} ({len(plant.devices)} devices) at {pace}, "
                      f"a sample every {period:g} s, {until}", soft_wrap=True)
        stats = await runner.run(duration_s=duration_s)
        console.print(f"done: {stats.steps} samples, {stats.sim_s:g} simulated s in {stats.wall_s:.1f} s")
    finally:
        await runner.close()  # offline status and deaths, also on Ctrl-C
        if client is not None:
            await client.disconnect()
        if server is not None:
            await server.stop()
        loop.remove_signal_handler(signal.SIGTERM)


def _batch(out: Path, units: int, seed: int, wear_scale: float) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from twinloop.sim.batch import run_to_failure, write_parquet

    columns = (TextColumn("[bold]run to failure"), BarColumn(), MofNCompleteColumn(),
               TextColumn("units failed · t = {task.fields[t_h]:,.0f} h"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("units", total=units, t_h=0.0)

        def progress(t_h: float, units_left: int) -> None:
            bar.update(task, completed=units - units_left, t_h=t_h)

        table = run_to_failure(units, seed=seed, wear_scale=wear_scale, progress=progress)
        bar.update(task, completed=units)
    path = write_parquet(table, out)
    console.print(f"wrote {table.num_rows:,} rows of {units} units to {path} "
                  "(ground truth: wear, rul_h, failed, fault)", soft_wrap=True)


def simulate(
    plant: Annotated[str, typer.Argument(help="which plant: pump-station (or building, where installed)")],
    mqtt: Annotated[str | None, typer.Option(
        help="publish to this broker, e.g. mqtt://127.0.0.1:1883")] = None,
    embedded_broker: Annotated[bool, typer.Option(
        "--embedded-broker", help="start an embedded MQTT broker (amqtt) when no --mqtt is given")] = False,
    opcua: Annotated[str | None, typer.Option(
        help="serve OPC UA at this endpoint, e.g. opc.tcp://127.0.0.1:4840/twinloop/")] = None,
    speed: Annotated[float, typer.Option(
        help="simulated seconds per wall second; inf = as fast as possible")] = 1.0,
    sample_period: Annotated[float, typer.Option(help="simulated seconds between samples")] = 1.0,
    seed: Annotated[int, typer.Option(help="random seed: same seed and commands, same run")] = 1,
    payload: Annotated[str, typer.Option(help="MQTT payloads: flat, sparkplug or both")] = "flat",
    qos: Annotated[int, typer.Option(help="MQTT QoS of telemetry: 0 or 1")] = 0,
    samples_per_message: Annotated[int, typer.Option(
        help="MQTT: samples of one device per telemetry message (k > 1: the multi-sample form)")] = 1,
    duration: Annotated[str | None, typer.Option(
        help="simulated time to run, e.g. 90s, 1h, 2d; default: until Ctrl-C")] = None,
    fault: Annotated[list[str] | None, typer.Option(
        help="schedule a fault, KIND:DEVICE[:key=value,...], e.g. bearing_wear:pump-A2:factor=20 "
             "or drift:pump-A1:channel=bearing.temperature,rate_per_h=5,start=1h; repeatable")] = None,
    out: Annotated[Path | None, typer.Option(
        help="batch mode: write run-to-failure data to this Parquet file")] = None,
    units: Annotated[int, typer.Option(help="batch mode: pump units to run")] = 1000,
    until_failure: Annotated[bool, typer.Option(
        "--until-failure", help="batch mode: run every unit until it fails")] = False,
    wear_scale: Annotated[float, typer.Option(
        help="batch mode: wear runs this many times faster (quick demos)")] = 1.0,
    parent_pid: Annotated[int | None, typer.Option(
        hidden=True, help="stop when this process (the one that started us) is gone")] = None,
    truth: Annotated[Path | None, typer.Option(
        help="live mode: append the plant's hidden ground truth (wear, faults, failures) to this "
             "JSON-lines file, for scoring a twin against it")] = None,
    truth_every: Annotated[str, typer.Option(
        help="live mode: simulated time between ground-truth snapshots (faults and failures are "
             "written as they happen)")] = "60s",
) -> None:
    """Simulate a plant: serve it live over MQTT and/or OPC UA, or write run-to-failure data in batch."""
    from twinloop.core.errors import ConfigError

    with friendly_errors():
        if out is not None:
            if not until_failure:
                raise ConfigError("batch mode needs --until-failure",
                                  hint="add --until-failure (the only batch mode so far)")
            if plant != "pump-station":
                raise ConfigError(f"batch run-to-failure data exists for pump-station, not {plant!r}")
            if units < 1:
                raise ConfigError("--units must be at least 1")
            _batch(out, units, seed, wear_scale)
            return
        if payload not in ("flat", "sparkplug", "both") or qos not in (0, 1):
            raise ConfigError("--payload is flat, sparkplug or both; --qos is 0 or 1")
        if samples_per_message < 1:
            raise ConfigError(f"--samples-per-message must be at least 1, got {samples_per_message}")
        if not (speed > 0 and sample_period > 0):
            raise ConfigError("--speed and --sample-period must be positive")
        duration_s = parse_duration(duration) if duration else None
        truth_spec = (truth, parse_duration(truth_every)) if truth is not None else None
        if truth_spec is not None and not truth_spec[1] > 0:
            raise ConfigError("--truth-every must be positive, e.g. 60s")
        sim = _make_plant(plant, seed, fault or [])
        broker = None
        if mqtt is None and embedded_broker:
            from twinloop.connectors.broker import EmbeddedBroker

            broker = EmbeddedBroker(port=1883).start() if _port_free(1883) else EmbeddedBroker().start()
            mqtt = broker.url
            console.print(f"embedded MQTT broker at [bold]{broker.url}[/]")
        if mqtt is None and opcua is None:
            raise ConfigError("nowhere to publish",
                              hint="give --mqtt URL, --embedded-broker and/or --opcua URL "
                                   "(or --out for batch)")
        try:
            import asyncio

            asyncio.run(_serve(sim, mqtt, opcua, payload, qos, speed, sample_period, duration_s,
                                    samples_per_message, parent_pid, truth_spec))
        except KeyboardInterrupt:
            console.print(f"stopped at t = {sim.t_s:g} simulated s; devices marked offline")
        finally:
            if broker is not None:
                broker.stop()


def _port_free(port: int) -> bool:
    from twinloop.connectors.urls import port_open

    return not port_open("127.0.0.1", port)


simulate.__doc__ = f"{simulate.__doc__}\n\n{EXAMPLES}"

app = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)
app.command("simulate", help=simulate.__doc__)(simulate)

__all__ = ["app", "parse_duration", "parse_fault", "simulate"]
