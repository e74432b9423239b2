"""Induction motor on a variable-speed drive: losses, power factor, current, winding heat, vibration.

Powers in W, speeds as ratio ``s = n/n_rated``. Relations (IEC 60034-2-1 loss segregation,
V/f drive control):

* losses = constant part (iron, friction, windage; scales with speed) + load part (copper,
  ``∝ load²``), calibrated so that the rated efficiency holds at rated load;
* reactive power = magnetizing part (``∝ s`` under V/f) + leakage part (``∝ load²``), so the
  power factor falls at part load as in catalogue data;
* ``I = √(P² + Q²)/(√3·V)`` with ``V = V_rated·min(s, 1)``;
* winding temperature: one thermal RC, ``C·dT/dt = P_loss − (T − T_amb)/R(s)``, where the shaft
  fan's cooling falls with speed.

>>> import numpy as np
>>> loss = motor_losses(np.array(55e3), np.array(1.0), 55e3, 0.945, 0.35)
>>> round(float(55e3 / (55e3 + loss)), 3)
0.945
"""

from __future__ import annotations

import numpy as np


def speed_step(speed: np.ndarray, setpoint: np.ndarray, time_constant: np.ndarray,
               ramp_rate: np.ndarray, dt: float, snap: float = 0.5) -> np.ndarray:
    """Shaft speed ``dt`` s later: exact solution of ``dn/dt = clip((n* − n)/τ, −r, r)``.

    Far from the setpoint the drive ramps linearly at ``r``; within ``r·τ`` it settles
    exponentially. Speeds within ``snap`` rpm of the setpoint land on it, so a stopping pump
    reaches exactly 0 rpm.

    >>> speed_step(np.array([0.0]), np.array([2950.0]), 3.0, 300.0, 1.0).tolist()
    [300.0]
    """
    error = setpoint - speed
    band = ramp_rate * time_constant
    ramp_time = np.maximum(np.abs(error) - band, 0.0) / ramp_rate
    ramped = np.abs(error) - ramp_rate * np.minimum(dt, ramp_time)
    settled = np.minimum(np.abs(error), band) * np.exp(-np.maximum(dt - ramp_time, 0.0) / time_constant)
    remaining = np.where(dt <= ramp_time, ramped, settled)
    remaining = np.where(remaining < snap, 0.0, remaining)
    return np.maximum(setpoint - np.sign(error) * remaining, 0.0)


def rated_losses(rated_power: np.ndarray, rated_efficiency: np.ndarray) -> np.ndarray:
    """Total losses [W] at rated output: ``P_r·(1/η_r − 1)``."""
    return rated_power * (1.0 / rated_efficiency - 1.0)


def motor_losses(shaft_power: np.ndarray, speed_ratio: np.ndarray, rated_power: np.ndarray,
                 rated_efficiency: np.ndarray, constant_fraction: np.ndarray) -> np.ndarray:
    """Motor losses [W]: ``L_r·(c·s + (1−c)·(P/P_r)²)``; zero for a stopped, unloaded motor."""
    load = shaft_power / rated_power
    spin = np.clip(speed_ratio, 0.0, None)
    return rated_losses(rated_power, rated_efficiency) * (
        constant_fraction * spin + (1.0 - constant_fraction) * load**2
    )


def reactive_power(shaft_power: np.ndarray, speed_ratio: np.ndarray, rated_power: np.ndarray,
                   rated_efficiency: np.ndarray, rated_power_factor: np.ndarray,
                   magnetizing_fraction: np.ndarray) -> np.ndarray:
    """Reactive power [var]: ``Q_r·(m·s + (1−m)·(P/P_r)²)``, ``Q_r`` from the rated power factor."""
    rated_input = rated_power / rated_efficiency
    rated_q = rated_input * np.tan(np.arccos(rated_power_factor))
    load = shaft_power / rated_power
    spin = np.clip(speed_ratio, 0.0, None)
    return rated_q * (magnetizing_fraction * spin + (1.0 - magnetizing_fraction) * load**2)


def power_factor(active: np.ndarray, reactive: np.ndarray) -> np.ndarray:
    """``P/√(P² + Q²)``; 0 for a de-energized motor."""
    apparent = np.hypot(active, reactive)
    return np.divide(active, apparent, out=np.zeros(apparent.shape), where=apparent > 0)


def motor_voltage(speed_ratio: np.ndarray, rated_voltage: np.ndarray) -> np.ndarray:
    """Drive output voltage [V] under V/f control, constant above base speed."""
    return rated_voltage * np.clip(speed_ratio, 0.0, 1.0)


def motor_current(active: np.ndarray, reactive: np.ndarray, voltage: np.ndarray) -> np.ndarray:
    """Line current [A] ``√(P² + Q²)/(√3·V)``; 0 when the drive outputs no voltage."""
    apparent = np.hypot(active, reactive)
    return np.divide(apparent, np.sqrt(3.0) * voltage, out=np.zeros(apparent.shape), where=voltage > 0)


def cooling_factor(speed_ratio: np.ndarray, standstill_cooling: np.ndarray) -> np.ndarray:
    """Cooling relative to rated speed (TEFC shaft fan): ``c0 + (1 − c0)·min(s, 1)``."""
    return standstill_cooling + (1.0 - standstill_cooling) * np.clip(speed_ratio, 0.0, 1.0)


def winding_step(temperature: np.ndarray, ambient: np.ndarray, losses: np.ndarray,
                 rated_losses_w: np.ndarray, rated_rise: np.ndarray, time_constant: np.ndarray,
                 cooling: np.ndarray, dt: float) -> np.ndarray:
    """Winding temperature ``dt`` s later, exact solution of the RC model for constant inputs.

    ``R = ΔT_rated/L_rated`` at rated cooling; ``R`` and the time constant grow as cooling falls.
    """
    steady = ambient + rated_rise * (losses / rated_losses_w) / cooling
    decay = np.exp(-dt * cooling / time_constant)
    return steady + (temperature - steady) * decay


def motor_vibration(speed_ratio: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Baseline housing vibration [mm/s] from residual unbalance, ``∝ s²``."""
    return base * speed_ratio**2


__all__ = [
    "cooling_factor",
    "motor_current",
    "motor_losses",
    "motor_vibration",
    "motor_voltage",
    "power_factor",
    "rated_losses",
    "reactive_power",
    "speed_step",
    "winding_step",
]
