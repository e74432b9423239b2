"""Centrifugal pump hydraulics: curves, affinity laws, operating point, NPSH and cavitation.

Pure numpy functions on arrays that broadcast over units. Flows are in m**3/h (as on a
datasheet), heads in m, powers in W unless a name says otherwise. The relations are the
textbook ones (Gülich, *Centrifugal Pumps*; Karassik, *Pump Handbook*):

* pump curve ``H = H0·s² − a·Q²`` with speed ratio ``s = n/n0``;
* efficiency ``η = η_max·2q/(1+q²)`` with ``q = Q/(Q_bep·s)``: peaks at the best efficiency
  point, is constant along affinity parabolas and keeps shaft power finite at shut-off;
* affinity laws ``Q ∝ s``, ``H ∝ s²``, ``P ∝ s³``;
* system curve ``H_sys = H_static + K·Q²``, intersected in closed form;
* NPSH required ``∝ s²`` rising with flow, NPSH available from suction pressure and the
  Antoine vapour pressure of water.

>>> import numpy as np
>>> q = operating_flow(np.array([1.0]), np.array([50.0]), np.array([6.3e-4]), 95.0, 5e-4)
>>> round(float(q[0]), 1)
199.6
"""

from __future__ import annotations

import numpy as np

G = 9.80665  # m/s**2, standard gravity
P_ATM = 101_325.0  # Pa, standard atmosphere (suction pressures are gauge)

# Cavitation indicator ramps from incipient cavitation (NPSHa = 1.3·NPSHr, a common margin
# recommendation) to fully developed (NPSHa = 0.7·NPSHr); at NPSHa = NPSHr it is 0.5.
_CAV_ONSET = 1.3
_CAV_FULL = 0.7


def pump_head(flow: np.ndarray, speed_ratio: np.ndarray, shutoff_head: np.ndarray,
              head_coefficient: np.ndarray) -> np.ndarray:
    """Head [m] at ``flow`` [m**3/h]: ``H = H0·s² − a·Q²`` (affinity-scaled quadratic curve)."""
    return shutoff_head * speed_ratio**2 - head_coefficient * flow**2


def operating_flow(speed_ratio: np.ndarray, static_head: np.ndarray, system_coefficient: np.ndarray,
                   shutoff_head: np.ndarray, head_coefficient: np.ndarray,
                   head_factor: np.ndarray | float = 1.0) -> np.ndarray:
    """Flow [m**3/h] where the (derated) pump curve meets ``H_static + K·Q²``, closed form.

    ``f·(H0·s² − a·Q²) = H_s + K·Q²`` gives ``Q² = (f·H0·s² − H_s)/(f·a + K)``; a pump that
    cannot overcome the static head delivers nothing (its non-return valve stays shut).
    """
    numerator = np.maximum(head_factor * shutoff_head * speed_ratio**2 - static_head, 0.0)
    return np.sqrt(numerator / (head_factor * head_coefficient + system_coefficient))


def relative_flow(flow: np.ndarray, speed_ratio: np.ndarray, bep_flow: np.ndarray) -> np.ndarray:
    """``q = Q / Q_bep(n)``, with ``Q_bep(n) = Q_bep·s`` (affinity); 0 for a stopped pump."""
    bep_now = bep_flow * speed_ratio
    return np.divide(flow, bep_now, out=np.zeros(np.broadcast(flow, bep_now).shape), where=bep_now > 0)


def pump_efficiency(flow: np.ndarray, speed_ratio: np.ndarray, bep_flow: np.ndarray,
                    max_efficiency: np.ndarray) -> np.ndarray:
    """Pump efficiency ``η = η_max·2q/(1+q²)``: η_max at the BEP, 0 at shut-off.

    >>> float(pump_efficiency(np.array([200.0]), np.array([1.0]), 200.0, 0.8)[0])
    0.8
    """
    q = relative_flow(flow, speed_ratio, bep_flow)
    return max_efficiency * 2.0 * q / (1.0 + q**2)


