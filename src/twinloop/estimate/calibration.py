"""Calibration: fit a model's parameters to a window of one twin's history (least squares).

The model is run along the history's inputs from its initial state, and
``scipy.optimize.least_squares`` (trust region reflective, bounds from each `Parameter`'s
``lower``/``upper``) minimizes the measured-minus-simulated residuals, each channel scaled by its
sensor std from the spec. Parameters are optimized relative to their starting values, so a
heat capacity of 1e5 and an efficiency of 0.8 are equally easy to move.

The Jacobian is computed the fleet way: the nominal run and one probe run per parameter are
rows of one simulation, so a fit costs ``(k+1)``-row model calls instead of ``k+1`` runs.

The report holds RMSE per channel before and after, and each parameter's value with a standard
error from the Gauss–Newton covariance ``(JᵀJ)⁻¹·s²`` (``s²`` the reduced chi-square), where the
Jacobian has full rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.estimate.epochs import pivot
from twinloop.estimate.spec import EstimatorSpec
from twinloop.physics.model import index, names


@dataclass(frozen=True)
class Window:
    """One twin's history as arrays: epoch times, inputs held between reports, measurements."""

    ts_ns: np.ndarray  # (T,)
    u: np.ndarray  # (T, n_inputs)
    y: np.ndarray  # (T, n_channels), NaN = not measured


@dataclass(frozen=True)
class ParameterFit:
    name: str
    before: float
    after: float
    std: float | None  # standard error, None where not identifiable
    lower: float
    upper: float


@dataclass(frozen=True)
class CalibrationReport:
    """Before/after fit of one calibration run."""

    channels: tuple[str, ...]
    rmse_before: tuple[float, ...]
    rmse_after: tuple[float, ...]
    parameters: tuple[ParameterFit, ...]
    epochs: int
    success: bool
    message: str
    evaluations: int

    def values(self) -> dict[str, float]:
        """Fitted values by name (parameters, then any fitted start states)."""
        return {f.name: f.after for f in self.parameters}

    @property
    def improved(self) -> bool:
        """True when the fit explains the measured channels better than the start did."""
        before = np.array(self.rmse_before)
        after = np.array(self.rmse_after)
        seen = np.isfinite(before) & np.isfinite(after)
        ratio = after[seen] / np.maximum(before[seen], 1e-12)
        return bool(seen.any() and float(np.mean(ratio**2)) < 1.0)


def window(batch: ReadingBatch, twin_id: str, spec: EstimatorSpec, every_s: float | None = None) -> Window:
    """The epochs of ``twin_id`` in ``batch`` whose inputs are all known (held forward).

    ``every_s`` thins the epochs to one per that many seconds (inputs are still held from every
    report in between): an hour of 1 Hz readings fits in seconds at 30 s instead of minutes.
    """
    model = spec.model
    channels = list(spec.channel_names)
    const = np.full(len(model.inputs), np.nan)
    source = np.full(len(model.inputs), -1, dtype=np.intp)
    for i, name in enumerate(names(model.inputs)):
        src = spec.inputs[name]
        channel, default = (src, np.nan) if isinstance(src, str) else (
            src if isinstance(src, tuple) else (None, float(src)))
        const[i] = default
        if channel is not None:
            if channel not in channels:
                channels.append(channel)
            source[i] = channels.index(channel)
    mine = batch.filter(batch.asset_ids == twin_id)
    e = pivot(mine, {twin_id: 0}, channels)
    u = np.tile(const, (len(e.rows), 1))
    fed = np.flatnonzero(source >= 0)
    reported = e.values[:, source[fed]]
    # Hold each input at its last report: index of the latest finite value at or before each epoch.
    last = np.maximum.accumulate(np.where(np.isfinite(reported), np.arange(len(u))[:, None], -1), axis=0)
    held = np.take_along_axis(reported, np.maximum(last, 0), axis=0)
    u[:, fed] = np.where(last >= 0, held, const[fed])
    ok = np.isfinite(u).all(axis=1)
    if every_s and ok.any():
        slot = (e.ts_ns - e.ts_ns[ok][0]) // int(every_s * 1e9)
        first = np.ones(len(slot), dtype=bool)
        first[1:] = slot[1:] != slot[:-1]
        ok &= first
    m = len(spec.channels)
    return Window(ts_ns=e.ts_ns[ok], u=u[ok], y=e.values[ok, :m])


