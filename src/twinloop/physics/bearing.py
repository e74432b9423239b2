"""Rolling-element bearing: load, friction heat, wear growth, vibration and defect-band energy.

Wear ``w`` runs from 0 (new) to 1 (failure threshold) and grows like a spall (Paris-law-like
self-acceleration) at a rate set by load, speed and temperature:

``dw/dt = λ·(w + w0)``, ``λ = λ_ref·s·L³·2^((T − T_ref)/ΔT_2)·a``

* ``s·L³``: revolutions times the ISO 281 load–life exponent (3 for ball bearings);
* ``2^(ΔT/ΔT_2)``: Arrhenius-style, lubricant life halves every ``ΔT_2`` kelvin (≈15 K);
* ``a``: wear acceleration (a fault input, 1 = normal);
* ``w0``: offset that makes new bearings wear at all; the closed form over a step with
  constant ``λ`` is ``w' = (w + w0)·exp(λ·dt) − w0``, exact and stable for any ``dt``.

Run to failure from new at constant ``λ`` takes ``ln((1 + w0)/w0)/λ``.

>>> import numpy as np
>>> w = wear_step(np.array([0.0]), np.array([1e-6]), 0.1, 3600.0)
>>> bool(0.0 < w[0] < 1e-3)
True
"""

from __future__ import annotations

import numpy as np


def bearing_load(relative_flow: np.ndarray, speed_ratio: np.ndarray, static_fraction: np.ndarray,
                 off_design: np.ndarray, cavitation: np.ndarray, cavitation_load: np.ndarray) -> np.ndarray:
    """Bearing load relative to nominal (BEP, rated speed) = 1.

    Rotor weight is the static part; the hydraulic radial force of a volute pump grows with
    ``s²`` and with distance from the BEP (Stepanoff: ``K_r ∝ 1 − q²`` … here ``1 + c·(q − 1)²``);
    cavitation adds unsteady load.
    """
    hydraulic = speed_ratio**2 * (1.0 + off_design * (relative_flow - 1.0) ** 2)
    load = static_fraction + (1.0 - static_fraction) * hydraulic
    return load * (1.0 + cavitation_load * cavitation)


def bearing_heat(speed_ratio: np.ndarray, load: np.ndarray, wear: np.ndarray,
                 wear_friction_gain: np.ndarray) -> np.ndarray:
    """Friction heat relative to nominal: Palmgren torque ``∝ load`` times speed, rising with wear."""
    return np.clip(speed_ratio, 0.0, None) * load * (1.0 + wear_friction_gain * wear**2)


def bearing_temperature_step(temperature: np.ndarray, ambient: np.ndarray, heat: np.ndarray,
                             nominal_rise: np.ndarray, time_constant: np.ndarray,
                             dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Bearing temperature ``dt`` s later (exact RC step) and its mean over the step.

    The mean ``T_ss + (T − T_ss)·τ/dt·(1 − e^(−dt/τ))`` feeds the wear rate, so one hour-long
    step heats and wears like many short ones.
    """
    steady = ambient + nominal_rise * heat
    ratio = dt / time_constant
    decay = np.exp(-ratio)
    mean_factor = np.where(ratio > 1e-9, -np.expm1(-ratio) / np.maximum(ratio, 1e-300), 1.0)
    return steady + (temperature - steady) * decay, steady + (temperature - steady) * mean_factor


def wear_rate(reference_rate: np.ndarray, speed_ratio: np.ndarray, load: np.ndarray,
              temperature: np.ndarray, reference_temperature: np.ndarray,
              doubling_interval: np.ndarray, acceleration: np.ndarray) -> np.ndarray:
    """λ [1/s]: ``λ_ref·s·L³·2^((T − T_ref)/ΔT_2)·a``; zero for a stopped shaft."""
    exponent = np.clip((temperature - reference_temperature) / doubling_interval, -60.0, 60.0)
    spin = np.clip(speed_ratio, 0.0, None)
    return reference_rate * spin * load**3 * np.exp2(exponent) * np.clip(acceleration, 0.0, None)


def wear_step(wear: np.ndarray, rate: np.ndarray, offset: np.ndarray, dt: float) -> np.ndarray:
    """Wear ``dt`` s later, ``(w + w0)·e^(λ·dt) − w0``, never decreasing, capped at 1 (failed)."""
    grown = (wear + offset) * np.exp(np.clip(rate * dt, 0.0, 50.0)) - offset
    return np.clip(np.maximum(grown, wear), 0.0, 1.0)


def bearing_vibration(speed_ratio: np.ndarray, wear: np.ndarray, new_level: np.ndarray,
                      failure_level: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """Vibration velocity RMS [mm/s], ISO 10816-3 style: ~1 new, ``failure_level`` at ``w = 1``.

    Grows as ``w^p`` (p ≈ 3): flat while the defect is small, steep past ``w ≈ 0.6``.
    """
    return speed_ratio**2 * (new_level + (failure_level - new_level) * np.clip(wear, 0.0, 1.0) ** exponent)


def defect_band_energy(speed_ratio: np.ndarray, wear: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Envelope-spectrum energy at the defect frequencies, relative to a new bearing (= 1 at rated).

    ``s²·(1 + g·w⁴)``: impacts from a growing spall dominate the band late in life.
    """
    return speed_ratio**2 * (1.0 + gain * np.clip(wear, 0.0, 1.0) ** 4)


__all__ = [
    "bearing_heat",
    "bearing_load",
    "bearing_temperature_step",
    "bearing_vibration",
    "defect_band_energy",
    "wear_rate",
    "wear_step",
]
