import numpy as np
import pytest

from twinloop.core import units
from twinloop.core.clock import ManualClock, datetime_to_ns, ns_to_datetime
from twinloop.core.commands import CreateTwin, UpdateTwin
from twinloop.core.errors import (
    DeclarationError,
    RevisionConflict,
    TwinloopError,
    UnitError,
    ValidationError,
)
from twinloop.core.events import Event, ReadingsApplied, TwinUpdated, event_kinds
from twinloop.core.ids import new_id, validate_id
from twinloop.core.uncertainty import Gaussian, Samples


def test_unit_conversion_is_vectorized_and_affine():
    out = units.convert(np.array([0.0, 100.0]), "degC", "degF")
    assert np.allclose(out, [32.0, 212.0])
    assert np.allclose(units.convert(np.array([1.5]), "bar", "kPa"), [150.0])
    assert units.canonical_unit("rpm") == units.canonical_unit("revolutions_per_minute")


def test_incompatible_and_unknown_units_raise_unit_error_with_names():
    with pytest.raises(UnitError, match="'bar' to 'degC'"):
        units.convert(np.array([1.0]), "bar", "degC")
    with pytest.raises(UnitError, match="unknown unit 'furlongs_per_blarg'"):
        units.parse_unit("furlongs_per_blarg")
    assert not units.is_valid_unit("nope") and units.compatible("m**3/h", "L/s")


def test_error_tree_and_messages():
    e = DeclarationError("unknown unit 'x'", file="pump.yaml", path="channels[2].unit", hint="fix")
    assert str(e) == "pump.yaml:channels[2].unit: unknown unit 'x' (fix)"
    assert isinstance(e, ValidationError) and isinstance(e, TwinloopError)
    rc = RevisionConflict("p1", 3, 4)
    assert rc.expected == 3 and "revision 4" in str(rc)


def test_ids():
    assert validate_id("pump-A1") == "pump-A1"
    for bad in ("", "-x", "a b", "a/b", "x" * 200):
        with pytest.raises(ValidationError):
            validate_id(bad)
    assert new_id() != new_id()


def test_events_round_trip_with_kinds_and_revisions():
    e = TwinUpdated(twin_id="p1", revision=4, ts_ns=9, changes={"desired": ["speed"]})
    back = Event.from_dict(e.to_dict())
    assert back == e and back.revision == 4 and isinstance(back, TwinUpdated)
    r = ReadingsApplied(twin_id="p1", count=3, channels=["flow"])
    assert Event.from_dict(r.to_dict()).data() == {"count": 3, "channels": ["flow"]}
    assert {"TwinCreated", "ReadingsApplied", "CommandAcknowledged"} <= set(event_kinds())
    with pytest.raises(ValidationError):
        Event.from_dict({"kind": "NoSuchThing"})


def test_commands_are_imperative_and_carry_expected_revision():
    c = UpdateTwin(twin_id="p1", expected_revision=2, desired={"speed_setpoint": 1450})
    assert c.kind == "UpdateTwin" and c.expected_revision == 2
    assert CreateTwin(twin_id="p1", type_id="Pump").kind == "CreateTwin"


def test_uncertainty_types():
    g = Gaussian(0.0, 1.0)
    lo, hi = g.interval(0.8)
    assert hi == pytest.approx(1.2816, abs=1e-3) and lo == pytest.approx(-hi)
    assert g.cdf(0.0) == pytest.approx(0.5)
    s = Samples(np.array([3.0, 1.0, 2.0]))
    assert s.cdf(2.0) == pytest.approx(2 / 3) and s.to_dict()["n"] == 3
    with pytest.raises(ValueError):
        Samples(np.array([np.nan]))
    with pytest.raises(ValueError):
        Gaussian(0.0, -1.0)


def test_clocks():
    c = ManualClock(0)
    c.advance(seconds=1.5)
    assert c.now_ns() == 1_500_000_000
    with pytest.raises(ValueError):
        c.advance(seconds=-1)
    assert datetime_to_ns(ns_to_datetime(1_700_000_000_123_456_000)) == 1_700_000_000_123_456_000
