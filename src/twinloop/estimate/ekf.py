"""Extended Kalman filter over a fleet: Jacobians given, or by finite differences in one model call.

Finite differences stack the nominal point and one forward probe per augmented column for every
twin (``k·(L+1)`` rows) into a single model call. The step per column is ``√ε·max(|z|, scale)``
with ``scale`` the column's initial std (so a wear of 0 is probed by a fraction of its prior
spread, not by 1e-8). The covariance update uses the Joseph form, which stays symmetric
positive semi-definite under rounding.

Analytic Jacobians plug in as ``state_jacobian(z, u, dt, p) -> (k, L, L)`` and
``output_jacobian(z, u, p) -> (k, m, L)`` on augmented vectors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twinloop.estimate.augment import repeat_rows
from twinloop.estimate.covariance import solve_gain, symmetrize
from twinloop.estimate.gaussian import GaussianFilter, mask_missing
from twinloop.estimate.spec import EstimatorSpec

StateJacobian = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
OutputJacobian = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

_SQRT_EPS = float(np.sqrt(np.finfo(np.float64).eps))


class ExtendedKalmanFilter(GaussianFilter):
    """EKF vectorized across twins (see the module docstring)."""

    kind = "ekf"

    def __init__(
        self,
        spec: EstimatorSpec,
        state_jacobian: StateJacobian | None = None,
        output_jacobian: OutputJacobian | None = None,
    ) -> None:
        super().__init__(spec)
        self.state_jacobian = state_jacobian
        self.output_jacobian = output_jacobian
        self._scale = np.sqrt(self._init_var)

    def _probe(self, fn: Callable[..., np.ndarray], z: np.ndarray,
               *per_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``fn(z)`` and its Jacobian ``(k, out, L)`` by forward differences, in one call."""
        k, size = z.shape
        h = _SQRT_EPS * np.maximum(np.abs(z), np.maximum(self._scale, 1e-3))
        probes = np.repeat(z[:, None, :], size + 1, axis=1)
        idx = np.arange(size)
        probes[:, idx + 1, idx] += h
        args = [repeat_rows(a, size + 1) for a in per_row]
        out = fn(probes.reshape(k * (size + 1), size), *args).reshape(k, size + 1, -1)
        J = (out[:, 1:, :] - out[:, :1, :]) / h[:, :, None]
        return out[:, 0, :], np.swapaxes(J, 1, 2)

    def _predict(self, rows: np.ndarray, u: np.ndarray, dt: np.ndarray) -> None:
        (z, P0), p = self._moments(rows), self.p[rows]
        if self.state_jacobian is not None:
            z_next, F = self.aug.transition(z, u, dt, p), self.state_jacobian(z, u, dt, p)
        else:
            z_next, F = self._probe(self.aug.transition, z, u, dt, p)
        P = F @ P0 @ np.swapaxes(F, 1, 2)
        idx = np.arange(self.aug.size)
        P[:, idx, idx] += self._process_variance(dt)
        self._put(rows, z_next, symmetrize(P))

    def _correct(self, rows: np.ndarray, u: np.ndarray, y: np.ndarray) -> None:
        (z, P), p = self._moments(rows), self.p[rows]
        if self.output_jacobian is not None:
            y_pred, H = self.aug.measure(z, u, p), self.output_jacobian(z, u, p)
        else:
            y_pred, H = self._probe(self.aug.measure, z, u, p)
        R = self.spec.measurement_std(y_pred) ** 2
        PHt = P @ np.swapaxes(H, 1, 2)
        S = H @ PHt
        idx = np.arange(y.shape[1])
        S[:, idx, idx] += R
        extra = self._input_covariance(z, u, p)
        if extra is not None:
            S += extra
        nu, S, PHt, present = mask_missing(y, y_pred, S, PHt)
        K = solve_gain(PHt, S)
        H = np.where(present[:, :, None], H, 0.0)
        IKH = np.eye(self.aug.size) - K @ H
        KRKt = (K * np.where(present, R, 0.0)[:, None, :]) @ np.swapaxes(K, 1, 2)
        self._put(rows, z + (K @ nu[..., None])[..., 0], symmetrize(IKH @ P @ np.swapaxes(IKH, 1, 2) + KRKt))
        self._record(rows, nu, S, present)


__all__ = ["ExtendedKalmanFilter", "OutputJacobian", "StateJacobian"]
