"""Alerts: materialized from events; lifecycle, dedupe, audit and bus through the service,
and detection from stored readings of a twin of the example plant."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.analytics.alerts import AlertRaised, Finding, materialize, severity_for
from twinloop.core.clock import ManualClock
from twinloop.core.errors import ConflictError, NotFoundError, ValidationError
from twinloop.core.events import Event
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.alert_service import AlertService
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_767_225_600 * 10**9)


@pytest.fixture
def rt(clock):
    settings = load_settings(store_url="memory://", plant=example_plant_path())
    with Runtime.open(settings, clock=clock) as runtime:
        yield runtime


@pytest.fixture
def alerts(rt) -> AlertService:
    return AlertService(rt.store, rt.twins, rt.bus, rt.clock)


def finding(twin="pump-A1", channel="bearing.temperature", peak=5.0) -> Finding:
    return Finding(twin_id=twin, detector="pca", start_ns=1, end_ns=None, peak_score=peak, level=2.0,
                   exceedance=peak / 2.0, channels=[channel], attributions={channel: 0.9})


def test_alert_events_round_trip_through_plain_dicts():
    e = AlertRaised(twin_id="p", alert_id="al-1", channels=["x"], attributions={"x": 1.0}, score=2.0)
    assert Event.from_dict(e.to_dict()) == e
    assert materialize([e])["al-1"].state == "open"


def test_lifecycle_is_stored_as_events_audited_and_published(rt, alerts, clock):
    seen = []
    rt.bus.on_event(seen.append)
    a = alerts.raise_finding(finding())
    assert a.state == "open" and a.severity == "major" and a.channels == ["bearing.temperature"]
    clock.advance(seconds=60)
    a = alerts.acknowledge(a.alert_id, actor="key:1(op)", note="on it")
    assert (a.state, a.acknowledged_by, a.note) == ("acknowledged", "key:1(op)", "on it")
    a = alerts.resolve(a.alert_id, actor="key:1(op)", reason="bearing greased")
    assert a.state == "resolved" and a.resolved_ns == a.acknowledged_ns
    records = rt.store.events(kinds=["AlertRaised", "AlertAcknowledged", "AlertResolved"])
    kinds = [r.event.kind for r in records]
    assert kinds == ["AlertRaised", "AlertAcknowledged", "AlertResolved"]
    assert [e.kind for e in seen] == kinds
    assert [r.action for r in rt.store.audit() if r.action.startswith("alert.")] == [
        "alert.raise", "alert.ack", "alert.resolve"]
    # a second service over the same store (another process) sees the same alerts
    other = AlertService(rt.store, rt.twins, rt.bus, rt.clock)
    assert other.get(a.alert_id) == a


def test_repeats_are_deduplicated_until_resolved(alerts):
    first = alerts.raise_finding(finding(peak=3.0))
    again = alerts.raise_finding(finding(peak=9.0))
    assert again.alert_id == first.alert_id
    assert again.occurrences == 2 and again.peak_score == 9.0 and again.severity == "critical"
    other_channel = alerts.raise_finding(finding(channel="flow"))
    assert other_channel.alert_id != first.alert_id
    alerts.resolve(first.alert_id, actor="t")
    assert alerts.raise_finding(finding()).alert_id != first.alert_id
    assert len(alerts.list(state="active")) == 2 and len(alerts.list()) == 3
    resolved = alerts.list(twin_id="pump-A1", state="resolved")
    assert [a.channels[0] for a in resolved] == ["bearing.temperature"]


def test_wrong_transitions_and_unknowns_are_refused(alerts):
    a = alerts.raise_finding(finding())
    alerts.resolve(a.alert_id, actor="t")
    with pytest.raises(ConflictError, match="resolved"):
        alerts.acknowledge(a.alert_id, actor="t")
    with pytest.raises(ConflictError):
        alerts.resolve(a.alert_id, actor="t")
    with pytest.raises(NotFoundError):
        alerts.get("al-missing")
    with pytest.raises(NotFoundError):
        alerts.raise_finding(finding(twin="no-such-twin"))
    with pytest.raises(ValidationError, match="unknown alert state"):
        alerts.list(state="sleeping")
    assert severity_for(1.0) == "warning"


def test_detection_from_stored_readings_raises_once_per_episode(rt):
    alerts = AlertService(rt.store, rt.twins, rt.bus, rt.clock,  # never gated: the data has no speed
                          specs={"Pump": {"detector": "pca", "window": 5}}, gates={"Pump": None})
    channels = [name for name, _ in rt.registry.component_channels("Pump")]
    rng = np.random.default_rng(0)
    n, period = 400, 10**9
    t0 = rt.clock.now_ns()
    base = rng.normal(50.0, 1.0, (n, len(channels)))
    k = channels.index("bearing.temperature")
    base[300:, k] += 15.0  # the bearing runs hot from row 300 on
    ts = t0 + np.arange(n) * period

    def store(rows: slice) -> None:
        idx = np.arange(n)[rows]
        rt.store.append(ReadingBatch.from_arrays(
            "pump-A1", np.tile(np.array(channels, dtype=object), len(idx)), np.repeat(ts[idx], len(channels)),
            base[idx].ravel()))

    store(slice(0, 200))
    alerts.learn("pump-A1", end_ns=int(ts[200]), period_ns=period)
    store(slice(200, 350))
    raised = alerts.evaluate("pump-A1", end_ns=int(ts[350]))
    assert len(raised) == 1 and raised[0].channels[0] == "bearing.temperature"
    store(slice(350, 400))
    assert alerts.evaluate("pump-A1", end_ns=int(ts[399]) + 1) == []  # same episode continues
    assert len(alerts.list(twin_id="pump-A1")) == 1
    with pytest.raises(ConflictError, match="no detector has learned"):
        alerts.evaluate("pump-A2")


def test_cli_lists_acknowledges_and_resolves(tmp_path):
    import json

    from typer.testing import CliRunner

    from twinloop.cli import alerts_cmd

    url = f"duckdb:///{tmp_path / 'alerts.duckdb'}"
    with Runtime.open(load_settings(store_url=url, plant=example_plant_path())) as runtime:
        alert_id = AlertService(runtime.store, runtime.twins, runtime.bus, runtime.clock).raise_finding(
            finding()).alert_id
    cli = CliRunner()

    def run(*args: str):
        return cli.invoke(alerts_cmd.app, [*args, "--store", url], catch_exceptions=False)

    r = run("list", "--json")
    assert r.exit_code == 0 and json.loads(r.output)[0]["id"] == alert_id
    r = run("ack", alert_id, "--note", "seen", "--as", "ana")
    assert r.exit_code == 0 and "acknowledged" in r.output
    assert run("resolve", alert_id, "--reason", "fixed").exit_code == 0
    r = run("resolve", alert_id)
    assert r.exit_code == 1 and "cannot become resolved" in r.output and "Traceback" not in r.output
    r = run("list", "--state", "resolved")
    assert r.exit_code == 0 and "1 alerts" in r.output and alert_id[:10] in r.output
