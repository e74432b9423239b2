"""Reads what a live run left (the runtime's store, its lag log, the simulator's truth) into a `Score`.

`benchmarks/live_twin.py` calls `score_run` after the runtime and the simulator have stopped.
The figures themselves are computed by the pure functions of `twinloop.bench.live_twin`; this
module only turns stored events and readings into the plain data they take:

* alerts: `AlertRaised` events, placed in plant time at the wall clock they were raised (and, for
  ``detected_by_data_time``, at the plant time their data began, ``started_ns``);
* RUL: `RulUpdated` events (``mean`` hours, ``p_fail["72h"]`` or, where the service does not serve
  it, P(RUL ≤ 72 h) from the stored quantiles, ``as_of_ns``);
* filter health: ``est.nis`` per twin-step, its degrees of freedom being the number of
  ``innov.<channel>`` readings of that step (or ``est.nis_dof`` where the estimator stores it);
* state error: ``est.<…>.<key>`` against ``truth[key][twin]`` for every per-twin key of the truth
  snapshots (``wear`` for pumps, ``fouling`` for chillers);
* lag: the largest of the gauges the runtime had (`benchmarks/live_twin_runtime.py`), per second.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from twinloop.bench.live_twin import (
    Forecast,
    Score,
    Truth,
    detections,
    fault_free,
    interp_sse,
    nis_band,
    nis_with_dof,
    p_fail_labels,
    rul_rel_errors,
)
from twinloop.store.factory import open_store
from twinloop.store.protocol import Store

#: Event pages read at most (a run of hours stores thousands, not millions, of these).
MAX_EVENT_PAGES = 2000


def _events(store: Store, kind: str) -> list[Any]:
    out: list[Any] = []
    after = 0
    for _ in range(MAX_EVENT_PAGES):
        page = store.events(after_seq=after, kinds=[kind], limit=1000)
        if not page:
            break
        out += [r.event for r in page]
        after = page[-1].seq
    return out


def _field(event: Any, name: str, default: Any = None) -> Any:
    if hasattr(event, name):
        return getattr(event, name)
    data = event.data() if hasattr(event, "data") else {}
    return data.get(name, default)


def _p72(event: Any) -> float | None:
    p_fail = _field(event, "p_fail", {}) or {}
    for key in ("72h", "3d"):
        if key in p_fail and p_fail[key] is not None:
            return float(p_fail[key])
    within = getattr(event, "p_fail_within", None)
    if callable(within) and _field(event, "quantiles"):
        try:
            return float(within(72.0))
        except Exception:  # noqa: BLE001 - a forecast we cannot read is left out, not guessed
            return None
    return None


def truth_keys(truth: Truth) -> list[str]:
    """Per-twin numeric keys of the truth snapshots (``wear``, ``fouling``, ``cavitation`` …)."""
    if not truth.snapshots:
        return []
    snap = truth.snapshots[0][1]
    return [k for k, v in snap.items() if isinstance(v, Mapping) and v
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v.values())]


def lag_samples(path: Path) -> list[float]:
    """Per logged second, the largest lag any analytics gauge showed (seconds; gauges absent: none)."""
    out: list[float] = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        lags = [v for v in (rec.get("lag_s") or {}).values() if isinstance(v, int | float)]
        if lags:
            out.append(float(max(lags)))
    return out


def gauges_seen(path: Path) -> list[str]:
    """Names of the lag gauges that reported a value at least once."""
    seen: set[str] = set()
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            seen |= {k for k, v in (rec.get("lag_s") or {}).items() if v is not None}
    return sorted(seen)


def ingest_totals(path: Path) -> dict[str, Any]:
    """The pipeline's last logged totals (messages, readings stored, readings rejected)."""
    last: dict[str, Any] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                last = json.loads(line).get("ingest") or last
    return last


