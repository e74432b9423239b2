"""An FMI 2.0 Model Exchange FMU as a `PhysicsModel` (FMPy loads and calls it).

Model Exchange, not Co-Simulation: a `PhysicsModel` must step *any* given state (estimators
push sigma points and particles through it), and only Model Exchange lets the caller set the
continuous states. A Co-Simulation-only FMU hides its state behind ``doStep`` and is refused
with a message that says so. FMI 3.0 is not supported yet.

Mapping by name: the FMU's Real inputs, outputs and continuous states become the model's
inputs, outputs and states (names made identifiers: ``der(x)`` or ``a.b`` → ``a_b``); its
*tunable* Real parameters become parameters with their start values and min/max as bounds.
Fixed parameters keep their start values (FMI forbids setting them after initialization).

Cost: one FMU instance serves the whole fleet. Per unit and derivative evaluation it takes
three FMI calls (set parameters and inputs, set states, get derivatives), ~10 µs through
ctypes, so an FMU model costs a Python loop over units — unlike the built-in models. Steps are
fixed-step RK4 with ``ceil(dt / max_step_s)`` sub-steps, so a unit's result never depends on
which other units share the call (the fleet equals each unit alone, bit for bit).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import threading
from ctypes import POINTER, c_double, c_uint
from pathlib import Path
from typing import Any

import numpy as np

from twinloop.core.errors import ConfigError, UnitError, ValidationError
from twinloop.core.units import parse_unit
from twinloop.physics.model import Parameter, Signal


def _ident(name: str) -> str:
    clean = re.sub(r"\W+", "_", name).strip("_")
    return clean if clean[:1].isalpha() else f"v_{clean}"


def _unit(unit: str | None) -> str:
    if not unit:
        return "dimensionless"
    try:
        parse_unit(unit)
    except UnitError:
        return "dimensionless"
    return unit


class FmuModel:
    """A Model Exchange FMU behind the `PhysicsModel` protocol (see the module docstring)."""

    events: tuple[str, ...] = ()

    def __init__(self, path: str | Path, *, name: str | None = None, max_step_s: float | None = None) -> None:
        from fmpy import extract, read_model_description
        from fmpy.fmi2 import FMU2Model

        self.path = Path(path)
        try:
            md = read_model_description(str(self.path), validate=True)
        except Exception as err:  # fmpy raises bare Exceptions for broken archives
            raise ValidationError(f"cannot read FMU {self.path}: {err}") from err
        if md.fmiVersion != "2.0":
            raise ValidationError(f"{self.path.name}: FMI {md.fmiVersion} is not supported",
                                  hint="export the model as an FMI 2.0 Model Exchange FMU")
        if md.modelExchange is None:
            raise ValidationError(
                f"{self.path.name} is a Co-Simulation-only FMU; its state cannot be set",
                hint="export it with Model Exchange: estimators must step arbitrary states")
        self.name = name or _ident(md.modelName)
        reals = [v for v in md.modelVariables if v.type == "Real"]
        state_vars = [d.variable.derivative for d in md.derivatives]
        tunable = [v for v in reals if v.causality == "parameter" and v.variability == "tunable"]
        ins = [v for v in reals if v.causality == "input"]
        outs = [v for v in reals if v.causality == "output"]
        self.states = tuple(Signal(_ident(v.name), _unit(v.unit), v.description or "") for v in state_vars)
        self.inputs = tuple(Signal(_ident(v.name), _unit(v.unit), v.description or "") for v in ins)
        self.outputs = tuple(Signal(_ident(v.name), _unit(v.unit), v.description or "") for v in outs)
        self.parameters = tuple(
            Parameter(_ident(v.name), float(v.start), _unit(v.unit),
                      -np.inf if v.min is None else float(v.min), np.inf if v.max is None else float(v.max),
                      v.description or "")
            for v in tunable)
        step = md.defaultExperiment.stepSize if md.defaultExperiment else None
        self.max_step_s = float(max_step_s or (float(step) if step else 1.0))
        self._vr_set = (c_uint * (len(tunable) + len(ins)))(*[v.valueReference for v in (*tunable, *ins)])
        self._vr_out = (c_uint * len(outs))(*[v.valueReference for v in outs])
        self._nx = len(state_vars)
        self._lock = threading.Lock()
        self._dir = extract(str(self.path))
        self._fmu: Any = FMU2Model(guid=md.guid, unzipDirectory=self._dir,
                                   modelIdentifier=md.modelExchange.modelIdentifier, instanceName=self.name)
        self._fmu.instantiate()
        self._fmu.setupExperiment(startTime=0.0)
        self._fmu.enterInitializationMode()
        self._fmu.exitInitializationMode()
        self._fmu.enterContinuousTimeMode()
        x0 = np.zeros(self._nx)
        self._fmu.getContinuousStates(x0.ctypes.data_as(POINTER(c_double)), self._nx)
        self._x0 = x0

    # --- FMI calls, one unit at a time ---------------------------------------------------------
    def _set(self, values: np.ndarray) -> None:
        v = np.ascontiguousarray(values, dtype=np.float64)
        self._fmu.fmi2SetReal(self._fmu.component, self._vr_set, len(v), v.ctypes.data_as(POINTER(c_double)))

    def _derivatives(self, x: np.ndarray, pu: np.ndarray) -> np.ndarray:
        """``dx/dt`` ``(n, nx)`` for rows of states and ``[parameters, inputs]``."""
        from fmpy.fmi1 import FMICallException

        out = np.empty_like(x)
        for i in range(len(x)):
            xi = np.ascontiguousarray(x[i])
            try:
                self._set(pu[i])
                self._fmu.setContinuousStates(xi.ctypes.data_as(POINTER(c_double)), self._nx)
                self._fmu.getDerivatives(out[i].ctypes.data_as(POINTER(c_double)), self._nx)
            except FMICallException as err:
                raise ValidationError(f"{self.name}: the FMU refused unit {i}'s values ({err})",
                                      hint="check parameters and inputs against the FMU's limits") from err
        return out

    def _pu(self, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(p, np.float64), np.asarray(u, np.float64)], axis=1)

    # --- PhysicsModel ---------------------------------------------------------------------------
    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """The FMU's initial continuous states (from its start values), for every unit."""
        return np.tile(self._x0, (len(u), 1))

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        """RK4 over ``dt`` in ``ceil(dt / max_step_s)`` equal sub-steps, inputs held."""
        state = np.array(x, dtype=np.float64, copy=True)
        if dt <= 0 or not len(state):
            return state
        n_sub = max(1, math.ceil(dt / self.max_step_s))
        h = dt / n_sub
        pu = self._pu(u, p)
        with self._lock:
            for _ in range(n_sub):
                k1 = self._derivatives(state, pu)
                k2 = self._derivatives(state + 0.5 * h * k1, pu)
                k3 = self._derivatives(state + 0.5 * h * k2, pu)
                k4 = self._derivatives(state + h * k3, pu)
                state = state + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return state

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The FMU's Real outputs at state ``x`` under ``u`` and ``p``."""
        from fmpy.fmi1 import FMICallException

        pu = self._pu(u, p)
        out = np.empty((len(x), len(self.outputs)))
        with self._lock:
            for i in range(len(x)):
                xi = np.ascontiguousarray(x[i], dtype=np.float64)
                try:
                    self._set(pu[i])
                    self._fmu.setContinuousStates(xi.ctypes.data_as(POINTER(c_double)), self._nx)
                    self._fmu.fmi2GetReal(self._fmu.component, self._vr_out, len(self.outputs),
                                          out[i].ctypes.data_as(POINTER(c_double)))
                except FMICallException as err:
                    raise ValidationError(f"{self.name}: the FMU refused unit {i}'s values ({err})") from err
        return out

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """No events are read from an FMU (event indicators are not failure thresholds)."""
        return np.zeros((len(x), 0))

    def close(self) -> None:
        """Free the FMU instance and its extracted files."""
        fmu, self._fmu = getattr(self, "_fmu", None), None
        if fmu is not None:
            try:
                fmu.terminate()
                fmu.freeInstance()
            except Exception:  # noqa: BLE001 - best effort while tearing down
                pass
        if getattr(self, "_dir", None):
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __del__(self) -> None:
        self.close()


