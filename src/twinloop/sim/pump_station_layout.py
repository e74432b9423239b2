"""What the simulated pump station looks like on the wire: devices, channels, commands, noise.

It mirrors ``examples/pump-station`` (twin ids, channel names and units as the asset types
declare them; a pump's component channels are dotted: ``bearing.temperature``), so a twinloop
instance loaded with that plant file maps every published reading without a mapping table.

The valve is a component of the pump, so its ``setPosition`` / ``setPositionRamp`` commands are
accepted on the pump device (``pump-A1``), like every other command of the pump's parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinloop.sim.faults import fault_commands
from twinloop.sim.plant import ChannelSpec, CommandSpec, DeviceSpec

# Pump channels as published, with the PumpUnitModel output each one reads.
PUMP_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("flow", "flow", "m**3/h"),
    ("discharge_pressure", "discharge_pressure", "bar"),
    ("suction_pressure", "suction_pressure", "bar"),
    ("speed", "speed", "rpm"),
    ("power", "power", "kW"),
    ("motor.current", "motor_current", "A"),
    ("motor.voltage", "motor_voltage", "V"),
    ("motor.winding_temperature", "winding_temperature", "degC"),
    ("motor.vibration_rms", "motor_vibration_rms", "mm/s"),
    ("motor.power_factor", "motor_power_factor", "dimensionless"),
    ("bearing.temperature", "bearing_temperature", "degC"),
    ("bearing.vibration_rms", "bearing_vibration_rms", "mm/s"),
    ("bearing.defect_band_energy", "defect_band_energy", "g0**2"),
    ("valve.opening", "valve_opening", "percent"),
    ("valve.differential_pressure", "valve_differential_pressure", "bar"),
)
LINE_CHANNELS = (("header_pressure", "bar"), ("header_flow", "m**3/h"))
STATION_CHANNELS = (("total_power", "kW"), ("outlet_flow", "m**3/h"))
TANK_CHANNELS = (("level", "m"), ("volume", "m**3"), ("temperature", "degC"))
MCC_CHANNELS = (("voltage", "V"), ("frequency", "Hz"), ("current", "A"), ("active_power", "kW"))

# Sensor accuracy as (absolute, relative-to-reading) standard deviations; typical instrument
# classes: magmeter 0.5 %, pressure transmitter 0.1 % of a 16 bar span, Pt100 0.2 K, …
NOISE: dict[str, tuple[float, float]] = {
    "flow": (0.3, 0.005),
    "discharge_pressure": (0.015, 0.0),
    "suction_pressure": (0.01, 0.0),
    "speed": (1.0, 0.0),
    "power": (0.05, 0.005),
    "motor.current": (0.1, 0.005),
    "motor.voltage": (0.8, 0.0),
    "motor.winding_temperature": (0.3, 0.0),
    "motor.vibration_rms": (0.03, 0.03),
    "motor.power_factor": (0.003, 0.0),
    "bearing.temperature": (0.2, 0.0),
    "bearing.vibration_rms": (0.03, 0.03),
    "bearing.defect_band_energy": (0.01, 0.05),
    "valve.opening": (0.2, 0.0),
    "valve.differential_pressure": (0.01, 0.0),
    "header_pressure": (0.01, 0.0),
    "header_flow": (0.5, 0.005),
    "total_power": (0.2, 0.003),
    "outlet_flow": (1.0, 0.005),
    "level": (0.005, 0.0),
    "volume": (0.0, 0.0),  # computed from the level reading, not measured separately
    "temperature": (0.1, 0.0),
    "voltage": (0.6, 0.0),
    "frequency": (0.005, 0.0),
    "current": (0.5, 0.005),
    "active_power": (0.3, 0.003),
}

#: Quantities a healthy instrument never reports below zero (an RMS, a flow through a non-return
#: valve, a speed, a power draw): noise is clipped there, as transmitters do at their range floor.
NON_NEGATIVE = frozenset({
    "flow", "speed", "power", "motor.current", "motor.voltage", "motor.vibration_rms",
    "motor.power_factor", "bearing.vibration_rms", "bearing.defect_band_energy", "valve.opening",
    "header_flow", "total_power", "outlet_flow", "level", "volume", "voltage", "frequency", "current",
    "active_power",
})

FAULT_COMMANDS = fault_commands(drop_bar=(0.0, 5.0))
PUMP_COMMANDS = (
    CommandSpec("setSpeed", {"rpm": (0.0, 3000.0)}, "Ask the drive for a new speed; it ramps."),
    CommandSpec("start", {}, "Start the pump under station control."),
    CommandSpec("stop", {"emergency": (0.0, 1.0)}, "Ramp down; emergency=1 cuts the drive (coasts)."),
    CommandSpec("replaceBearing", {}, "Maintenance on a stopped pump: fit a new bearing (wear back to "
                "zero, a bearing-wear fault ends); a tripped pump can start again."),
    CommandSpec("setPosition", {"position": (0.0, 100.0)}, "Valve component: move to a position [%]."),
    CommandSpec(
        "setPositionRamp",
        {"position": (0.0, 100.0), "duration": (0.0, 600.0)},
        "Valve component: move to a position over duration [s] (default 30).",
    ),
)
REQUIRED_ARGS = {"setSpeed": ("rpm",), "setPosition": ("position",), "setPositionRamp": ("position",)}


@dataclass(frozen=True)
class PumpInfo:
    """A pump of the example plant: id, line, power supply and rating."""

    id: str
    line: str
    mcc: str
    rated_flow: float  # m3/h
    rated_head: float  # m


def pumps(lines: tuple[str, ...], pumps_per_line: int) -> tuple[PumpInfo, ...]:
    """The pumps in state-matrix order (A1, A2, …, C4), rated as in plant.yaml."""
    out = []
    for line in lines:
        newer = line == "C"  # line C runs newer, larger Grundfos pumps on mcc-2
        for n in range(1, pumps_per_line + 1):
            out.append(
                PumpInfo(
                    f"pump-{line}{n}",
                    line,
                    "mcc-2" if newer else "mcc-1",
                    150.0 if newer else 120.0,
                    30.0 if newer else 32.0,
                )
            )
    return tuple(out)


def _channels(pairs: tuple[tuple[str, str], ...]) -> tuple[ChannelSpec, ...]:
    return tuple(ChannelSpec(name, unit) for name, unit in pairs)


def devices(lines: tuple[str, ...], pump_list: tuple[PumpInfo, ...]) -> tuple[DeviceSpec, ...]:
    """Every device in publishing order: station, lines, tanks, reservoir, MCCs, pumps."""
    mccs = sorted({p.mcc for p in pump_list}) or ["mcc-1"]
    pump_channels = tuple(ChannelSpec(name, unit) for name, _, unit in PUMP_CHANNELS)
    return (
        DeviceSpec("station-1", "PumpStation", _channels(STATION_CHANNELS), FAULT_COMMANDS),
        *(DeviceSpec(f"line-{x}", "PumpLine", _channels(LINE_CHANNELS), FAULT_COMMANDS) for x in lines),
        *(DeviceSpec(f"tank-{x}", "Tank", _channels(TANK_CHANNELS), FAULT_COMMANDS) for x in lines),
        DeviceSpec("reservoir-1", "Tank", _channels(TANK_CHANNELS), FAULT_COMMANDS),
        *(DeviceSpec(m, "PowerSupply", _channels(MCC_CHANNELS), FAULT_COMMANDS) for m in mccs),
        *(DeviceSpec(p.id, "Pump", pump_channels, PUMP_COMMANDS + FAULT_COMMANDS) for p in pump_list),
    )


def non_negative_mask(device_list: tuple[DeviceSpec, ...]) -> np.ndarray:
    """True for flat channel columns that `NON_NEGATIVE` says never read below zero."""
    return np.array([c.name in NON_NEGATIVE for d in device_list for c in d.channels])


def noise_table(device_list: tuple[DeviceSpec, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Absolute and relative noise std per flat channel column, in publishing order."""
    pairs = [NOISE[c.name] for d in device_list for c in d.channels]
    arr = np.array(pairs, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy()


__all__ = [
    "FAULT_COMMANDS",
    "LINE_CHANNELS",
    "MCC_CHANNELS",
    "NOISE",
    "NON_NEGATIVE",
    "PUMP_CHANNELS",
    "PUMP_COMMANDS",
    "REQUIRED_ARGS",
    "STATION_CHANNELS",
    "TANK_CHANNELS",
    "PumpInfo",
    "devices",
    "noise_table",
    "non_negative_mask",
    "pumps",
]
