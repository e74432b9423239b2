"""`twinloop demo` as a user runs it: a real process serving HTTP on loopback."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ..conftest import process_running

#: Bounds that only catch a hang: on a loaded two-core machine the demo takes many seconds to start.
READY_S = 120.0
GONE_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    twinloop = Path(sys.executable).with_name("twinloop")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [str(twinloop), "demo", "--port", str(port), "--data-dir", str(tmp_path / "demo"), "--no-table"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:  # read on a thread: a silent demo must fail the test, not hang it
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    output, key = [], None
    deadline = time.monotonic() + READY_S
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no API within {READY_S:g} s:\n" + "".join(output)) from None
            if line is None:
                raise AssertionError("demo exited early:\n" + "".join(output))
            output.append(line)
            m = re.search(r"(tlk_[A-Za-z0-9_\-]+)", line)
            if m and key is None:
                key = m.group(1)
            if "serving the API" in line:
                break
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("demo never answered /health:\n" + "".join(output))
        assert key, "demo printed no admin key:\n" + "".join(output)
        yield base, key, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(GONE_S)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_demo_mirrors_the_simulated_plant_live(demo):
    base, key, proc = demo
    admin = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 60
    channels: dict = {}
    while time.monotonic() < deadline:
        state = httpx.get(f"{base}/twins/pump-A1/state", headers=admin, timeout=30).json()
        channels = {c["channel"]: c for c in state["channels"]}
        if {"flow", "bearing.temperature", "motor.current"} <= set(channels):
            break
        time.sleep(0.5)
    assert {"flow", "bearing.temperature", "motor.current"} <= set(channels), channels
    assert state["status"] == "online" and channels["flow"]["unit"] == "m**3/h"
    conns = httpx.get(f"{base}/connections", headers=admin).json()
    assert conns["ingest"]["readings"] > 0 and conns["ingest"]["rejected"] == 0
    assert conns["ingest"]["journal_backlog"] >= 0  # the demo store is a DuckDB file with its journal
    proc.send_signal(signal.SIGINT)
    assert proc.wait(GONE_S) == 0


def test_demo_serves_the_pump_station_with_access_control(demo):
    base, key, proc = demo
    admin = {"Authorization": f"Bearer {key}"}
    r = httpx.get(f"{base}/twins", params={"type": "Pump"}, headers=admin)
    assert r.status_code == 200 and len(r.json()) == 12
    assert httpx.get(f"{base}/twins", params={"type": "Pump"}).status_code == 401
    viewer = httpx.post(f"{base}/keys", json={"name": "v", "role": "viewer"}, headers=admin)
    token = viewer.json()["token"]
    r = httpx.post(f"{base}/twins", json={"id": "pump-Q", "type_id": "Pump"},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "twinloop"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(GONE_S) == 0


def _children(pid: int) -> list[int]:
    """Child processes of every thread of ``pid`` (a child belongs to the thread that forked it)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended meanwhile
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc")
def test_a_killed_demo_leaves_no_broker_or_simulator_behind(demo):
    _, _, proc = demo
    deadline = time.monotonic() + READY_S
    while len(helpers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the embedded broker and the simulator
    assert len(helpers) >= 2, helpers
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + GONE_S
    while any(process_running(p) for p in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in helpers if process_running(p)], "orphans outlived the demo"
