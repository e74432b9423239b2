"""The simulated Harbourside office building: 3 floors × 4 zones, one air handler per floor, 2 chillers.

Everything physical lives in two state matrices stepped together — `ZoneModel` with one row per
zone (12) and `ChillerModel` with one row per chiller (2):

* every zone row carries its share of its floor's air handler; the air handler's readings are
  totals over its four zones (airflow, coil load), flow-weighted means (supply temperature,
  damper), and its fan power is the affinity law on the *summed* airflow, ``P_d·(V/V_d)³``;
* the chillers form a parallel plant on one chilled-water loop: the coil loads are summed per
  air handler with `group_sum` and shared equally by the running chillers; the loop's supply
  temperature (the mean of the running chillers', or warming toward the return when none runs)
  feeds the zones' coils one sub-step later, with the loop's own lag of a few minutes;
* weather comes from `weather` (summer, per-week draws blended at the seams), heat-wave days add
  its +9 K plateau; occupancy from `occupancy_profile` (weekday office hours) times each zone's
  design head count; irradiance reaches each facade by its orientation.

Time is seconds since Monday 00:00. Before time starts the plant runs one simulated day at the
conditions of the day before, so it starts in steady operation (mass temperatures included).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twinloop.physics.building import (
    ChillerModel,
    ZoneModel,
    cop_loss,
    group_sum,
    occupancy_profile,
    sample_parameters,
    weather,
)
from twinloop.physics.model import index, names
from twinloop.sim.building_commands import CommandMixin
from twinloop.sim.building_layout import devices, facade_factor, layout, noise_table
from twinloop.sim.faults import Fault, FaultSchedule
from twinloop.sim.plant import CommandResult, DeviceSpec, Sample

_DAY = 86400.0
_ZONE, _CHILLER = ZoneModel(), ChillerModel()
_ZU = {n: i for i, n in enumerate(names(_ZONE.inputs))}
_ZY = {n: i for i, n in enumerate(names(_ZONE.outputs))}
_CY = {n: i for i, n in enumerate(names(_CHILLER.outputs))}
AHU_DESIGN_AIRFLOW = 24000.0  # m**3/h per air handler (plant.yaml)
AHU_FAN_DESIGN_POWER = 10.0  # kW per air handler (plant.yaml)
CHILLER_RATED_CAPACITY = 200.0  # kW each (plant.yaml)
LOOP_TIME_CONSTANT_S = 300.0  # chilled-water loop volume over its flow


class BuildingWeather:
    """Outdoor temperature and irradiance at any time, deterministic for a seed.

    `weather` draws its day-to-day offsets per call, so it is evaluated once per week on a 5-min
    grid and interpolated; the first half day of a week blends from the previous week's draw so
    there is no step at the seam. ``heatwave_days`` (days since the start of week 0) get the
    same +9 K plateau with half-day ramps that `weather` puts on days 2 … 5.
    """

    WEEK = 7 * _DAY
    GRID_S = 300.0
    BLEND_S = _DAY / 2

    def __init__(self, seed: int, heatwave_days: tuple[int, ...] = ()) -> None:
        self.seed = seed
        self.heatwave_days = np.array(sorted({int(d) for d in heatwave_days}), dtype=np.float64)
        self._chunks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _chunk(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if k not in self._chunks:
            if len(self._chunks) > 4:
                self._chunks.pop(next(iter(self._chunks)))
            grid = np.arange(k * self.WEEK, (k + 1) * self.WEEK + self.BLEND_S + self.GRID_S, self.GRID_S)
            temp, sun = weather(grid, np.random.default_rng([self.seed, 5, k % 2**32]))
            self._chunks[k] = (grid, temp, sun)
        return self._chunks[k]

    def _draw(self, k: int, t: float) -> tuple[float, float]:
        grid, temp, sun = self._chunk(k)
        return float(np.interp(t, grid, temp)), float(np.interp(t, grid, sun))

    def heatwave(self, t: float) -> float:
        """0 … 1: how far into a heat-wave plateau ``t`` is."""
        if not self.heatwave_days.size:
            return 0.0
        day = t / _DAY
        return float(np.clip(2.0 * np.minimum(day - self.heatwave_days + 0.5,
                                              self.heatwave_days + 1.5 - day), 0.0, 1.0).max())

    def at(self, t: float) -> tuple[float, float]:
        """Outdoor temperature [degC] and global horizontal irradiance [W/m**2] at ``t``."""
        k = math.floor(t / self.WEEK)
        temp, sun = self._draw(k, t)
        into = t - k * self.WEEK
        if into < self.BLEND_S:
            w = into / self.BLEND_S
            prev_temp, prev_sun = self._draw(k - 1, t)
            temp, sun = w * temp + (1 - w) * prev_temp, w * sun + (1 - w) * prev_sun
        return temp + 9.0 * self.heatwave(t), sun


class BuildingPlant(CommandMixin):
    """The demo office building as a `SimPlant`; deterministic for a seed and a command sequence.

    ``start_time_s`` is seconds since Monday 00:00 of week 0 (``86400 + 9*3600``: Tuesday 09:00);
    ``heatwave_days`` lists days (0 = that Monday) that get the +9 K heat-wave plateau.
    """

    name = "building"

    def __init__(
        self,
        seed: int = 1,
        faults: FaultSchedule | None = None,
        start_time_s: float = 0.0,
        noise: bool = True,
        heatwave_days: tuple[int, ...] = (),
    ) -> None:
        self.plan = layout()
        self.noise = noise
        self.max_substep_s = 60.0
        self.weather = BuildingWeather(seed, tuple(heatwave_days))
        self._t = float(start_time_s)
        self._devices = devices(self.plan)
        self._dev_index = {d.id: i for i, d in enumerate(self._devices)}
        self._offsets = np.cumsum([0] + [len(d.channels) for d in self._devices])
        self._col = {(d.id, c.name): int(self._offsets[i] + j)
                     for i, d in enumerate(self._devices) for j, c in enumerate(d.channels)}
        self._noise_abs, self._noise_rel, self._lo, self._hi = noise_table(self._devices)
        self._rng = np.random.default_rng([seed, 1])
        self.faults = faults if faults is not None else FaultSchedule(seed=seed)
        for f in self.faults.faults:
            self._check_fault(f)

        n_z, n_a, n_c = len(self.plan.zones), len(self.plan.ahus), len(self.plan.chillers)
        self._zone_ahu = self.plan.zone_ahu
        self._pz = self._zone_parameters(np.random.default_rng([seed, 2]), n_z)
        self._pc = sample_parameters(_CHILLER, n_c, np.random.default_rng([seed, 3]), 0.03)
        self._pc[:, index(_CHILLER.parameters, "rated_capacity")] = CHILLER_RATED_CAPACITY
        self._stuck_col = index(_ZONE.parameters, "damper_stuck_position")
        self._xc = _CHILLER.initial_state(self._pc, np.zeros((n_c, len(_CHILLER.inputs))))
        self._headcount = np.random.default_rng([seed, 4]).uniform(0.75, 1.05, n_z) * self._pz[
            :, index(_ZONE.parameters, "design_occupancy")]

        # Operation as plant.yaml desires it: 24 degC zones, 13 degC supply air, 7 degC chilled water.
        self.setpoint = np.full(n_z, 24.0)
        self.supply_setpoint = np.full(n_a, 13.0)
        self.fan_speed = np.ones(n_a)
        self.chw_setpoint = np.full(n_c, 7.0)
        self.running = np.ones(n_c, dtype=bool)
        self._chw = 7.0
        self._energy = dict.fromkeys(("chiller_electric", "fan", "heating", "cooling", "unmet_cooling"), 0.0)
        self._cache: tuple[float, dict[str, Any]] | None = None

        t0 = self._t - _DAY
        start = np.column_stack([self.setpoint, self.setpoint, np.full(n_z, 420.0)])
        env = self._evaluate(t0, start)
        self._xz = _ZONE.initial_state(self._pz, env["uz"])
        self._xc = _CHILLER.initial_state(self._pc, env["uc"], np.random.default_rng([seed, 6]))
        self._settle(t0)

    # ----------------------------------------------------------------------------------- setup
    def _zone_parameters(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Unit-to-unit spread around the defaults, with the nameplate values of plant.yaml kept."""
        p = sample_parameters(_ZONE, n, rng, 0.1)
        col = {q.name: i for i, q in enumerate(_ZONE.parameters)}
        p[:, col["floor_area"]] = 500.0
        p[:, col["design_occupancy"]] = 50.0
        p[:, col["design_airflow"]] = AHU_DESIGN_AIRFLOW / 4
        p[:, col["fan_design_power"]] = AHU_FAN_DESIGN_POWER / 4
        return p

    def _settle(self, t0: float) -> None:
        """Run the day before ``start_time_s`` (faults held, coarse steps) so operation is steady.

        Fouling and the energy ledgers are put back, so a run starts with the wear it was given.
        """
        start, faults, fouling = self._t, self.faults, self._xc.copy()
        self.faults, self._t, self.max_substep_s = FaultSchedule(), t0, 300.0
        try:
            self.step(start - t0)
        finally:
            self.faults, self._t, self.max_substep_s = faults, start, 60.0
        self._xc = fouling
        self._energy = dict.fromkeys(self._energy, 0.0)
        self._cache = None

    @property
    def zone_parameters(self) -> np.ndarray:
        """The zones' `ZoneModel` parameters, one row per zone (a copy: for tests and estimators)."""
        return self._pz.copy()

    # --------------------------------------------------------------------------------- protocol
    @property
    def devices(self) -> tuple[DeviceSpec, ...]:
        """Every device of the example plant, in publishing order."""
        return self._devices

    @property
    def t_s(self) -> float:
        """Simulated seconds since Monday 00:00 of week 0."""
        return self._t

    def step(self, dt: float) -> None:
        """Advance by ``dt`` s in sub-steps of at most ``max_substep_s``."""
        if dt <= 0:
            return
        k = max(1, math.ceil(dt / self.max_substep_s - 1e-9))
        for _ in range(k):
            self._substep(dt / k)

    def _evaluate(self, t: float, xz: np.ndarray | None = None) -> dict[str, Any]:
        """Inputs and ideal outputs of every zone and chiller at ``t`` and the current state."""
        xz = self._xz if xz is None else xz
        n_a, n_c = len(self.plan.ahus), len(self.plan.chillers)
        outdoor, sun = self.weather.at(t)
        hour = (t % _DAY) / 3600.0
        people = np.round(self._headcount * float(occupancy_profile(np.array(t))))
        stuck, pz, acc = np.zeros(len(self.plan.zones)), self._pz, np.ones(n_c)
        for f in self.faults.active(t, ("damper_stuck", "fouling_acceleration")):
            if f.kind == "fouling_acceleration":
                acc[self.plan.chillers.index(f.device)] *= f.params["factor"]
                continue
            pz = pz.copy() if pz is self._pz else pz
            rows = self._zone_rows(f.device)
            stuck[rows], pz[rows, self._stuck_col] = 1.0, f.params["position"] / 100.0
        uz = np.empty((len(self.plan.zones), len(_ZU)))
        uz[:, _ZU["outdoor_temperature"]] = outdoor
        uz[:, _ZU["solar_irradiance"]] = sun * facade_factor(self.plan.zone_side, hour)
        uz[:, _ZU["occupancy"]] = people
        uz[:, _ZU["zone_setpoint"]] = self.setpoint
        uz[:, _ZU["supply_air_setpoint"]] = self.supply_setpoint[self._zone_ahu]
        uz[:, _ZU["fan_speed"]] = self.fan_speed[self._zone_ahu]
        uz[:, _ZU["chilled_water_temperature"]] = self._chw
        uz[:, _ZU["damper_stuck"]] = stuck
        yz = _ZONE.output(xz, uz, pz)
        coil = group_sum(yz[:, _ZY["cooling_coil_load"]], self._zone_ahu, n_a)
        share = np.where(self.running, coil.sum() / max(int(self.running.sum()), 1), 0.0)
        uc = np.column_stack([share, np.full(n_c, outdoor), self.chw_setpoint, acc - 1.0])
        yc = _CHILLER.output(self._xc, uc, self._pc)
        flow = group_sum(yz[:, _ZY["airflow"]], self._zone_ahu, n_a)
        fan = AHU_FAN_DESIGN_POWER * (flow / AHU_DESIGN_AIRFLOW) ** 3
        return {"outdoor": outdoor, "sun": sun, "uz": uz, "pz": pz, "yz": yz, "uc": uc, "yc": yc,
                "coil": coil, "flow": flow, "fan": fan}

    def _zone_rows(self, device_id: str) -> np.ndarray:
        if device_id in self.plan.ahus:
            return np.flatnonzero(self._zone_ahu == self.plan.ahus.index(device_id))
        return np.array([self.plan.zones.index(device_id)])

    def _substep(self, h: float) -> None:
        env = self._evaluate(self._t)
        yc = env["yc"]
        kwh = h / 3600.0
        self._energy["chiller_electric"] += float(yc[:, _CY["electrical_power"]].sum()) * kwh
        self._energy["fan"] += float(env["fan"].sum()) * kwh
        self._energy["heating"] += float(env["yz"][:, _ZY["heating_load"]].sum()) * kwh
        self._energy["cooling"] += float(yc[:, _CY["cooling_delivered"]].sum()) * kwh
        self._energy["unmet_cooling"] += float(yc[:, _CY["unmet_load"]].sum()) * kwh
        self._xz = _ZONE.next_state(self._xz, env["uz"], h, env["pz"])
        self._xc = _CHILLER.next_state(self._xc, env["uc"], h, self._pc)
        # The loop follows the running chillers' supply; with none running it warms toward the zones.
        supply = yc[:, _CY["chilled_water_supply_temperature"]]
        target = float(supply[self.running].mean() if self.running.any() else self._xz[:, 0].mean())
        self._chw += (target - self._chw) * -math.expm1(-h / LOOP_TIME_CONSTANT_S)
        self._t += h
        self._cache = None

    # --------------------------------------------------------------------------------- readings
    def _now(self) -> dict[str, Any]:
        if self._cache is None or self._cache[0] != self._t:
            self._cache = (self._t, self._evaluate(self._t))
        return self._cache[1]

    def _true_values(self) -> np.ndarray:
        env = self._now()
        yz, yc, uz, flow = env["yz"], env["yc"], env["uz"], env["flow"]
        n_a = len(self.plan.ahus)
        weights = np.where(flow[self._zone_ahu] > 0, yz[:, _ZY["airflow"]] / np.maximum(flow, 1e-9)[
            self._zone_ahu], 0.25)
        t_sup = group_sum(yz[:, _ZY["supply_air_temperature"]] * weights, self._zone_ahu, n_a)
        damper = group_sum(yz[:, _ZY["damper_position"]] * weights, self._zone_ahu, n_a)
        chiller_power = yc[:, _CY["electrical_power"]]
        building = [env["outdoor"], env["sun"], chiller_power.sum() + env["fan"].sum()]
        zones = np.column_stack([yz[:, _ZY["air_temperature"]], yz[:, _ZY["co2"]],
                                 humidity(yz[:, _ZY["air_temperature"]], yz[:, _ZY["supply_air_temperature"]],
                                          uz[:, _ZU["outdoor_temperature"]], uz[:, _ZU["occupancy"]]),
                                 uz[:, _ZU["occupancy"]]])
        ahus = np.column_stack([t_sup, flow, env["fan"], damper, env["coil"]])
        on = env["uc"][:, 0] > 0  # a chiller without load reports the loop's water and no COP
        chillers = np.column_stack([
            np.where(self.running, yc[:, _CY["chilled_water_supply_temperature"]], self._chw),
            np.where(self.running, yc[:, _CY["chilled_water_return_temperature"]], self._chw),
            yc[:, _CY["cooling_delivered"]], chiller_power, np.where(on, yc[:, _CY["cop"]], 0.0)])
        return np.concatenate([building, zones.ravel(), ahus.ravel(), chillers.ravel()]).astype(np.float64)

    def sample(self) -> Sample:
        """Every device's readings now: true values + sensor noise + active sensor faults."""
        v = self._true_values()
        if self.noise:
            v = v + (self._noise_abs + self._noise_rel * np.abs(v)) * self._rng.standard_normal(v.size)
            v = np.clip(v, self._lo, self._hi)
        v = self.faults.apply_sensor_faults(self._t, v, lambda d, c: self._col.get((d, c)))
        offline = self.faults.offline(self._t)
        online = np.array([d.id not in offline for d in self._devices])
        return Sample(self._t, tuple(np.split(v, self._offsets[1:-1])), online)

    def ground_truth(self) -> dict[str, Any]:
        """Hidden truth: chiller fouling and COP loss, zone states, active faults, energy so far."""
        env = self._now()
        chillers, zones = self.plan.chillers, self.plan.zones
        fouling, loss = self._xc[:, 0], cop_loss(self._xc, self._pc)
        health = _CHILLER.event_state(self._xc, self._pc)[:, 0]
        return {
            "t_s": self._t,
            "fouling": {c: float(f) for c, f in zip(chillers, fouling, strict=True)},
            "cop_loss": {c: float(v) for c, v in zip(chillers, loss, strict=True)},
            "degraded": {c: bool(h <= 0.0) for c, h in zip(chillers, health, strict=True)},
            "running": {c: bool(r) for c, r in zip(chillers, self.running, strict=True)},
            "chilled_water_temperature": self._chw,
            "outdoor_temperature": env["outdoor"],
            "heatwave": self.weather.heatwave(self._t),
            "zones": {
                z: {"air_temperature": float(self._xz[i, 0]), "mass_temperature": float(self._xz[i, 1]),
                    "co2": float(self._xz[i, 2]), "setpoint": float(self.setpoint[i]),
                    "occupancy": float(env["uz"][i, _ZU["occupancy"]]),
                    "damper_stuck": bool(env["uz"][i, _ZU["damper_stuck"]] > 0)}
                for i, z in enumerate(zones)
            },
            "faults": self.faults.records(self._t),
            "fault_history": self.faults.records(),
            "energy_kwh": dict(self._energy),
        }

    # -------------------------------------------------------------------------------- commands
    def apply_command(self, device_id: str, name: str, args: dict[str, Any]) -> CommandResult:
        """Validate and apply a command; effects come through the physics on the next steps."""
        self._cache = None
        return self._command(device_id, name, dict(args or {}))

    def inject(self, fault: Fault) -> Fault:
        """Schedule a fault (validated against this plant's devices); returns it with its id."""
        self._check_fault(fault)
        self._cache = None
        return self.faults.inject(fault)


def humidity(t_air: np.ndarray, t_supply: np.ndarray, t_out: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Zone relative humidity [%]: not in the physics model, a plausible derived reading.

    The zone's dew point is the outdoor one (summer: ~8 K below the dry bulb) unless the coil,
    colder than that, dries the supply air to about 1 K above its leaving temperature; people add
    moisture (~0.02 K of dew point each). Relative humidity by the Magnus formula.
    """
    dew = np.minimum(t_out - 8.0, t_supply + 1.0) + 0.02 * people
    a, b = 17.62, 243.12
    return np.clip(100.0 * np.exp(a * dew / (b + dew) - a * t_air / (b + t_air)), 0.0, 100.0)


__all__ = ["AHU_DESIGN_AIRFLOW", "AHU_FAN_DESIGN_POWER", "BuildingPlant", "BuildingWeather", "humidity"]
