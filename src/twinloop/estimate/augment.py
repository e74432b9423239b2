"""The model as the filters see it: states plus estimated parameters in one augmented vector.

``z = [x, θ]`` where ``θ`` are the estimated parameters (log of those bounded below by a positive
number). Every filter only calls `AugmentedModel.transition` and `AugmentedModel.measure` on
row-stacked arrays, so sigma points, particles and finite-difference probes of a whole fleet go
through the physics model in one call.

Per-twin time steps: the `PhysicsModel` protocol takes one scalar ``dt``, so rows are grouped by
their ``dt`` and the model is called once per distinct value (one call when the fleet samples on
a common period, a few when periods differ). Rows with ``dt == 0`` are not stepped.
"""

from __future__ import annotations

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.estimate.spec import EstimatorSpec

#: Above this many distinct time steps in one call the grouping costs more than the physics.
MAX_DT_GROUPS = 64


def repeat_rows(a: np.ndarray, times: int) -> np.ndarray:
    """Each row of ``a`` repeated ``times`` times, column-major.

    Models read their inputs and parameters column by column (``p[:, i]``); on a tall array
    with 46 parameter columns a column-major layout makes those reads contiguous and halves the
    cost of the pump model's equations.
    """
    if a.ndim == 1:
        return np.repeat(a, times)
    return np.repeat(a.T, times, axis=1).T


def tile_rows(a: np.ndarray, times: int) -> np.ndarray:
    """``a`` stacked ``times`` times (row ``s·k + i`` is row ``i``), column-major like `repeat_rows`.

    The layout of sigma points stored twin-axis-last: ``(L, S, k)`` flattened to ``S·k`` rows.
    """
    if a.ndim == 1:
        return np.tile(a, times)
    k, cols = a.shape
    out = np.empty((cols, times * k), dtype=a.dtype)
    out.reshape(cols, times, k)[...] = a.T[:, None, :]
    return out.T


class AugmentedModel:
    """Transition and measurement functions of the augmented state, vectorized over rows."""

    def __init__(self, spec: EstimatorSpec) -> None:
        self.spec = spec
        self.model = spec.model
        self.nx = len(spec.model.states)
        self.size = self.nx + len(spec.estimate_parameters)
        self._pcols = spec.parameter_columns
        self._log = spec.log_parameters
        self._ycols = spec.output_columns

    # --- conversions ---------------------------------------------------------------------------
    def augment(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``(n, size)`` augmented vectors from states and the parameters of each twin."""
        theta = p[:, self._pcols]
        if self._log.any():
            if (theta[:, self._log] <= 0).any():
                raise ValidationError("a log-space parameter must start positive",
                                      hint="check the spec's parameters and the model defaults")
            theta = np.where(self._log, np.log(np.where(self._log, theta, 1.0)), theta)
        return np.concatenate([x, theta], axis=1)

    def parameters(self, z: np.ndarray, p: np.ndarray, inplace: bool = False) -> np.ndarray:
        """``p`` with the estimated columns taken from ``z`` (a copy unless ``inplace``: then ``p`` is
        a scratch buffer the caller owns and only its estimated columns are overwritten)."""
        if not len(self._pcols):
            return p
        theta = z[:, self.nx:]
        q = p if inplace else p.copy(order="K")
        q[:, self._pcols] = np.where(self._log, np.exp(np.clip(theta, -700.0, 700.0)), theta)
        return q

    def natural(self, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std in model units: log-space parameters as median ``e^μ`` and ``e^μ·σ``."""
        if not self._log.any():
            return mean, std
        mean, std = mean.copy(), std.copy()
        cols = self.nx + np.flatnonzero(self._log)
        mean[:, cols] = np.exp(np.clip(mean[:, cols], -700.0, 700.0))
        std[:, cols] = mean[:, cols] * std[:, cols]
        return mean, std

    # --- the two functions the filters call ------------------------------------------------------
    def transition(
        self, z: np.ndarray, u: np.ndarray, dt: np.ndarray, p: np.ndarray, inplace: bool = False
    ) -> np.ndarray:
        """``z`` after ``dt[i]`` seconds of constant input ``u[i]``; parameters carry over.

        The result keeps ``z``'s memory order (column-major in, column-major out).
        """
        q = self.parameters(z, p, inplace)
        x = z[:, : self.nx]
        out = z.copy(order="K")
        if len(dt) and dt[0] > 0.0 and dt.min() == dt.max():  # a common step: one call, no grouping
            out[:, : self.nx] = self.model.next_state(x, u, float(dt[0]), q)
            return out
        steps, group = np.unique(dt, return_inverse=True)
        if len(steps) > MAX_DT_GROUPS:
            # Irregular sampling with many distinct steps: bin them to 1 ms (the model's inputs
            # are held constant over a step anyway, so a millisecond changes nothing physical).
            steps, group = np.unique(np.round(dt, 3), return_inverse=True)
        for k, step in enumerate(steps):
            if step <= 0.0:
                continue
            rows = group == k
            if rows.all():
                out[:, : self.nx] = self.model.next_state(x, u, float(step), q)
            else:
                out[rows, : self.nx] = self.model.next_state(x[rows], u[rows], float(step), q[rows])
        return out

    def measure(self, z: np.ndarray, u: np.ndarray, p: np.ndarray, inplace: bool = False) -> np.ndarray:
        """What the measured channels should read in augmented state ``z``."""
        y = self.model.output(z[:, : self.nx], u, self.parameters(z, p, inplace))
        return y.T[self._ycols].T  # column-major: one gather, and each channel contiguous


__all__ = ["MAX_DT_GROUPS", "AugmentedModel", "repeat_rows", "tile_rows"]
