"""Small-matrix algebra with the twin axis last: ``(n, n, k)`` stacks, loops over ``n`` only.

A fleet filter factors thousands of 4×4 … 12×12 covariances per step. Stacked twin-first
(``(k, n, n)``), every LAPACK or matmul call works on one tiny matrix at a time and numpy's
per-matrix overhead dominates. With the twin axis last (structure of arrays) each entry of the
matrix is a contiguous vector over twins, and the algorithms below are written out over the
small dimension: ``n`` Python iterations of whole-fleet vector operations (DEPENDENCY-NOTES §9).

Failure is per twin, never per stack: `cholesky` reports which twins are not positive definite
(or not finite) instead of raising, and `guarded_cholesky_soa` repairs only those, with the same
rule as the twin-first `covariance.guarded_cholesky`.

>>> A = np.array([[4.0, 2.0], [2.0, 3.0]])[:, :, None] * [1.0, -1.0]  # twin 1 is not PD
>>> C, ok = cholesky(A)
>>> ok.tolist(), C[:, :, 0].round(3).tolist()
([True, False], [[2.0, 0.0], [1.0, 1.414]])
"""

from __future__ import annotations

import numpy as np

from twinloop.estimate.covariance import guarded_cholesky

#: Up to this many twins, one batched LAPACK call beats the written-out loops (call overhead).
SMALL_BATCH = 128


def cholesky(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower factors of symmetric ``(n, n, k)`` matrices (lower triangle read) and a PD mask ``(k,)``.

    A twin that is not positive definite (a pivot ``<= 0`` or NaN) gets ``ok = False`` and an
    unspecified factor; the other twins are unaffected. Small batches (a twin stepped alone) go
    through LAPACK first and only fall back to the loops when that fails.
    """
    n, _, k = A.shape
    if k <= SMALL_BATCH:
        try:
            C = np.linalg.cholesky(A.transpose(2, 0, 1)).transpose(1, 2, 0)
        except np.linalg.LinAlgError:
            pass
        else:
            ok = np.isfinite(C).all(axis=(0, 1))
            if ok.all():
                return C, ok
    C = np.zeros_like(A)
    ok = np.ones(k, dtype=bool)
    for j in range(n):
        row = C[j, :j]  # (j, k): row j of the factor, left of the diagonal
        d = A[j, j] - np.einsum("pk,pk->k", row, row) if j else A[j, j].copy()
        good = d > 0.0  # False for NaN too
        ok &= good
        pivot = np.sqrt(np.where(good, d, 1.0))
        C[j, j] = pivot
        if j + 1 < n:
            col = A[j + 1 :, j] - np.einsum("ipk,pk->ik", C[j + 1 :, :j], row) if j else A[j + 1 :, j]
            C[j + 1 :, j] = col / pivot
    return C, ok


def forward_solve(C: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``X`` with ``X · Cᵀ = B`` for lower ``C`` ``(m, m, k)`` and ``B`` ``(r, m, k)`` (rows solved at once).

    Row by row this is ``C · xᵢ = bᵢ``: with ``C`` the factor of ``S``, ``X·Xᵀ = B·S⁻¹·Bᵀ``.
    """
    m = C.shape[0]
    X = np.empty(B.shape, dtype=np.result_type(B, C))
    for c in range(m):
        acc = B[:, c] - np.einsum("idk,dk->ik", X[:, :c], C[c, :c]) if c else B[:, c]
        X[:, c] = acc / C[c, c]
    return X


def outer(A: np.ndarray, B: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``Σₛ wₛ · A[i, s] · B[j, s]`` for ``A`` ``(a, s, k)``, ``B`` ``(b, s, k)``: ``(a, b, k)``."""
    if weights is not None:
        A = A * weights[None, :, None]
    return np.einsum("isk,jsk->ijk", A, B)


def gram(A: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """`outer` of ``A`` with itself, computing the lower triangle only and mirroring it."""
    Aw = A if weights is None else A * weights[None, :, None]
    a, _, k = A.shape
    out = np.empty((a, a, k), dtype=np.result_type(A, Aw))
    for i in range(a):
        np.einsum("sk,jsk->jk", Aw[i], A[: i + 1], out=out[i, : i + 1])
        out[:i, i] = out[i, :i]
    return out


def symmetrize(P: np.ndarray) -> np.ndarray:
    """``(P + Pᵀ)/2`` over the two leading (matrix) axes."""
    return 0.5 * (P + P.transpose(1, 0, 2))


def guarded_cholesky_soa(
    P: np.ndarray, floor: np.ndarray, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`cholesky` with the per-twin repair of `covariance.guarded_cholesky` for the twins that fail.

    ``P`` ``(n, n, k)``; ``floor`` ``(k, n)`` and ``fallback`` ``(k, n, n)`` twin-first, as the
    repair takes them. ``P`` is repaired in place for the failing twins; returns the factors and
    a mask of the twins that were repaired or reset.
    """
    C, ok = cholesky(P)
    fixed = np.zeros(len(ok), dtype=bool)
    if ok.all():
        return C, fixed
    bad = np.flatnonzero(~ok)
    Pb = np.ascontiguousarray(P[:, :, bad].transpose(2, 0, 1))
    Cb, fixed_b = guarded_cholesky(Pb, floor[bad], np.broadcast_to(fallback, (len(ok), *P.shape[:2]))[bad])
    P[:, :, bad] = Pb.transpose(1, 2, 0)
    C[:, :, bad] = Cb.transpose(1, 2, 0)
    fixed[bad] = fixed_b
    return C, fixed


def pseudo_factor(S: np.ndarray) -> np.ndarray:
    """``G`` ``(k, m, m)`` with ``G·Gᵀ = S⁺`` for symmetric PSD ``(k, m, m)`` (twin-first; the rare path).

    Used where `cholesky` of an innovation covariance fails: the null space gets no gain, as
    with a pseudo-inverse. Non-finite matrices give NaN (the caller's guard reverts the twin).
    """
    G = np.full(S.shape, np.nan)
    finite = np.isfinite(S).all(axis=(1, 2))
    if finite.any():
        w, V = np.linalg.eigh(S[finite])
        tol = np.finfo(np.float64).eps * S.shape[-1] * np.abs(w).max(axis=1, keepdims=True)
        scale = np.where(w > tol, 1.0 / np.sqrt(np.where(w > tol, w, 1.0)), 0.0)
        G[finite] = V * scale[:, None, :]
    return G


__all__ = [
    "SMALL_BATCH",
    "cholesky",
    "forward_solve",
    "gram",
    "guarded_cholesky_soa",
    "outer",
    "pseudo_factor",
    "symmetrize",
]
