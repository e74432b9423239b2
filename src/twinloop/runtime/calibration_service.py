"""Calibration: fit a twin's model parameters to a stretch of its history and keep them.

One service for the live loop and ``twinloop calibrate``. A twin is calibrated on its first
stretch of operation (``analytics.estimator.calibration``: ``window`` seconds of the ``input``
above ``above``, default the preset's), and again — at most ``retries`` times — when its filter
health says it is inconsistent; still inconsistent after that, it is *flagged* (`status`) and RUL
stops trusting its wear. A fit that explains the readings better is written back to the twin's
``model_parameters`` attribute as a new revision (the twin's history shows when), handed to the
live filter, and kept as a versioned ``calibration`` artifact with its report.
"""

from __future__ import annotations

import logging
import queue
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twinloop.core.commands import UpdateTwin
from twinloop.core.errors import ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.estimate.calibration import CalibrationReport, calibrate, window
from twinloop.estimate.declaration import derive_inputs
from twinloop.physics.model import index, names
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Store

if TYPE_CHECKING:
    from twinloop.runtime.artifacts import ArtifactService
    from twinloop.runtime.estimation_service import EstimationService, TypeEstimator

CALIBRATION_ACTOR = "system:calibration"
NS = 1_000_000_000
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationOutcome:
    """What one calibration did: the fit, and whether (and as which revision) it was kept."""

    twin_id: str
    report: CalibrationReport
    start_ns: int
    end_ns: int
    applied: bool
    revision: int | None
    why: str


@dataclass
class _Progress:
    run_start_ns: int | None = None
    calibrations: int = 0
    last_ns: int | None = None
    failed: bool = False
    queued: bool = False  # a fit is waiting for (or running on) the calibration worker