def build_fmu(source_dir: str | Path, out_dir: str | Path) -> Path:
    """Compile an FMU shipped as C sources (``modelDescription.xml`` + ``sources/``) into ``.fmu``.

    Needs cmake (the ``cmake`` wheel fmpy depends on will do) and a C compiler; takes about a
    second. Returns the path of ``<out_dir>/<modelIdentifier>.fmu``.
    """
    import os
    import sys

    from fmpy.build import build_platform_binary
    from fmpy.util import create_zip_archive

    source = Path(source_dir).resolve()
    if not (source / "modelDescription.xml").is_file():
        raise ValidationError(f"{source} has no modelDescription.xml")
    work = Path(out_dir).resolve() / f"{source.name}.src"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(source, work)
    env_path = os.environ.get("PATH", "")
    venv_bin = str(Path(sys.executable).parent)
    if shutil.which("cmake") is None and (Path(venv_bin) / "cmake").exists():
        os.environ["PATH"] = venv_bin + os.pathsep + env_path  # the cmake wheel lives beside python
    try:
        build_platform_binary(str(work))  # an absolute path: cmake fails on relative ones
    except (OSError, subprocess.CalledProcessError) as err:
        raise ConfigError(f"building the FMU in {source} failed: {err}",
                          hint="install cmake and a C compiler (gcc)") from err
    finally:
        os.environ["PATH"] = env_path
    from fmpy import read_model_description

    md = read_model_description(str(work))
    ident = (md.modelExchange or md.coSimulation).modelIdentifier
    target = Path(out_dir).resolve() / f"{ident}.fmu"
    create_zip_archive(str(target), str(work))
    return target


__all__ = ["FmuModel", "build_fmu"]
