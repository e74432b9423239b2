"""Twin-axis-last algebra and the fast UKF path: same numbers as LAPACK and as one twin alone."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.estimate import soa, ukf
from twinloop.estimate.checks import linear_spec
from twinloop.estimate.covariance import guarded_cholesky
from twinloop.estimate.ukf import UnscentedKalmanFilter


def spd(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, n, k)`` random symmetric positive definite matrices."""
    M = rng.normal(size=(k, n, n))
    return np.ascontiguousarray((M @ M.transpose(0, 2, 1) + 0.1 * np.eye(n)).transpose(1, 2, 0))


@pytest.mark.parametrize("k", [1, 5, soa.SMALL_BATCH + 1, 700])  # the LAPACK and the loop path
def test_cholesky_matches_lapack_and_flags_only_the_bad_twins(k: int) -> None:
    rng = np.random.default_rng(0)
    A = spd(k, 5, rng)
    C, ok = soa.cholesky(A)
    assert ok.all()
    assert np.allclose(C.transpose(2, 0, 1), np.linalg.cholesky(A.transpose(2, 0, 1)), rtol=1e-12, atol=1e-12)
    if k > 1:
        A[:, :, 0] = np.diag([1.0, -1.0, 1.0, 1.0, 1.0])  # indefinite
        A[2, 3, k - 1] = A[3, 2, k - 1] = np.nan
        C2, ok2 = soa.cholesky(A)
        assert np.flatnonzero(~ok2).tolist() == [0, k - 1]
        assert np.allclose(C2[:, :, 1:-1], C[:, :, 1:-1], rtol=1e-12, atol=1e-12)


def test_forward_solve_gives_the_gain_factors() -> None:
    rng = np.random.default_rng(1)
    S, B = spd(300, 3, rng), rng.normal(size=(4, 3, 300))
    C, _ = soa.cholesky(S)
    W = soa.forward_solve(C, B)
    Bt, St = B.transpose(2, 0, 1), S.transpose(2, 0, 1)
    want = Bt @ np.linalg.inv(St) @ Bt.transpose(0, 2, 1)
    assert np.allclose(soa.outer(W, W).transpose(2, 0, 1), want, rtol=1e-9, atol=1e-12)


def test_guarded_cholesky_soa_repairs_like_the_twin_first_guard() -> None:
    rng = np.random.default_rng(2)
    P = spd(400, 3, rng)
    P[:, :, 17] = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    P[0, 0, 300] = np.nan
    floor, fallback = np.full((400, 3), 1e-9), np.tile(np.eye(3), (400, 1, 1))
    want_P = P.transpose(2, 0, 1).copy()
    want_L, want_fixed = guarded_cholesky(want_P, floor, fallback)
    C, fixed = soa.guarded_cholesky_soa(P, floor, fallback)
    assert np.flatnonzero(fixed).tolist() == np.flatnonzero(want_fixed).tolist() == [17, 300]
    assert np.allclose(P.transpose(2, 0, 1), want_P) and np.allclose(C.transpose(2, 0, 1), want_L)


def test_pseudo_factor_is_the_pseudo_inverse_and_nan_for_non_finite() -> None:
    S = np.array([[[2.0, 2.0], [2.0, 2.0]], [[1.0, np.nan], [np.nan, 1.0]]])  # singular; broken
    G = soa.pseudo_factor(S)
    assert np.allclose(G[0] @ G[0].T, np.linalg.pinv(S[0]))
    assert np.isnan(G[1]).all()


def test_a_singular_innovation_covariance_takes_the_pseudo_inverse() -> None:
    est = UnscentedKalmanFilter(linear_spec())
    est.add_twins(["a", "b"])
    est.step(np.arange(2), np.zeros((2, 2)), np.zeros((2, 1)), np.zeros(2))
    z0, P0 = (a.copy() for a in est._moments(np.arange(2)))
    S = np.stack([np.eye(2), [[1.0, 1.0], [1.0, 1.0]]], axis=-1)  # twin b: singular
    Pxy = np.stack([np.diag([0.5, 0.2]), [[0.3, 0.3], [0.1, 0.1]]], axis=-1)
    y, y_pred = np.array([[1.0, 2.0], [1.0, 3.0]]), np.zeros((2, 2))
    est._update(np.arange(2), y, y_pred, S.copy(), Pxy.copy())
    z, P = est._moments(np.arange(2))
    for i in range(2):
        K = Pxy[:, :, i] @ np.linalg.pinv(S[:, :, i])
        assert np.allclose(z[i], z0[i] + K @ y[i]), i
        assert np.allclose(P[i], P0[i] - K @ S[:, :, i] @ K.T), i
    assert np.isclose(est.nis[1], y[1] @ np.linalg.pinv(S[:, :, 1]) @ y[1])


def _run(est: UnscentedKalmanFilter, ys: np.ndarray, rows: np.ndarray, us: np.ndarray) -> None:
    for k in range(ys.shape[1]):
        est.step(rows, ys[:, k], us[:, k], np.full(len(rows), 0.0 if k == 0 else 1.0))


def test_chunked_fleet_equals_each_twin_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks (here of 5 twins), the LAPACK/loop switch and missing channels change no number."""
    monkeypatch.setattr(ukf, "CHUNK_ROWS", 25)
    rng = np.random.default_rng(3)
    n, steps = 23, 6
    ys, us = rng.normal(size=(n, steps, 2)), rng.normal(0.0, 0.3, (n, steps, 1))
    ys[rng.random(ys.shape) < 0.2] = np.nan
    fleet = UnscentedKalmanFilter(linear_spec())
    fleet.add_twins([f"t{i}" for i in range(n)])
    _run(fleet, ys, np.arange(n), us)
    for i in (0, 4, 5, 22):
        alone = UnscentedKalmanFilter(linear_spec())
        alone.add_twins(["x"])
        _run(alone, ys[i : i + 1], np.arange(1), us[i : i + 1])
        a, b = fleet.estimate(), alone.estimate()
        assert np.allclose(a.mean[i], b.mean[0], rtol=1e-10, atol=1e-12)
        assert np.allclose(a.std[i], b.std[0], rtol=1e-10, atol=1e-12)
        assert np.allclose(a.nis[i], b.nis[0], rtol=1e-10)


def test_changed_parameters_are_seen_despite_the_tiled_cache() -> None:
    rng = np.random.default_rng(4)
    ys, us = rng.normal(size=(3, 5, 2)), rng.normal(0.0, 0.3, (3, 5, 1))
    ests = [UnscentedKalmanFilter(linear_spec()) for _ in range(2)]
    for e in ests:
        e.add_twins(["a", "b", "c"])
    _run(ests[0], ys[:, :3], np.arange(3), us[:, :3])
    ests[0].p[1, 0] = 3.0  # in place, after the cache was filled
    _run(ests[0], ys[:, 3:], np.arange(3), us[:, 3:])
    _run(ests[1], ys[:, :3], np.arange(3), us[:, :3])
    ests[1].p = ests[1].p.copy()
    ests[1].p[1, 0] = 3.0
    ests[1]._tiled.clear()
    _run(ests[1], ys[:, 3:], np.arange(3), us[:, 3:])
    assert np.array_equal(ests[0].estimate().mean, ests[1].estimate().mean)


def test_gram_is_the_symmetric_outer_product() -> None:
    rng = np.random.default_rng(5)
    A, w = rng.normal(size=(5, 11, 40)), rng.random(11)
    G = soa.gram(A, w)
    assert np.allclose(G, soa.outer(A, A, w), rtol=1e-13, atol=1e-13)
    assert np.array_equal(G, G.transpose(1, 0, 2))