class CalibrationService:
    """Fits, stores and applies model parameters of estimated twins (see the module docstring)."""

    def __init__(self, store: Store, twins: TwinService, estimation: EstimationService,
                 artifacts: ArtifactService | None = None,
                 lock: AbstractContextManager[Any] | None = None) -> None:
        self._store = store
        self._twins = twins
        self._estimation = estimation
        self._artifacts = artifacts
        self._progress: dict[str, _Progress] = {}
        # The live filters' lock: held only to read the starting point and to apply a fit, never
        # while fitting (seconds to minutes on a busy machine), so estimation keeps up meanwhile.
        self._lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self._jobs: queue.Queue[tuple[str, int, int] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    # --- settings from the declaration --------------------------------------------------------
    @staticmethod
    def _settings(te: TypeEstimator) -> dict[str, Any]:
        given = dict(te.declaration.calibration)
        preset = te.declaration.preset
        return {
            "enabled": bool(given.get("enabled", bool(preset.calibrate))),
            "parameters": tuple(given.get("parameters", preset.calibrate)),
            "window_s": float(given.get("window", 3600.0)),
            "every_s": float(given.get("every", 30.0)),
            "input": str(given.get("input", preset.operating[0] if preset.operating else "")),
            "above": float(given.get("above", preset.operating[1] if preset.operating else 0.0)),
            "retries": int(given.get("retries", 2)),
            "prior": {**preset.calibrate_prior, **dict(given.get("prior", {}))},
        }

    # --- one fit --------------------------------------------------------------------------------
    def calibrate(self, twin_id: str, start_ns: int | None = None, end_ns: int | None = None,
                  parameters: list[str] | None = None, settle_s: float = 0.0, write: bool = True,
                  every_s: float | None = None) -> CalibrationOutcome:
        """Fit a twin's parameters to its history in ``[start_ns, end_ns)`` (default: the last
        window); with ``write``, keep an improving fit (twin revision, live filter, artifact)."""
        te = self._estimation.type_of(twin_id)
        s = self._settings(te)
        spec, est = te.spec, te.filter
        with self._lock:
            if twin_id not in est:
                raise ValidationError(f"{twin_id}: no estimate yet, so nothing to calibrate from",
                                      hint="calibration starts from the live filter's state; "
                                           "wait for readings")
            row = int(est.rows([twin_id])[0])
            end = end_ns if end_ns is not None else int(est.ts_ns[row]) + 1
            p0 = est.p[row].copy()
        start = start_ns if start_ns is not None else end - int(s["window_s"] * NS)
        params = list(parameters or s["parameters"])
        history = self.history(te, twin_id, start, end)
        w = window(history, twin_id, spec, every_s=every_s if every_s is not None else s["every_s"])
        with self._lock:
            row = int(est.rows([twin_id])[0])
            x0, states = self._start(te, row, p0, w.u[:1]) if len(w.ts_ns) else (None, ())
        if te.declaration.preset.calibrate_channels is not None:
            states = ()  # the channels a latent input drives are left out of the fit
        report = calibrate(spec, w, params, p0=p0, x0=x0, settle_s=settle_s, states=states, prior=s["prior"],
                           channels=te.declaration.preset.calibrate_channels)
        applied, revision, why = False, None, "not written (dry run)"
        if write:
            applied, revision, why = self._keep(te, twin_id, report, params, start, end)
        return CalibrationOutcome(twin_id, report, start, end, applied, revision, why)

    def history(self, te: TypeEstimator, twin_id: str, start_ns: int, end_ns: int) -> ReadingBatch:
        """The twin's readings in the window, with its derived inputs (a related twin's channels)."""
        parts = [self._store.history(twin_id, None, start_ns, end_ns)]
        rules = te.declaration.rules
        for name, rule in rules.items():
            for src, readers in te.targets.get(name, {}).items():
                if twin_id in readers and src != twin_id:
                    parts.append(self._store.history(src, [rule.channel], start_ns, end_ns))
        batch = ReadingBatch.concat(parts)
        if not rules:
            return batch
        only = {n: {src: [twin_id] for src, rd in te.targets.get(n, {}).items() if twin_id in rd}
                for n in rules}
        return ReadingBatch.concat([batch, derive_inputs(batch, rules, only)])

    @staticmethod
    def _start(te: TypeEstimator, row: int, p0: np.ndarray,
               u0: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """The state the fit starts from: the model settled at the first inputs, with slow states
        the filter knows better (wear, latent inputs) taken from its current estimate; latent
        inputs are fitted along."""
        model = te.spec.model
        x0 = model.initial_state(p0[None, :], u0)[0]
        mean = te.filter.estimate().mean[row]
        latent = tuple(te.declaration.latent)
        keep = (*te.declaration.preset.calibrate_states, *latent)
        aug = te.spec.augmented_names
        for name in names(model.states):
            if name in keep and name in aug and np.isfinite(mean[aug.index(name)]):
                x0[index(model.states, name)] = mean[aug.index(name)]
        return x0, latent

    def _keep(self, te: TypeEstimator, twin_id: str, report: CalibrationReport, params: list[str],
              start: int, end: int) -> tuple[bool, int | None, str]:
        if not report.improved:
            return False, None, "the fit did not explain the readings better; parameters kept"
        fitted = {q.name: float(q.after) for q in report.parameters if q.name in params}
        from twinloop.runtime.estimation_service import MODEL_PARAMETERS

        twin = self._twins.get(twin_id)
        merged = {**dict(twin.attributes.get(MODEL_PARAMETERS) or {}), **fitted}
        updated = self._twins.update(UpdateTwin(twin_id=twin_id, attributes={MODEL_PARAMETERS: merged}),
                                     actor=CALIBRATION_ACTOR)
        with self._lock:  # only the filter's change holds it: the store writes around may wait
            te.filter.set_parameters([twin_id], fitted)
            te.filter.health.reset(te.filter.rows([twin_id]))
            te.verdicts.pop(twin_id, None)  # judged afresh with the new parameters
        if self._artifacts is not None:
            self._artifacts.save("calibration", twin_id, {"parameters": fitted, "report": asdict(report)},
                                 meta={"twins": [twin_id], "start_ns": start, "end_ns": end,
                                       "model": te.spec.model.name, "revision": updated.revision,
                                       "channels": list(report.channels),
                                       "rmse_before": _finite(report.rmse_before),
                                       "rmse_after": _finite(report.rmse_after)})
        return True, updated.revision, f"kept as revision {updated.revision}"

    # --- the live loop ------------------------------------------------------------------------
    def after_update(self, te: TypeEstimator, *, inline: bool = False) -> None:
        """Calibrate twins whose first stretch of operation is complete, and recalibrate
        inconsistent ones (bounded); called after each update. The fits run on the calibration
        worker, or right here with ``inline`` (a caller updating synchronously: tests, the CLI)."""
        s = self._settings(te)
        if not s["enabled"]:
            return
        est = te.filter
        try:
            col = names(te.spec.model.inputs).index(s["input"])
        except ValueError:
            return
        window_ns = int(s["window_s"] * NS)
        running = est.ready & (est.u[:, col] > s["above"])
        for row in np.flatnonzero(est.ready).tolist():
            twin_id = est.twin_ids[row]
            prog = self._progress.setdefault(twin_id, self._restore(twin_id))
            ts = int(est.ts_ns[row])
            if not running[row]:
                prog.run_start_ns = None
                continue
            if prog.run_start_ns is None:
                prog.run_start_ns = ts
            if ts - prog.run_start_ns < window_ns or prog.failed or prog.queued:
                continue
            due = prog.calibrations == 0
            if not due and prog.calibrations <= s["retries"] and prog.last_ns is not None \
                    and ts - prog.last_ns >= window_ns:
                due = est.health.summary(row)["consistent"] is False
            if due and inline:
                self._run(twin_id, prog, max(prog.run_start_ns, ts - window_ns), ts + 1)
            elif due:
                self._submit(twin_id, prog, max(prog.run_start_ns, ts - window_ns), ts + 1)

    def _submit(self, twin_id: str, prog: _Progress, start: int, end: int) -> None:
        """Hand a fit to the calibration worker (started on first use): the estimation worker,
        which decides what is due, goes straight back to filtering."""
        prog.queued = True
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="calibration", daemon=True)
            self._worker.start()
        self._jobs.put((twin_id, start, end))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            twin_id, start, end = job
            prog = self._progress[twin_id]
            try:
                self._run(twin_id, prog, start, end)
            finally:
                prog.queued = False
                self._jobs.task_done()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every fit handed to the worker is done (tests, shutdown); False on timeout."""
        done = threading.Event()
        if self._worker is None:
            return True
        def join() -> None:
            self._jobs.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Let the fit under way finish (it writes to the store) and end the worker; fits still
        queued are dropped: the next run calibrates those twins again from their stored history."""
        worker, self._worker = self._worker, None
        if worker is None:
            return
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._jobs.put(None)
        worker.join(timeout)
        self._jobs = queue.Queue()

    def _run(self, twin_id: str, prog: _Progress, start: int, end: int) -> None:
        try:
            outcome = self.calibrate(twin_id, start, end)
        except Exception:  # noqa: BLE001 - logged with its trace; the twin is flagged, estimation goes on
            _log.exception("calibration of %s failed; its filter goes on with the parameters it has", twin_id)
            prog.failed = True
            return
        prog.calibrations += 1
        prog.last_ns = end
        _log.info("calibrated %s on %.0f s of history: %s", twin_id, (end - start) / NS, outcome.why)

    def _restore(self, twin_id: str) -> _Progress:
        """A twin calibrated before a restart counts as calibrated (its attribute holds the fit)."""
        from twinloop.runtime.estimation_service import MODEL_PARAMETERS

        try:
            done = bool(self._twins.get(twin_id).attributes.get(MODEL_PARAMETERS))
        except Exception:  # noqa: BLE001 - an unknown twin simply has no history
            done = False
        return _Progress(calibrations=1 if done else 0)

    def status(self, twin_id: str) -> dict[str, Any]:
        """``calibrations`` done since start (1 for a twin calibrated before), ``flagged``."""
        prog = self._progress.get(twin_id) or self._restore(twin_id)
        te = self._estimation.type_of(twin_id)
        retries = self._settings(te)["retries"]
        return {"calibrations": prog.calibrations, "calibration_failed": prog.failed,
                "flagged": prog.failed or prog.calibrations > retries}


def _finite(values: tuple[float, ...]) -> list[float | None]:
    """JSON-ready: a channel left out of the fit (NaN) becomes null."""
    return [float(v) if np.isfinite(v) else None for v in values]


__all__ = ["CALIBRATION_ACTOR", "CalibrationOutcome", "CalibrationService"]
