"""`FleetEstimator`: what every filter shares — twins as rows, inputs, time, innovations.

A subclass implements four array methods over a subset of rows: ``_start`` (first estimate from
the model's initial state), ``_predict`` (over per-row ``dt``), ``_correct`` (measurements with
NaN for missing channels) and ``_moments`` (mean and covariance). Everything else — routing a
`ReadingBatch` into epochs, holding inputs, per-twin time, the non-finite guard — lives here.

Inputs reported at an epoch are applied over the interval that ends there; inputs not reported
keep their last value; an input mapped to a constant is that constant. A twin is started at its
first epoch whose inputs are all known, at the model's ``initial_state`` for those inputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from twinloop.core.errors import ConflictError, ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.estimate.augment import AugmentedModel
from twinloop.estimate.covariance import inverse
from twinloop.estimate.epochs import pivot
from twinloop.estimate.health import HealthWindow
from twinloop.estimate.result import FleetEstimate, UpdateReport
from twinloop.estimate.spec import EstimatorSpec
from twinloop.physics.model import names

JITTER = 1e-6  # relative std floor that keeps every covariance positive definite


class FleetEstimator(ABC):
    """A filter over every twin of one type; rows are twins (see the module docstring)."""

    kind: ClassVar[str] = "estimator"

    def __init__(self, spec: EstimatorSpec) -> None:
        self.spec = spec
        self.aug = AugmentedModel(spec)
        model = spec.model
        self.twin_ids: list[str] = []
        self._index: dict[str, int] = {}
        n_in, m, size = len(model.inputs), len(spec.channels), self.aug.size
        self.p = np.empty((0, len(model.parameters)))
        self.u = np.empty((0, n_in))
        self.ts_ns = np.empty(0, dtype=np.int64)
        self.ready = np.empty(0, dtype=bool)
        self.innovation = np.empty((0, m))
        self.innovation_std = np.empty((0, m))
        self.nis = np.empty(0)
        self.repairs = np.empty(0, dtype=np.int64)
        self.faults = 0
        self._floor = np.empty((0, size))
        self.health = HealthWindow(spec.channel_names)
        #: ``(input column, threshold)``: health judges only steps whose input is above it (a pump
        #: while it turns; stopped, its sensors read clipped noise around zero, which no Gaussian
        #: filter matches); None judges every step.
        self.judge_when: tuple[int, float] | None = None
        self._q = spec.process_variance_per_s()
        self._init_var = np.array([spec.initial_std.get(k, 0.0) ** 2 for k in spec.augmented_names])
        self._u_abs, self._u_rel = spec.input_noise_table()
        self._noisy_inputs = np.flatnonzero((self._u_abs > 0) | (self._u_rel > 0))
        # Channels to pivot: measured ones, then channels that only feed inputs.
        self._pivot: list[str] = list(spec.channel_names)
        self._const = np.full(n_in, np.nan)
        self._source = np.full(n_in, -1, dtype=np.intp)
        for i, name in enumerate(names(model.inputs)):
            src = spec.inputs[name]
            channel, default = (src, np.nan) if isinstance(src, str) else (
                src if isinstance(src, tuple) else (None, float(src)))
            self._const[i] = default
            if channel is not None:
                if channel not in self._pivot:
                    self._pivot.append(channel)
                self._source[i] = self._pivot.index(channel)

    # --- fleet membership ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.twin_ids)

    def __contains__(self, twin_id: object) -> bool:
        return twin_id in self._index

    def add_twins(self, twin_ids: Sequence[str], parameters: np.ndarray | None = None) -> None:
        """Add twins (rows); ``parameters`` ``(k, n_parameters)`` default to the spec's."""
        ids = list(twin_ids)
        taken = [t for t in ids if t in self._index]
        if taken or len(set(ids)) != len(ids):
            raise ConflictError(f"twins already estimated or repeated: {sorted(set(taken))[:5]}")
        k = len(ids)
        p = self.spec.default_parameters(k) if parameters is None else np.asarray(parameters, np.float64)
        if p.shape != (k, self.p.shape[1]):
            raise ValidationError(f"parameters must be shaped {(k, self.p.shape[1])}, got {p.shape}")
        for i, t in enumerate(ids, start=len(self.twin_ids)):
            self._index[t] = i
        self.twin_ids.extend(ids)
        m = self.innovation.shape[1]
        self.p = np.concatenate([self.p, p])
        self.u = np.concatenate([self.u, np.tile(self._const, (k, 1))])
        self.ts_ns = np.concatenate([self.ts_ns, np.full(k, -1, np.int64)])
        self.ready = np.concatenate([self.ready, np.zeros(k, bool)])
        self.innovation = np.concatenate([self.innovation, np.full((k, m), np.nan)])
        self.innovation_std = np.concatenate([self.innovation_std, np.full((k, m), np.nan)])
        self.nis = np.concatenate([self.nis, np.full(k, np.nan)])
        self.repairs = np.concatenate([self.repairs, np.zeros(k, np.int64)])
        self._floor = np.concatenate([self._floor, np.zeros((k, self.aug.size))])
        self.health.grow(k)
        self._grow(k)

    def set_parameters(self, twin_ids: Sequence[str], values: dict[str, float] | None = None,
                       rows_p: np.ndarray | None = None) -> None:
        """Replace model parameters of twins (after a calibration); their states carry on.

        ``values`` sets the named parameters for every twin given; ``rows_p`` ``(k, n_parameters)``
        replaces whole rows (the filters read ``p`` afresh at every step).
        """
        rows = self.rows(twin_ids)
        if rows_p is not None:
            self.p[rows] = np.asarray(rows_p, np.float64)
        for key, value in (values or {}).items():
            self.p[rows, [q.name for q in self.spec.model.parameters].index(key)] = float(value)

    def rows(self, twin_ids: Sequence[str]) -> np.ndarray:
        """Row of each twin id (a clear error for an unknown one)."""
        missing = [t for t in twin_ids if t not in self._index]
        if missing:
            raise ValidationError(f"twins not in this estimator: {missing[:5]}")
        return np.array([self._index[t] for t in twin_ids], dtype=np.intp)

    # --- the two ways in -----------------------------------------------------------------------
    def update(self, batch: ReadingBatch) -> UpdateReport:
        """Apply a batch of readings, epoch by epoch in time order for every twin at once."""
        e = pivot(batch, self._index, self._pivot)
        if len(e.rows) == 0:
            return UpdateReport(bad=e.bad)
        late = waiting = applied = 0
        faults_before = self.faults
        m = len(self.spec.channels)
        for k in range(int(e.rank.max()) + 1):
            sel = np.flatnonzero(e.rank == k)
            rows, ts, values = e.rows[sel], e.ts_ns[sel], e.values[sel]
            stale = self.ready[rows] & (ts < self.ts_ns[rows])
            late += int(stale.sum())
            rows, ts, values = rows[~stale], ts[~stale], values[~stale]
            u = self.u[rows]
            fed = self._source >= 0
            reported = values[:, self._source[fed]]
            u[:, fed] = np.where(np.isfinite(reported), reported, u[:, fed])
            self.u[rows] = u
            known = np.isfinite(u).all(axis=1)
            waiting += int((~known).sum())
            rows, ts, values, u = rows[known], ts[known], values[known], u[known]
            if not len(rows):
                continue
            dt = np.where(self.ready[rows], (ts - self.ts_ns[rows]) / 1e9, 0.0)
            self.step(rows, values[:, :m], u, dt)
            gate = self.judge_when
            judged = rows if gate is None else rows[u[:, gate[0]] > gate[1]]
            with np.errstate(invalid="ignore", divide="ignore"):
                z = self.innovation[judged] / self.innovation_std[judged]
            self.health.record(judged, self.nis[judged], z)
            self.ts_ns[rows] = ts
            applied += len(rows)
        return UpdateReport(epochs=applied, twins=len(np.unique(e.rows)), late=late, bad=e.bad,
                            waiting=waiting, faults=self.faults - faults_before)

    def step(self, rows: np.ndarray, y: np.ndarray, u: np.ndarray, dt: np.ndarray) -> None:
        """One predict (over ``dt[i]`` seconds) and correct (with ``y``, NaN = missing) for ``rows``.

        The array interface under `update`: ``y`` ``(k, n_channels)``, ``u`` ``(k, n_inputs)``,
        ``dt`` ``(k,)``. Twins not started yet are started at ``u`` (their ``dt`` is ignored).
        """
        rows = np.asarray(rows, dtype=np.intp)
        y, u = np.asarray(y, np.float64), np.asarray(u, np.float64)
        dt = np.asarray(dt, np.float64).copy()
        if (dt < 0).any():
            raise ValidationError("time steps must not be negative (readings out of order?)")
        new = ~self.ready[rows]
        if new.any():
            self._begin(rows[new], u[new])
            dt[new] = 0.0
        self.u[rows] = u
        moving = dt > 0
        if moving.any():
            self._guarded(self._predict, rows[moving], u[moving], dt[moving])
        self._guarded(self._correct, rows, u, y)

    def _begin(self, rows: np.ndarray, u: np.ndarray) -> None:
        x0 = self.spec.model.initial_state(self.p[rows], u)
        z0 = self.aug.augment(x0, self.p[rows])
        scale = np.maximum(np.abs(z0), np.sqrt(self._init_var))
        self._floor[rows] = (JITTER * np.maximum(scale, 1e-6)) ** 2
        self._start(rows, z0, np.maximum(self._init_var, self._floor[rows]))
        self.ready[rows] = True

    def _guarded(self, fn, rows: np.ndarray, *args: np.ndarray) -> None:  # noqa: ANN001
        """Run a filter step; twins whose numbers went non-finite go back to where they were."""
        before = self._snapshot(rows)
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            fn(rows, *args)
        broken = ~self._finite(rows)
        if broken.any():
            self.faults += int(broken.sum())
            self._restore(rows[broken], before, broken)
            self.repairs[rows[broken]] += 1

    def _finite(self, rows: np.ndarray) -> np.ndarray:
        """True for the rows whose mean and covariance are all finite."""
        mean, cov = self._moments(rows)
        return np.isfinite(mean).all(axis=1) & np.isfinite(cov).all(axis=(1, 2))

    # --- what comes out ------------------------------------------------------------------------
    def estimate(self) -> FleetEstimate:
        """Mean and std of every state and estimated parameter, with the last innovations."""
        n, size = len(self), self.aug.size
        mean, std = np.full((n, size), np.nan), np.full((n, size), np.nan)
        rows = np.flatnonzero(self.ready)
        if len(rows):
            mu, cov = self._moments(rows)
            sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
            mean[rows], std[rows] = self.aug.natural(mu, sd)
        published = tuple(self.spec.published_name(k) for k in self.spec.augmented_names)
        return FleetEstimate(
            kind=self.kind, twin_ids=tuple(self.twin_ids), names=published, mean=mean, std=std,
            ts_ns=self.ts_ns.copy(), channels=self.spec.channel_names,
            innovation=self.innovation.copy(), innovation_std=self.innovation_std.copy(),
            nis=self.nis.copy(), repairs=self.repairs.copy(),
        )

    def _record(self, rows: np.ndarray, nu: np.ndarray, S: np.ndarray, present: np.ndarray,
                S_inv: np.ndarray | None = None) -> None:
        """Keep innovations ``nu`` (masked) with their predicted std and the NIS per twin."""
        self.innovation[rows] = np.where(present, nu, np.nan)
        self.innovation_std[rows] = np.where(present, np.sqrt(np.diagonal(S, axis1=1, axis2=2)), np.nan)
        v = np.where(present, nu, 0.0)[..., None]
        S_inv = inverse(S) if S_inv is None else S_inv
        self.nis[rows] = (np.swapaxes(v, 1, 2) @ S_inv @ v)[:, 0, 0]

    def _input_covariance(self, z: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray | None:
        """``(k, m, m)`` innovation covariance from noisy inputs, ``J_u·Σ_u·J_uᵀ`` at means ``z``
        ``(k, L)`` (central differences, one model call); None when every input is exact."""
        cols = self._noisy_inputs
        if not len(cols):
            return None
        k, n = len(z), len(cols)
        h = self._u_abs[cols] + self._u_rel[cols] * np.abs(u[:, cols])  # one std per row
        probes = np.repeat(u[:, None, :], 2 * n, axis=1)
        idx = np.arange(n)
        probes[:, idx, cols] += h
        probes[:, n + idx, cols] -= h
        rows = np.repeat(np.arange(k), 2 * n)
        y = self.aug.measure(z[rows], probes.reshape(k * 2 * n, -1), p[rows]).reshape(k, 2 * n, -1)
        G = 0.5 * (y[:, :n] - y[:, n:])  # (k, n, m): the measured channels' change per input std
        return np.swapaxes(G, 1, 2) @ G

    def _process_variance(self, dt: np.ndarray) -> np.ndarray:
        """``(k, L)`` random-walk variance added over ``dt`` seconds."""
        return self._q[None, :] * dt[:, None]

    # --- what a filter implements --------------------------------------------------------------
    @abstractmethod
    def _grow(self, k: int) -> None:
        """Make room for ``k`` new rows."""

    @abstractmethod
    def _start(self, rows: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> None:
        """First estimate of new rows: ``mean`` ``(k, L)``, independent ``variance`` ``(k, L)``."""

    @abstractmethod
    def _predict(self, rows: np.ndarray, u: np.ndarray, dt: np.ndarray) -> None: ...

    @abstractmethod
    def _correct(self, rows: np.ndarray, u: np.ndarray, y: np.ndarray) -> None: ...

    @abstractmethod
    def _moments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(k, L)`` and covariance ``(k, L, L)`` of ``rows``."""

    @abstractmethod
    def _snapshot(self, rows: np.ndarray) -> object: ...

    @abstractmethod
    def _restore(self, rows: np.ndarray, snapshot: object, which: np.ndarray) -> None:
        """Put back ``snapshot`` (taken of a superset of rows) for the rows where ``which``."""


__all__ = ["JITTER", "FleetEstimator"]
