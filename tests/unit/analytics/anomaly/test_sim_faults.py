"""Every fault the pump-station simulator can inject is detected on the device it hits, and a
fault-free run raises no alarm. Uses `benchmarks/anomaly_sim.py` with shorter runs (the benchmark
itself prints the full table with times to detect)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[4] / "benchmarks" / "anomaly_sim.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("anomaly_sim_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["anomaly_sim_bench"] = module
    spec.loader.exec_module(module)
    return module


SHORT = {"learn_s": 30 * 60.0, "normal_s": 40 * 60.0, "fault_s": 20 * 60.0}
#: The benchmark's pump detector without MSET (the slowest member), to keep the test quick.
FAST = {"default": {"detector": "ensemble", "combine": "max",
                    "members": {"pca": {"window": 10}, "quality": {}}}}


def _scenarios(bench):
    out = []
    for label, fault, targets in bench.SCENARIOS:
        fault = dict(fault)
        if label == "sensor drift":  # a faster drift, so it shows within the short run
            fault["params"] = {"rate_per_h": 30.0}
        out.append((label, fault, targets))
    return out


def test_every_fault_kind_is_detected_after_onset(bench):
    kinds = set()
    for label, fault, targets in _scenarios(bench):
        kinds.add(fault["kind"])
        result = bench.detect(label, fault, targets, 2, FAST, **SHORT)
        assert result["detected"], f"{label} was not detected"
        assert result["alarms_before_onset"] == 0, f"{label}: alarms before the fault started"
        assert result["time_to_detect_s"] >= 0
    from twinloop.sim.faults import COMM_KINDS, SENSOR_KINDS

    station = {"bearing_wear", "stuck_valve", "cavitation", *SENSOR_KINDS, *COMM_KINDS}
    assert kinds == station, "a fault kind of the pump station is not covered"


def test_a_fault_free_run_raises_no_alarm(bench):
    run = bench.simulate(None, 7, normal_s=60 * 60.0, devices=("pump-A2", "pump-B1"))
    for _t, mask, _top in bench.alarms(run, FAST, learn_s=30 * 60.0).values():
        assert not mask.any()
