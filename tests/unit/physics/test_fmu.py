"""An FMU built here from C sources stands in for a built-in model, estimators included."""

from __future__ import annotations

import shutil
from pathlib import Path

import fmpy  # noqa: E402,F401 - a main dependency: missing means the install is broken
import numpy as np
import pytest

from twinloop.core.errors import ValidationError
from twinloop.estimate import make_estimator  # noqa: E402
from twinloop.estimate.spec import EstimatorSpec  # noqa: E402
from twinloop.physics.fmu import FmuModel, build_fmu  # noqa: E402

SOURCE = Path(__file__).resolve().parents[2] / "fixtures" / "fmu" / "thermal"


@pytest.fixture(scope="module")
def fmu_path(tmp_path_factory) -> Path:
    return build_fmu(SOURCE, tmp_path_factory.mktemp("fmu"))


@pytest.fixture
def model(fmu_path):
    m = FmuModel(fmu_path, max_step_s=60.0)
    yield m
    m.close()


def test_declarations_are_mapped_by_name(model) -> None:
    assert [s.name for s in model.states] == ["T"]
    assert [s.name for s in model.inputs] == ["P", "T_amb"]
    assert [s.name for s in model.outputs] == ["T", "heat_loss"]
    assert [(q.name, q.default, q.unit, q.lower) for q in model.parameters] == [
        ("C", 1e5, "J/K", 1.0), ("k", 50.0, "W/K", 0.0)]  # T_start is fixed: not a parameter


def test_steps_match_the_analytic_solution_per_unit(model) -> None:
    p = np.array([[1e5, 50.0], [2e5, 20.0], [5e4, 100.0]])
    u = np.array([[1000.0, 20.0], [0.0, 5.0], [2500.0, 30.0]])
    x0 = np.array([[20.0], [40.0], [25.0]])
    x = model.next_state(x0, u, 1800.0, p)
    tau, steady = p[:, 0] / p[:, 1], u[:, 1] + u[:, 0] / p[:, 1]
    exact = steady + (x0[:, 0] - steady) * np.exp(-1800.0 / tau)
    assert np.allclose(x[:, 0], exact, rtol=1e-6)
    y = model.output(x, u, p)
    assert np.allclose(y[:, 1], p[:, 1] * (x[:, 0] - u[:, 1]))


def test_a_value_the_fmu_refuses_is_a_clear_error(model) -> None:
    with pytest.raises(ValidationError, match="refused unit 1"):
        model.output(np.array([[20.0], [20.0]]), np.zeros((2, 2)), np.array([[1e5, 50.0], [-1.0, 50.0]]))


def test_co_simulation_only_fmus_are_refused(tmp_path) -> None:
    src = tmp_path / "cs"
    shutil.copytree(SOURCE, src)
    xml = (src / "modelDescription.xml").read_text()
    (src / "modelDescription.xml").write_text(xml.replace("<ModelExchange", "<CoSimulation").replace(
        "</ModelExchange>", "</CoSimulation>"))
    path = build_fmu(src, tmp_path)
    with pytest.raises(ValidationError, match="Co-Simulation-only"):
        FmuModel(path)


def test_ukf_estimates_an_fmu_parameter(model) -> None:
    """The loss coefficient k of a heated mass, learned from its temperature (joint estimation)."""
    spec = EstimatorSpec(model, channels={"temp": "T"}, inputs={"P": "power", "T_amb": 20.0},
                         measurement={"T": (0.1, 0.0)}, process={"T": 0.05},
                         estimate_parameters=("k",), initial_std={"T": 1.0, "k": 0.5})
    est = make_estimator("ukf", spec)
    est.add_twins(["mass"])
    truth = np.array([[1e5, 80.0]])
    rng = np.random.default_rng(0)
    x = np.array([[20.0]])
    for k in range(48):
        u = np.array([[3000.0 if (k // 6) % 2 == 0 else 500.0, 20.0]])
        x = model.next_state(x, u, 600.0, truth)
        est.step(np.array([0]), x + rng.normal(0, 0.1, (1, 1)), u, np.array([600.0 if k else 0.0]))
    e = est.estimate()
    assert abs(e.mean[0, 1] - 80.0) < 5.0, e.mean
