"""What the Kalman-type filters share: a Gaussian per twin and the masked measurement update.

Missing channels (NaN) are handled exactly: their innovation is zero, their rows of the
cross-covariance are zero and their block of the innovation covariance is the identity, so the
gain for them is zero and the other channels update as if the missing ones were never declared.
"""

from __future__ import annotations

import numpy as np

from twinloop.estimate.covariance import guarded_cholesky, inverse, symmetrize
from twinloop.estimate.fleet import FleetEstimator


def mask_missing(
    y: np.ndarray, y_pred: np.ndarray, S: np.ndarray, Pxy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Innovation, innovation covariance and cross-covariance with missing channels neutralized."""
    present = np.isfinite(y)
    nu = np.where(present, y - y_pred, 0.0)
    out = ~(present[:, :, None] & present[:, None, :])
    S = np.where(out, 0.0, S)
    idx = np.arange(y.shape[1])
    S[:, idx, idx] = np.where(present, S[:, idx, idx], 1.0)
    Pxy = np.where(present[:, None, :], Pxy, 0.0)
    return nu, S, Pxy, present


class GaussianFilter(FleetEstimator):
    """Mean ``(n, L)`` and covariance ``(n, L, L)`` per twin, with the guarded Cholesky."""

    def _grow(self, k: int) -> None:
        size = self.aug.size
        self._z = np.concatenate([getattr(self, "_z", np.empty((0, size))), np.zeros((k, size))])
        self._P = np.concatenate([getattr(self, "_P", np.empty((0, size, size))),
                                  np.tile(np.eye(size), (k, 1, 1))])
        self._P0 = np.concatenate([getattr(self, "_P0", np.empty((0, size, size))),
                                   np.tile(np.eye(size), (k, 1, 1))])

    def _start(self, rows: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> None:
        self._z[rows] = mean
        P0 = variance[:, :, None] * np.eye(self.aug.size)
        self._P[rows] = P0
        self._P0[rows] = P0

    def _moments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._z[rows], self._P[rows]

    def _snapshot(self, rows: np.ndarray) -> object:
        return self._z[rows].copy(), self._P[rows].copy(), self.innovation[rows].copy()

    def _restore(self, rows: np.ndarray, snapshot: object, which: np.ndarray) -> None:
        z, P, nu = snapshot  # type: ignore[misc]
        self._z[rows], self._P[rows], self.innovation[rows] = z[which], P[which], nu[which]

    def _cholesky(self, rows: np.ndarray) -> np.ndarray:
        """Lower factors of the rows' covariances, repairing (and counting) the ones that need it."""
        P = symmetrize(self._P[rows])
        L, fixed = guarded_cholesky(P, self._floor[rows], self._P0[rows])
        if fixed.any():
            self._P[rows[fixed]] = P[fixed]
            self.repairs[rows[fixed]] += 1
        return L

    def _apply_gain(self, rows: np.ndarray, y: np.ndarray, y_pred: np.ndarray, S: np.ndarray,
                    Pxy: np.ndarray) -> None:
        """``z += K·ν``, ``P −= K·S·Kᵀ`` with missing channels masked; records the innovations."""
        nu, S, Pxy, present = mask_missing(y, y_pred, S, Pxy)
        S_inv = inverse(S)  # one batched inverse serves the gain and the NIS
        K = Pxy @ S_inv
        self._z[rows] = self._z[rows] + (K @ nu[..., None])[..., 0]
        self._P[rows] = symmetrize(self._P[rows] - K @ S @ np.swapaxes(K, 1, 2))
        self._record(rows, nu, S, present, S_inv)


__all__ = ["GaussianFilter", "mask_missing"]
