"""Control valve with actuator: rate-limited travel, deadband (stiction), stuck fault, Kv curve.

Positions and commands are in percent open. Flows are m**3/h, pressure drops bar, following
the IEC 60534 Kv definition ``Q = Kv·√(Δp/SG)``.

>>> import numpy as np
>>> valve_step(np.array([50.0]), np.array([50.3]), np.array([0.0]), 2.0, 0.5, 10.0).tolist()
[50.0]
>>> valve_step(np.array([50.0]), np.array([60.0]), np.array([0.0]), 2.0, 0.5, 1.0).tolist()
[52.0]
"""

from __future__ import annotations

import numpy as np

from twinloop.physics.pump import G


def valve_step(position: np.ndarray, command: np.ndarray, stuck: np.ndarray, rate: np.ndarray,
               deadband: np.ndarray, dt: float) -> np.ndarray:
    """Position [%] ``dt`` s later: moves at ``rate`` %/s toward the command, rests in a deadband.

    A positioner with a deadband (stiction / backlash) does not act on errors up to the band and
    comes to rest at the band's edge, ``command ∓ deadband``; that rest point does not depend on
    ``dt``. Commands at the end stops (0 or 100 %) are driven all the way (tight shut-off). A
    stuck valve (``stuck ≥ 0.5``) holds its position.
    """
    command = np.clip(command, 0.0, 100.0)
    error = command - position
    end_stop = (command <= 0.0) | (command >= 100.0)
    target = np.where(end_stop, command, command - np.sign(error) * deadband)
    moves = ((np.abs(error) > deadband) | (end_stop & (error != 0.0))) & (stuck < 0.5)
    travel = np.clip(target - position, -rate * dt, rate * dt)
    return np.where(moves, np.clip(position + travel, 0.0, 100.0), position)


def valve_kv(position: np.ndarray, kvs: np.ndarray, rangeability: np.ndarray,
             characteristic: np.ndarray, leakage: np.ndarray) -> np.ndarray:
    """Flow coefficient Kv [m**3/h] at ``position`` [%].

    Inherent characteristic blended between linear (``characteristic = 0``) and equal percentage
    (``1``), with the equal-percentage curve ``(R^x − 1)/(R − 1)`` pinned to 0 at closed; seat
    leakage keeps ``leakage·Kvs`` when shut (IEC 60534-4 leakage classes are 1e-4 … 5e-3).

    >>> round(float(valve_kv(np.array(100.0), 280.0, 50.0, 1.0, 5e-4)), 6)
    280.0
    """
    x = np.clip(position / 100.0, 0.0, 1.0)
    equal_percentage = (rangeability**x - 1.0) / (rangeability - 1.0)
    shape = (1.0 - characteristic) * x + characteristic * equal_percentage
    return kvs * (leakage + (1.0 - leakage) * shape)


def valve_resistance(kv: np.ndarray) -> np.ndarray:
    """System-curve coefficient K [m/(m**3/h)**2] of the valve: ``Δh = 100/(g·Kv²)·Q²``.

    Density cancels: ``Δp = SG·(Q/Kv)²`` bar and ``Δh = Δp·1e5/(ρ·g)``.
    """
    return 100.0 / (G * np.maximum(kv, 1e-9) ** 2)


def valve_pressure_drop(flow: np.ndarray, kv: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Pressure drop [bar] across the valve, ``Δp = SG·(Q/Kv)²``."""
    return (density / 1000.0) * (flow / np.maximum(kv, 1e-9)) ** 2


__all__ = ["valve_kv", "valve_pressure_drop", "valve_resistance", "valve_step"]
