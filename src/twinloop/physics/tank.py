"""Open tank with vertical walls: exact mass balance with overflow and run-dry.

Over a step with constant flows the stored volume changes by ``(Q_in − Q_out)·dt``, clipped to
``[0, A·h]``. What the clip removes is accounted for exactly by `tank_step`: spilled volume when
full, outflow shortfall (the pump draws air) when empty, so
``Q_in·dt − Q_out·dt − spilled + shortfall = ΔV`` holds to rounding.

>>> import numpy as np
>>> level, spilled, short = tank_step(np.array([3.9]), np.array([100.0]), np.array([0.0]),
...                                   3600.0, np.array([10.0]), np.array([4.0]))
>>> level.tolist(), spilled.tolist(), short.tolist()
([4.0], [99.0], [0.0])
"""

from __future__ import annotations

import numpy as np

from twinloop.physics.model import Parameter, Signal, index


def tank_step(level: np.ndarray, inflow: np.ndarray, outflow: np.ndarray, dt: float,
              cross_section: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Level [m] after ``dt`` s, plus spilled and shortfall volumes [m**3] over the step."""
    capacity = cross_section * height
    volume = np.clip(level, 0.0, height) * cross_section
    unclipped = volume + (inflow - outflow) * (dt / 3600.0)
    spilled = np.maximum(unclipped - capacity, 0.0)
    shortfall = np.maximum(-unclipped, 0.0)
    # A full tank sits exactly at its rim: capacity / area may round past ``height``.
    level = np.where(unclipped >= capacity, height, np.maximum(unclipped, 0.0) / cross_section)
    return level, spilled, shortfall


class TankModel:
    """A storage tank between pumps: one state (level), mass balance, an ``empty`` event."""

    name = "tank"
    inputs = (
        Signal("inflow", "m**3/h", "volume flow into the tank"),
        Signal("outflow", "m**3/h", "volume flow drawn from the tank (delivered only while not empty)"),
    )
    states = (Signal("level", "m", "liquid level above the tank floor"),)
    outputs = (
        Signal("level", "m", "liquid level above the tank floor"),
        Signal("volume", "m**3", "stored liquid volume"),
        Signal("overflow", "m**3/h", "spill rate over the weir: net inflow while the tank is full"),
    )
    parameters = (
        Parameter("cross_section", 20.0, "m**2", 0.1, 1e5, "horizontal cross-section area"),
        Parameter("height", 5.0, "m", 0.1, 100.0, "level at which the tank overflows"),
    )
    events = ("empty",)

    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Half full: a tank has no steady state unless its flows happen to balance."""
        return 0.5 * p[:, [1]]

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        """Level after ``dt`` s of constant flows (exact, clipped to the tank)."""
        level, _, _ = tank_step(x[:, 0], u[:, 0], u[:, 1], dt, p[:, 0], p[:, 1])
        return level[:, None]

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Level, volume and the instantaneous spill rate."""
        height = p[:, 1]
        level = np.clip(x[:, 0], 0.0, height)
        full = level >= height
        overflow = np.where(full, np.maximum(u[:, 0] - u[:, 1], 0.0), 0.0)
        return np.stack([level, level * p[:, 0], overflow], axis=1)

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``empty``: level/height, 0 when dry."""
        return np.clip(x[:, [0]] / p[:, [1]], 0.0, 1.0)

    @classmethod
    def output_index(cls, name: str) -> int:
        """Column of output ``name``."""
        return index(cls.outputs, name)


__all__ = ["TankModel", "tank_step"]
