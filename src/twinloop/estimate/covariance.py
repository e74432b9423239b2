"""Batched covariance algebra with a per-twin guard, so one bad twin never stalls the fleet.

`np.linalg.cholesky` on an ``(n, L, L)`` stack fails for the whole stack when one matrix is not
positive definite. `guarded_cholesky` first tries the fast batched call; only when that fails it
finds the offending twins (batched eigenvalues), repairs them by clipping eigenvalues to a floor
scaled to each state's magnitude, and reports which twins were repaired. A twin that cannot be
repaired (non-finite entries) is reset to its fallback covariance.

>>> P = np.array([[[4.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 1.0]]])  # twin 1 is indefinite
>>> L, fixed = guarded_cholesky(P, floor=np.full((2, 2), 1e-6), fallback=np.eye(2)[None] * [[1.0]])
>>> fixed.tolist(), bool(np.isfinite(L).all())
([False, True], True)
"""

from __future__ import annotations

import numpy as np


def symmetrize(P: np.ndarray) -> np.ndarray:
    """``(P + Pᵀ)/2`` over the last two axes: rounding makes updated covariances drift apart."""
    return 0.5 * (P + np.swapaxes(P, -1, -2))


def repair(P: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """The nearest matrices (eigenvalues clipped to ``floor`` per twin) to symmetric ``P``."""
    w, V = np.linalg.eigh(P)
    w = np.maximum(w, floor.min(axis=-1, keepdims=True))
    return symmetrize((V * w[:, None, :]) @ np.swapaxes(V, -1, -2))


def guarded_cholesky(
    P: np.ndarray, floor: np.ndarray, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of ``(n, L, L)`` covariances and a mask of the twins that needed help.

    ``floor`` ``(n, L)``: the smallest variance that still counts as positive for each state;
    ``fallback`` ``(n, L, L)`` (or broadcastable): the covariance a twin is reset to if its own
    cannot be repaired. ``P`` is repaired in place where needed, so the caller keeps the fix.
    """
    try:
        return np.linalg.cholesky(P), np.zeros(len(P), dtype=bool)
    except np.linalg.LinAlgError:
        pass
    finite = np.isfinite(P).all(axis=(1, 2))
    bad = ~finite
    reset = np.broadcast_to(fallback, P.shape)
    P[bad] = reset[bad]
    w = np.linalg.eigvalsh(P)
    bad |= w.min(axis=1) <= floor.min(axis=1)
    P[bad] = repair(P[bad], floor[bad])
    try:
        return np.linalg.cholesky(P), bad
    except np.linalg.LinAlgError:
        # Eigenvalue clipping at a tiny floor can still round to non-PD: take the fallback.
        w = np.linalg.eigvalsh(P)
        worst = w.min(axis=1) <= 0.0
        P[worst] = reset[worst]
        return np.linalg.cholesky(P), bad | worst


def solve_gain(Pxy: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Kalman gain ``Pxy·S⁻¹`` for stacks ``(n, L, m)`` and SPD ``(n, m, m)``; pseudo-inverse if singular."""
    try:
        return np.swapaxes(np.linalg.solve(S, np.swapaxes(Pxy, -1, -2)), -1, -2)
    except np.linalg.LinAlgError:
        return Pxy @ np.linalg.pinv(S)


def inverse(S: np.ndarray) -> np.ndarray:
    """Inverses of SPD ``(n, m, m)`` innovation covariances; pseudo-inverse if one is singular."""
    try:
        return np.linalg.inv(S)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(S)


__all__ = ["guarded_cholesky", "inverse", "repair", "solve_gain", "symmetrize"]
