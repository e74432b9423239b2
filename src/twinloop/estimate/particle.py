"""Particle filter over a fleet: particles ``(n_twins, n_particles, L)``, systematic resampling.

For posteriors a Gaussian cannot hold: two modes (a sensor that cannot tell the sign), or a
state pressed against a hard limit (wear ≥ 0 near zero). Process noise is added to the particles
*before* they are stepped through the model, so the model's own limits (clips, floors) hold for
every particle. Weights live in log space; a twin is resampled (systematic, all twins that need
it in one vectorized pass) when its effective sample size drops below ``resample_threshold·N``.

Resampling copies particles; with little process noise the copies never spread out again
(sample impoverishment). After each resampling the particles are therefore jittered with the
regularized-PF kernel (bandwidth ``(4/(N(d+2)))^(1/(d+4))`` times each state's spread; set
``roughening=0`` for the plain bootstrap filter). The jitter may cross a hard limit; the next
step through the model puts such particles back.
"""

from __future__ import annotations

import numpy as np

from twinloop.core.errors import NotFoundError
from twinloop.core.uncertainty import Samples
from twinloop.estimate.augment import repeat_rows
from twinloop.estimate.fleet import FleetEstimator
from twinloop.estimate.spec import EstimatorSpec


def systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices ``(k, N)`` drawn from each row of normalized ``weights`` with one offset per row.

    >>> systematic_resample(np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]), np.random.default_rng(0))
    array([[1, 1, 1],
           [0, 0, 2]])
    """
    k, n = weights.shape
    c = np.cumsum(weights, axis=1)
    c /= c[:, -1:]
    offset = np.arange(k)[:, None]
    positions = (rng.random((k, 1)) + np.arange(n)) / n
    # Shift each row into its own unit interval, so one searchsorted serves all twins.
    flat = np.searchsorted((c + offset).ravel(), (positions + offset).ravel(), side="right")
    return np.minimum(flat.reshape(k, n) - offset * n, n - 1)


class ParticleFilter(FleetEstimator):
    """Bootstrap particle filter vectorized across twins (see the module docstring)."""

    kind = "particle"

    def __init__(self, spec: EstimatorSpec, n_particles: int = 500, seed: int = 0,
                 resample_threshold: float = 0.5, roughening: float = 1.0) -> None:
        super().__init__(spec)
        self.n_particles = n_particles
        self.roughening = roughening
        self.resample_threshold = resample_threshold
        self.rng = np.random.default_rng(seed)
        self._x = np.empty((0, n_particles, self.aug.size))
        self._logw = np.empty((0, n_particles))

    def _grow(self, k: int) -> None:
        size, n = self.aug.size, self.n_particles
        self._x = np.concatenate([self._x, np.zeros((k, n, size))])
        self._logw = np.concatenate([self._logw, np.full((k, n), -np.log(n))])

    def _start(self, rows: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> None:
        noise = self.rng.standard_normal((len(rows), self.n_particles, self.aug.size))
        self._x[rows] = mean[:, None, :] + np.sqrt(variance)[:, None, :] * noise
        self._logw[rows] = -np.log(self.n_particles)

    def _flat(self, fn, X: np.ndarray, *per_row: np.ndarray) -> np.ndarray:  # noqa: ANN001
        k, n, size = X.shape
        out = fn(X.reshape(k * n, size), *(repeat_rows(a, n) for a in per_row))
        return out.reshape(k, n, -1)

    def _predict(self, rows: np.ndarray, u: np.ndarray, dt: np.ndarray) -> None:
        X = self._x[rows]
        std = np.sqrt(self._process_variance(dt))[:, None, :]
        X = X + std * self.rng.standard_normal(X.shape)
        self._x[rows] = self._flat(self.aug.transition, X, u, dt, self.p[rows])

    def _correct(self, rows: np.ndarray, u: np.ndarray, y: np.ndarray) -> None:
        Y = self._flat(self.aug.measure, self._x[rows], u, self.p[rows])
        sigma = self.spec.measurement_std(Y)
        present = np.isfinite(y)
        w = self._weights(rows)
        y_pred = np.einsum("kn,knm->km", w, Y)
        D = Y - y_pred[:, None, :]
        S = np.swapaxes(D * w[:, :, None], 1, 2) @ D
        idx = np.arange(y.shape[1])
        S[:, idx, idx] += np.einsum("kn,knm->km", w, sigma**2)
        S = np.where(present[:, :, None] & present[:, None, :], S, 0.0)
        S[:, idx, idx] = np.where(present, S[:, idx, idx], 1.0)
        self._record(rows, np.where(present, y - y_pred, 0.0), S, present)

        r = np.where(present[:, None, :], (y[:, None, :] - Y) / sigma, 0.0)
        loglik = -0.5 * (r**2).sum(axis=2) - np.where(present[:, None, :], np.log(sigma), 0.0).sum(axis=2)
        logw = self._logw[rows] + np.where(np.isfinite(loglik), loglik, -np.inf)
        top = logw.max(axis=1, keepdims=True)
        lost = ~np.isfinite(top[:, 0])  # every particle impossible: keep the prior weights
        if lost.any():
            self.faults += int(lost.sum())
            self.repairs[rows[lost]] += 1
            logw[lost] = self._logw[rows[lost]]
            top[lost] = logw[lost].max(axis=1, keepdims=True)
        logw -= top + np.log(np.exp(logw - top).sum(axis=1, keepdims=True))
        self._logw[rows] = logw
        self._resample(rows)

    def _resample(self, rows: np.ndarray) -> None:
        w = self._weights(rows)
        ess = 1.0 / (w**2).sum(axis=1)
        need = ess < self.resample_threshold * self.n_particles
        if not need.any():
            return
        chosen = rows[need]
        _, cov = self._moments(chosen)
        idx = systematic_resample(w[need], self.rng)
        X = np.take_along_axis(self._x[chosen], idx[:, :, None], axis=1)
        if self.roughening > 0:
            # Regularized PF (Musso et al.): jitter by the kernel bandwidth times each state's spread,
            # so copies of one particle spread out again even where process noise is tiny.
            n, d = self.n_particles, self.aug.size
            h = self.roughening * (4.0 / (n * (d + 2))) ** (1.0 / (d + 4))
            spread = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
            X = X + h * spread[:, None, :] * self.rng.standard_normal(X.shape)
        self._x[chosen] = X
        self._logw[chosen] = -np.log(self.n_particles)

    def _weights(self, rows: np.ndarray) -> np.ndarray:
        logw = self._logw[rows]
        w = np.exp(logw - logw.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)

    def _moments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = self._weights(rows)
        X = self._x[rows]
        mean = np.einsum("kn,knl->kl", w, X)
        D = X - mean[:, None, :]
        cov = np.swapaxes(D * w[:, :, None], 1, 2) @ D
        return mean, cov

    def _snapshot(self, rows: np.ndarray) -> object:
        return self._x[rows].copy(), self._logw[rows].copy()

    def _restore(self, rows: np.ndarray, snapshot: object, which: np.ndarray) -> None:
        x, logw = snapshot  # type: ignore[misc]
        self._x[rows], self._logw[rows] = x[which], logw[which]

    def samples(self, twin_id: str, name: str) -> Samples:
        """The posterior of one state of one twin as equally weighted samples (resampled)."""
        row = self.rows([twin_id])
        published = [self.spec.published_name(k) for k in self.spec.augmented_names]
        if name not in (*self.spec.augmented_names, *published):
            raise NotFoundError(f"no state {name!r}", hint="states: " + ", ".join(published))
        col = self.spec.augmented_names.index(name) if name in self.spec.augmented_names else (
            published.index(name))
        idx = systematic_resample(self._weights(row), self.rng)[0]
        values = self._x[row[0], idx, col]
        if col >= self.aug.nx and self.spec.log_parameters[col - self.aug.nx]:
            values = np.exp(values)
        return Samples(values)


__all__ = ["ParticleFilter", "systematic_resample"]
