"""The particle filter handles posteriors the UKF cannot hold: two modes, and a hard limit."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.core.errors import NotFoundError
from twinloop.estimate.particle import ParticleFilter, systematic_resample
from twinloop.estimate.spec import EstimatorSpec
from twinloop.estimate.ukf import UnscentedKalmanFilter
from twinloop.physics.model import Parameter, Signal


class Imbalance:
    """A rotor imbalance whose sign (phase) no sensor sees: vibration power reads ``x²``."""

    name = "imbalance"
    inputs: tuple[Signal, ...] = ()
    states = (Signal("imbalance", "dimensionless"),)
    outputs = (Signal("vibration_power", "dimensionless"),)
    parameters = (Parameter("unused", 0.0),)
    events: tuple[str, ...] = ()

    def initial_state(self, p, u, rng=None):
        return np.zeros((len(u), 1))

    def next_state(self, x, u, dt, p):
        return x.copy()

    def output(self, x, u, p):
        return x**2

    def event_state(self, x, p):
        return np.zeros((len(x), 0))


class Wear(Imbalance):
    """Wear that cannot be negative, read directly by a noisy sensor."""

    name = "wear"
    states = (Signal("wear", "dimensionless"),)
    outputs = (Signal("wear_reading", "dimensionless"),)

    def next_state(self, x, u, dt, p):
        return np.maximum(x, 0.0)

    def output(self, x, u, p):
        return np.maximum(x, 0.0)


def spec_for(model, channel: str, output: str, noise: float, prior: float) -> EstimatorSpec:
    name = model.states[0].name
    return EstimatorSpec(model, channels={channel: output}, inputs={}, measurement={output: (noise, 0.0)},
                         process={name: 0.01}, initial_std={name: prior})


def test_particle_filter_keeps_both_modes_where_the_ukf_learns_nothing() -> None:
    spec = spec_for(Imbalance(), "vib", "vibration_power", 0.05, 1.0)
    truth = np.array([1.2, -1.2, 0.8, -0.8])
    rng = np.random.default_rng(0)
    pf, ukf = ParticleFilter(spec, n_particles=2000, seed=3), UnscentedKalmanFilter(spec)
    ids = [f"r{i}" for i in range(len(truth))]
    for f in (pf, ukf):
        f.add_twins(ids)
    for _ in range(15):
        y = (truth**2 + rng.normal(0.0, 0.05, len(truth)))[:, None]
        for f in (pf, ukf):
            f.step(np.arange(len(truth)), y, np.zeros((len(truth), 0)), np.full(len(truth), 60.0))
    for i, tid in enumerate(ids):
        s = pf.samples(tid, "imbalance")
        magnitude = np.abs(s.samples)
        assert abs(np.mean(magnitude) - abs(truth[i])) < 0.05  # |x| is known …
        assert 0.3 < s.cdf(0.0) < 0.7  # … and the sign is honestly unknown: two modes
    ukf_mean = ukf.estimate().mean[:, 0]
    assert np.all(np.abs(np.abs(ukf_mean) - np.abs(truth)) > 0.5)  # stuck at the symmetric point


def test_particle_filter_respects_a_hard_limit_the_ukf_crosses() -> None:
    spec = spec_for(Wear(), "w", "wear_reading", 0.05, 0.05)
    rng = np.random.default_rng(1)
    pf, ukf = ParticleFilter(spec, n_particles=2000, seed=2), UnscentedKalmanFilter(spec)
    for f in (pf, ukf):
        f.add_twins(["new"])
    for _ in range(3):
        y = np.array([[0.01 + rng.normal(0.0, 0.05)]])
        for f in (pf, ukf):
            f.step(np.array([0]), y, np.zeros((1, 0)), np.array([60.0]))
    u = ukf.estimate()
    assert u.mean[0, 0] - 2 * u.std[0, 0] < -0.01  # the Gaussian puts real mass on wear < 0
    pf.step(np.array([0]), np.array([[np.nan]]), np.zeros((1, 0)), np.array([60.0]))
    assert pf.samples("new", "wear").quantile(0.0) >= 0.0


def test_systematic_resampling_follows_the_weights() -> None:
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(50), size=200)
    idx = systematic_resample(w, rng)
    counts = np.stack([np.bincount(row, minlength=50) for row in idx]) / 50.0
    assert np.abs(counts - w).max() <= 1.0 / 50 + 1e-12  # systematic: within one particle


def test_samples_of_an_unknown_state_is_a_clear_error() -> None:
    pf = ParticleFilter(spec_for(Wear(), "w", "wear_reading", 0.05, 0.05), n_particles=10)
    pf.add_twins(["a"])
    with pytest.raises(NotFoundError, match="no state"):
        pf.samples("a", "temperature")