def shaft_power(flow: np.ndarray, head: np.ndarray, speed_ratio: np.ndarray, bep_flow: np.ndarray,
                max_efficiency: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Shaft power [W] ``ρ·g·Q·H/η``, written as ``ρ·g·Q_bep·s·H·(1+q²)/(2·η_max)``.

    The second form is the same quantity without the 0/0 at shut-off, where a real pump still
    draws roughly half its BEP power churning the water.
    """
    q = relative_flow(flow, speed_ratio, bep_flow)
    return density * G * (bep_flow * speed_ratio / 3600.0) * head * (1.0 + q**2) / (2.0 * max_efficiency)


def hydraulic_power(flow: np.ndarray, head: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Hydraulic power [W] ``ρ·g·Q·H`` delivered to the water."""
    return density * G * (flow / 3600.0) * head


def affinity_scale(flow: np.ndarray, head: np.ndarray, power: np.ndarray,
                   speed_ratio: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move a duty point to another speed: ``Q·r``, ``H·r²``, ``P·r³`` (affinity laws).

    >>> affinity_scale(np.array(200.0), np.array(75.0), np.array(51.0), 0.5)
    (np.float64(100.0), np.float64(18.75), np.float64(6.375))
    """
    r = speed_ratio
    return flow * r, head * r**2, power * r**3


def vapour_pressure(temperature_c: np.ndarray) -> np.ndarray:
    """Vapour pressure of water [Pa], Antoine equation (valid 1–100 °C).

    >>> round(float(vapour_pressure(np.array(20.0))))
    2330
    """
    t = np.clip(temperature_c, 0.0, 150.0)
    return 133.322 * 10.0 ** (8.07131 - 1730.63 / (233.426 + t))


def npsh_available(suction_pressure_bar: np.ndarray, temperature_c: np.ndarray,
                   density: np.ndarray) -> np.ndarray:
    """NPSH available [m] = (p_atm + p_suction − p_vapour)/(ρ·g) at the suction flange."""
    absolute = P_ATM + suction_pressure_bar * 1e5
    return (absolute - vapour_pressure(temperature_c)) / (density * G)


def npsh_required(flow: np.ndarray, speed_ratio: np.ndarray, bep_flow: np.ndarray,
                  npshr_bep: np.ndarray, low_flow_fraction: np.ndarray) -> np.ndarray:
    """NPSH required [m] ``NPSHr_bep·s²·(c0 + (1−c0)·q²)``: affinity-scaled, rising with flow."""
    q = relative_flow(flow, speed_ratio, bep_flow)
    return npshr_bep * speed_ratio**2 * (low_flow_fraction + (1.0 - low_flow_fraction) * q**2)


def cavitation_index(npsha: np.ndarray, npshr: np.ndarray) -> np.ndarray:
    """Cavitation in [0, 1]: 0 with NPSHa ≥ 1.3·NPSHr, 1 at ≤ 0.7·NPSHr (smoothstep between).

    A stopped pump (NPSHr = 0) does not cavitate.

    >>> cavitation_index(np.array([20.0, 4.5, 1.0]), np.array([4.5, 4.5, 4.5])).round(6).tolist()
    [0.0, 0.5, 1.0]
    """
    span = (_CAV_ONSET - _CAV_FULL) * npshr
    shortfall = _CAV_ONSET * npshr - npsha
    x = np.divide(shortfall, span, out=np.zeros(np.broadcast(shortfall, span).shape), where=span > 0)
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


__all__ = [
    "G",
    "P_ATM",
    "affinity_scale",
    "cavitation_index",
    "hydraulic_power",
    "npsh_available",
    "npsh_required",
    "operating_flow",
    "pump_efficiency",
    "pump_head",
    "relative_flow",
    "shaft_power",
    "vapour_pressure",
]
