"""What the Kalman-type filters share: a Gaussian per twin and the masked measurement update.

Storage is twin-axis-last (structure of arrays): mean ``(L, n)``, covariance ``(L, L, n)``, so
the batched algebra in `twinloop.estimate.soa` works on contiguous vectors over twins.
`_moments` and `_put` give and take the twin-first view (``(k, L)``, ``(k, L, L)``).

Missing channels (NaN) are handled exactly: their innovation is zero, their rows of the
cross-covariance are zero and their block of the innovation covariance is the identity, so the
gain for them is zero and the other channels update as if the missing ones were never declared.
"""

from __future__ import annotations

import numpy as np

from twinloop.estimate import soa
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


def mask_missing_soa(
    present: np.ndarray, nu: np.ndarray, S: np.ndarray, Pxy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`mask_missing` twin-axis-last: ``present``/``nu`` ``(m, k)``, ``S`` ``(m, m, k)``,
    ``Pxy`` ``(L, m, k)``."""
    nu = np.where(present, nu, 0.0)
    S = np.where(present[:, None, :] & present[None, :, :], S, 0.0)
    idx = np.arange(len(present))
    S[idx, idx] = np.where(present, S[idx, idx], 1.0)
    return nu, S, np.where(present[None, :, :], Pxy, 0.0)


def rows_index(rows: np.ndarray, n: int) -> slice | np.ndarray:
    """A slice when ``rows`` are consecutive (views instead of gathers on the twin axis), else ``rows``."""
    k = len(rows)
    if k == 1 or (k and rows[-1] - rows[0] == k - 1 and (np.diff(rows) == 1).all()):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


class GaussianFilter(FleetEstimator):
    """Mean ``(L, n)`` and covariance ``(L, L, n)`` per twin, with the guarded Cholesky."""

    def _grow(self, k: int) -> None:
        size = self.aug.size
        eye = np.broadcast_to(np.eye(size)[:, :, None], (size, size, k))
        self._z = np.concatenate([getattr(self, "_z", np.empty((size, 0))), np.zeros((size, k))], axis=1)
        self._P = np.concatenate([getattr(self, "_P", np.empty((size, size, 0))), eye], axis=2)
        self._P0 = np.concatenate([getattr(self, "_P0", np.empty((0, size, size))),
                                   np.tile(np.eye(size), (k, 1, 1))])

    def _start(self, rows: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> None:
        P0 = variance[:, :, None] * np.eye(self.aug.size)
        self._put(rows, mean, P0)
        self._P0[rows] = P0

    def _moments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._z[:, rows].T, self._P[:, :, rows].transpose(2, 0, 1)

    def _put(self, rows: np.ndarray, z: np.ndarray, P: np.ndarray) -> None:
        """Write twin-first means ``(k, L)`` and covariances ``(k, L, L)`` of ``rows``."""
        self._z[:, rows], self._P[:, :, rows] = z.T, P.transpose(1, 2, 0)

    def _finite(self, rows: np.ndarray) -> np.ndarray:
        at = rows_index(rows, len(self))
        return np.isfinite(self._z[:, at]).all(axis=0) & np.isfinite(self._P[:, :, at]).all(axis=(0, 1))

    def _snapshot(self, rows: np.ndarray) -> object:
        return self._z[:, rows], self._P[:, :, rows], self.innovation[rows].copy()  # gathers copy

    def _restore(self, rows: np.ndarray, snapshot: object, which: np.ndarray) -> None:
        z, P, nu = snapshot  # type: ignore[misc]
        self._z[:, rows], self._P[:, :, rows], self.innovation[rows] = z[:, which], P[:, :, which], nu[which]

    def _cholesky(self, rows: np.ndarray, P: np.ndarray) -> np.ndarray:
        """Lower factors of ``P`` ``(L, L, k)`` (the rows' covariances), repairing and counting the
        twins that need it; repaired covariances are written back."""
        C, fixed = soa.guarded_cholesky_soa(P, self._floor[rows], self._P0[rows])
        if fixed.any():
            self._P[:, :, rows[fixed]] = P[:, :, fixed]
            self.repairs[rows[fixed]] += 1
        return C

    def _update(self, rows: np.ndarray, y: np.ndarray, y_pred: np.ndarray, S: np.ndarray,
                Pxy: np.ndarray) -> None:
        """Masked Kalman update of ``rows``, twin-axis-last: ``y`` ``(k, m)`` as measured (NaN =
        missing), ``y_pred`` ``(m, k)``, ``S`` ``(m, m, k)``, ``Pxy`` ``(L, m, k)``.

        With ``S = C·Cᵀ``: ``W = Pxy·C⁻ᵀ`` and ``e = C⁻¹·ν`` give ``z += W·e``,
        ``P −= W·Wᵀ`` (= ``K·S·Kᵀ``) and NIS ``= |e|²`` — one triangular solve, no inverse.
        """
        present = np.isfinite(y).T
        nu = y.T - y_pred
        if not present.all():
            nu, S, Pxy = mask_missing_soa(present, nu, S, Pxy)
        C, ok = soa.cholesky(S)
        We = soa.forward_solve(C, np.concatenate([Pxy, nu[None]]))
        if not ok.all():  # singular innovation covariance: pseudo-inverse for those twins
            bad = np.flatnonzero(~ok)
            G = soa.pseudo_factor(S[:, :, bad].transpose(2, 0, 1))
            B = np.concatenate([Pxy[:, :, bad], nu[None, :, bad]]).transpose(2, 0, 1)
            We[:, :, bad] = (B @ G).transpose(1, 2, 0)
        W, e = We[:-1], We[-1]
        at = rows_index(rows, len(self))
        self._z[:, at] += np.einsum("ick,ck->ik", W, e)
        self._P[:, :, at] = soa.symmetrize(self._P[:, :, at] - soa.outer(W, W))
        idx = np.arange(len(present))
        self.innovation[rows] = np.where(present, nu, np.nan).T
        self.innovation_std[rows] = np.where(present, np.sqrt(S[idx, idx]), np.nan).T
        self.nis[rows] = np.einsum("ck,ck->k", e, e)


__all__ = ["GaussianFilter", "mask_missing", "mask_missing_soa", "rows_index"]
