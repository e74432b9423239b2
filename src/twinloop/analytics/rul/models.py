"""Named prognoser models for live twins: what an asset type's ``prognoser: {model: …}`` may name.

Two kinds. A *physics* model is built from its declaration alone. A *trained* model also needs
what it learned: ``train(name, table)`` fits it on a run-to-failure table (the simulator's batch
output, or a real fleet's history in the same wide layout) and `build` wraps the fitted object
for live twins. The runtime keeps fitted models (artifact store or file); nothing here does I/O.

>>> sorted(names())
['chiller-fouling-physics', 'pump-bearing-gbm', 'pump-bearing-physics', 'pump-bearing-sensors']
>>> build({"model": "pump-bearing-sensors"}).name
'pump-bearing-sensors'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from twinloop.analytics.rul import chiller_fouling
from twinloop.analytics.rul.live import HOUR_NS, TrajectoryTwinPrognoser, TwinPrognoser
from twinloop.analytics.rul.pump_bearing import prognoser_from_config
from twinloop.analytics.rul.trajectories import Trajectories
from twinloop.core.errors import ValidationError

#: Pump channels a trained pump model learns from (those the Pump type and the batch output share).
PUMP_TRAIN_SENSORS = ("flow", "discharge_pressure", "speed", "power", "motor.current",
                      "motor.winding_temperature", "bearing.temperature", "bearing.vibration_rms",
                      "bearing.defect_band_energy", "valve.opening")


@dataclass(frozen=True)
class ModelEntry:
    """How to build one named model; ``trainer`` is set for trained models."""

    name: str
    build: Callable[[Mapping[str, Any], Any], TwinPrognoser]
    trainer: Callable[[pa.Table, Mapping[str, Any]], Any] | None = None
    description: str = ""


_MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> None:
    """Add (or replace) a named model."""
    _MODELS[entry.name] = entry


def names() -> list[str]:
    return list(_MODELS)


def entry(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        raise ValidationError(f"unknown prognoser model {name!r}",
                              hint="known: " + ", ".join(sorted(_MODELS))) from None


def is_trained(name: str) -> bool:
    return entry(name).trainer is not None


def build(config: Mapping[str, Any], fitted: Any = None) -> TwinPrognoser:
    """The live prognoser a declaration names (``fitted``: what `train` returned, for trained models)."""
    name = str(config.get("model", ""))
    found = entry(name)
    if found.trainer is not None and fitted is None:
        raise ValidationError(f"prognoser model {name!r} is not trained yet",
                              hint="train it with `twinloop rul train RUNS.parquet`")
    return found.build(config, fitted)


def train(name: str, table: pa.Table, config: Mapping[str, Any] | None = None) -> Any:
    """Fit a trained model on a run-to-failure table; returns what `build` takes as ``fitted``."""
    found = entry(name)
    if found.trainer is None:
        raise ValidationError(f"prognoser model {name!r} learns nothing from data",
                              hint="trained models: " + ", ".join(n for n, e in _MODELS.items() if e.trainer))
    return found.trainer(table, dict(config or {}))


def _physics(config: Mapping[str, Any], fitted: Any) -> TwinPrognoser:
    return prognoser_from_config(config)


def _sensors(config: Mapping[str, Any], fitted: Any) -> TwinPrognoser:
    p = prognoser_from_config({**config, "use_estimator": False})
    p.name = "pump-bearing-sensors"
    return p


def _train_gbm(table: pa.Table, config: Mapping[str, Any]) -> Any:
    from twinloop.analytics.rul.gbm import GbmPrognoser  # LightGBM loads only when training

    sensors = [c for c in PUMP_TRAIN_SENSORS if c in table.column_names]
    if len(sensors) < 3:
        raise ValidationError("the run-to-failure table lacks the pump channels",
                              hint=f"expected columns like {list(PUMP_TRAIN_SENSORS)}, unit, t_h, rul_h")
    runs = Trajectories.from_table(table, sensors)
    params = {k: v for k, v in config.items() if k in ("cap", "seed", "tree_params", "n_regimes")}
    return GbmPrognoser(**{"cap": None, **params}).fit(runs), tuple(sensors)


def _gbm(config: Mapping[str, Any], fitted: Any) -> TwinPrognoser:
    prognoser, sensors = fitted
    return TrajectoryTwinPrognoser(prognoser, sensors, HOUR_NS, name="pump-bearing-gbm")


register(ModelEntry("pump-bearing-physics", _physics,
                    description="bearing wear to failure on the pump model, from the estimator "
                    "(or vibration)"))
register(ModelEntry("pump-bearing-sensors", _sensors,
                    description="the same physics from vibration and band energy only"))
def _chiller(config: Mapping[str, Any], fitted: Any) -> TwinPrognoser:
    return chiller_fouling.prognoser_from_config(config)


register(ModelEntry("chiller-fouling-physics", _chiller,
                    description="condenser fouling to a 30 % COP loss on the chiller model, from COP"))
register(ModelEntry("pump-bearing-gbm", _gbm, _train_gbm,
                    description="gradient boosting on hourly pump history, trained on run-to-failure fleets"))

__all__ = ["PUMP_TRAIN_SENSORS", "ModelEntry", "build", "entry", "is_trained", "names", "register", "train"]
