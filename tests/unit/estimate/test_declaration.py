"""A type's estimator declaration: every input needs a source, and related twins' channels feed it."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.core.errors import ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.estimate.declaration import EstimatorDeclaration, derive_inputs
from twinloop.estimate.latent import LatentInputs


def test_an_input_without_a_source_is_an_error_that_names_it() -> None:
    decl = EstimatorDeclaration.from_dict({"preset": "pump", "inputs": {"ambient_temperature": 20}})
    with pytest.raises(ValidationError, match="discharge_static_head"):
        decl.spec()
    with pytest.raises(ValidationError, match="unknown estimator preset"):
        EstimatorDeclaration.from_dict({"preset": "turbine"})
    with pytest.raises(ValidationError, match="unknown keys"):
        EstimatorDeclaration.from_dict({"preset": "pump", "inputs": {"x": {"channel": "a", "gain": 2}}})


def test_a_related_twins_channel_feeds_every_twin_that_reads_it_scaled() -> None:
    decl = EstimatorDeclaration.from_dict({"preset": "pump", "inputs": {
        "discharge_static_head": {"channel": "header_pressure", "via": "feeds", "scale": 10.0},
        "speed_setpoint": {"channel": "speed", "zero_below": 5},
        "ambient_temperature": {"latent": 12, "std": 10, "process": 2}}})
    channels = ["header_pressure"] * 2 + ["speed"] * 2
    batch = ReadingBatch.from_arrays(["line-A", "line-B", "p1", "p1"], channels, [1, 1, 1, 2],
                                     [2.0, 3.0, 3.0, 2100.0])
    targets = {"discharge_static_head": {"line-A": ["p1", "p2"], "line-B": ["p3"]},
               "speed_setpoint": {"p1": ["p1"]}}
    out = derive_inputs(batch, decl.rules, targets)
    got = {(a, c, t): v for a, c, t, v in zip(out.asset_ids, out.channels, out.ts_ns, out.values,
                                              strict=True)}
    head = "input.discharge_static_head"
    assert got == {("p1", head, 1): 20.0, ("p2", head, 1): 20.0, ("p3", head, 1): 30.0,
                   ("p1", "input.speed_setpoint", 1): 0.0,  # 3 rpm of noise at standstill: stopped
                   ("p1", "input.speed_setpoint", 2): 2100.0}
    spec = decl.spec()
    assert isinstance(spec.model, LatentInputs) and "ambient_temperature" in spec.augmented_names
    assert spec.process["ambient_temperature"] == 2.0 and "ambient_temperature" not in spec.inputs
    assert np.isfinite(spec.default_parameters(1)).all()
