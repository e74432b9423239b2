"""``twinloop simulate --truth``: the live simulator writes the hidden truth a twin is scored against."""

import asyncio
import math

from typer.testing import CliRunner

from twinloop.cli.simulate_cmd import app
from twinloop.connectors.broker import EmbeddedBroker
from twinloop.sim.building import BuildingPlant
from twinloop.sim.faults import Fault, FaultSchedule
from twinloop.sim.runner import SimRunner
from twinloop.sim.truth import TruthRecorder, read_truth

runner = CliRunner()


def _run(tmp_path, *faults: str, every: str = "5m", duration: str = "50m") -> list[dict]:
    truth = tmp_path / "truth.jsonl"
    args = [arg for f in faults for arg in ("--fault", f)]
    with EmbeddedBroker() as broker:
        r = runner.invoke(app, ["pump-station", "--mqtt", broker.url, "--speed", "inf",
                                "--duration", duration, "--truth", str(truth), "--truth-every", every, *args],
                          catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return read_truth(truth)


def test_truth_file_holds_snapshots_faults_and_the_failure_as_they_happened(tmp_path):
    records = _run(tmp_path, "stuck_at:pump-A2:channel=flow,start=10m,end=20m",
                   "bearing_wear:pump-B1:factor=60000,start=5m")
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert records[0]["plant"] == "pump-station" and "pump-C4" in records[0]["devices"]

    snapshots = [r for r in records if r["kind"] == "truth"]
    times = [r["t_s"] for r in snapshots]
    assert times[0] <= 1.0 and all(b - a >= 300.0 for a, b in zip(times[:-2], times[1:-1], strict=True))
    assert len(snapshots) >= 10 and set(snapshots[0]["truth"]["wear"]) >= {"pump-A1", "pump-C4"}
    assert "fault_history" not in snapshots[0]["truth"]

    starts = {r["fault"]["device"]: r["t_s"] for r in records if r["kind"] == "fault_start"}
    ends = {r["fault"]["device"]: r["t_s"] for r in records if r["kind"] == "fault_end"}
    assert abs(starts["pump-A2"] - 600.0) <= 1.0 and abs(ends["pump-A2"] - 1200.0) <= 1.0
    assert abs(starts["pump-B1"] - 300.0) <= 1.0 and "pump-B1" not in ends  # wear runs on after failure

    failures = [r for r in records if r["kind"] == "failure"]
    assert [f["device"] for f in failures] == ["pump-B1"] and failures[0]["what"] == "bearing_failure"
    before = [s["truth"]["wear"]["pump-B1"] for s in snapshots if s["t_s"] < failures[0]["t_s"]]
    after = [s["truth"]["wear"]["pump-B1"] for s in snapshots if s["t_s"] > failures[0]["t_s"]]
    assert before[-1] < 1.0 and after and min(after) >= 1.0  # the snapshots agree with the event
    walls = [r["wall_ns"] for r in records]
    assert walls == sorted(walls)  # wall clock of each line: places wall-stamped events in plant time
    assert records[1]["ts_ns"] - records[0]["ts_ns"] == round((records[1]["t_s"] - records[0]["t_s"]) * 1e9)
    assert {f["device"] for f in records[-1]["fault_history"]} == {"pump-A2", "pump-B1"}


def test_a_fault_free_run_records_no_fault_and_no_failure(tmp_path):
    records = _run(tmp_path, every="10m", duration="30m")
    assert not [r for r in records if r["kind"] in ("fault_start", "fault_end", "failure", "repair")]
    assert len([r for r in records if r["kind"] == "truth"]) >= 3


def test_truth_every_must_be_a_positive_duration(tmp_path):
    r = runner.invoke(app, ["pump-station", "--mqtt", "mqtt://127.0.0.1:1", "--truth", str(tmp_path / "t"),
                            "--truth-every", "0s"])
    assert r.exit_code in (1, 2) and "--truth-every must be positive" in r.output, r.output


def test_a_chiller_fouled_past_its_limit_is_recorded_as_a_failure_with_its_fouling(tmp_path):
    """The building has no failure list: its chillers' degraded flag is the failure the truth records."""
    schedule = FaultSchedule([Fault("fouling_acceleration", "chiller-1", start_s=600.0,
                                    params={"factor": 200000.0})], seed=1)
    plant = BuildingPlant(seed=1, faults=schedule)
    path = tmp_path / "truth.jsonl"
    runner = SimRunner(plant, speed=math.inf, transports=(TruthRecorder(plant, path, every_s=120.0),))

    async def run() -> None:
        await runner.run(duration_s=1800.0)
        await runner.close()

    asyncio.run(run())
    records = read_truth(path)
    failures = [r for r in records if r["kind"] == "failure"]
    assert [(f["device"], f["what"]) for f in failures] == [("chiller-1", "degraded")]
    assert 600.0 < failures[0]["t_s"] < 1800.0
    fouling = [(r["t_s"], r["truth"]["fouling"]["chiller-1"]) for r in records if r["kind"] == "truth"]
    assert fouling[0][1] < 0.2 < 1.0 < fouling[-1][1]  # the snapshots show the fouling that did it
    assert records[-1]["kind"] == "end" and records[-1]["fault_history"][0]["device"] == "chiller-1"
