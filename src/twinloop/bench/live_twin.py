"""Scores a live twin against its simulator's ground truth: detection, false alerts, filter health, RUL.

`benchmarks/live_twin.py` runs the runtime against a simulator over MQTT, then hands this module
plain data: the truth file the simulator wrote (`twinloop.sim.truth`) and what the runtime stored
(alerts, RUL forecasts, NIS, estimated wear). Everything here is a pure function of that data,
so each figure can be checked on a hand-made case.

Times are plant seconds. Events the runtime raises carry the wall clock; `Truth.plant_s_at_wall`
places them in plant time through the wall clock the truth file recorded beside each line, so an
alert raised late because the runtime lagged counts as late, not as when its data was stamped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Fault kinds that degrade a unit towards failure (the others end, or are only seen in data).
DEGRADATION_KINDS = ("bearing_wear", "fouling_acceleration")
#: The horizon P(fail) is scored at, in hours.
P_FAIL_HORIZON_H = 72.0
#: The χ² band a consistent filter's NIS lies in.
NIS_BAND = (0.025, 0.975)


@dataclass(frozen=True)
class FaultSpan:
    """One fault as it happened: when, where, and which twins an alert may rightly name."""

    id: str
    kind: str
    device: str
    start_s: float
    end_s: float | None
    twins: frozenset[str]


@dataclass(frozen=True)
class Truth:
    """A simulator run's hidden truth, read from its truth file (`truth_from_records`)."""

    plant: str
    t0_s: float
    t0_ns: int
    t_end_s: float
    devices: tuple[str, ...]
    faults: tuple[FaultSpan, ...]
    failures: Mapping[str, float]
    snapshots: tuple[tuple[float, Mapping[str, Any]], ...]
    wall_ns: np.ndarray
    wall_t_s: np.ndarray

    @property
    def hours(self) -> float:
        return (self.t_end_s - self.t0_s) / 3600.0

    def plant_s(self, ts_ns: int | np.ndarray) -> Any:
        """Plant seconds of a wire timestamp (what the simulator stamped on its readings)."""
        return self.t0_s + (np.asarray(ts_ns, dtype=np.float64) - self.t0_ns) / 1e9

    def plant_s_at_wall(self, wall_ns: int | np.ndarray) -> Any:
        """Plant seconds the simulator had reached at a wall-clock instant.

        After the run's last line the plant clock is carried on at the run's mean pace, so an
        event raised once the simulator had stopped lies after the run's end, never on it.
        """
        w = np.asarray(wall_ns, dtype=np.float64)
        t = np.interp(w, self.wall_ns, self.wall_t_s)
        span_ns = self.wall_ns[-1] - self.wall_ns[0]
        if span_ns > 0:
            pace = (self.wall_t_s[-1] - self.wall_t_s[0]) / span_ns
            t = np.where(w > self.wall_ns[-1], self.wall_t_s[-1] + (w - self.wall_ns[-1]) * pace, t)
        return t

    def series(self, key: str, device: str) -> tuple[np.ndarray, np.ndarray]:
        """Snapshot times and values of ``truth[key][device]`` (e.g. ``wear``, ``pump-A1``)."""
        pts = [(t, float(s[key][device])) for t, s in self.snapshots
               if isinstance(s.get(key), Mapping) and s[key].get(device) is not None]
        if not pts:
            return np.empty(0), np.empty(0)
        t, v = zip(*pts, strict=True)
        return np.asarray(t), np.asarray(v)

    def degraded(self, device: str) -> bool:
        """Whether a degradation fault acted on ``device`` during the run."""
        return any(f.kind in DEGRADATION_KINDS and device in f.twins for f in self.faults)