def simulate(spec: EstimatorSpec, w: Window, p: np.ndarray, x0: np.ndarray | None = None) -> np.ndarray:
    """Measured outputs ``(rows of p, T, n_channels)`` of the model run along ``w``'s inputs."""
    model, rows = spec.model, len(p)
    u0 = np.repeat(w.u[:1], rows, axis=0)
    if x0 is None:
        x = model.initial_state(p, u0)
    else:
        x0 = np.atleast_2d(x0)
        x = x0 if len(x0) == rows else np.repeat(x0, rows, axis=0)
    cols = spec.output_columns
    out = np.empty((rows, len(w.ts_ns), len(cols)))
    dts = np.diff(w.ts_ns, prepend=w.ts_ns[0]) / 1e9
    for k, dt in enumerate(dts):
        u = np.repeat(w.u[k : k + 1], rows, axis=0)
        if dt > 0:
            x = model.next_state(x, u, float(dt), p)
        out[:, k] = model.output(x, u, p)[:, cols]
    return out


def calibrate(
    spec: EstimatorSpec,
    w: Window,
    params: Sequence[str],
    p0: np.ndarray | None = None,
    x0: np.ndarray | None = None,
    max_evaluations: int = 50,
    settle_s: float = 0.0,
    states: Sequence[str] = (),
    prior: Mapping[str, float] | None = None,
    channels: Sequence[str] | None = None,
) -> CalibrationReport:
    """Fit ``params`` to window ``w`` (see the module docstring); ``p0`` defaults to the spec's.

    ``x0``: the state at the window's start (default: the model's initial state at the first
    inputs); ``settle_s``: seconds at the start whose residuals are ignored while a guessed
    initial state settles (thermal lags); ``states``: states whose value at the window's start
    is fitted along (the ambient a latent input starts at), reported like parameters;
    ``prior``: relative std of a parameter around its start (a datasheet's tolerance), added as
    one residual each, so parameters one operating point cannot tell apart (a curve's shut-off
    head and droop) stay near the datasheet instead of wandering along their ridge;
    ``channels``: the channels whose residuals count (default all): leave out those an unfitted,
    drifting input drives (temperatures under an estimated ambient).
    """
    from scipy.optimize import least_squares

    model = spec.model
    if not params:
        raise ValidationError("name at least one parameter to calibrate",
                              hint="declared: " + ", ".join(names(model.parameters)))
    if len(w.ts_ns) < 2 or not np.isfinite(w.y).any():
        raise ValidationError(f"the history window holds {len(w.ts_ns)} usable epochs",
                              hint="widen --since, or check that the twin's channels are being recorded")
    cols = np.array([index(model.parameters, q) for q in params], dtype=np.intp)
    scols = np.array([index(model.states, q) for q in states], dtype=np.intp)
    base = spec.default_parameters(1)[0] if p0 is None else np.asarray(p0, np.float64).copy()
    x_base = (model.initial_state(base[None, :], w.u[:1])[0] if x0 is None
              else np.asarray(x0, np.float64).reshape(-1).copy()) if len(w.ts_ns) else np.zeros(0)
    k = len(cols)
    start = np.concatenate([base[cols], x_base[scols]]) if len(w.ts_ns) else base[cols]
    state_std = np.array([spec.initial_std.get(q, 0.0) for q in states])
    scale = np.where(np.abs(start) > 0, np.abs(start), 1.0)
    scale[k:] = np.maximum(np.maximum(np.abs(start[k:]), state_std), 1e-3)
    lower = np.concatenate([[model.parameters[c].lower for c in cols], np.full(len(scols), -np.inf)]) / scale
    upper = np.concatenate([[model.parameters[c].upper for c in cols], np.full(len(scols), np.inf)]) / scale
    theta0 = np.clip(start / scale, lower, upper)
    measured = np.isfinite(w.y) & ((w.ts_ns - w.ts_ns[0]) / 1e9 >= settle_s)[:, None]
    if channels is not None:
        measured &= np.isin(np.array(spec.channel_names), list(channels))[None, :]
    y_used = np.where(measured, w.y, np.nan)
    sigma = spec.measurement_std(np.where(measured, w.y, 0.0))
    evals = [0]

    def rows_for(thetas: np.ndarray) -> np.ndarray:
        p = np.repeat(base[None, :], len(thetas), axis=0)
        p[:, cols] = (thetas * scale)[:, :k]
        return p

    def starts_for(thetas: np.ndarray) -> np.ndarray | None:
        if not len(scols):
            return x0
        x = np.repeat(x_base[None, :], len(thetas), axis=0)
        x[:, scols] = (thetas * scale)[:, k:]
        return x

    weight = np.array([1.0 / (prior or {}).get(q, np.inf) for q in [*params, *states]])
    anchored = np.flatnonzero(weight > 0)

    def residuals(sim: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        r = (sim - np.where(measured, w.y, 0.0)) / sigma
        r = np.where(measured, r, 0.0).reshape(len(sim), -1)
        if not len(anchored):
            return r
        return np.hstack([r, (thetas[:, anchored] - theta0[anchored]) * weight[anchored]])

    def fun(theta: np.ndarray) -> np.ndarray:
        evals[0] += 1
        t = theta[None, :]
        return residuals(simulate(spec, w, rows_for(t), starts_for(t)), t)[0]

    def jac(theta: np.ndarray) -> np.ndarray:
        h = 1e-6 * np.maximum(np.abs(theta), 1e-3)
        room = upper - theta  # probe downwards when a bound is too close above
        h = np.where(room < h, -h, h)
        probes = np.vstack([theta, theta + np.diag(h)])
        r = residuals(simulate(spec, w, rows_for(probes), starts_for(probes)), probes)
        evals[0] += 1
        return ((r[1:] - r[0]) / h[:, None]).T

    sim_before = simulate(spec, w, rows_for(theta0[None, :]), starts_for(theta0[None, :]))[0]
    fit = least_squares(fun, theta0, jac=jac, bounds=(lower, upper), method="trf", max_nfev=max_evaluations,
                        x_scale="jac")
    sim_after = simulate(spec, w, rows_for(fit.x[None, :]), starts_for(fit.x[None, :]))[0]
    stds = _standard_errors(fit.jac, fit.fun, measured.sum()) * scale
    bounds = [(model.parameters[c].lower, model.parameters[c].upper) for c in cols] + [
        (-np.inf, np.inf)] * len(scols)
    fits = tuple(
        ParameterFit(name=q, before=float(start[i]), after=float(fit.x[i] * scale[i]),
                     std=float(stds[i]) if np.isfinite(stds[i]) else None,
                     lower=float(bounds[i][0]), upper=float(bounds[i][1]))
        for i, q in enumerate([*params, *states]))
    return CalibrationReport(
        channels=spec.channel_names, rmse_before=_rmse(sim_before, y_used),
        rmse_after=_rmse(sim_after, y_used),
        parameters=fits, epochs=len(w.ts_ns), success=bool(fit.success), message=str(fit.message),
        evaluations=evals[0])


def _rmse(sim: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    err = np.where(np.isfinite(y), sim - y, np.nan)
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(err).sum(axis=0)
        sq = np.nansum(err**2, axis=0)
    return tuple(float(np.sqrt(s / c)) if c else float("nan") for s, c in zip(sq, counts, strict=True))


def _standard_errors(J: np.ndarray, r: np.ndarray, n_obs: int) -> np.ndarray:
    """Gauss–Newton standard errors; NaN for parameters the data do not pin down."""
    k = J.shape[1]
    dof = max(int(n_obs) - k, 1)
    s2 = float(r @ r) / dof
    try:
        cov = np.linalg.inv(J.T @ J) * s2
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    d = np.diag(cov)
    return np.where(d >= 0, np.sqrt(np.abs(d)), np.nan)


__all__ = ["CalibrationReport", "ParameterFit", "Window", "calibrate", "simulate", "window"]
