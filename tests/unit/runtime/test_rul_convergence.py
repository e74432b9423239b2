"""The live RUL converges on simulated runs to failure, scored against the simulator's ground truth.

Four pump units from the simulator's batch mode (wear ten times faster than the model's nominal
bearing, as a developing fault would make it; duty regimes that change every few days) are
replayed into the example pump station's store as pumps A1…B1, up to 50 %, 80 %, 90 % and 97 % of
each unit's life; at each cut the runtime's RUL service recomputes the fleet from what the store
holds (sensor basis: these runs carry no estimator output), and its median RUL is compared
with the true remaining life.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twinloop.core.readings import ReadingBatch
from twinloop.sim.batch import run_fleet
from twinloop.sim.pump_station_layout import PUMP_CHANNELS

TWINS = ("pump-A1", "pump-A2", "pump-A3", "pump-B1")
T0 = 1_767_225_600 * 10**9
H = 3600 * 10**9
SHARES = (0.5, 0.8, 0.9, 0.97)


@pytest.fixture(scope="module")
def runs() -> pa.Table:
    return run_fleet(n_units=len(TWINS), seed=5, dt_s=600.0, sample_every_s=1200.0, wear_scale=10.0).readings


def _replay(rt, runs: pa.Table, upto_h: dict[int, float], done_h: dict[int, float]) -> None:
    """Append each unit's readings from ``done_h`` to ``upto_h`` (its hours of life) to its twin."""
    unit, t_h = runs.column("unit").to_numpy(), runs.column("t_h").to_numpy()
    channels = [c for c, _, _ in PUMP_CHANNELS]
    for u, twin in enumerate(TWINS):
        rows = np.flatnonzero((unit == u) & (t_h > done_h[u]) & (t_h <= upto_h[u]))
        ts = T0 + (t_h[rows] * H).astype(np.int64)
        values = np.column_stack([runs.column(c).to_numpy()[rows] for c in channels])
        rt.store.append(ReadingBatch.from_arrays(np.full(values.size, twin, dtype=object),
                                                 np.tile(np.array(channels, dtype=object), len(rows)),
                                                 np.repeat(ts, len(channels)), values.ravel()))


def test_rul_converges_on_simulated_runs_to_failure(rt, runs) -> None:
    service = rt.rul
    assert service is not None
    unit, t_h, rul_h = (runs.column(c).to_numpy() for c in ("unit", "t_h", "rul_h"))
    life = {u: float(t_h[unit == u].max()) for u in range(len(TWINS))}
    done = dict.fromkeys(life, -1.0)
    errors, p72, truth_at = {}, {}, {}
    for share in SHARES:
        cut = {u: share * life[u] for u in life}
        _replay(rt, runs, cut, done)
        done = cut
        updated, skipped = service.update_fleet("Pump")
        assert not {t: s for t, s in skipped.items() if t in TWINS}, skipped
        by_twin = {e.twin_id: e for e in updated}
        truth = [rul_h[np.flatnonzero((unit == u) & (t_h <= cut[u]))[-1]] for u in range(len(TWINS))]
        pred = np.array([by_twin[t].quantiles["0.5"] for t in TWINS])
        errors[share] = np.abs(pred - truth) / np.array(truth)
        p72[share] = np.array([by_twin[t].p_fail["72h"] for t in TWINS])
        truth_at[share] = np.array(truth)
    median = {s: float(np.median(e)) for s, e in errors.items()}
    assert median[0.9] < median[0.5], f"the error should shrink as the bearings wear: {median}"
    assert median[0.9] <= 0.35, f"relative error at 90 % of life: {median}"
    life_share = errors[0.9] * truth_at[0.9] / np.array(list(life.values()))
    assert np.all(life_share <= 0.1), f"errors at 90 % of life as a share of life: {life_share}"
    # fast-wearing bearings, days from failure: P(fail within 72 h) must say so
    close = truth_at[0.97] < 72.0
    assert close.any() and np.all(p72[0.97][close] > 0.5), (truth_at[0.97], p72[0.97])
    assert np.all(p72[0.5] < 0.5), f"half-way through life nothing is imminent: {p72[0.5]}"
