"""``twinloop simulate`` as a user runs it: batch Parquet, a live run against a broker, Ctrl-C."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from paho.mqtt.client import topic_matches_sub
from typer.testing import CliRunner

from twinloop.cli.simulate_cmd import app
from twinloop.connectors.broker import EmbeddedBroker
from twinloop.connectors.mqtt import MqttClient

from ...conftest import process_running

runner = CliRunner()
#: Bounds that only catch a hang: on a loaded machine a simulator may take many seconds to start.
READY_S = 60.0
GONE_S = 60.0
SIMULATE = [sys.executable, "-c", "from twinloop.cli.simulate_cmd import app; app()"]


def test_help_shows_examples():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "twinloop simulate pump-station --out runs.parquet" in r.output


def test_batch_writes_parquet_with_ground_truth(tmp_path):
    out = tmp_path / "runs.parquet"
    r = runner.invoke(app, ["pump-station", "--out", str(out), "--units", "20", "--until-failure",
                            "--wear-scale", "40", "--seed", "3"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    table = pq.read_table(out)
    truth = {"wear", "rul_h", "failed", "fault"}
    assert {"unit", "t_h", "bearing.temperature"} | truth <= set(table.column_names)
    assert sorted(set(table.column("unit").to_pylist())) == list(range(20))
    assert sum(table.column("failed").to_pylist()) == 20  # every unit ran to its failure
    assert "20 units" in r.output and str(out.name) in r.output


@pytest.mark.parametrize("args, says", [
    (["chemical-plant", "--mqtt", "mqtt://127.0.0.1:1"], "unknown plant 'chemical-plant'"),
    (["pump-station", "--mqtt", "mqtt://x:1", "--fault", "meltdown:pump-A1"], "unknown fault kind"),
    (["pump-station", "--mqtt", "mqtt://x:1", "--fault", "bearing_wear"], "KIND:DEVICE"),
    (["pump-station", "--mqtt", "mqtt://x:1", "--fault", "bearing_wear:pump-Z9"], "unknown device"),
    (["pump-station", "--mqtt", "mqtt://x:1", "--duration", "soon"], "cannot read duration"),
    (["pump-station"], "nowhere to publish"),
    (["pump-station", "--out", "x.parquet"], "--until-failure"),
])
def test_mistakes_get_one_clear_line_not_a_traceback(args, says):
    r = runner.invoke(app, args)
    assert r.exit_code in (1, 2) and says in r.output and "Traceback" not in r.output, r.output


async def _collect(url: str, filters: list[str], seconds: float,
                   topics: int | None = None) -> dict[str, list[bytes]]:
    """Messages by topic for ``seconds``, or until ``topics`` distinct topics have been heard."""
    client = await MqttClient(url).connect()
    got: dict[str, list[bytes]] = {}
    for f in filters:
        await client.subscribe(f)

    async def pump():
        async for m in client.messages():
            if any(topic_matches_sub(f, m.topic) for f in filters):
                got.setdefault(m.topic, []).append(m.payload)
                if topics is not None and len(got) >= topics:
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pump(), seconds)
    await client.disconnect()
    return got


def _start(broker_url: str) -> tuple[subprocess.Popen, list[str]]:
    """The simulator in its own process, returned once it says it is simulating."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    args = ["pump-station", "--mqtt", broker_url, "--speed", "20", "--payload", "both"]
    proc = subprocess.Popen([*SIMULATE, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    lines: list[str] = []
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if not line and proc.poll() is not None:
            proc.kill()
            raise AssertionError("simulator exited early:\n" + "".join(lines))
        if line.startswith("simulating"):
            return proc, lines
    proc.kill()
    raise AssertionError("simulator never started:\n" + "".join(lines))


def _newest_status(payloads: list[bytes]) -> str:
    return max((json.loads(p) for p in payloads), key=lambda s: s["ts"])["status"]


def test_live_run_publishes_then_ctrl_c_marks_the_plant_offline():
    with EmbeddedBroker() as broker:
        proc, lines = _start(broker.url)
        try:
            assert any("twinloop/pump-station/<device>/telemetry" in line for line in lines), "".join(lines)
            got = asyncio.run(_collect(broker.url, ["twinloop/pump-station/+/telemetry"], READY_S, topics=22))
            assert len(got) == 22
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=GONE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, "".join(lines) + rest
        assert "stopped at t =" in rest and "Traceback" not in rest
        topics = ["twinloop/pump-station/status", "twinloop/pump-station/pump-A1/status"]
        status = asyncio.run(_collect(broker.url, topics, 1.0))
        assert len(status) == 2 and {_newest_status(p) for p in status.values()} == {"offline"}


def test_a_killed_simulator_is_declared_offline_by_its_last_will():
    with EmbeddedBroker() as broker:
        proc, _ = _start(broker.url)
        try:
            plant_status = "twinloop/pump-station/status"
            before = asyncio.run(_collect(broker.url, [plant_status], 1.0))
            assert _newest_status(before[plant_status]) == "online"
            proc.kill()  # no DISCONNECT: the broker publishes the will
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        after = asyncio.run(_collect(broker.url, [plant_status], 1.0))
        assert json.loads(after[plant_status][-1]) == {"status": "offline"}


async def _until_published(url: str, topic_filter: str, within_s: float = READY_S) -> bool:
    """Wait for the first message on ``topic_filter``: the simulator's sign of life."""
    client = await MqttClient(url).connect()
    try:
        await client.subscribe(topic_filter)

        async def first() -> None:
            async for m in client.messages():
                if topic_matches_sub(topic_filter, m.topic):
                    return

        try:
            await asyncio.wait_for(first(), within_s)
        except TimeoutError:
            return False
        return True
    finally:
        await client.disconnect()


def _simulator_under_a_parent(broker_url: str) -> tuple[subprocess.Popen, int]:
    """A throwaway parent process that starts the simulator with ``--parent-pid`` and then idles.

    QoS 1, as the demo runs it: with the broker gone, every publish waits for an acknowledgement.
    """
    middle = subprocess.Popen([sys.executable, "-c", (
        "import os, subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-m', 'twinloop', 'simulate', 'pump-station', '--mqtt', "
        f"{broker_url!r}, '--speed', '10', '--qos', '1', '--parent-pid', str(os.getpid())], "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    return middle, int(middle.stdout.readline())


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while process_running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not process_running(pid)


def test_a_simulator_started_with_parent_pid_stops_when_that_process_is_killed():
    """The demo starts its simulator with ``--parent-pid``: killing the demo must not leave it running,
    even while its broker lives on."""
    with EmbeddedBroker() as broker:
        middle, sim = _simulator_under_a_parent(broker.url)
        try:
            assert asyncio.run(_until_published(broker.url, "twinloop/pump-station/+/telemetry")), \
                "the simulator never published"
            middle.kill()
            middle.wait(10)
            assert _gone_within(sim, GONE_S), "the simulator outlived the process that started it"
        finally:
            if middle.poll() is None:
                middle.kill()
            if process_running(sim):
                os.kill(sim, signal.SIGKILL)


def test_a_simulator_whose_parent_dies_while_it_is_still_starting_does_not_run_on():
    """On a slow machine the demo may be killed before its simulator has even connected."""
    with EmbeddedBroker() as broker:
        middle, sim = _simulator_under_a_parent(broker.url)
        try:
            middle.kill()  # the simulator is still importing: it has not connected yet
            middle.wait(10)
            assert _gone_within(sim, GONE_S), "the simulator outlived the process that started it"
        finally:
            if process_running(sim):
                os.kill(sim, signal.SIGKILL)


def test_a_simulator_whose_broker_has_gone_still_stops_with_its_parent():
    """A killed demo takes its embedded broker down too: the simulator, stuck on a connection to
    nowhere, must still notice that its parent has gone."""
    broker = EmbeddedBroker().start()
    middle, sim = _simulator_under_a_parent(broker.url)
    try:
        assert asyncio.run(_until_published(broker.url, "twinloop/pump-station/+/telemetry")), \
            "the simulator never published"
        broker.stop()
        time.sleep(1.0)  # the simulator is now publishing into a dead connection
        assert process_running(sim)
        middle.kill()
        middle.wait(10)
        assert _gone_within(sim, GONE_S), "the simulator outlived its parent once its broker had gone"
    finally:
        broker.stop()
        if middle.poll() is None:
            middle.kill()
        if process_running(sim):
            os.kill(sim, signal.SIGKILL)
