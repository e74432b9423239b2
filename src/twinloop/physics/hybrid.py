"""Hybrid physics + ML: a learned residual added to a physics model's outputs.

Physics gets the structure right (conservation, lags, wear growth) and extrapolates; it misses
what nobody modelled (a fouled pipe, a heat path through the baseplate, a sensor's temperature
bias). `ResidualModel` learns only that miss, ``r = y_measured − physics.output``, from history,
with features the physics already computes (inputs and physics outputs), so the learner
interpolates a small correction instead of the whole plant.

It is a `PhysicsModel` itself: states, inputs, parameters and stepping are the physics model's;
``output`` adds the learned residual to the corrected outputs. So estimators, calibration and
the conformance battery take it like any other model.

The default learner is scikit-learn's ``HistGradientBoostingRegressor``, one per corrected
output; anything with ``fit(X, y)`` / ``predict(X)`` can be passed as ``make_regressor``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.physics.model import PhysicsModel, index


def default_regressor() -> Any:
    """Gradient-boosted trees: robust to feature scales, no tuning needed for small residuals."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.15, random_state=0)


class ResidualModel:
    """``physics`` with a learned correction on ``outputs`` (see the module docstring)."""

    def __init__(
        self,
        physics: PhysicsModel,
        outputs: Sequence[str],
        make_regressor: Callable[[], Any] = default_regressor,
        use_outputs: bool = True,
        threads: int | None = 1,
    ) -> None:
        self.physics = physics
        self.name = f"{physics.name}_hybrid"
        self.inputs, self.states = physics.inputs, physics.states
        self.outputs, self.parameters, self.events = physics.outputs, physics.parameters, physics.events
        self.corrected = tuple(outputs)
        self._cols = np.array([index(physics.outputs, o) for o in self.corrected], dtype=np.intp)
        self.make_regressor = make_regressor
        self.use_outputs = use_outputs
        self.threads = threads
        self.regressors_: list[Any] | None = None

    def features(self, u: np.ndarray, y_physics: np.ndarray) -> np.ndarray:
        """What the learner sees: inputs, and the physics outputs when ``use_outputs``."""
        return np.concatenate([u, y_physics], axis=1) if self.use_outputs else np.asarray(u)

    def fit(self, x: np.ndarray, u: np.ndarray, p: np.ndarray, y: np.ndarray) -> ResidualModel:
        """Learn the residual from rows of states, inputs, parameters and measured outputs.

        ``y`` is ``(rows, len(outputs))`` with NaN where a channel was not measured (those rows
        are left out for that output only). States come from a physics run along the history's
        inputs, or from an estimator.
        """
        y = np.asarray(y, np.float64)
        if y.shape != (len(x), len(self.outputs)):
            raise ValidationError(f"y must be shaped {(len(x), len(self.outputs))}, got {y.shape}")
        y_phys = self.physics.output(x, u, p)
        X = self.features(u, y_phys)
        regressors = []
        with self._limit():
            self._fit_each(X, y, y_phys, regressors)
        self.regressors_ = regressors
        return self

    def _limit(self) -> Any:
        """Cap OpenMP threads: tree learners oversubscribe a busy small machine badly (10× slower)."""
        import contextlib

        if self.threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(self.threads)

    def _fit_each(self, X: np.ndarray, y: np.ndarray, y_phys: np.ndarray, regressors: list[Any]) -> None:
        for col in self._cols:
            ok = np.isfinite(y[:, col]) & np.isfinite(X).all(axis=1)
            if ok.sum() < 10:
                name = self.outputs[col].name
                raise ValidationError(f"too little history to learn {name}: {int(ok.sum())} rows",
                                      hint="give at least 10 rows with that channel measured")
            reg = self.make_regressor()
            reg.fit(X[ok], y[ok, col] - y_phys[ok, col])
            regressors.append(reg)

    # --- PhysicsModel -----------------------------------------------------------------------
    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        return self.physics.initial_state(p, u, rng)

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        return self.physics.next_state(x, u, dt, p)

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Physics outputs plus the learned residual on the corrected ones (physics alone until fit)."""
        y = self.physics.output(x, u, p)
        if self.regressors_ is None or not len(y):
            return y
        X = self.features(u, y)
        out = y.copy()
        with self._limit():
            for col, reg in zip(self._cols, self.regressors_, strict=True):
                out[:, col] = y[:, col] + reg.predict(X)
        return out

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.physics.event_state(x, p)


__all__ = ["ResidualModel", "default_regressor"]
