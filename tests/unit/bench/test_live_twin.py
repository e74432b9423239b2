"""Scoring a live twin against ground truth (`twinloop.bench.live_twin`) on hand-made runs."""

import math

import numpy as np
import pytest

from twinloop.bench.live_twin import (
    Forecast,
    Score,
    affected_twins,
    brier,
    brier_constant,
    detections,
    false_alerts_per_100_twin_h,
    fault_free,
    interp_sse,
    nis_consistent_share,
    nis_with_dof,
    p_fail_labels,
    percentile,
    rul_rel_errors,
    truth_from_records,
)

DEVICES = ["line-A", "tank-A", "pump-A1", "pump-A2", "pump-A3", "pump-B1", "pump-B2", "station-1"]
TYPES = {"line-A": "PumpLine", "tank-A": "Tank", "pump-A1": "Pump", "pump-A2": "Pump", "pump-A3": "Pump",
         "pump-B1": "Pump", "pump-B2": "Pump", "station-1": "PumpStation"}
T0_NS = 1_700_000_000_000_000_000
WALL0 = 1_800_000_000_000_000_000
SPEED = 60.0


def _rec(kind: str, t_s: float, **kw):
    """A truth record at plant time ``t_s``; the simulator ran at 60×, starting at WALL0."""
    return {"kind": kind, "t_s": t_s, "ts_ns": T0_NS + int(t_s * 1e9),
            "wall_ns": WALL0 + int(t_s / SPEED * 1e9), **kw}


def _fault(fid, kind, device, channel=None):
    return {"id": fid, "kind": kind, "device": device, "channel": channel, "params": {}}


def _run(hours: float = 10.0):
    """Bearing wear on pump-A1 from 2 h (fails at 6 h); drift on pump-A2 from 3 h to 4 h;
    comm loss on pump-B1 from 5 h, never ended; wear snapshots every hour."""
    end = hours * 3600
    recs = [_rec("start", 0.0, plant="pump-station", devices=DEVICES, every_s=3600.0)]
    for h in range(int(hours) + 1):
        wear = {"pump-A1": min(0.1 + max(h - 2, 0) * 0.225, 1.0), "pump-A2": 0.2, "pump-B2": 0.3}
        recs.append(_rec("truth", h * 3600.0, truth={"wear": wear, "running": {"pump-A1": h < 6}}))
    recs += [
        _rec("fault_start", 7200.0, fault=_fault("F1", "bearing_wear", "pump-A1")),
        _rec("fault_start", 10800.0, fault=_fault("F2", "drift", "pump-A2", "bearing.temperature")),
        _rec("fault_end", 14400.0, fault=_fault("F2", "drift", "pump-A2", "bearing.temperature")),
        _rec("fault_start", 18000.0, fault=_fault("F3", "comm_loss", "pump-B1")),
        _rec("failure", 21600.0, device="pump-A1", what="bearing_failure"),
        _rec("end", end),
    ]
    recs.sort(key=lambda r: (r["t_s"], r["kind"] != "start"))
    return truth_from_records(recs)


def test_truth_reads_fault_spans_failures_and_both_clocks():
    truth = _run()
    spans = {f.id: f for f in truth.faults}
    assert (spans["F1"].start_s, spans["F1"].end_s) == (7200.0, None)
    assert (spans["F2"].start_s, spans["F2"].end_s) == (10800.0, 14400.0)
    assert truth.failures == {"pump-A1": 21600.0} and truth.hours == 10.0
    assert truth.plant_s(T0_NS + 90 * 10**9) == pytest.approx(90.0)
    # an event raised 1 wall minute after the start saw the plant at 1 plant-hour
    assert truth.plant_s_at_wall(WALL0 + 60 * 10**9) == pytest.approx(3600.0)
    # raised 1 wall minute after the simulator's last line: an hour after the end, not at it
    assert truth.plant_s_at_wall(WALL0 + 11 * 60 * 10**9) == pytest.approx(11 * 3600.0)
    t, v = truth.series("wear", "pump-A1")
    assert t[0] == 0.0 and v[-1] == 1.0 and len(t) == 11


def test_cavitation_of_a_line_may_be_alerted_on_its_pumps_and_tank_a_stuck_damper_on_its_zones():
    assert affected_twins("cavitation", "line-A", DEVICES) == {"line-A", "tank-A", "pump-A1", "pump-A2",
                                                               "pump-A3"}
    zones = ["ahu-2", "zone-2-north", "zone-2-east", "zone-1-north"]
    assert affected_twins("damper_stuck", "ahu-2", zones) == {"ahu-2", "zone-2-north", "zone-2-east"}
    assert affected_twins("drift", "pump-B1", DEVICES) == {"pump-B1"}


