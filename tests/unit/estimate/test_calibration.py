"""Calibration recovers parameters from history and reports the fit before and after."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from twinloop.cli.calibrate_cmd import calibrate_twin
from twinloop.core.errors import ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.estimate.calibration import calibrate, window
from twinloop.estimate.presets import PUMP_MEASUREMENTS, pump_spec
from twinloop.physics.model import default_parameters, index
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path

MODEL = PumpUnitModel()
TRUE = {"bearing_nominal_rise": 46.0, "bearing_time_constant": 900.0}


def pump_history(twin: str, start_ns: int, steps: int = 160, seed: int = 0) -> ReadingBatch:
    """A pump whose bearing runs hotter and faster than the defaults say, under changing duty."""
    rng = np.random.default_rng(seed)
    p = default_parameters(MODEL, 1, **TRUE)
    u = nominal_inputs(MODEL, 1)
    x = MODEL.initial_state(p, u)
    ids, channels, ts, values = [], [], [], []
    for k in range(steps):
        if k % 20 == 0:
            u = nominal_inputs(MODEL, 1, speed_setpoint=rng.uniform(2400, 2950),
                               valve_command=rng.uniform(50, 100))
        x = MODEL.next_state(x, u, 120.0, p)
        y = MODEL.output(x, u, p)[0]
        for channel, (output, absolute, relative) in {
            **PUMP_MEASUREMENTS, "speed": ("speed", 1.0, 0.0), "valve.opening": ("valve_opening", 0.2, 0.0),
        }.items():
            v = y[index(MODEL.outputs, output)]
            ids.append(twin), channels.append(channel), ts.append(start_ns + (k + 1) * 120 * 10**9)
            values.append(v + rng.normal(0.0, absolute + relative * abs(v)))
    return ReadingBatch.from_arrays(ids, channels, ts, values)


def test_calibration_recovers_thermal_parameters_with_confidence() -> None:
    spec = pump_spec()
    w = window(pump_history("p1", 0), "p1", spec)
    report = calibrate(spec, w, ["bearing_nominal_rise", "bearing_time_constant"], settle_s=3600)
    fit = {q.name: q for q in report.parameters}
    t = spec.channel_names.index("bearing.temperature")
    assert report.success and report.epochs == 160
    assert report.rmse_after[t] < 0.3 < 2.0 < report.rmse_before[t]
    for name, value in TRUE.items():
        q = fit[name]
        assert q.std is not None and abs(q.after - value) < max(4 * q.std, 0.03 * value), (name, q)
    assert fit["bearing_time_constant"].lower == 60.0  # bounds come from the Parameter


def test_calibration_needs_parameters_and_data() -> None:
    spec = pump_spec()
    w = window(pump_history("p1", 0, steps=30), "p1", spec)
    with pytest.raises(ValidationError, match="at least one parameter"):
        calibrate(spec, w, [])
    with pytest.raises(ValidationError, match="no signal 'colour'"):
        calibrate(spec, w, ["colour"])
    empty = window(pump_history("p1", 0, steps=3), "other", spec)
    with pytest.raises(ValidationError, match="usable epochs"):
        calibrate(spec, empty, ["bearing_nominal_rise"])


def station_history(seconds: float, period: float = 5.0) -> ReadingBatch:
    """The pump-station simulator's readings (every device, lines' header pressures included)."""
    from twinloop.sim.pump_station import PumpStationPlant

    plant = PumpStationPlant(seed=2)
    parts = []
    for _ in range(int(seconds / period)):
        plant.step(period)
        s = plant.sample()
        ids = [d.id for d in plant.devices for _ in d.channels]
        names = [c.name for d in plant.devices for c in d.channels]
        parts.append(ReadingBatch.from_arrays(ids, names, [START + int(s.t_s * 1e9)] * len(ids),
                                              np.concatenate(s.values)))
    return ReadingBatch.concat(parts)


START = 1_767_225_600 * 10**9  # 2026-01-01T00:00Z


def test_cli_calibrates_a_twin_from_the_store_and_keeps_the_fit(tmp_path) -> None:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    with Runtime.open(load_settings(store_url=url, plant=example_plant_path())) as rt:
        rt.state.record(station_history(3600.0))
    app = typer.Typer()
    app.command()(calibrate_twin)
    window_args = ["--since", "2026-01-01T00:00:00Z", "--until", "2026-01-01T01:00:00Z", "--settle", "2m",
                   "--plant", str(example_plant_path())]
    result = CliRunner().invoke(app, ["pump-A1", *window_args, "--json", "--store", url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["applied"] and report["revision"] == 2
    fitted = {q["name"]: q for q in report["parameters"]}
    assert {"shutoff_head", "max_efficiency"} <= set(fitted)
    with Runtime.open(load_settings(store_url=url, plant=example_plant_path())) as rt:
        kept = rt.twins.get("pump-A1").attributes["model_parameters"]
        assert kept["max_efficiency"] == pytest.approx(fitted["max_efficiency"]["after"])
        assert rt.twins.revisions("pump-A1") == [1, 2]  # the history shows when it was calibrated
        assert rt.store.artifacts("calibration", "pump-A1")
    bad = CliRunner().invoke(app, ["tank-A", *window_args, "--store", url])
    assert bad.exit_code == 1 and "has no estimator" in bad.output
