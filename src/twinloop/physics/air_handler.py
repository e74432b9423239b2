"""Air-handler relations shared by the building models: mixing, economizer, coil limits, fan power.

These are algebraic (no state): an air handler's thermal time constants (seconds) are far shorter
than a zone's (minutes to days), so the zone model treats its supply air as quasi-steady.
All functions take and return arrays that broadcast element-wise (one element per unit).
"""

from __future__ import annotations

import numpy as np

#: Specific heat of dry air at room conditions [J/(kg K)].
CP_AIR = 1005.0
#: Density of air at ~20 degC, sea level [kg/m**3].
RHO_AIR = 1.2


def outdoor_air_fraction(
    t_out: np.ndarray, t_return: np.ndarray, t_supply_set: np.ndarray, minimum: np.ndarray,
    economizer: np.ndarray, high_limit: np.ndarray, stuck: np.ndarray, stuck_position: np.ndarray,
) -> np.ndarray:
    """Outdoor-air share of the supply air, 0 … 1.

    Differential dry-bulb economizer: when outdoor air is cooler than return air (and below the
    high limit) the dampers open just enough for the mix to hit the supply setpoint,
    ``f = (T_r - T_sa) / (T_r - T_o)``, never below the ventilation minimum. A seized damper
    (``stuck`` 0 = free … 1 = seized) blends the controlled position towards ``stuck_position``.
    """
    econ = (economizer > 0.5) & (t_out < t_return) & (t_out < high_limit)
    span = np.where(econ, t_return - t_out, 1.0)
    f_econ = np.clip((t_return - t_supply_set) / span, minimum, 1.0)
    f = np.where(econ, f_econ, minimum)
    s = np.clip(stuck, 0.0, 1.0)
    return (1.0 - s) * f + s * np.clip(stuck_position, 0.0, 1.0)


def mixed_air_temperature(t_out: np.ndarray, t_return: np.ndarray, f_oa: np.ndarray) -> np.ndarray:
    """Adiabatic mixing of outdoor and return air (equal cp): a flow-weighted mean."""
    return f_oa * t_out + (1.0 - f_oa) * t_return


def coil_leaving_temperature(
    t_mix: np.ndarray, t_set: np.ndarray, t_chilled: np.ndarray, t_hot: np.ndarray,
    effectiveness: np.ndarray,
) -> np.ndarray:
    """Air temperature after the coils: the setpoint, limited by what the coils can reach.

    A coil of effectiveness ε can bring the air at most ε of the way to its water temperature
    (ε-NTU at fixed ε), so its capacity limit is ``ε·ṁ·cp·(T_mix - T_water)`` and scales with the
    chilled-water temperature and the entering air — the way a real coil saturates.
    """
    lowest = t_mix - effectiveness * np.maximum(t_mix - t_chilled, 0.0)
    highest = t_mix + effectiveness * np.maximum(t_hot - t_mix, 0.0)
    return np.clip(t_set, lowest, highest)


def fan_power(flow_fraction: np.ndarray, design_power: np.ndarray) -> np.ndarray:
    """Fan shaft power by the affinity laws at fixed system curve: ``P = P_design·(V/V_design)³``."""
    return design_power * np.maximum(flow_fraction, 0.0) ** 3


__all__ = [
    "CP_AIR",
    "RHO_AIR",
    "coil_leaving_temperature",
    "fan_power",
    "mixed_air_temperature",
    "outdoor_air_fraction",
]