def test_only_an_alert_on_the_right_twin_before_the_failure_or_the_fault_end_detects_it():
    truth = _run()
    alerts = [("pump-A2", 3 * 3600.0 - 60),  # before the drift started: not a detection
              ("pump-B2", 4.0 * 3600),       # wrong twin
              ("pump-A1", 6.5 * 3600),       # after the bearing failed: too late
              ("pump-A2", 4.5 * 3600),       # after the drift ended: too late
              ("pump-B1", 9.0 * 3600)]       # comm loss never ended: the run's end is its deadline
    found = {d.fault.id: d for d in detections(truth, alerts)}
    assert not found["F1"].detected and found["F1"].deadline_s == 21600.0
    assert not found["F2"].detected and found["F2"].deadline_s == 14400.0
    assert found["F3"].detected and found["F3"].delay_h == pytest.approx(4.0)
    found = {d.fault.id: d for d in detections(truth, [*alerts, ("pump-A1", 5 * 3600.0)])}
    assert found["F1"].detected and found["F1"].delay_h == pytest.approx(3.0)


def test_false_alerts_count_only_twins_of_the_tested_types_that_no_fault_touched():
    truth = _run()
    quiet = fault_free(truth, TYPES)
    assert quiet == ["pump-A3", "pump-B2"]  # station, line and tank are not types under test here
    alerts = [("pump-B2", 100.0), ("pump-A1", 200.0), ("pump-A3", 300.0), ("station-1", 1.0)]
    assert false_alerts_per_100_twin_h(alerts, quiet, truth.hours) == pytest.approx(100.0 * 2 / 20.0)
    assert false_alerts_per_100_twin_h(alerts, [], truth.hours) is None


def test_nis_is_consistent_inside_the_chi2_band_of_its_own_degrees_of_freedom():
    # 95 % band: dof 1 → [0.00098, 5.02]; dof 4 → [0.48, 11.14]
    nis = np.array([0.5, 4.0, 6.0, 10.0, 12.0, 0.3, np.nan])
    dof = np.array([1, 1, 1, 4, 4, 4, 4])
    assert nis_consistent_share(nis, dof) == pytest.approx(3 / 6)
    rng = np.random.default_rng(0)
    chi = (rng.standard_normal((20000, 5)) ** 2).sum(axis=1)  # a consistent 5-channel filter
    assert nis_consistent_share(chi, np.full(len(chi), 5)) == pytest.approx(0.95, abs=0.01)
    assert nis_consistent_share(chi * 50, np.full(len(chi), 5)) < 0.05  # overconfident by 50×
    assert nis_consistent_share(np.array([1.0]), np.array([0])) is None


def test_nis_degrees_of_freedom_are_the_channels_measured_at_that_step():
    ch = np.array(["est.nis", "innov.flow", "innov.power", "est.bearing.wear",
                   "est.nis", "innov.flow", "innov.power",
                   "est.nis"], dtype=object)
    ts = np.array([10, 10, 10, 10, 20, 20, 20, 30])
    val = np.array([1.5, 0.1, 0.2, 0.3, 2.5, 0.1, np.nan, 9.0])  # power not measured at 20; nothing at 30
    nis, dof = nis_with_dof(ch, ts, val)
    assert list(nis) == [1.5, 2.5, 9.0] and list(dof) == [2.0, 1.0, 0.0]
    stored = np.array(["est.nis", "est.nis_dof", "innov.flow"], dtype=object)
    _, dof = nis_with_dof(stored, np.array([5, 5, 5]), np.array([3.0, 4.0, 0.1]))
    assert list(dof) == [4.0]  # where the estimator says how many, that wins


def test_state_error_is_against_the_truth_at_each_estimate_time_inside_the_truth_span():
    t_true, v_true = np.array([0.0, 100.0]), np.array([0.0, 1.0])
    sse, n = interp_sse(np.array([50.0, 100.0, 150.0]), np.array([0.6, 1.0, 9.0]), t_true, v_true)
    assert n == 2 and sse == pytest.approx(0.01)


def test_rul_error_uses_the_newest_forecast_raised_by_each_fraction_of_life():
    truth = _run()  # life of pump-A1: fault onset 2 h → failure 6 h
    forecasts = [
        Forecast("pump-A1", raised_s=3600.0, as_of_s=3600.0, mean_h=1000.0, p_fail=0.0),  # stale, wrong
        Forecast("pump-A1", raised_s=4.0 * 3600, as_of_s=3.9 * 3600, mean_h=2.1, p_fail=0.9),  # exact
        Forecast("pump-A1", raised_s=5.3 * 3600, as_of_s=5.2 * 3600, mean_h=1.8, p_fail=1.0),  # 1 h late
        Forecast("pump-A2", raised_s=5.3 * 3600, as_of_s=5.2 * 3600, mean_h=0.1, p_fail=1.0),
    ]
    errs = rul_rel_errors(truth, forecasts)
    assert errs[0.5] == [pytest.approx(0.0, abs=1e-9)]  # at 4 h the forecast at 3.9 h + 2.1 h is exact
    assert errs[0.8] == [pytest.approx(0.0, abs=1e-9)]  # at 5.2 h: still the 4 h one (next: 5.3 h)
    assert errs[0.9] == [pytest.approx(1.0 / 0.4)]      # at 5.6 h: fails at 7 h, truth 6 h, 0.4 h left
    stale = rul_rel_errors(truth, forecasts[:1])  # computed once at 1 h and never again
    assert stale[0.5] == [pytest.approx((1001.0 - 6.0) / 2.0)]
    assert rul_rel_errors(truth, forecasts[3:]) == {0.5: [], 0.8: [], 0.9: []}  # pump-A2 never failed


