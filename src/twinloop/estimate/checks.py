"""The conformance battery every fleet estimator passes (run by tests/conformance/test_estimators.py).

Each check is ``check_x(make, exact=True)`` where ``make(spec) -> FleetEstimator`` builds the
estimator under test, and raises ``AssertionError`` naming what broke. The checks use a
linear-Gaussian model (`ConstantVelocity`), where the exact answer is the textbook Kalman filter;
``exact=False`` loosens the comparisons for sampling filters (a particle filter is only
approximately exact, and draws different random numbers for different fleets).

>>> from twinloop.estimate.ukf import UnscentedKalmanFilter
>>> run_checks(UnscentedKalmanFilter)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twinloop.core.readings import ReadingBatch
from twinloop.estimate.fleet import FleetEstimator
from twinloop.estimate.spec import EstimatorSpec
from twinloop.physics.model import Parameter, Signal

Make = Callable[[EstimatorSpec], FleetEstimator]
Check = Callable[..., None]


class ConstantVelocity:
    """Position and velocity with a known acceleration input: linear, so Kalman is exact."""

    name = "constant_velocity"
    inputs = (Signal("acceleration", "m/s**2"),)
    states = (Signal("position", "m"), Signal("velocity", "m/s"))
    outputs = (Signal("position", "m"), Signal("velocity", "m/s"))
    parameters = (Parameter("gain", 1.0, "dimensionless", 0.1, 10.0),)
    events: tuple[str, ...] = ()

    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        return np.zeros((len(u), 2))

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        a = p[:, 0] * u[:, 0]
        return np.stack([x[:, 0] + dt * x[:, 1] + 0.5 * dt**2 * a, x[:, 1] + dt * a], axis=1)

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        return x.copy()

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), 0))


def linear_spec() -> EstimatorSpec:
    """Both outputs measured, random-walk process noise on both states."""
    return EstimatorSpec(
        ConstantVelocity(), channels={"pos": "position", "vel": "velocity"},
        inputs={"acceleration": "acc"}, measurement={"position": (0.5, 0.0), "velocity": (0.2, 0.0)},
        process={"position": 0.3, "velocity": 0.6}, initial_std={"position": 2.0, "velocity": 1.0},
    )


def kalman_reference(ys: np.ndarray, us: np.ndarray, dts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact Kalman filter for `linear_spec` on one twin: final mean and covariance."""
    spec = linear_spec()
    z, P = np.zeros(2), np.diag([4.0, 1.0])
    q = spec.process_variance_per_s()
    R = np.diag([0.25, 0.04])
    for k, (y, u, dt) in enumerate(zip(ys, us, dts, strict=True)):
        if k and dt > 0:
            F = np.array([[1.0, dt], [0.0, 1.0]])
            z = F @ z + np.array([0.5 * dt**2, dt]) * u[0]
            P = F @ P @ F.T + np.diag(q * dt)
        seen = np.isfinite(y)
        H = np.eye(2)[seen]
        S = H @ P @ H.T + R[np.ix_(seen, seen)]
        K = P @ H.T @ np.linalg.inv(S)
        z = z + K @ (y[seen] - H @ z)
        P = (np.eye(2) - K @ H) @ P
    return z, P