def score_run(store_url: str, truth: Truth, lag_log: Path, silent: frozenset[str] = frozenset(),
              judged_from_s: float = 0.0) -> tuple[Score, dict[str, Any]]:
    """The score of one plant's run, and details for the report (alerts per twin, RUL counts …).

    ``silent``: ids of faults the schedule left without any observable effect (kept out of the
    detection share, listed in the details). ``judged_from_s``: plant time from which twins are
    judged (the end of learning); fault-free twin-hours count from there.
    """
    import twinloop.analytics.alerts  # noqa: F401 - registers AlertRaised for decoding
    import twinloop.runtime.rul_service  # noqa: F401 - registers RulUpdated for decoding

    store = open_store(store_url)
    try:
        type_of = {t.id: t.type_id for t in store.list_twins()}
        raised = _events(store, "AlertRaised")
        alerts, by_data = [], []
        for e in raised:
            twin = str(_field(e, "twin_id"))
            alerts.append((twin, float(truth.plant_s_at_wall(_field(e, "ts_ns")))))
            by_data.append((twin, float(truth.plant_s(_field(e, "started_ns", 0)))))
        forecasts = [Forecast(str(_field(e, "twin_id")), float(truth.plant_s_at_wall(_field(e, "ts_ns"))),
                              float(truth.plant_s(_field(e, "as_of_ns", 0))),
                              float(_field(e, "mean", np.nan)), _p72(e))
                     for e in _events(store, "RulUpdated")]
        quiet = fault_free(truth, type_of)
        score = Score(lags_s=lag_samples(lag_log))
        score.detections = [d for d in detections(truth, alerts) if d.fault.id not in silent]
        score.detections_by_data = [d for d in detections(truth, by_data) if d.fault.id not in silent]
        score.alerts = len(alerts)
        score.false_alerts = sum(1 for twin, _ in alerts if twin in set(quiet))
        judged_h = max(truth.t_end_s - max(judged_from_s, truth.t0_s), 0.0) / 3600.0
        score.quiet_twin_h = len(quiet) * judged_h
        keys = truth_keys(truth)
        for twin in truth.devices:
            if twin not in type_of:
                continue
            names = sorted(set(store.latest([twin]).channels.astype(str)))
            est_names = [n for n in names if n.startswith("est.") and not n.endswith("_std")]
            wanted = [n for n in names if n.startswith("innov.")] + est_names
            if not est_names:
                continue
            batch = store.history(twin, channels=wanted)
            if twin in quiet:
                nis, dof = nis_with_dof(batch.channels, batch.ts_ns, batch.values)
                ok = np.isfinite(nis) & (dof >= 1)
                if ok.any():
                    lo, hi = nis_band(dof[ok])
                    score.nis_in_band += int(np.sum((nis[ok] >= lo) & (nis[ok] <= hi)))
                    score.nis_steps += int(ok.sum())
            for name in est_names:
                key = name.rsplit(".", 1)[-1]
                if key not in keys:
                    continue
                mask = batch.channels == name
                t_est, v_est = truth.plant_s(batch.ts_ns[mask]), batch.values[mask]
                t_true, v_true = truth.series(key, twin)
                sse, n = interp_sse(t_est, v_est, t_true, v_true)
                sse0, _ = interp_sse(t_est, np.full(len(t_est), v_true[0] if len(v_true) else np.nan),
                                     t_true, v_true)
                score.wear_sse += sse
                score.wear_sse_constant += sse0
                score.wear_n += n
        score.rul_errors = rul_rel_errors(truth, forecasts)
        p, y, censored = p_fail_labels(truth, forecasts)
        score.p72, score.y72, score.p72_censored = list(p), list(y), censored
        by_twin: dict[str, int] = {}
        for twin, _ in alerts:
            by_twin[twin] = by_twin.get(twin, 0) + 1
        details = {
            "alerts_by_twin": by_twin,
            "rul_updates": len(forecasts),
            "rul_updates_with_p72": sum(f.p_fail is not None for f in forecasts),
            "fault_free_twins": quiet,
            "failures": dict(truth.failures),
            "silent_faults": sorted(silent),
            "gauges": gauges_seen(lag_log),
            "ingest": ingest_totals(lag_log),
        }
        return score, details
    finally:
        store.close()


__all__ = ["gauges_seen", "ingest_totals", "lag_samples", "score_run", "truth_keys"]
