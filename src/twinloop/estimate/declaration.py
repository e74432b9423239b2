"""A type's ``analytics.estimator`` section, read into a spec and the rules that feed its inputs.

>>> d = EstimatorDeclaration.from_dict({"preset": "pump", "inputs": {
...     "discharge_static_head": {"channel": "header_pressure", "via": "feeds", "scale": 10.2,
...                               "noise": 0.1},
...     "ambient_temperature": {"latent": 12, "std": 10, "process": 2}}})
>>> d.spec().inputs["discharge_static_head"], d.rules["discharge_static_head"].via
('input.discharge_static_head', 'feeds')

Each input is one of: a number (a constant), a channel name of the twin itself, a mapping
``{channel, via, scale, offset, zero_below, noise}`` (``via`` names a relationship: the channel is
read from the twin at its other end — a pump's line header pressure; ``value·scale + offset`` in
the input's unit; readings below ``zero_below`` count as 0, so a drive's speed noise at standstill
is not read as a turning shaft; ``noise`` is the reading's std in the input's unit, or
``[absolute, relative]``), or
``{latent: start, std, process}``: no channel reports it, the filter estimates it as a state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.estimate.presets import Latent, Preset, preset
from twinloop.estimate.spec import EstimatorSpec, InputSource

DERIVED_PREFIX = "input."
_RULE_KEYS = {"channel", "via", "scale", "offset", "zero_below", "noise"}
_KEYS = {"preset", "kind", "inputs", "parameters", "initial_std", "process", "model_error", "calibration",
         "health", "enabled"}


@dataclass(frozen=True)
class InputRule:
    """Where one input's readings come from and how they become the input's value."""

    input: str
    channel: str
    via: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    zero_below: float | None = None

    @property
    def derived(self) -> str:
        """The channel name the filter reads this input from."""
        return DERIVED_PREFIX + self.input

    def transform(self, values: np.ndarray) -> np.ndarray:
        out = values * self.scale + self.offset
        if self.zero_below is not None:
            out = np.where(np.abs(out) < self.zero_below, 0.0, out)
        return out


@dataclass(frozen=True)
class EstimatorDeclaration:
    """The parsed ``analytics.estimator`` section of one asset type."""

    preset: Preset
    kind: str = "ukf"
    inputs: Mapping[str, InputSource] = field(default_factory=dict)
    rules: Mapping[str, InputRule] = field(default_factory=dict)
    latent: Mapping[str, Latent] = field(default_factory=dict)
    input_noise: Mapping[str, float | tuple[float, float]] = field(default_factory=dict)
    parameters: Mapping[str, float] = field(default_factory=dict)
    initial_std: Mapping[str, float] = field(default_factory=dict)
    process: Mapping[str, float] = field(default_factory=dict)
    model_error: float = 1.0
    calibration: Mapping[str, Any] = field(default_factory=dict)
    health: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EstimatorDeclaration:
        unknown = set(data) - _KEYS
        if unknown:
            raise ValidationError(f"analytics.estimator: unknown keys {sorted(unknown)}",
                                  hint="known: " + ", ".join(sorted(_KEYS)))
        if "preset" not in data:
            raise ValidationError("analytics.estimator needs a preset", hint="e.g. preset: pump")
        inputs: dict[str, InputSource] = {}
        rules: dict[str, InputRule] = {}
        latent: dict[str, Latent] = {}
        noise: dict[str, float | tuple[float, float]] = {}
        for name, src in dict(data.get("inputs") or {}).items():
            if isinstance(src, bool):
                raise ValidationError(f"analytics.estimator.inputs.{name}: a number, channel or mapping")
            if isinstance(src, int | float):
                inputs[name] = float(src)
            elif isinstance(src, str):
                inputs[name] = src
            elif isinstance(src, Mapping) and "latent" in src:
                latent[name] = Latent(float(src["latent"]), float(src.get("std", 1.0)),
                                      float(src.get("process", 0.0)))
            elif isinstance(src, Mapping) and "channel" in src:
                bad = set(src) - _RULE_KEYS
                if bad:
                    raise ValidationError(f"analytics.estimator.inputs.{name}: unknown keys {sorted(bad)}",
                                          hint="known: " + ", ".join(sorted(_RULE_KEYS)))
                zero = src.get("zero_below")
                rule = InputRule(name, str(src["channel"]), src.get("via"), float(src.get("scale", 1.0)),
                                 float(src.get("offset", 0.0)), None if zero is None else float(zero))
                rules[name] = rule
                inputs[name] = rule.derived
                if "noise" in src:
                    v = src["noise"]
                    noise[name] = (float(v[0]), float(v[1])) if isinstance(v, list | tuple) else float(v)
            else:
                raise ValidationError(f"analytics.estimator.inputs.{name}: cannot read {src!r}",
                                      hint="a number, a channel name, {channel: …, via: …} or {latent: …}")
        return cls(
            preset=preset(str(data["preset"])), kind=str(data.get("kind", "ukf")), inputs=inputs,
            rules=rules, latent=latent, input_noise=noise,
            parameters={k: float(v) for k, v in dict(data.get("parameters") or {}).items()},
            initial_std={k: float(v) for k, v in dict(data.get("initial_std") or {}).items()},
            process={k: float(v) for k, v in dict(data.get("process") or {}).items()},
            model_error=float(data.get("model_error", 1.0)),
            calibration=dict(data.get("calibration") or {}), health=dict(data.get("health") or {}),
        )

    def spec(self) -> EstimatorSpec:
        """The estimator spec: the preset with this declaration's sources and overrides."""
        return self.preset.spec(inputs=self.inputs, latent=self.latent, input_noise=self.input_noise,
                                parameters=self.parameters, model_error=self.model_error,
                                initial_std=self.initial_std, process=self.process)


def derive_inputs(batch: ReadingBatch, rules: Mapping[str, InputRule],
                  targets: Mapping[str, Mapping[str, list[str]]]) -> ReadingBatch:
    """Readings of the derived input channels: each rule's channel, transformed, for every twin
    that reads it. ``targets[input][source twin]`` lists the twins whose input that twin feeds
    (the twin itself for a rule without ``via``)."""
    parts: list[ReadingBatch] = []
    assets, channels = batch.asset_ids, batch.channels
    for name, rule in rules.items():
        sources = targets.get(name, {})
        mine = channels == rule.channel
        if not mine.any() or not sources:
            continue
        src_ids = assets[mine]
        uniq, inv = np.unique(src_ids, return_inverse=True)
        ts, values, quality = batch.ts_ns[mine], rule.transform(batch.values[mine]), batch.quality[mine]
        for j, src in enumerate(uniq.tolist()):
            readers = sources.get(str(src), [])
            if not readers:
                continue
            sel = inv == j
            k = int(sel.sum())
            n = k * len(readers)
            parts.append(ReadingBatch.from_arrays(
                np.repeat(np.array(readers, dtype=object), k), np.full(n, rule.derived, object),
                np.tile(ts[sel], len(readers)), np.tile(values[sel], len(readers)),
                np.tile(quality[sel], len(readers))))
    return ReadingBatch.concat(parts) if parts else ReadingBatch.empty()


__all__ = ["DERIVED_PREFIX", "EstimatorDeclaration", "InputRule", "derive_inputs"]