def affected_twins(kind: str, device: str, devices: Iterable[str]) -> frozenset[str]:
    """The twins an alert about a fault on ``device`` may rightly name.

    The device itself; for cavitation of a line (``line-A`` or ``tank-A``) also the line, its
    tank and its pumps; for a stuck air-handler damper (``ahu-2``) also the zones it serves.
    """
    devices = tuple(devices)
    out = {device}
    if kind == "cavitation":
        line = device.split("-", 1)[1]
        out |= {d for d in devices if d in (f"line-{line}", f"tank-{line}") or d.startswith(f"pump-{line}")}
    if kind == "damper_stuck" and device.startswith("ahu-"):
        floor = device.split("-", 1)[1]
        out |= {d for d in devices if d.startswith(f"zone-{floor}-")}
    return frozenset(out)


def truth_from_records(records: Sequence[Mapping[str, Any]]) -> Truth:
    """A `Truth` from the records of a truth file (see `twinloop.sim.truth`)."""
    if not records or records[0].get("kind") != "start":
        raise ValueError("a truth file starts with a 'start' record")
    start = records[0]
    devices = tuple(start.get("devices", ()))
    spans: dict[str, dict[str, Any]] = {}
    failures: dict[str, float] = {}
    snapshots: list[tuple[float, Mapping[str, Any]]] = []
    for r in records:
        kind = r.get("kind")
        if kind == "fault_start":
            spans.setdefault(r["fault"]["id"], {**r["fault"], "start_s": r["t_s"], "end_s": None})
        elif kind == "fault_end" and r["fault"]["id"] in spans:
            spans[r["fault"]["id"]]["end_s"] = r["t_s"]
        elif kind == "failure" and r.get("device"):
            failures.setdefault(r["device"], float(r["t_s"]))
        elif kind == "truth":
            snapshots.append((float(r["t_s"]), r["truth"]))
    faults = tuple(FaultSpan(s["id"], s["kind"], s["device"], float(s["start_s"]),
                             None if s["end_s"] is None else float(s["end_s"]),
                             affected_twins(s["kind"], s["device"], devices)) for s in spans.values())
    clocked = [(r["wall_ns"], r["t_s"]) for r in records if "wall_ns" in r and "t_s" in r]
    wall, t = (np.asarray(c, dtype=np.float64) for c in zip(*clocked, strict=True))
    order = np.argsort(wall, kind="stable")
    return Truth(plant=str(start.get("plant", "")), t0_s=float(start["t_s"]), t0_ns=int(start["ts_ns"]),
                 t_end_s=float(max(r.get("t_s", 0.0) for r in records)), devices=devices, faults=faults,
                 failures=failures, snapshots=tuple(snapshots), wall_ns=wall[order],
                 wall_t_s=np.maximum.accumulate(t[order]))


def fault_free(truth: Truth, type_of: Mapping[str, str]) -> list[str]:
    """Twins of the types under test (those a fault was put on) that no fault touched."""
    touched = set().union(*(f.twins for f in truth.faults)) if truth.faults else set()
    types = {type_of.get(f.device) for f in truth.faults} - {None}
    return sorted(d for d in truth.devices if type_of.get(d) in types and d not in touched)


# --- detection --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """Whether a fault was alerted on a right twin between its start and its deadline."""

    fault: FaultSpan
    deadline_s: float
    first_alert_s: float | None

    @property
    def detected(self) -> bool:
        return self.first_alert_s is not None

    @property
    def delay_h(self) -> float | None:
        return None if self.first_alert_s is None else (self.first_alert_s - self.fault.start_s) / 3600.0


def deadline_s(truth: Truth, fault: FaultSpan) -> float:
    """Until when an alert counts: the first failure of a twin it touched, its end, or the run's end."""
    ends = [truth.t_end_s]
    if fault.end_s is not None:
        ends.append(fault.end_s)
    ends += [t for d, t in truth.failures.items() if d in fault.twins and t >= fault.start_s]
    return min(ends)


def detections(truth: Truth, alerts: Iterable[tuple[str, float]]) -> list[Detection]:
    """Per fault, the first alert (``(twin, raised at plant s)``) on a right twin in time."""
    alerts = sorted(alerts, key=lambda a: a[1])
    out = []
    for f in truth.faults:
        end = deadline_s(truth, f)
        first = next((t for twin, t in alerts if twin in f.twins and f.start_s <= t <= end), None)
        out.append(Detection(f, end, first))
    return out


