"""Inputs no channel reports, estimated as states: a model wrapper for the filters.

A pump's bearing and winding temperatures follow the air around them, but the pump station
publishes no weather. Rather than pretend the ambient is a constant (the old preset's 25 °C put
every temperature innovation dozens of σ off), the filter carries the unreported input as one
more state: it random-walks (the spec's ``process`` std per √h) and is pulled in by every channel
that depends on it, so the temperatures measure it.

`LatentInputs` is itself a `PhysicsModel`: the wrapped model's states followed by the latent
inputs, the wrapped model's inputs without them. Its ``initial_state`` starts each latent input at
the value given here (the spec's ``initial_std`` says how unsure that start is).

>>> from twinloop.physics.tank import TankModel
>>> m = LatentInputs(TankModel(), {"inflow": 50.0})
>>> [s.name for s in m.states], [s.name for s in m.inputs]
(['level', 'inflow'], ['outflow'])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.physics.model import PhysicsModel, Signal, names


class LatentInputs:
    """``model`` with some inputs moved into the state (see the module docstring)."""

    def __init__(self, model: PhysicsModel, start: Mapping[str, float]) -> None:
        declared = names(model.inputs)
        unknown = sorted(set(start) - set(declared))
        if unknown or not start:
            raise ValidationError(f"{model.name}: latent inputs {unknown or '(none)'} are not inputs",
                                  hint="inputs: " + ", ".join(declared))
        self.inner = model
        self.latent = tuple(n for n in declared if n in start)
        self.start = np.array([float(start[n]) for n in self.latent])
        self._cols = np.array([declared.index(n) for n in self.latent], dtype=np.intp)
        self._kept = np.array([i for i, n in enumerate(declared) if n not in start], dtype=np.intp)
        self.name = model.name
        by_name = {s.name: s for s in model.inputs}
        self.inputs = tuple(s for s in model.inputs if s.name not in start)
        self.states = (*model.states, *(Signal(n, by_name[n].unit, by_name[n].description)
                                        for n in self.latent))
        self.outputs = model.outputs
        self.parameters = model.parameters
        self.events = model.events
        self._nx = len(model.states)

    def _full(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The wrapped model's inputs: the reported ones and the latent states in place."""
        full = np.empty((len(u), len(self.inner.inputs)))
        full[:, self._kept] = u
        full[:, self._cols] = x[:, self._nx:]
        return full

    def initial_state(self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
                      ) -> np.ndarray:
        latent = np.tile(self.start, (len(u), 1))
        x = self.inner.initial_state(p, self._full(np.hstack([np.zeros((len(u), self._nx)), latent]), u))
        return np.hstack([x, latent])

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        inner = self.inner.next_state(x[:, : self._nx], self._full(x, u), dt, p)
        return np.hstack([inner, x[:, self._nx:]])

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.inner.output(x[:, : self._nx], self._full(x, u), p)

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.inner.event_state(x[:, : self._nx], p)


__all__ = ["LatentInputs"]
