"""Benchmark: the fleet UKF on 10 k twins against the same filter run per twin, and NASA progpy.

Prints human lines, then one JSON object as the last line::

    python benchmarks/estimate.py --twins 10000 --loop-twins 200 --steps 5

Two models: a compact bearing model (thermal + wear, 3 states and the wear rate jointly
estimated: L = 4, the size of the progpy comparison in DEPENDENCY-NOTES §9) and the full
`PumpUnitModel` (46 parameters, 20 outputs; L = 6), where the physics itself dominates. The
per-twin baseline is the *same* filter class stepped one twin at a time in a Python loop on a
subset, extrapolated per update; both are the best of ``--repeat`` runs, interleaved, so a
noisy neighbour on a shared machine hurts both alike. The share of the fleet step spent in the
physics model itself (``next_state`` and ``output``) is reported, since no filter work can make
the step faster than that. progpy's UnscentedKalmanFilter runs on an equivalent
PrognosticsModel of the compact model when progpy is installed (skipped otherwise). Last, the
accuracy on simulator ground truth: the UKF's error on hidden bearing wear over whole lives.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from twinloop.core.readings import ReadingBatch
from twinloop.estimate import make_estimator
from twinloop.estimate.presets import PUMP_MEASUREMENTS, pump_spec
from twinloop.estimate.spec import EstimatorSpec
from twinloop.physics.model import Parameter, PhysicsModel, Signal, index
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs
from twinloop.sim.batch import run_fleet


class BearingModel:
    """Bearing and winding temperatures (exact RC steps) and wear ``dw/dt = λ·s·(w + w0)``."""

    name = "bearing"
    inputs = (Signal("speed_ratio"), Signal("ambient", "degC"))
    states = (Signal("bearing_temperature", "degC"), Signal("winding_temperature", "degC"), Signal("wear"))
    outputs = (Signal("bearing_temperature", "degC"), Signal("winding_temperature", "degC"),
               Signal("vibration", "mm/s"))
    parameters = (Parameter("wear_rate", 1e-6, "1/s", 1e-9, 1e-3), Parameter("rise", 40.0, "K", 1.0, 100.0),
                  Parameter("tau", 1200.0, "s", 10.0, 1e5))
    events = ("failure",)

    def initial_state(self, p, u, rng=None):  # noqa: ANN001, ANN201
        s, amb = u[:, 0], u[:, 1]
        return np.stack([amb + p[:, 1] * s**2, amb + 60.0 * s**2, np.zeros(len(u))], axis=1)

    def next_state(self, x, u, dt, p):  # noqa: ANN001, ANN201
        s, amb = u[:, 0], u[:, 1]
        decay = np.exp(-dt / p[:, 2])
        heat = s**2 * (1.0 + 0.5 * x[:, 2] ** 2)
        tb = amb + p[:, 1] * heat + (x[:, 0] - amb - p[:, 1] * heat) * decay
        tw = amb + 60.0 * s**2 + (x[:, 1] - amb - 60.0 * s**2) * np.exp(-dt / 1800.0)
        w = np.clip((x[:, 2] + 0.1) * np.exp(p[:, 0] * s * dt) - 0.1, 0.0, 1.0)
        return np.stack([tb, tw, np.maximum(w, x[:, 2])], axis=1)

    def output(self, x, u, p):  # noqa: ANN001, ANN201
        vib = u[:, 0] ** 2 * (1.0 + 6.5 * np.clip(x[:, 2], 0.0, 1.0) ** 3)
        return np.stack([x[:, 0], x[:, 1], vib], axis=1)

    def event_state(self, x, p):  # noqa: ANN001, ANN201
        return np.clip(1.0 - x[:, [2]], 0.0, 1.0)


def bearing_spec() -> EstimatorSpec:
    return EstimatorSpec(
        BearingModel(),
        channels={"t_b": "bearing_temperature", "t_w": "winding_temperature", "vib": "vibration"},
        inputs={"speed_ratio": "s", "ambient": "amb"},
        measurement={"bearing_temperature": (0.2, 0.0), "winding_temperature": (0.3, 0.0),
                     "vibration": (0.03, 0.03)},
        process={"bearing_temperature": 1.0, "winding_temperature": 1.0, "wear": 0.005, "wear_rate": 0.02},
        estimate_parameters=("wear_rate",),
        initial_std={"bearing_temperature": 2.0, "winding_temperature": 2.0, "wear": 0.05, "wear_rate": 0.5})


class TimedModel:
    """A model that adds the time spent in its ``next_state`` and ``output`` to ``seconds``."""

    def __init__(self, model: PhysicsModel) -> None:
        self._model, self.seconds = model, 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def next_state(self, x, u, dt, p):  # noqa: ANN001, ANN201
        t0 = time.perf_counter()
        out = self._model.next_state(x, u, dt, p)
        self.seconds += time.perf_counter() - t0
        return out

    def output(self, x, u, p):  # noqa: ANN001, ANN201
        t0 = time.perf_counter()
        out = self._model.output(x, u, p)
        self.seconds += time.perf_counter() - t0
        return out


def _fleet_rate(spec: EstimatorSpec, u: np.ndarray, y: np.ndarray, steps: int) -> tuple[float, float]:
    """Twin-updates per second of one filter stepping every twin at once, and the physics share."""
    n = len(u)
    timed = TimedModel(spec.model)
    est = make_estimator("ukf", replace(spec, model=timed))
    est.add_twins([f"t{i}" for i in range(n)])
    rows = np.arange(n)
    est.step(rows, y, u, np.zeros(n))
    est.step(rows, y, u, np.full(n, 60.0))  # warm-up
    timed.seconds = 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        est.step(rows, y, u, np.full(n, 60.0))
    elapsed = time.perf_counter() - t0
    return n * steps / elapsed, timed.seconds / elapsed


def _rates(spec: EstimatorSpec, u: np.ndarray, y: np.ndarray, loop_twins: int, steps: int,
           repeat: int) -> tuple[float, float, float]:
    """Best fleet rate (with its physics share) and best per-twin loop rate of ``repeat`` rounds."""
    fleet, loop = (0.0, 0.0), 0.0
    for _ in range(repeat):
        fleet = max(fleet, _fleet_rate(spec, u, y, steps))
        loop = max(loop, _loop_rate(spec, u[:loop_twins], y[:loop_twins], steps))
    return fleet[0], fleet[1], loop


def _loop_rate(spec: EstimatorSpec, u: np.ndarray, y: np.ndarray, steps: int) -> float:
    """Twin-updates per second of the same filter stepped one twin at a time (the baseline)."""
    n = len(u)
    est = make_estimator("ukf", spec)
    est.add_twins([f"t{i}" for i in range(n)])
    for i in range(n):
        est.step(np.array([i]), y[i : i + 1], u[i : i + 1], np.zeros(1))
    t0 = time.perf_counter()
    for _ in range(steps):
        for i in range(n):
            est.step(np.array([i]), y[i : i + 1], u[i : i + 1], np.full(1, 60.0))
    return n * steps / (time.perf_counter() - t0)


def _progpy_rate(filters: int, steps: int) -> float | None:
    """progpy's UKF on a PrognosticsModel with the compact model's equations; None if absent."""
    try:
        from progpy import PrognosticsModel
        from progpy.state_estimators import UnscentedKalmanFilter as ProgpyUKF
    except ImportError:
        return None
    model = BearingModel()
    p = np.array([[q.default for q in model.parameters]])

    class ProgpyBearing(PrognosticsModel):  # type: ignore[misc, valid-type]
        inputs = ["speed_ratio", "ambient"]
        states = ["bearing_temperature", "winding_temperature", "wear"]
        outputs = ["bearing_temperature", "winding_temperature", "vibration"]
        events = ["failure"]
        default_parameters = {"x0": {"bearing_temperature": 65.0, "winding_temperature": 85.0, "wear": 0.0},
                              "process_noise": {"bearing_temperature": 0.02, "winding_temperature": 0.02,
                                                "wear": 1e-4},
                              "measurement_noise": {"bearing_temperature": 0.2, "winding_temperature": 0.3,
                                                    "vibration": 0.06}}

        def next_state(self, x, u, dt):  # noqa: ANN001, ANN201
            xs = np.array([[x["bearing_temperature"], x["winding_temperature"], x["wear"]]])
            nx = model.next_state(xs, np.array([[u["speed_ratio"], u["ambient"]]]), dt, p)[0]
            return self.StateContainer(dict(zip(self.states, nx.tolist(), strict=True)))

        def output(self, x):  # noqa: ANN001, ANN201
            xs = np.array([[x["bearing_temperature"], x["winding_temperature"], x["wear"]]])
            y = model.output(xs, np.array([[1.0, 25.0]]), p)[0]
            return self.OutputContainer(dict(zip(self.outputs, y.tolist(), strict=True)))

    warnings.filterwarnings("ignore", message="Use UncertainData", category=UserWarning)
    m = ProgpyBearing()
    u = m.InputContainer({"speed_ratio": 1.0, "ambient": 25.0})
    z = m.OutputContainer({"bearing_temperature": 65.0, "winding_temperature": 85.0, "vibration": 1.0})
    ukfs = [ProgpyUKF(m, m.initialize(u, z)) for _ in range(filters)]
    t0 = time.perf_counter()
    for k in range(1, steps + 1):
        for f in ukfs:
            f.estimate(60.0 * k, u, z)
    return filters * steps / (time.perf_counter() - t0)


def _wear_error(units: int) -> dict[str, float]:
    """UKF wear error against run_fleet's recorded true wear (lives compressed 20×)."""
    scale = 20.0
    run = run_fleet(n_units=units, seed=3, dt_s=600, sample_every_s=1800, wear_scale=scale,
                    cavitation_share=0.0, accelerated_share=0.0)
    r = run.readings
    settings = {"setting.speed": "speed_setpoint", "setting.valve": "valve_command",
                "setting.suction": "suction_pressure_setting", "setting.head": "static_head",
                "setting.ambient": "ambient_temperature"}
    channels = [*PUMP_MEASUREMENTS, *settings]
    values = np.stack([r.column(settings.get(c, c)).to_numpy().astype(float) for c in channels], axis=1)
    ids = np.array([f"pump-{u}" for u in r.column("unit").to_numpy()], dtype=object)
    ts = (r.column("t_h").to_numpy() * 3600e9).astype(np.int64)
    wear = r.column("wear").to_numpy()
    batch = ReadingBatch.from_arrays(np.repeat(ids, len(channels)),
                                     np.tile(np.array(channels, object), len(ids)),
                                     np.repeat(ts, len(channels)), values.ravel())
    model = PumpUnitModel()
    rate = model.parameters[index(model.parameters, "bearing_wear_rate")].default * scale
    spec = pump_spec(inputs={"speed_setpoint": "setting.speed", "valve_command": "setting.valve",
                             "suction_pressure": "setting.suction", "discharge_static_head": "setting.head",
                             "ambient_temperature": "setting.ambient"},
                     parameters={"bearing_wear_rate": rate})
    est = make_estimator("ukf", spec)
    est.add_twins(sorted(set(ids.tolist())))
    col = spec.augmented_names.index("bearing_wear")
    err, true = [], []
    for t in np.unique(ts):  # one sample of every live unit per update, as the pipeline would
        sel = batch.ts_ns == t
        est.update(batch.filter(sel))
        e = est.estimate()
        here = np.flatnonzero(ts == t)
        rows = est.rows(list(ids[here]))
        err.append(e.mean[rows, col] - wear[here]), true.append(wear[here])
    err_all, true_all = np.concatenate(err), np.concatenate(true)
    late = true_all > 0.5
    return {"wear_rmse": float(np.sqrt(np.mean(err_all**2))),
            "wear_rmse_below_0.2": float(np.sqrt(np.mean(err_all[true_all < 0.2] ** 2))),
            "wear_rmse_above_0.5": float(np.sqrt(np.mean(err_all[late] ** 2))),
            "wear_mae": float(np.mean(np.abs(err_all))), "samples": int(len(err_all))}