def _data(n: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Measurements of `ConstantVelocity` twins simulated with the spec's own noise; irregular
    steps per twin; a fifth of the channels missing."""
    dts = rng.choice([0.5, 1.0, 2.0], (n, steps))
    us = rng.normal(0.0, 0.3, (n, steps, 1))
    q = linear_spec().process_variance_per_s()
    x = rng.normal(0.0, 1.0, (n, 2)) * [2.0, 1.0]
    ys = np.empty((n, steps, 2))
    for k in range(steps):
        if k:
            dt, a = dts[:, k], us[:, k, 0]
            x = np.stack([x[:, 0] + dt * x[:, 1] + 0.5 * dt**2 * a, x[:, 1] + dt * a], axis=1)
            x = x + np.sqrt(q * dt[:, None]) * rng.standard_normal((n, 2))
        ys[:, k] = x + rng.normal(0.0, 1.0, (n, 2)) * [0.5, 0.2]
    ys[rng.random((n, steps, 2)) < 0.2] = np.nan  # missing channels
    return ys, us, dts


def _run(make: Make, ys: np.ndarray, us: np.ndarray, dts: np.ndarray) -> FleetEstimator:
    n, steps, _ = ys.shape
    est = make(linear_spec())
    est.add_twins([f"t{i}" for i in range(n)])
    rows = np.arange(n)
    for k in range(steps):
        est.step(rows, ys[:, k], us[:, k], dts[:, k])
    return est


def check_matches_kalman(make: Make, exact: bool = True) -> None:
    """On a linear-Gaussian model with missing channels and irregular steps, mean and std match
    the exact Kalman filter (to 1e-6 for Kalman-type filters, ``tolerance``-scaled for sampling ones)."""
    rng = np.random.default_rng(1)
    ys, us, dts = _data(4, 25, rng)
    est = _run(make, ys, us, dts).estimate()
    for i in range(len(ys)):
        z, P = kalman_reference(ys[i], us[i], dts[i])
        sd = np.sqrt(np.diag(P))
        mean_tol, std_tol = (1e-6, 1e-6) if exact else (0.5 * sd, 0.2)
        assert np.allclose(est.mean[i], z, atol=mean_tol), f"{est.kind}: mean {est.mean[i]} != Kalman {z}"
        assert np.allclose(est.std[i], sd, rtol=std_tol), f"{est.kind}: std {est.std[i]} != Kalman {sd}"


def check_rows_independent(make: Make, exact: bool = True) -> None:
    """A twin's estimate does not depend on which other twins share the fleet."""
    rng = np.random.default_rng(2)
    ys, us, dts = _data(5, 12, rng)
    fleet = _run(make, ys, us, dts).estimate()
    alone = _run(make, ys[2:3], us[2:3], dts[2:3]).estimate()
    if exact:
        assert np.allclose(fleet.mean[2], alone.mean[0], rtol=1e-10, atol=1e-10), f"{fleet.kind}: cross-talk"
    else:  # a sampling filter draws other random numbers; only the distribution must agree
        atol = 0.5 * alone.std[0].max()
        assert np.allclose(fleet.mean[2], alone.mean[0], atol=atol), f"{fleet.kind}: cross-talk"


def check_bad_twin_isolated(make: Make, exact: bool = True) -> None:
    """A twin whose numbers blow up (a NaN parameter makes its model return NaN) is reverted and
    counted at every step; the other twins update exactly as in a fleet without it."""
    rng = np.random.default_rng(4)
    ys, us, dts = _data(3, 6, rng)
    est = make(linear_spec())
    p = est.spec.default_parameters(3)
    p[1, 0] = np.nan
    est.add_twins(["a", "bad", "b"], parameters=p)
    for k in range(ys.shape[1]):
        est.step(np.arange(3), ys[:, k], us[:, k], dts[:, k])
    got = est.estimate()
    clean = _run(make, ys[[0, 2]], us[[0, 2]], dts[[0, 2]]).estimate()
    assert np.isfinite(got.mean).all() and np.isfinite(got.std).all(), f"{got.kind}: non-finite estimate"
    assert got.repairs[1] >= 1 and got.repairs[[0, 2]].sum() == 0, f"{got.kind}: repairs {got.repairs}"
    atol = 1e-9 if exact else 0.5 * clean.std.max()
    assert np.allclose(got.mean[[0, 2]], clean.mean, atol=atol), f"{got.kind}: a bad twin disturbed others"


def check_batch_equals_steps(make: Make, exact: bool = True) -> None:
    """`update` with a long-format batch (several epochs per twin, shuffled, irregular) gives the
    same estimates as stepping the arrays, and reports what it could not use."""
    rng = np.random.default_rng(3)
    n, steps = 3, 6
    ys, us, dts = _data(n, steps, rng)
    dts[:, 0] = 0.0
    ts = (np.cumsum(dts, axis=1) * 1e9).astype(np.int64) + 10**18
    ids, chans, tss, vals = [], [], [], []
    for i in range(n):
        for k in range(steps):
            for name, v in (("pos", ys[i, k, 0]), ("vel", ys[i, k, 1]), ("acc", us[i, k, 0])):
                if np.isfinite(v):
                    ids.append(f"t{i}"), chans.append(name), tss.append(ts[i, k]), vals.append(v)
    order = rng.permutation(len(ids))
    batch = ReadingBatch.from_arrays(np.array(ids)[order], np.array(chans)[order], np.array(tss)[order],
                                     np.array(vals)[order])
    est = make(linear_spec())
    est.add_twins([f"t{i}" for i in range(n)])
    report = est.update(batch)
    assert report.epochs == n * steps, f"{est.kind}: applied {report.epochs} epochs, expected {n * steps}"
    ref = _run(make, ys, us, dts).estimate()
    got = est.estimate()
    atol = 1e-9 if exact else 0.5 * ref.std.max()
    assert np.allclose(got.mean, ref.mean, atol=atol), f"{est.kind}: batch and step disagree"
    late = est.update(batch.filter(np.array(tss)[order] == ts[0, 0]))
    assert late.late >= 1, f"{est.kind}: an old epoch was not reported as late"


CHECKS: list[Check] = [check_matches_kalman, check_rows_independent, check_bad_twin_isolated,
                       check_batch_equals_steps]


def run_checks(make: Make, exact: bool = True) -> None:
    """Run the whole battery on estimators built by ``make``; raises on the first failure."""
    for check in CHECKS:
        check(make, exact)


__all__ = [
    "CHECKS",
    "Check",
    "ConstantVelocity",
    "Make",
    "check_bad_twin_isolated",
    "check_batch_equals_steps",
    "check_matches_kalman",
    "check_rows_independent",
    "kalman_reference",
    "linear_spec",
    "run_checks",
]
