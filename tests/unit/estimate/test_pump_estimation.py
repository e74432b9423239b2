"""Hidden bearing wear from noisy sensors, against simulator ground truth.

Figures measured when written (seeded, deterministic): UKF wear RMSE ≈ 0.04 over whole lives
(≈ 0.05 while wear < 0.2 and the sensors barely see it, < 0.01 past 0.5), the per-unit wear
rate within ≈ 15 %, and on every measured channel the filtered value is closer to the truth than
the raw sensor (flow ≈ 5×, bearing temperature ≈ 2×).
"""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.core.readings import ReadingBatch
from twinloop.estimate import make_estimator
from twinloop.estimate.presets import PUMP_MEASUREMENTS, pump_spec
from twinloop.physics.model import index
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs, sample_parameters
from twinloop.sim.batch import run_fleet

WEAR_SCALE = 20.0  # run_fleet's time compression: lives of ~90 h instead of ~1,800 h
MODEL = PumpUnitModel()
RATE = MODEL.parameters[index(MODEL.parameters, "bearing_wear_rate")].default
SETTINGS = {"setting.speed": "speed_setpoint", "setting.valve": "valve_command",
            "setting.suction": "suction_pressure_setting", "setting.head": "static_head",
            "setting.ambient": "ambient_temperature"}
INPUTS = {"speed_setpoint": "setting.speed", "valve_command": "setting.valve",
          "suction_pressure": "setting.suction", "discharge_static_head": "setting.head",
          "ambient_temperature": "setting.ambient"}


@pytest.fixture(scope="module")
def fleet():
    run = run_fleet(n_units=10, seed=3, dt_s=600, sample_every_s=1800, wear_scale=WEAR_SCALE,
                    cavitation_share=0.0, accelerated_share=0.0)
    r = run.readings
    channels = [*PUMP_MEASUREMENTS, *SETTINGS]
    values = np.stack([r.column(SETTINGS.get(c, c)).to_numpy().astype(float) for c in channels], axis=1)
    ids = np.array([f"pump-{u}" for u in r.column("unit").to_numpy()], dtype=object)
    ts = (r.column("t_h").to_numpy() * 3600e9).astype(np.int64)
    batch = ReadingBatch.from_arrays(np.repeat(ids, len(channels)),
                                     np.tile(np.array(channels, object), len(ids)),
                                     np.repeat(ts, len(channels)), values.ravel())
    return run, batch, ids, ts, r.column("wear").to_numpy()


def track(kind: str, fleet) -> tuple[np.ndarray, np.ndarray, np.ndarray, object]:
    """Feed the fleet's history in 10-sample batches; estimated vs true wear at each batch end."""
    run, batch, ids, ts, wear = fleet
    spec = pump_spec(inputs=INPUTS, parameters={"bearing_wear_rate": RATE * WEAR_SCALE})
    est = make_estimator(kind, spec)
    est.add_twins(sorted(set(ids.tolist()), key=lambda s: int(s.split("-")[1])))
    times = np.unique(ts)
    got, true, std = [], [], []
    w = spec.augmented_names.index("bearing_wear")
    for lo in times[::10]:
        hi = lo + 10 * 1800 * 10**9
        est.update(batch.filter((batch.ts_ns >= lo) & (batch.ts_ns < hi)))
        e = est.estimate()
        sel = np.flatnonzero((ts >= lo) & (ts < hi))
        last = {ids[j]: j for j in sel}  # rows are ordered by unit then time
        for tid, j in last.items():
            row = e.twin_ids.index(tid)
            got.append(e.mean[row, w]), true.append(wear[j]), std.append(e.std[row, w])
    return np.array(got), np.array(true), np.array(std), est


def test_ukf_estimates_hidden_bearing_wear(fleet) -> None:
    got, true, std, est = track("ukf", fleet)
    err = got - true
    rmse = float(np.sqrt(np.mean(err**2)))
    late = true > 0.5
    assert rmse < 0.06, rmse
    assert np.sqrt(np.mean(err[late] ** 2)) < 0.015
    assert np.mean(np.abs(err) < 2.5 * std) > 0.75  # the reported std means something
    assert est.faults == 0


def test_ukf_learns_each_units_wear_rate_jointly(fleet) -> None:
    run, *_ = fleet
    _, _, _, est = track("ukf", fleet)
    e = est.estimate()
    rate = e.mean[:, e.names.index("bearing.wear_rate")] / (RATE * WEAR_SCALE)
    truth = run.units.column("wear_multiplier").to_numpy() / WEAR_SCALE
    order = [int(t.split("-")[1]) for t in e.twin_ids]
    assert np.median(np.abs(rate / truth[order] - 1.0)) < 0.15


def test_ekf_estimates_wear_too(fleet) -> None:
    got, true, _, _ = track("ekf", fleet)
    assert np.sqrt(np.mean((got - true) ** 2)) < 0.08


def test_ukf_filtered_outputs_beat_raw_sensor_noise() -> None:
    """On measured channels the posterior prediction is closer to the truth than the sensor."""
    rng = np.random.default_rng(5)
    n, steps = 50, 120
    p = sample_parameters(n, rng, 0.05)
    spec = pump_spec(inputs={"speed_setpoint": "sp", "valve_command": "vc"}, model_error=1.0)
    est = make_estimator("ukf", spec)
    est.add_twins([f"p{i}" for i in range(n)], parameters=p)
    u = nominal_inputs(MODEL, n, wear_acceleration=1.0)
    x = MODEL.initial_state(p, u)
    cols = spec.output_columns
    raw_err, filt_err = [], []
    for k in range(steps):
        if k % 30 == 0:
            u = nominal_inputs(MODEL, n, speed_setpoint=rng.uniform(2500, 2950, n),
                               valve_command=rng.uniform(60, 100, n))
        x = MODEL.next_state(x, u, 60.0, p)
        y_true = MODEL.output(x, u, p)[:, cols]
        y = y_true + spec.measurement_std(y_true) * rng.standard_normal(y_true.shape)
        est.step(np.arange(n), y, u, np.full(n, 60.0))
        if k >= 30:
            y_post = est.aug.measure(est._moments(np.arange(n))[0], u, est.p)
            raw_err.append(y - y_true), filt_err.append(y_post - y_true)
    raw = np.sqrt(np.mean(np.concatenate(raw_err) ** 2, axis=0))
    filt = np.sqrt(np.mean(np.concatenate(filt_err) ** 2, axis=0))
    assert (filt < 0.7 * raw).all(), dict(zip(spec.channel_names, filt / raw, strict=True))