def main(argv: list[str] | None = None) -> dict[str, float | None]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twins", type=int, default=10_000)
    ap.add_argument("--loop-twins", type=int, default=200, help="twins in the per-twin baseline")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--progpy-filters", type=int, default=20)
    ap.add_argument("--wear-units", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best of each is reported")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    n, k = args.twins, args.loop_twins
    result: dict[str, float | None] = {"twins": n}

    spec = bearing_spec()
    u = np.stack([rng.uniform(0.8, 1.0, n), rng.uniform(10.0, 30.0, n)], axis=1)
    bp = spec.default_parameters(n)
    y = BearingModel().output(BearingModel().initial_state(bp, u), u, bp)
    fleet, share, loop = _rates(spec, u, y, k, args.steps, args.repeat)
    print(f"compact model (L=4)  fleet UKF {fleet:,.0f} twin-updates/s "
          f"({n / fleet * 1e3:.1f} ms per fleet step, {share:.0%} of it in the model)")
    print(f"                     per-twin loop {loop:,.0f} updates/s  ->  ratio {fleet / loop:,.0f}x")
    result.update(compact_fleet_updates_per_s=round(fleet), compact_loop_updates_per_s=round(loop),
                  compact_ratio=round(fleet / loop, 1), compact_physics_share=round(share, 3))
    prog = _progpy_rate(args.progpy_filters, args.steps)
    if prog is None:
        print("progpy               not installed: skipped")
    else:
        print(f"progpy UKF           {prog:,.0f} updates/s  ->  fleet UKF is {fleet / prog:,.0f}x faster")
    result.update(progpy_updates_per_s=None if prog is None else round(prog, 1),
                  progpy_ratio=None if prog is None else round(fleet / prog, 1))

    pspec = pump_spec(inputs={"speed_setpoint": "sp", "valve_command": "vc"})
    model = PumpUnitModel()
    pu = nominal_inputs(model, n, speed_setpoint=rng.uniform(2500, 2950, n))
    p = pspec.default_parameters(n)
    py = model.output(model.initial_state(p, pu), pu, p)[:, pspec.output_columns]
    fleet_p, share_p, loop_p = _rates(pspec, pu, py, k, args.steps, args.repeat)
    print(f"PumpUnitModel (L=6)  fleet UKF {fleet_p:,.0f} twin-updates/s "
          f"({n / fleet_p * 1e3:.0f} ms per fleet step, {share_p:.0%} of it in the model)")
    print(f"                     per-twin loop {loop_p:,.0f} updates/s  ->  ratio {fleet_p / loop_p:,.0f}x")
    result.update(pump_fleet_updates_per_s=round(fleet_p), pump_loop_updates_per_s=round(loop_p),
                  pump_ratio=round(fleet_p / loop_p, 1), pump_physics_share=round(share_p, 3))

    t0 = time.perf_counter()
    wear = _wear_error(args.wear_units)
    print(f"hidden wear (UKF, {args.wear_units} units run to failure, {wear['samples']} samples, "
          f"{time.perf_counter() - t0:.1f} s): RMSE {wear['wear_rmse']:.3f}, MAE {wear['wear_mae']:.3f}; "
          f"RMSE {wear['wear_rmse_below_0.2']:.3f} while wear < 0.2, "
          f"{wear['wear_rmse_above_0.5']:.4f} past 0.5")
    result.update({k2: round(v, 4) for k2, v in wear.items()})
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