def false_alerts_per_100_twin_h(alerts: Iterable[tuple[str, float]], quiet: Sequence[str],
                                hours: float) -> float | None:
    """Alerts raised on fault-free twins, per 100 twin-hours of them (None: no such twin-hours)."""
    quiet_set = set(quiet)
    if not quiet_set or hours <= 0:
        return None
    n = sum(1 for twin, _ in alerts if twin in quiet_set)
    return 100.0 * n / (len(quiet_set) * hours)


# --- filter health and state error -------------------------------------------------------------------


def nis_band(dof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 95 % χ² band of NIS for ``dof`` degrees of freedom (NaN where dof < 1)."""
    from scipy.stats import chi2

    d = np.asarray(dof, dtype=np.float64)
    ok = d >= 1
    lo, hi = np.full(d.shape, np.nan), np.full(d.shape, np.nan)
    lo[ok], hi[ok] = chi2.ppf(NIS_BAND[0], d[ok]), chi2.ppf(NIS_BAND[1], d[ok])
    return lo, hi


def nis_consistent_share(nis: np.ndarray, dof: np.ndarray) -> float | None:
    """Share of twin-steps whose NIS lies in the 95 % χ² band for its degrees of freedom."""
    nis, dof = np.asarray(nis, dtype=np.float64), np.asarray(dof, dtype=np.float64)
    ok = np.isfinite(nis) & (dof >= 1)
    if not ok.any():
        return None
    lo, hi = nis_band(dof[ok])
    return float(np.mean((nis[ok] >= lo) & (nis[ok] <= hi)))


def nis_with_dof(channels: np.ndarray, ts_ns: np.ndarray, values: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """NIS and its degrees of freedom per step of one twin's estimate readings.

    The degrees of freedom are ``est.nis_dof`` where the estimator stores it, else the number of
    finite ``innov.<channel>`` readings of the same step (a channel not measured has none).
    """
    ch = np.asarray(channels).astype(str)
    ts, val = np.asarray(ts_ns), np.asarray(values, dtype=np.float64)
    is_nis = ch == "est.nis"
    nis_ts, nis = ts[is_nis], val[is_nis]
    stored = ch == "est.nis_dof"
    if stored.any():
        step_ts, step_dof = ts[stored], val[stored]
    else:
        innov = np.char.startswith(ch, "innov.") & np.isfinite(val)
        step_ts, counts = np.unique(ts[innov], return_counts=True)
        step_dof = counts.astype(np.float64)
    order = np.argsort(step_ts, kind="stable")
    step_ts, step_dof = step_ts[order], step_dof[order]
    if not len(step_ts):
        return nis, np.zeros(len(nis))
    idx = np.clip(np.searchsorted(step_ts, nis_ts), 0, len(step_ts) - 1)
    return nis, np.where(step_ts[idx] == nis_ts, step_dof[idx], 0.0)


def interp_sse(t: np.ndarray, est: np.ndarray, truth_t: np.ndarray,
               truth_v: np.ndarray) -> tuple[float, int]:
    """Sum of squared errors and count of estimates against the truth interpolated at their times
    (only inside the truth's time span); sums, so twins can be pooled."""
    t, est = np.asarray(t, dtype=np.float64), np.asarray(est, dtype=np.float64)
    if len(truth_t) == 0:
        return 0.0, 0
    inside = np.isfinite(est) & (t >= truth_t[0]) & (t <= truth_t[-1])
    err = est[inside] - np.interp(t[inside], truth_t, truth_v)
    return float(np.sum(err**2)), int(inside.sum())


# --- RUL and P(fail) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """One RUL forecast as stored: raised at ``raised_s``, computed from data up to ``as_of_s``."""

    twin: str
    raised_s: float
    as_of_s: float
    mean_h: float
    p_fail: float | None


def life_onset_s(truth: Truth, device: str) -> float:
    """Where a failing unit's life is counted from: the onset of its degradation fault, else the run's
    start (before the fault, the unit's future did not depend on anything a twin could see)."""
    starts = [f.start_s for f in truth.faults if f.kind in DEGRADATION_KINDS and device in f.twins]
    return min(starts) if starts else truth.t0_s


def rul_rel_errors(truth: Truth, forecasts: Sequence[Forecast],
                   fractions: Sequence[float] = (0.5, 0.8, 0.9)) -> dict[float, list[float]]:
    """Per fraction of life, per failing unit with a forecast by then: |forecast failure time − true
    failure time| / true RUL, from the newest forecast raised by that point of the unit's life."""
    out: dict[float, list[float]] = {frac: [] for frac in fractions}
    for device, t_fail in truth.failures.items():
        onset = life_onset_s(truth, device)
        if t_fail <= onset:
            continue
        mine = [f for f in forecasts if f.twin == device]
        for frac in fractions:
            t = onset + frac * (t_fail - onset)
            seen = [f for f in mine if f.raised_s <= t]
            if seen:
                f = max(seen, key=lambda x: (x.raised_s, x.as_of_s))
                out[frac].append(abs(f.as_of_s + f.mean_h * 3600.0 - t_fail) / (t_fail - t))
    return out


def p_fail_labels(truth: Truth, forecasts: Sequence[Forecast], horizon_h: float = P_FAIL_HORIZON_H
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """Forecast P(fail within ``horizon_h``) and what happened (1: failed in the window), plus the
    number left out because the run ended before the window did.

    A unit that did not fail counts as 0 when the window was observed to its end, or when no
    degradation fault acted on it (its normal wear is far from failure in both simulators); a
    degrading unit whose window outlasts the run is censored. Forecasts after a failure are left out.
    """
    p, y, censored = [], [], 0
    horizon_s = horizon_h * 3600.0
    for f in forecasts:
        if f.p_fail is None or not np.isfinite(f.p_fail):
            continue
        t_fail = truth.failures.get(f.twin)
        if t_fail is not None:
            if f.as_of_s >= t_fail:
                continue
            label = 1.0 if t_fail <= f.as_of_s + horizon_s else 0.0
        elif f.as_of_s + horizon_s <= truth.t_end_s or not truth.degraded(f.twin):
            label = 0.0
        else:
            censored += 1
            continue
        p.append(float(f.p_fail))
        y.append(label)
    return np.asarray(p), np.asarray(y), censored


def brier(p: np.ndarray, y: np.ndarray) -> float | None:
    """Mean squared error of probabilities against outcomes (None: nothing to score)."""
    return float(np.mean((np.asarray(p) - np.asarray(y)) ** 2)) if len(y) else None


def brier_constant(y: np.ndarray) -> float | None:
    """The Brier score of always forecasting the base rate of ``y`` (the same run's outcomes)."""
    return None if not len(y) else brier(np.full(len(y), float(np.mean(y))), y)


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The ``q``-th percentile of the finite values (None: there are none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    return float(np.percentile(v, q)) if len(v) else None


# --- one run's score, and runs pooled ----------------------------------------------------------------


@dataclass
class Score:
    """What one run (or several, `pooled`) gave, kept as sums and lists so runs can be pooled."""

    detections: list[Detection] = field(default_factory=list)
    #: The same faults judged by when the alerts' data began rather than when they were raised:
    #: what a runtime that kept up would have caught (the gap between the two is lag).
    detections_by_data: list[Detection] = field(default_factory=list)
    alerts: int = 0
    false_alerts: int = 0
    quiet_twin_h: float = 0.0
    nis_in_band: int = 0
    nis_steps: int = 0
    wear_sse: float = 0.0
    wear_sse_constant: float = 0.0
    wear_n: int = 0
    rul_errors: dict[float, list[float]] = field(default_factory=dict)
    p72: list[float] = field(default_factory=list)
    y72: list[float] = field(default_factory=list)
    #: Outcomes per pooled run: the constant forecast is each run's own base rate, so pooling a
    #: plant where failures are common with one where they are rare does not flatter the model.
    y72_runs: list[list[float]] = field(default_factory=list)
    p72_censored: int = 0
    lags_s: list[float] = field(default_factory=list)

    @classmethod
    def pooled(cls, scores: Iterable[Score]) -> Score:
        out = cls()
        for s in scores:
            out.detections += s.detections
            out.detections_by_data += s.detections_by_data
            out.alerts += s.alerts
            out.false_alerts += s.false_alerts
            out.quiet_twin_h += s.quiet_twin_h
            out.nis_in_band += s.nis_in_band
            out.nis_steps += s.nis_steps
            out.wear_sse += s.wear_sse
            out.wear_sse_constant += s.wear_sse_constant
            out.wear_n += s.wear_n
            for frac, errs in s.rul_errors.items():
                out.rul_errors.setdefault(frac, []).extend(errs)
            out.p72 += s.p72
            out.y72 += s.y72
            out.y72_runs += s.y72_runs or ([s.y72] if s.y72 else [])
            out.p72_censored += s.p72_censored
            out.lags_s += s.lags_s
        return out

    def figures(self) -> dict[str, Any]:
        """The headline figures (None where the run gave nothing to score)."""
        det = self.detections
        delays = [d.delay_h for d in det if d.delay_h is not None]
        p, y = np.asarray(self.p72), np.asarray(self.y72)
        runs = [np.asarray(r) for r in (self.y72_runs or [self.y72]) if len(r)]
        ours = brier(p, y)
        const = (sum(len(r) * (brier_constant(r) or 0.0) for r in runs) / sum(len(r) for r in runs)
                 if runs else None)
        wear = math.sqrt(self.wear_sse / self.wear_n) if self.wear_n else None
        wear_const = math.sqrt(self.wear_sse_constant / self.wear_n) if self.wear_n else None
        rul = {f"rul_rel_error_{round(frac * 100)}": (float(np.mean(e)) if e else None)
               for frac, e in sorted(self.rul_errors.items())}
        by_kind: dict[str, list[int]] = {}
        for d in det:
            by_kind.setdefault(d.fault.kind, [0, 0])[0] += int(d.detected)
            by_kind[d.fault.kind][1] += 1
        return {
            "faults": len(det),
            "detected_before_failure": (sum(d.detected for d in det) / len(det)) if det else None,
            "detected_by_kind": {k: f"{n}/{m}" for k, (n, m) in sorted(by_kind.items())},
            "detected_by_data_time": (sum(d.detected for d in self.detections_by_data)
                                      / len(self.detections_by_data)) if self.detections_by_data else None,
            "detect_delay_p50_h": percentile(delays, 50),
            "false_alerts_per_100_twin_h": (100.0 * self.false_alerts / self.quiet_twin_h
                                            if self.quiet_twin_h > 0 else None),
            "false_alerts": self.false_alerts,
            "alerts": self.alerts,
            "quiet_twin_h": self.quiet_twin_h,
            "nis_consistent_share": self.nis_in_band / self.nis_steps if self.nis_steps else None,
            "nis_steps": self.nis_steps,
            "wear_rmse": wear,
            "wear_rmse_constant": wear_const,
            **rul,
            "p72_brier": ours,
            "p72_brier_constant": const,
            "p72_forecasts": len(y),
            "p72_censored": self.p72_censored,
            "lag_p99_s": percentile(self.lags_s, 99),
            "ratio": {
                "p72_brier_vs_constant": (ours / const) if ours is not None and const else None,
                "p72_brier_skill": (1.0 - ours / const) if ours is not None and const else None,
                "wear_rmse_vs_constant": (wear / wear_const) if wear is not None and wear_const else None,
            },
        }


__all__ = [
    "DEGRADATION_KINDS", "NIS_BAND", "P_FAIL_HORIZON_H", "Detection", "FaultSpan", "Forecast", "Score",
    "Truth", "affected_twins", "brier", "brier_constant", "deadline_s", "detections",
    "false_alerts_per_100_twin_h", "fault_free", "interp_sse", "life_onset_s", "nis_band",
    "nis_consistent_share", "nis_with_dof", "p_fail_labels", "percentile", "rul_rel_errors",
    "truth_from_records",
]
