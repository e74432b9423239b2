"""The simulated Riverside pump station: 3 lines × 4 pumps, suction tanks, a reservoir, two MCCs.

Everything physical lives in two state matrices — ``PumpUnitModel`` with one row per pump and
``TankModel`` with one row per tank (suction tanks, then the reservoir) — stepped together:

* each suction tank ``tank-X`` is fed by a river intake (a level controller opens it) and drained
  by its line's pumps; the pumps of a line discharge into one header that feeds ``reservoir-1``
  through a pipe, so the header head is ``z + r·Q_line²`` above the pumps;
* the header is coupled **explicitly**: pumps see the header head of the previous sub-step as
  their ``discharge_static_head``; after the pumps move, the header head takes one damped Newton
  step toward the pipe's system curve (`_update_header`); sub-steps are at most ``max_substep_s``
  (5 s), and the header settles within a few of them — faster than a 1 Hz sensor resolves;
* a station controller holds each line's header pressure at the pressure that delivers the
  outlet demand (plus a reservoir-level correction) by trimming the speed of the line's duty
  pumps; pumps given ``setSpeed`` leave its control (``control_mode`` remote) until ``start``;
* the reservoir's outlet follows the production demand of `Environment`.

A pump whose bearing wear reaches 1 trips (setpoint 0, not running), the failure is recorded
with its time, and the line's standby pump starts (``auto_standby``). ``replaceBearing`` on a
stopped pump resets its wear and clears the trip (recorded under ``repairs`` in the ground truth).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twinloop.physics.model import default_parameters, index
from twinloop.physics.pump import G
from twinloop.physics.pump_unit import PumpUnitModel
from twinloop.physics.tank import TankModel, tank_step
from twinloop.sim.environment import Environment
from twinloop.sim.faults import Fault, FaultSchedule
from twinloop.sim.plant import CommandResult, DeviceSpec, Sample
from twinloop.sim.pump_station_commands import CommandMixin
from twinloop.sim.pump_station_layout import PUMP_CHANNELS, devices, noise_table, non_negative_mask, pumps

RHO = 998.0  # kg/m**3, raw water
SUCTION_ELEVATION_M = 1.0  # tank floor above the pump suction flange
STATIC_LIFT_M = 18.0  # geodetic lift from the pumps to the reservoir inlet
NOMINAL_OUTLET = 900.0  # m**3/h station outlet at demand 1.0 (≈ 9 duty pumps near rated flow)
RESERVOIR_SETPOINT_M = 4.0
SUCTION_SETPOINT_M = 3.0


class PumpStationPlant(CommandMixin):
    """The demo pump station as a `SimPlant`; deterministic for a seed and a command sequence."""

    name = "pump-station"

    def __init__(
        self,
        seed: int = 1,
        lines: tuple[str, ...] = ("A", "B", "C"),
        pumps_per_line: int = 4,
        faults: FaultSchedule | None = None,
        start_time_s: float = 0.0,
        noise: bool = True,
        environment: Environment | None = None,
    ) -> None:
        self.lines = tuple(lines)
        self.pumps = pumps(self.lines, pumps_per_line)
        self.env = environment or Environment(seed=seed)
        self.noise = noise
        self.auto_standby = True
        self.max_substep_s = 5.0
        self._t = float(start_time_s)
        self._devices = devices(self.lines, self.pumps)
        self._dev_index = {d.id: i for i, d in enumerate(self._devices)}
        self._offsets = np.cumsum([0] + [len(d.channels) for d in self._devices])
        self._col = {
            (d.id, c.name): int(self._offsets[i] + j)
            for i, d in enumerate(self._devices)
            for j, c in enumerate(d.channels)
        }
        self._noise_abs, self._noise_rel = noise_table(self._devices)
        self._non_negative = non_negative_mask(self._devices)
        self._rng = np.random.default_rng([seed, 1])
        self.faults = faults if faults is not None else FaultSchedule(seed=seed)
        for f in self.faults.faults:
            self._check_fault(f)

        n, n_lines = len(self.pumps), len(self.lines)
        self._line_of = np.array([self.lines.index(p.line) for p in self.pumps])
        self._per_line = pumps_per_line
        self.model = PumpUnitModel()
        self._p = self._pump_parameters(np.random.default_rng([seed, 2]))
        self.tank_model = TankModel()
        area = np.array([50.0] * n_lines + [625.0])  # 250 m3 suction tanks (5 m), 5000 m3 reservoir (8 m)
        height = np.array([5.0] * n_lines + [8.0])
        self._tp = default_parameters(self.tank_model, n_lines + 1, cross_section=area, height=height)
        self._level = np.array([SUCTION_SETPOINT_M] * n_lines + [RESERVOIR_SETPOINT_M])
        # Stored water sits near the mean air temperature of the last days.
        day = self._t + np.arange(-72.0, 0.0) * 3600.0
        self._water_temp = np.full(n_lines + 1, float(self.env.ambient_temperature(day).mean()))

        # Operation: 3 of 4 pumps per line on duty, the last one standby.
        self.running = np.array([(k % pumps_per_line) < max(pumps_per_line - 1, 1) for k in range(n)])
        self.manual = np.zeros(n, dtype=bool)
        self.failed = np.zeros(n, dtype=bool)
        self._manual_sp = np.zeros(n)
        self._valve_cmd = np.full(n, 100.0)
        self._valve_target = np.full(n, 100.0)
        self._valve_rate = np.zeros(n)  # %/s of an active setPositionRamp, 0 when none
        self._line_speed = np.full(n_lines, 2600.0)
        self._header_head = np.full(n_lines, STATIC_LIFT_M + 4.0)
        self._r_line = np.full(n_lines, 4.0 / (NOMINAL_OUTLET / n_lines) ** 2)  # 4 m pipe loss at design flow
        self._outlet = 0.0
        self._intake = np.zeros(n_lines)
        self._failures: list[dict[str, Any]] = []
        self._repairs: list[dict[str, Any]] = []
        self._in_m3 = np.zeros(n_lines + 1)
        self._out_m3 = np.zeros(n_lines + 1)
        self._spill_m3 = np.zeros(n_lines + 1)
        self._short_m3 = np.zeros(n_lines + 1)

        self._u = self._inputs(self._t)
        self._x = self.model.initial_state(self._p, self._u)
        # A fleet of different ages: bearings start part-worn so failures spread over weeks.
        self._x[:, index(self.model.states, "bearing_wear")] = np.random.default_rng([seed, 3]).uniform(
            0.05, 0.6, n
        )
        self._y = self.model.output(self._x, self._u, self._p)
        self._settle(600.0)

    # ----------------------------------------------------------------------------------- setup
    def _pump_parameters(self, rng: np.random.Generator) -> np.ndarray:
        """Unit-to-unit spread around each pump's datasheet (plant.yaml: rated flow and head).

        The model's defaults describe a 200 m**3/h, 75 m, 55 kW pump; the curve is rescaled so its
        best-efficiency point sits at the rated duty (``H0 ≈ 1.27·H_r``, as in the default), the
        motor is the next IEC size above the shaft power there, the valve and pipe are DN125.
        """
        p = self.model.sample_parameters(len(self.pumps), rng, 0.15)
        flow = np.array([q.rated_flow for q in self.pumps])
        head = np.array([q.rated_head for q in self.pumps])
        col = {q.name: i for i, q in enumerate(self.model.parameters)}
        p[:, col["shutoff_head"]] *= head / 75.0
        p[:, col["head_coefficient"]] *= (head / 75.0) / (flow / 200.0) ** 2
        p[:, col["bep_flow"]] *= flow / 200.0
        p[:, col["npshr_bep"]] *= (flow / 200.0) ** (2.0 / 3.0)
        p[:, col["motor_rated_power"]] = np.where(flow > 130.0, 18.5, 15.0)
        p[:, col["pipe_resistance"]] = 1.5 / flow**2  # 1.5 m of friction to the header at rated flow
        p[:, col["valve_kvs"]] = np.where(flow > 130.0, 350.0, 280.0)
        return p

    def _settle(self, seconds: float) -> None:
        """Run the controllers to a steady operating point before time starts (faults and wear held).

        The clock, tank levels, bearing wear and the ledgers are put back afterwards, so a run
        starts in steady operation at ``start_time_s`` with the wear it was given.
        """
        t0, level0, faults = self._t, self._level.copy(), self.faults
        wear_col = index(self.model.states, "bearing_wear")
        wear0 = self._x[:, wear_col].copy()
        self.faults = FaultSchedule()
        try:
            self.step(seconds)
        finally:
            self.faults = faults
        self._t, self._level = t0, level0
        self._x[:, wear_col] = wear0
        for ledger in (self._in_m3, self._out_m3, self._spill_m3, self._short_m3):
            ledger[:] = 0.0
        self._u = self._inputs(self._t)
        self._y = self.model.output(self._x, self._u, self._p)

    # --------------------------------------------------------------------------------- protocol
    @property
    def devices(self) -> tuple[DeviceSpec, ...]:
        """Every device of the example plant, in publishing order."""
        return self._devices

    @property
    def t_s(self) -> float:
        """Simulated seconds since the start (``start_time_s`` at construction)."""
        return self._t

    def step(self, dt: float) -> None:
        """Advance by ``dt`` s in sub-steps of at most ``max_substep_s``."""
        if dt <= 0:
            return
        k = max(1, math.ceil(dt / self.max_substep_s - 1e-9))
        h = dt / k
        for _ in range(k):
            self._substep(h)

    def _inputs(self, t: float) -> np.ndarray:
        inp = self.model.inputs
        n = len(self.pumps)
        u = np.zeros((n, len(inp)))
        auto_sp = self._line_speed[self._line_of]
        u[:, index(inp, "speed_setpoint")] = np.where(
            self.running, np.where(self.manual, self._manual_sp, auto_sp), 0.0
        )
        u[:, index(inp, "valve_command")] = self._valve_cmd
        drop = self._suction_drop(t)
        suction = RHO * G * (self._level[self._line_of] + SUCTION_ELEVATION_M) / 1e5 - drop[self._line_of]
        u[:, index(inp, "suction_pressure")] = suction
        u[:, index(inp, "discharge_static_head")] = self._header_head[self._line_of]
        u[:, index(inp, "ambient_temperature")] = float(self.env.ambient_temperature(t))
        wear_acc, stuck = np.ones(n), np.zeros(n)
        for f in self.faults.active(t, ("bearing_wear", "stuck_valve")):
            k = self._pump_row(f.device)
            if f.kind == "bearing_wear":
                wear_acc[k] *= f.params["factor"]
            else:
                stuck[k] = 1.0
        u[:, index(inp, "wear_acceleration")] = wear_acc
        u[:, index(inp, "valve_stuck")] = stuck
        return u

    def _suction_drop(self, t: float) -> np.ndarray:
        drop = np.zeros(len(self.lines))
        for f in self.faults.active(t, ("cavitation",)):
            drop[self.lines.index(f.device.split("-", 1)[1])] += f.params["drop_bar"]
        return drop

    def _substep(self, h: float) -> None:
        t = self._t
        n_lines = len(self.lines)
        # Valve ramps move the command itself; the actuator's rate limit and stiction are physics.
        ramping = self._valve_rate > 0
        if ramping.any():
            step = np.clip(self._valve_target - self._valve_cmd, -self._valve_rate * h, self._valve_rate * h)
            self._valve_cmd = np.where(ramping, self._valve_cmd + step, self._valve_cmd)
            self._valve_rate = np.where(
                ramping & (np.abs(self._valve_target - self._valve_cmd) < 1e-9), 0.0, self._valve_rate
            )
        demand = float(self.env.demand(t))
        self._outlet = NOMINAL_OUTLET * demand if self._level[-1] > 0.05 else 0.0
        self._control(h)
        u = self._inputs(t)
        self._x = self.model.next_state(self._x, u, h, self._p)
        self._u = u
        self._y = self.model.output(self._x, u, self._p)
        q_line = self.line_flows()
        self._update_header(q_line, u)
        # Tanks: river intake holds each suction tank near its setpoint; the reservoir feeds the outlet.
        self._intake = np.clip(q_line + 200.0 * (SUCTION_SETPOINT_M - self._level[:n_lines]), 0.0, 1500.0)
        inflow = np.append(self._intake, q_line.sum())
        outflow = np.append(q_line, self._outlet)
        level, spilled, short = tank_step(self._level, inflow, outflow, h, self._tp[:, 0], self._tp[:, 1])
        self._level = level
        self._in_m3 += inflow * h / 3600.0
        self._out_m3 += outflow * h / 3600.0
        self._spill_m3 += spilled
        self._short_m3 += short
        ambient = float(self.env.ambient_temperature(t))
        self._water_temp += (ambient - self._water_temp) * (1.0 - math.exp(-h / (3 * 86_400.0)))
        self._t = t + h
        self._check_failures()

    def _update_header(self, q_line: np.ndarray, u: np.ndarray) -> None:
        """One damped Newton step of the header head toward the pipe's system curve (explicit coupling).

        ``H = z + r·Q_line(H)²`` couples pumps and pipe. Instead of solving it inside every step, the
        header head moves once per sub-step by ``(T − H)/(1 + g)``, where ``g`` is the loop gain
        ``2·r·Q_line·|dQ_line/dH|`` from the pumps' curves (``dQ/dH = −Q/(2·(H0·s² − H_s))``), so the
        coupling is stable for any sub-step and converges within a few of them.
        """
        flow = self._y[:, index(self.model.outputs, "flow")]
        s = (
            self._x[:, index(self.model.states, "speed")]
            / self._p[:, index(self.model.parameters, "rated_speed")]
        )
        suction_head = u[:, index(self.model.inputs, "suction_pressure")] * 1e5 / (RHO * G)
        margin = self._p[:, index(self.model.parameters, "shutoff_head")] * s**2 - (
            self._header_head[self._line_of] - suction_head
        )
        slope = np.where((flow > 1e-6) & (margin > 1e-3), flow / (2.0 * np.maximum(margin, 1e-3)), 0.0)
        dq_dh = np.bincount(self._line_of, weights=slope, minlength=len(self.lines))
        gain = 2.0 * self._r_line * q_line * dq_dh
        target = STATIC_LIFT_M + self._level[-1] + self._r_line * q_line**2
        self._header_head = self._header_head + (target - self._header_head) / (1.0 + gain)

    def _control(self, h: float) -> None:
        """Integral control of header pressure by the speed of each line's auto pumps."""
        n_lines = len(self.lines)
        target_q = (self._outlet + (RESERVOIR_SETPOINT_M - self._level[-1]) * 625.0 / 2.0) / n_lines
        target_q = np.clip(target_q, 0.0, None)
        target_head = STATIC_LIFT_M + self._level[-1] + self._r_line * target_q**2
        error_bar = RHO * G * (target_head - self._header_head) / 1e5
        self._line_speed = np.clip(self._line_speed + 40.0 * error_bar * h, 1200.0, 2980.0)

    def _check_failures(self) -> None:
        wear = self._x[:, index(self.model.states, "bearing_wear")]
        tripped = (wear >= 1.0) & ~self.failed
        for k in np.flatnonzero(tripped):
            self.failed[k] = True
            self.running[k] = False
            self.manual[k] = False
            self._failures.append({"device": self.pumps[k].id, "t_s": self._t, "kind": "bearing_failure"})
            if self.auto_standby:
                line = self._line_of[k]
                spare = np.flatnonzero((self._line_of == line) & ~self.running & ~self.failed)
                if spare.size:
                    self.running[spare[0]] = True
                    self.manual[spare[0]] = False

    # --------------------------------------------------------------------------------- readings
    def line_flows(self) -> np.ndarray:
        """True flow [m**3/h] of each line's header (sum of its pumps)."""
        flow = self._y[:, index(self.model.outputs, "flow")]
        return np.bincount(self._line_of, weights=flow, minlength=len(self.lines))

    def _true_values(self) -> np.ndarray:
        y, out = self._y, self.model.outputs
        col = {
            name: index(out, name) for name in {o for _, o, _ in PUMP_CHANNELS} | {"power", "motor_current"}
        }
        power, current = y[:, col["power"]], y[:, col["motor_current"]]
        q_line = self.line_flows()
        header_bar = RHO * G * self._header_head / 1e5
        tank_out = self.tank_model.output(self._level[:, None], np.zeros((len(self._level), 2)), self._tp)
        station = [power.sum(), self._outlet]
        lines = np.column_stack([header_bar, q_line]).ravel()
        tanks = np.column_stack([tank_out[:, 0], tank_out[:, 1], self._water_temp]).ravel()
        mccs = []
        wave = math.sin(2 * math.pi * self._t / 3700.0)
        for mcc in sorted({p.mcc for p in self.pumps}):
            rows = np.array([p.mcc == mcc for p in self.pumps])
            amps = current[rows].sum()
            mccs += [
                400.0 + 2.0 * wave - 0.004 * amps,
                50.0 + 0.02 * math.sin(2 * math.pi * self._t / 900.0),
                amps,
                power[rows].sum(),
            ]
        pump_vals = y[:, [col[o] for _, o, _ in PUMP_CHANNELS]].ravel()
        return np.concatenate([station, lines, tanks, mccs, pump_vals]).astype(np.float64)

    def sample(self) -> Sample:
        """Every device's readings now: true values + sensor noise + active sensor faults."""
        v = self._true_values()
        if self.noise:
            v = v + (self._noise_abs + self._noise_rel * np.abs(v)) * self._rng.standard_normal(v.size)
            v[self._non_negative] = np.maximum(v[self._non_negative], 0.0)
        v = self.faults.apply_sensor_faults(self._t, v, lambda d, c: self._col.get((d, c)))
        offline = self.faults.offline(self._t)
        online = np.array([d.id not in offline for d in self._devices])
        return Sample(self._t, tuple(np.split(v, self._offsets[1:-1])), online)

    def ground_truth(self) -> dict[str, Any]:
        """Hidden truth: wear, cavitation and state per pump, faults, failures, repairs, tank ledgers."""
        st, out = self.model.states, self.model.outputs
        wear = self._x[:, index(st, "bearing_wear")]
        cav = self._y[:, index(out, "cavitation")]
        tank_ids = [f"tank-{x}" for x in self.lines] + ["reservoir-1"]
        volume = self._level * self._tp[:, 0]
        return {
            "t_s": self._t,
            "wear": {p.id: float(w) for p, w in zip(self.pumps, wear, strict=True)},
            "cavitation": {p.id: float(c) for p, c in zip(self.pumps, cav, strict=True)},
            "running": {p.id: bool(r) for p, r in zip(self.pumps, self.running, strict=True)},
            "failed": {p.id: bool(f) for p, f in zip(self.pumps, self.failed, strict=True)},
            "faults": self.faults.records(self._t),
            "fault_history": self.faults.records(),
            "failures": [dict(f) for f in self._failures],
            "repairs": [dict(r) for r in self._repairs],
            "header_head_m": {
                f"line-{x}": float(h) for x, h in zip(self.lines, self._header_head, strict=True)
            },
            "tanks": {
                tid: {
                    "level": float(self._level[i]),
                    "volume": float(volume[i]),
                    "inflow_m3": float(self._in_m3[i]),
                    "outflow_m3": float(self._out_m3[i]),
                    "spilled_m3": float(self._spill_m3[i]),
                    "shortfall_m3": float(self._short_m3[i]),
                }
                for i, tid in enumerate(tank_ids)
            },
        }

    # -------------------------------------------------------------------------------- internals
    def _pump_row(self, device_id: str) -> int:
        return next(k for k, p in enumerate(self.pumps) if p.id == device_id)

    def apply_command(self, device_id: str, name: str, args: dict[str, Any]) -> CommandResult:
        """Validate and apply a command; effects come through the physics on the next steps."""
        return self._command(device_id, name, dict(args or {}))

    def inject(self, fault: Fault) -> Fault:
        """Schedule a fault (validated against this plant's devices); returns it with its id."""
        self._check_fault(fault)
        return self.faults.inject(fault)


__all__ = ["NOMINAL_OUTLET", "PumpStationPlant"]
