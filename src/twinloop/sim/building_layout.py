"""What the simulated office building looks like on the wire: devices, channels, commands, noise.

It mirrors ``examples/building`` (twin ids, channel names and units as the asset types declare
them), so a twinloop instance loaded with that plant file maps every published reading without a
mapping table. The floors (``floor-1`` …) are twins too, but their type declares neither channels
nor commands: nothing of theirs goes over the wire, so they are not devices here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinloop.sim.faults import fault_commands
from twinloop.sim.plant import ChannelSpec, CommandSpec, DeviceSpec

SIDES = ("north", "east", "south", "west")

BUILDING_CHANNELS = (("outdoor_temperature", "degC"), ("solar_irradiance", "W/m**2"), ("hvac_power", "kW"))
ZONE_CHANNELS = (("air_temperature", "degC"), ("co2", "ppm"), ("humidity", "percent"),
                 ("occupancy", "dimensionless"))
AHU_CHANNELS = (("supply_air_temperature", "degC"), ("airflow", "m**3/h"), ("fan_power", "kW"),
                ("damper_position", "percent"), ("cooling_coil_load", "kW"))
CHILLER_CHANNELS = (("chilled_water_supply_temperature", "degC"),
                    ("chilled_water_return_temperature", "degC"), ("cooling_load", "kW"),
                    ("electrical_power", "kW"), ("cop", "dimensionless"))

# Sensor accuracy as (absolute, relative-to-reading) standard deviations and the range a reading
# is clipped to (a transmitter cannot report below its span): Pt1000 0.1 K, NDIR CO2 ±(10 ppm +
# 2 %), capacitive RH 1.5 %, pyranometer 2 %, clamp-on power meter 0.5 %, …
NOISE: dict[str, tuple[float, float]] = {
    "outdoor_temperature": (0.1, 0.0),
    "solar_irradiance": (3.0, 0.02),
    "hvac_power": (0.2, 0.005),
    "air_temperature": (0.1, 0.0),
    "co2": (10.0, 0.02),
    "humidity": (1.5, 0.0),
    "occupancy": (0.0, 0.0),  # a count, exact when the counter works
    "supply_air_temperature": (0.15, 0.0),
    "airflow": (40.0, 0.02),
    "fan_power": (0.03, 0.01),
    "damper_position": (0.5, 0.0),
    "cooling_coil_load": (0.5, 0.03),
    "chilled_water_supply_temperature": (0.05, 0.0),
    "chilled_water_return_temperature": (0.05, 0.0),
    "cooling_load": (0.5, 0.01),
    "electrical_power": (0.2, 0.005),
    "cop": (0.02, 0.01),
}
RANGE: dict[str, tuple[float, float]] = {
    "solar_irradiance": (0.0, np.inf), "hvac_power": (0.0, np.inf), "co2": (0.0, np.inf),
    "humidity": (0.0, 100.0), "airflow": (0.0, np.inf), "fan_power": (0.0, np.inf),
    "damper_position": (0.0, 100.0), "cooling_coil_load": (0.0, np.inf), "cooling_load": (0.0, np.inf),
    "electrical_power": (0.0, np.inf), "cop": (0.0, np.inf),
}

FAULT_COMMANDS = fault_commands(position=(0.0, 100.0))
ZONE_COMMANDS = (
    CommandSpec("setSetpoint", {"temperature": (16.0, 28.0)}, "New zone air temperature setpoint [degC]."),
)
AHU_COMMANDS = (
    CommandSpec("setSupplyTemperature", {"temperature": (10.0, 20.0)},
                "New supply air temperature [degC]; the coils follow within their capacity."),
    CommandSpec("setFanSpeed", {"speed": (0.0, 100.0)}, "Fan speed limit as a share of design [%]."),
)
CHILLER_COMMANDS = (
    CommandSpec("setChilledWaterSetpoint", {"temperature": (5.0, 12.0)},
                "New chilled-water supply temperature [degC]."),
    CommandSpec("start", {}, "Start the chiller; running chillers share the load equally."),
    CommandSpec("stop", {}, "Stop the chiller; the others carry the load (or the loop warms)."),
)
REQUIRED_ARGS = {
    "setSetpoint": ("temperature",),
    "setSupplyTemperature": ("temperature",),
    "setFanSpeed": ("speed",),
    "setChilledWaterSetpoint": ("temperature",),
}


@dataclass(frozen=True)
class Layout:
    """Twin ids of the example building, in state-matrix order, and who serves whom."""

    building: str
    zones: tuple[str, ...]
    ahus: tuple[str, ...]
    chillers: tuple[str, ...]
    zone_ahu: np.ndarray  # AHU row of each zone row
    zone_side: tuple[str, ...]


def layout(floors: int = 3, chillers: int = 2) -> Layout:
    """The building of ``examples/building/plant.yaml``: zones floor by floor, one AHU per floor."""
    zones = tuple(f"zone-{f}-{s}" for f in range(1, floors + 1) for s in SIDES)
    return Layout(
        building="hq",
        zones=zones,
        ahus=tuple(f"ahu-{f}" for f in range(1, floors + 1)),
        chillers=tuple(f"chiller-{n}" for n in range(1, chillers + 1)),
        zone_ahu=np.repeat(np.arange(floors), len(SIDES)),
        zone_side=tuple(s for _ in range(floors) for s in SIDES),
    )


def _channels(pairs: tuple[tuple[str, str], ...]) -> tuple[ChannelSpec, ...]:
    return tuple(ChannelSpec(name, unit) for name, unit in pairs)


def devices(plan: Layout) -> tuple[DeviceSpec, ...]:
    """Every device in publishing order: the building, zones, air handlers, chillers."""
    return (
        DeviceSpec(plan.building, "Building", _channels(BUILDING_CHANNELS), FAULT_COMMANDS),
        *(DeviceSpec(z, "Zone", _channels(ZONE_CHANNELS), ZONE_COMMANDS + FAULT_COMMANDS)
          for z in plan.zones),
        *(DeviceSpec(a, "AirHandler", _channels(AHU_CHANNELS), AHU_COMMANDS + FAULT_COMMANDS)
          for a in plan.ahus),
        *(DeviceSpec(c, "Chiller", _channels(CHILLER_CHANNELS), CHILLER_COMMANDS + FAULT_COMMANDS)
          for c in plan.chillers),
    )


def noise_table(device_list: tuple[DeviceSpec, ...]) -> tuple[np.ndarray, ...]:
    """Absolute and relative noise std, lower and upper clip, per flat channel column."""
    names = [c.name for d in device_list for c in d.channels]
    noise = np.array([NOISE[n] for n in names], dtype=np.float64).reshape(-1, 2)
    span = np.array([RANGE.get(n, (-np.inf, np.inf)) for n in names], dtype=np.float64).reshape(-1, 2)
    return noise[:, 0].copy(), noise[:, 1].copy(), span[:, 0].copy(), span[:, 1].copy()


def facade_factor(side: tuple[str, ...], hour: float) -> np.ndarray:
    """Share of the horizontal irradiance that reaches each zone's glazing at ``hour`` (0 … 24).

    A crude facade model: north sees diffuse light only, south a steady share, east the morning
    sun (fading 10:00–14:00) and west the afternoon sun (rising 10:00–14:00).
    """
    morning = min(max((14.0 - hour) / 4.0, 0.0), 1.0)
    share = {"north": 0.3, "south": 0.7, "east": 0.3 + 0.7 * morning, "west": 0.3 + 0.7 * (1.0 - morning)}
    return np.array([share[s] for s in side])


__all__ = [
    "AHU_CHANNELS",
    "AHU_COMMANDS",
    "BUILDING_CHANNELS",
    "CHILLER_CHANNELS",
    "CHILLER_COMMANDS",
    "FAULT_COMMANDS",
    "NOISE",
    "RANGE",
    "REQUIRED_ARGS",
    "SIDES",
    "ZONE_CHANNELS",
    "ZONE_COMMANDS",
    "Layout",
    "devices",
    "facade_factor",
    "layout",
    "noise_table",
]