def test_p72_outcomes_and_the_constant_forecast_of_the_same_run():
    truth = _run()
    forecasts = [
        Forecast("pump-A1", 3600.0, 3600.0, 100.0, 0.1),    # fails within 72 h: outcome 1
        Forecast("pump-A1", 7 * 3600.0, 7 * 3600.0, 1.0, 0.9),  # after its failure: left out
        Forecast("pump-B2", 3600.0, 3600.0, 5000.0, 0.0),   # healthy, never degraded: outcome 0
        Forecast("pump-A2", 3600.0, 3600.0, 5000.0, None),  # no P(72 h) served: left out
    ]
    p, y, censored = p_fail_labels(truth, forecasts)
    assert list(p) == [0.1, 0.0] and list(y) == [1.0, 0.0] and censored == 0
    assert brier(p, y) == pytest.approx((0.81 + 0.0) / 2)
    assert brier_constant(y) == pytest.approx(0.25)  # base rate 0.5
    assert brier(np.array([]), np.array([])) is None and brier_constant(np.array([])) is None


def test_a_degrading_unit_still_alive_when_the_run_ends_is_censored_not_called_a_survivor():
    recs = [_rec("start", 0.0, plant="p", devices=["pump-A1"]),
            _rec("fault_start", 600.0, fault=_fault("F1", "bearing_wear", "pump-A1")),
            _rec("end", 7200.0)]
    truth = truth_from_records(recs)
    p, y, censored = p_fail_labels(truth, [Forecast("pump-A1", 3600.0, 3600.0, 10.0, 0.8)])
    assert len(y) == 0 and censored == 1


def test_pooled_figures_weigh_every_twin_step_and_forecast_of_every_run():
    truth = _run()
    # the bearing alert was raised after the failure, but its data began at 5 h: found by data time only
    a = Score(detections=detections(truth, [("pump-B1", 9 * 3600.0)]),
              detections_by_data=detections(truth, [("pump-A1", 5 * 3600.0)]), alerts=2, false_alerts=1,
              quiet_twin_h=100.0, nis_in_band=9, nis_steps=10, wear_sse=0.04, wear_sse_constant=0.16,
              wear_n=4,
              rul_errors={0.9: [0.1]}, p72=[0.9], y72=[1.0], lags_s=[1.0, 2.0])
    b = Score(alerts=3, false_alerts=0, quiet_twin_h=100.0, nis_in_band=1, nis_steps=10,
              rul_errors={0.9: [0.3]}, p72=[0.2], y72=[0.0], lags_s=[50.0])
    f = Score.pooled([a, b]).figures()
    assert f["faults"] == 3 and f["detected_before_failure"] == pytest.approx(1 / 3)
    assert f["detected_by_data_time"] == pytest.approx(1 / 3)
    assert f["detected_by_kind"] == {"bearing_wear": "0/1", "comm_loss": "1/1", "drift": "0/1"}
    assert f["false_alerts_per_100_twin_h"] == pytest.approx(0.5) and f["alerts"] == 5
    assert f["nis_consistent_share"] == pytest.approx(0.5)
    assert f["wear_rmse"] == pytest.approx(0.1) and f["ratio"]["wear_rmse_vs_constant"] == pytest.approx(0.5)
    assert f["rul_rel_error_90"] == pytest.approx(0.2)
    assert f["p72_brier"] == pytest.approx((0.01 + 0.04) / 2)
    assert f["p72_brier_constant"] == pytest.approx(0.0)  # each run's own base rate: 1 in a, 0 in b
    assert f["ratio"]["p72_brier_vs_constant"] is None  # no skill to state against a perfect constant
    one = Score(p72=[0.9, 0.2], y72=[1.0, 0.0]).figures()
    assert one["p72_brier_constant"] == pytest.approx(0.25)
    assert one["ratio"]["p72_brier_vs_constant"] == pytest.approx(0.1)
    assert f["lag_p99_s"] == pytest.approx(percentile([1.0, 2.0, 50.0], 99))
    empty = Score().figures()
    assert empty["faults"] == 0 and empty["detected_before_failure"] is None and empty["lag_p99_s"] is None
    assert empty["detected_by_data_time"] is None
    assert all(v is None for v in empty["ratio"].values()) and not math.isnan(empty["quiet_twin_h"])
