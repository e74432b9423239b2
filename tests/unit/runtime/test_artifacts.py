"""Learned models kept as artifacts: saved in versions with what they learned from, loaded back
(also after reopening the DuckDB file), and a damaged or foreign payload is a clear error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from twinloop import __version__
from twinloop.analytics.anomaly import ChannelFrame, build_detector
from twinloop.analytics.drift import GuardedModel, fit_model
from twinloop.core.clock import ManualClock
from twinloop.core.errors import NotFoundError, StoreError, ValidationError
from twinloop.runtime.artifacts import MAGIC, ArtifactService
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.memory import MemoryStore

T0 = 1_767_225_600 * 10**9
CHANNELS = ("flow", "discharge_pressure", "power")


def learned(seed: int = 0) -> GuardedModel:
    x = np.random.default_rng(seed).normal(size=(300, 3))
    return fit_model(build_detector("pca"), ChannelFrame.from_array(x, CHANNELS), {"quantile": 0.99})


def probe() -> ChannelFrame:
    x = np.random.default_rng(9).normal(size=(50, 3))
    x[40:, 1] += 8.0
    return ChannelFrame.from_array(x, CHANNELS)


def test_a_model_saved_twice_gets_versions_and_loads_back_scoring_the_same() -> None:
    clock = ManualClock(T0)
    service = ArtifactService(MemoryStore(), clock)
    model = learned()
    a1 = service.save("detector", "pump-1", model, {"twins": ["pump-1"], "window_ns": [T0 - 10, T0],
                                                    "metrics": {"loss": np.float64(0.125)}})
    clock.advance(seconds=5.0)
    a2 = service.save("detector", "pump-1", learned(1), {"window_ns": [T0, T0 + 10]})
    assert (a1.version, a2.version) == (1, 2) and a2.created_ns == T0 + 5 * 10**9
    assert a1.meta["metrics"] == {"loss": 0.125}  # numpy numbers kept as plain JSON
    assert a1.meta["code_version"] == __version__ and a1.meta["object_type"].endswith("GuardedModel")
    loaded, artifact = service.load("detector", "pump-1", 1, expect=GuardedModel)  # type: ignore[misc]
    assert artifact.version == 1 and artifact.meta["twins"] == ["pump-1"]
    np.testing.assert_allclose(loaded.detector.score(probe())[0], model.detector.score(probe())[0])
    assert loaded.threshold.level_ == model.threshold.level_
    latest = service.load("detector", "pump-1")
    assert latest is not None and latest[1].version == 2
    assert service.load("detector", "pump-2") is None
    assert [(a.version, a.payload) for a in service.get("detector", "pump-1")] == [(1, b""), (2, b"")]
    with pytest.raises(NotFoundError, match="pump-2"):
        service.get("detector", "pump-2")


def test_reopening_a_duckdb_file_keeps_artifacts_and_their_versions(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    model = learned()
    with DuckDBStore(path) as store:
        service = ArtifactService(store, ManualClock(T0))
        service.save("detector", "pump-1", learned(1), {"n": 1})
        service.save("detector", "pump-1", model, {"n": 2})
        service.save("calibration", "pump-1", {"static_head_m": 48.5}, {"n": 3})
    with DuckDBStore(path) as store:
        service = ArtifactService(store, ManualClock(T0))
        found = service.load("detector", "pump-1")
        assert found is not None
        loaded, artifact = found
        assert (artifact.version, artifact.meta["n"]) == (2, 2)
        np.testing.assert_allclose(loaded.detector.score(probe())[0], model.detector.score(probe())[0])
        assert service.load("calibration", "pump-1")[0] == {"static_head_m": 48.5}  # type: ignore[index]
        assert service.save("detector", "pump-1", model).version == 3
        assert [(a.kind, a.version) for a in service.versions(key="pump-1")] == [
            ("calibration", 1), ("detector", 1), ("detector", 2), ("detector", 3)]


def test_a_damaged_payload_is_a_store_error_not_a_crash() -> None:
    store = MemoryStore()
    service = ArtifactService(store, ManualClock(T0))
    good = service.encode(learned())
    store.put_artifact("detector", "p1", good[:-40], {}, T0)  # truncated
    store.put_artifact("detector", "p2", b"\x80\x05garbage", {}, T0)  # not ours at all
    store.put_artifact("detector", "p3", MAGIC + b"{not json\n" + b"x", {}, T0)
    flipped = bytearray(good)
    flipped[-10] ^= 0xFF
    store.put_artifact("detector", "p4", bytes(flipped), {}, T0)
    for key in ("p1", "p2", "p3", "p4"):
        with pytest.raises(StoreError, match=f"detector/{key} v1") as err:
            service.load("detector", key)
        assert err.value.hint  # says what to do


def test_a_payload_this_code_cannot_rebuild_is_a_validation_error() -> None:
    store = MemoryStore()
    service = ArtifactService(store, ManualClock(T0))
    newer = service.encode(1).replace(b'"format": "pickle"', b'"format": "onnx"')
    store.put_artifact("prognoser", "Pump", newer, {}, T0)
    with pytest.raises(ValidationError, match="onnx"):
        service.load("prognoser", "Pump")
    # a class that no longer exists (renamed by a later version): intact, but not rebuildable
    gone = b"\x80\x05\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x0ctwinloop.old\x94\x8c\x04Gone\x94\x93\x94."
    header = {"format": "pickle", "protocol": 5, "type": "twinloop.old.Gone",
              "sha256": hashlib.sha256(gone).hexdigest()}
    store.put_artifact("detector", "old", MAGIC + json.dumps(header).encode() + b"\n" + gone,
                       {"code_version": "0.0.1"}, T0)
    with pytest.raises(ValidationError, match="cannot be rebuilt") as err:
        service.load("detector", "old")
    assert "0.0.1" in (err.value.hint or "")
    service.save("thresholds", "p1", {"level": 3.0})
    with pytest.raises(ValidationError, match="not the model asked for"):
        service.load("thresholds", "p1", expect=GuardedModel)


def test_what_cannot_be_pickled_is_refused_and_nothing_is_stored() -> None:
    store = MemoryStore()
    service = ArtifactService(store, ManualClock(T0))
    with pytest.raises(ValidationError, match="cannot be kept"):
        service.save("detector", "p1", lambda x: x)
    assert store.artifacts() == []


def test_with_a_secret_only_signed_artifacts_load() -> None:
    store = MemoryStore()
    ours = ArtifactService(store, ManualClock(T0), secret=b"k1")
    ours.save("detector", "p1", {"a": 1})
    assert ours.load("detector", "p1")[0] == {"a": 1}  # type: ignore[index]
    with pytest.raises(ValidationError, match="not signed"):
        ArtifactService(store, ManualClock(T0), secret=b"k2").load("detector", "p1")
    ArtifactService(store, ManualClock(T0)).save("detector", "p1", {"a": 2})  # unsigned
    with pytest.raises(ValidationError, match="not signed"):
        ours.load("detector", "p1")
