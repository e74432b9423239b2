"""The simulator's wire contract: MQTT topic layout and JSON payloads, as pure encode/decode functions.

A simulated plant talks to twinloop exactly as a real gateway would, so this layout is the
contract an ingest mapping is written against. ``{plant}`` is the plant's name
(``pump-station``), ``{device}`` a device id (``pump-A1``).

=============================================  ======  ==============================================
topic                                          retain  payload (JSON)
=============================================  ======  ==============================================
``twinloop/{plant}/{device}/telemetry``        no      ``{"device", "type", "seq", "ts", "values"}``
``spBv1.0/twinloop/DBIRTH/{plant}/{device}``   no      Sparkplug-B-like birth: metric names, units
``spBv1.0/twinloop/DDATA/{plant}/{device}``    no      ``{"timestamp", "seq", "metrics", "properties"}``
``spBv1.0/twinloop/DDEATH/{plant}/{device}``   no      on loss of communication / shutdown
``twinloop/{plant}/{device}/cmd/{name}``       no      ``{"command_id": "c-1", "args": {"rpm": 1450}}``
``twinloop/{plant}/{device}/ack``              no      ``{"command_id", "ok", "message", "applied", "ts"}``
``twinloop/{plant}/{device}/status``           yes     ``{"status": "online"|"offline", "ts"}``
``twinloop/{plant}/status``                    yes     the gateway's status; also its MQTT last will
``twinloop/{plant}/clock``                     yes     ``{"sim_time", "wall_time", "speed"}`` (clock)
=============================================  ======  ==============================================

- One telemetry message carries a device's whole sample (every channel), because a Python MQTT
  client tops out near 15 k messages/s; per-reading messages would cap a plant at a few devices.
  With ``samples_per_message`` k > 1 it carries k consecutive samples of one device (the
  multi-sample form): ``{"device", "type", "seq", "ts": [t0, …], "values": {channel: [v0, …]}}``,
  a dropout is ``null``; Sparkplug DDATA then carries k metrics per channel, each with its own
  ``timestamp``. This trades freshness ((k-1) sample periods of buffering in the device) for k
  times fewer messages.
- ``ts`` is epoch nanoseconds (int) of the *simulated* instant; Sparkplug timestamps are epoch ms.
  Status and ack ``ts`` are wall-clock epoch nanoseconds (when it was said); the last will has none.
- Dropouts (NaN) are omitted from ``values``/``metrics``, never sent as NaN (not valid JSON).
- ``seq`` counts telemetry *messages* per device (starting at 0), whatever k, so loss can be
  counted downstream: a gap of g seqs is g lost messages, i.e. g·k samples (k is ``len(ts)`` of the
  messages around the gap; the last message before a stop may be shorter);
  unbounded in flat payloads; 0-255 wrapping in Sparkplug (as the spec does), with the unbounded
  count in ``properties.seq``. Unlike Sparkplug, where ``seq`` is per edge node, ours is per
  device; DBIRTH/DDEATH repeat the last telemetry ``seq`` rather than consuming one, so flat and Sparkplug
  payloads of the same sample carry the same count.
- The clock says which simulated instant (``sim_time``, epoch ns) went with which wall instant
  (``wall_time``, epoch ns) and how fast simulated time runs (``speed``: simulated s per wall s;
  ``null`` as fast as possible, 0 stopped), so that twinloop can judge simulated timestamps
  against the plant's own time (mapping ``clock: {announced: twinloop/<plant>/clock}``). It is
  sent before the first sample, every second and whenever the time line moves (`twinloop.sim.clock`).
- MQTT allows one last will per connection, so the will is the plant-level
  ``twinloop/{plant}/status`` (like a Sparkplug NDEATH): when it says offline, every device of the
  plant is offline too.

>>> telemetry_topic("pump-station", "pump-A1")
'twinloop/pump-station/pump-A1/telemetry'
>>> decode_command("twinloop/ps/pump-A1/cmd/setSpeed", b'{"command_id": "c1", "args": {"rpm": 1450}}')
CommandRequest(device='pump-A1', name='setSpeed', command_id='c1', args={'rpm': 1450})
>>> decode_command("twinloop/ps/pump-A1/cmd/setSpeed", b'{"args": 3}').reason
'command payload needs a string "command_id"'
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.sim.plant import CommandResult, DeviceSpec

PREFIX = "twinloop"
SPARKPLUG_NAMESPACE = "spBv1.0"
SPARKPLUG_GROUP = "twinloop"
SPARKPLUG_SEQ_MODULO = 256


# --- topics ---------------------------------------------------------------------------------------


def telemetry_topic(plant: str, device: str) -> str:
    return f"{PREFIX}/{plant}/{device}/telemetry"


def sparkplug_topic(kind: str, plant: str, device: str) -> str:
    """``kind`` is ``DBIRTH``, ``DDATA`` or ``DDEATH``; the plant is the Sparkplug edge node."""
    return f"{SPARKPLUG_NAMESPACE}/{SPARKPLUG_GROUP}/{kind}/{plant}/{device}"


def command_topic(plant: str, device: str, name: str) -> str:
    return f"{PREFIX}/{plant}/{device}/cmd/{name}"


def command_filter(plant: str) -> str:
    """The subscription that receives every command for every device of ``plant``."""
    return f"{PREFIX}/{plant}/+/cmd/+"


def ack_topic(plant: str, device: str) -> str:
    return f"{PREFIX}/{plant}/{device}/ack"


def status_topic(plant: str, device: str | None = None) -> str:
    """A device's retained status, or (``device=None``) the plant gateway's, used as the last will."""
    return f"{PREFIX}/{plant}/status" if device is None else f"{PREFIX}/{plant}/{device}/status"


def clock_topic(plant: str) -> str:
    """The plant's retained clock announcement."""
    return f"{PREFIX}/{plant}/clock"


def topic_layout(plant: str) -> str:
    """The layout in one line, for a person starting the simulator."""
    return (f"telemetry {PREFIX}/{plant}/<device>/telemetry · sparkplug "
            f"{SPARKPLUG_NAMESPACE}/{SPARKPLUG_GROUP}/DDATA/{plant}/<device> · commands "
            f"{PREFIX}/{plant}/<device>/cmd/<name> → {PREFIX}/{plant}/<device>/ack · status "
            f"{PREFIX}/{plant}/<device>/status · clock {clock_topic(plant)}")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


# --- telemetry ------------------------------------------------------------------------------------


def channel_names(device: DeviceSpec) -> np.ndarray:
    """A device's channel names as an object array, so a sample can be masked in one step."""
    return np.array([c.name for c in device.channels], dtype=object)


def values_dict(names: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """``{channel: value}`` of one device's sample with dropouts (NaN/inf) left out.

    >>> values_dict(np.array(["a", "b", "c"], dtype=object), np.array([1.5, np.nan, 3.0]))
    {'a': 1.5, 'c': 3.0}
    """
    ok = np.isfinite(values)
    if ok.all():
        return dict(zip(names.tolist(), values.tolist(), strict=True))
    return dict(zip(names[ok].tolist(), values[ok].tolist(), strict=True))


def encode_flat(device: DeviceSpec, names: np.ndarray, seq: int, ts_ns: int, values: np.ndarray) -> bytes:
    """Flat telemetry: one message per device and sample."""
    return _dumps({"device": device.id, "type": device.asset_type, "seq": int(seq), "ts": int(ts_ns),
                   "values": values_dict(names, values)})


def encode_flat_samples(device: DeviceSpec, names: np.ndarray, seq: int, ts_ns: Sequence[int],
                        values: np.ndarray) -> bytes:
    """Multi-sample flat telemetry: ``values`` is (samples, channels); dropouts (NaN/inf) become null.

    >>> from twinloop.sim.plant import DeviceSpec
    >>> dev = DeviceSpec("p1", "Pump", ())
    >>> names = np.array(["a", "b"], dtype=object)
    >>> encode_flat_samples(dev, names, 7, [1, 2], np.array([[1.0, np.nan], [2, 3]]))
    b'{"device":"p1","type":"Pump","seq":7,"ts":[1,2],"values":{"a":[1.0,2.0],"b":[null,3.0]}}'
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(ts_ns), len(names))
    columns = values.T.tolist()
    bad = ~np.isfinite(values.T)
    if bad.any():
        for c, r in zip(*np.nonzero(bad), strict=True):
            columns[c][r] = None
    return _dumps({"device": device.id, "type": device.asset_type, "seq": int(seq),
                   "ts": [int(t) for t in ts_ns], "values": dict(zip(names.tolist(), columns, strict=True))})


def encode_sparkplug_samples(names: np.ndarray, seq: int, ts_ns: Sequence[int], values: np.ndarray) -> bytes:
    """Sparkplug-B-like DDATA carrying several samples: one metric per channel and sample, each with
    its own ``timestamp`` (the message ``timestamp`` is the newest)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(ts_ns), len(names))
    metrics: list[dict[str, Any]] = []
    for t, row in zip(ts_ns, values, strict=True):
        ms = int(t) // 1_000_000
        metrics.extend({"name": n, "value": v, "type": "Double", "timestamp": ms}
                       for n, v in values_dict(names, row).items())
    return _dumps({"timestamp": int(max(ts_ns)) // 1_000_000, "seq": int(seq) % SPARKPLUG_SEQ_MODULO,
                   "metrics": metrics, "properties": {"seq": int(seq)}})


def encode_sparkplug_data(names: np.ndarray, seq: int, ts_ns: int, values: np.ndarray) -> bytes:
    """Sparkplug-B-like DDATA (JSON instead of protobuf); ``seq`` wraps at 256, the full count rides along."""
    ms = ts_ns // 1_000_000
    metrics = [{"name": n, "value": v, "type": "Double", "timestamp": ms}
               for n, v in values_dict(names, values).items()]
    return _dumps({"timestamp": ms, "seq": int(seq) % SPARKPLUG_SEQ_MODULO, "metrics": metrics,
                   "properties": {"seq": int(seq)}})


def encode_sparkplug_birth(device: DeviceSpec, seq: int, ts_ns: int) -> bytes:
    """DBIRTH: every metric a device will send, with unit and description, before its first DDATA."""
    ms = ts_ns // 1_000_000
    metrics = [{"name": c.name, "type": "Double", "timestamp": ms,
                "properties": {"engUnit": c.unit, "description": c.description}} for c in device.channels]
    return _dumps({"timestamp": ms, "seq": int(seq) % SPARKPLUG_SEQ_MODULO, "metrics": metrics,
                   "properties": {"seq": int(seq), "type": device.asset_type}})


def encode_sparkplug_death(seq: int, ts_ns: int) -> bytes:
    """DDEATH: the device stopped talking (communication loss or shutdown)."""
    return _dumps({"timestamp": ts_ns // 1_000_000, "seq": int(seq) % SPARKPLUG_SEQ_MODULO,
                   "properties": {"seq": int(seq)}})


@dataclass(frozen=True)
class Telemetry:
    """One decoded telemetry message (flat or Sparkplug DDATA)."""

    device: str
    seq: int
    ts_ns: int
    values: dict[str, float]
    asset_type: str = ""


def _loads_object(payload: bytes | str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValidationError(f"{what} is not JSON: {err}") from err
    if not isinstance(obj, dict):
        raise ValidationError(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def decode_flat(payload: bytes | str) -> Telemetry:
    """Read a flat telemetry payload; raises `ValidationError` naming the bad field."""
    obj = _loads_object(payload, "telemetry payload")
    try:
        return Telemetry(device=str(obj["device"]), seq=int(obj["seq"]), ts_ns=int(obj["ts"]),
                         values={str(k): float(v) for k, v in obj["values"].items()},
                         asset_type=str(obj.get("type", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValidationError(f"telemetry payload is malformed: {err!r}") from err


def decode_flat_samples(payload: bytes | str) -> list[Telemetry]:
    """Read a flat payload of either form as one `Telemetry` per sample (all with the message's ``seq``);
    dropouts are left out of ``values``. Raises `ValidationError` naming the bad field."""
    obj = _loads_object(payload, "telemetry payload")
    if not isinstance(obj.get("ts"), list):
        return [decode_flat(payload)]
    try:
        ts = [int(t) for t in obj["ts"]]
        columns = {str(k): list(v) for k, v in obj["values"].items()}
        if any(len(v) != len(ts) for v in columns.values()):
            raise ValueError("every channel needs one value per ts")
        device, seq, kind = str(obj["device"]), int(obj["seq"]), str(obj.get("type", ""))
        return [Telemetry(device, seq, t, {k: float(v[i]) for k, v in columns.items() if v[i] is not None},
                          kind) for i, t in enumerate(ts)]
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValidationError(f"telemetry payload is malformed: {err!r}") from err


def decode_sparkplug(topic: str, payload: bytes | str) -> Telemetry:
    """Read a DDATA/DBIRTH/DDEATH payload; ``seq`` is the unbounded count from ``properties``."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != SPARKPLUG_NAMESPACE:
        raise ValidationError(f"not a Sparkplug device topic: {topic!r}")
    obj = _loads_object(payload, "sparkplug payload")
    try:
        ms = int(obj["timestamp"])
        seq = int(obj.get("properties", {}).get("seq", obj["seq"]))
        values = {str(m["name"]): float(m["value"]) for m in obj.get("metrics", []) if "value" in m}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValidationError(f"sparkplug payload is malformed: {err!r}") from err
    return Telemetry(device=parts[4], seq=seq, ts_ns=ms * 1_000_000, values=values)


# --- commands, acks, status -----------------------------------------------------------------------


@dataclass(frozen=True)
class CommandRequest:
    """A well-formed command taken off the wire."""

    device: str
    name: str
    command_id: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandRejected:
    """A command that could not be read; ``device``/``command_id`` are kept when known, to ack it."""

    reason: str
    device: str = ""
    name: str = ""
    command_id: str = ""


def parse_command_topic(topic: str) -> tuple[str, str, str] | None:
    """``(plant, device, name)`` of a command topic, or None when it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != PREFIX or parts[3] != "cmd" or not all(parts):
        return None
    return parts[1], parts[2], parts[4]


def decode_command(topic: str, payload: bytes | str) -> CommandRequest | CommandRejected:
    """Read a command; never raises: a malformed one comes back as `CommandRejected` with the reason."""
    where = parse_command_topic(topic)
    if where is None:
        return CommandRejected(f"not a command topic: {topic!r} (want {PREFIX}/<plant>/<device>/cmd/<name>)")
    _, device, name = where
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        return CommandRejected(f"command payload is not JSON: {err}", device, name)
    if not isinstance(obj, dict):
        return CommandRejected("command payload must be a JSON object", device, name)
    command_id = obj.get("command_id")
    if not isinstance(command_id, str) or not command_id:
        return CommandRejected('command payload needs a string "command_id"', device, name)
    args = obj.get("args", {})
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        return CommandRejected('"args" must be a JSON object of named arguments', device, name, command_id)
    bad = [k for k, v in args.items()
           if not isinstance(v, (int, float, str, bool)) or (isinstance(v, float) and not math.isfinite(v))]
    if bad:
        return CommandRejected(f"arguments {bad} must be finite numbers, strings or booleans",
                               device, name, command_id)
    return CommandRequest(device, name, command_id, dict(args))


def encode_command(command_id: str, args: dict[str, Any]) -> bytes:
    """What a twinloop sink (or a test) publishes on a command topic."""
    return _dumps({"command_id": command_id, "args": args})


def encode_ack(command_id: str, result: CommandResult, ts_ns: int) -> bytes:
    return _dumps({"command_id": command_id, "ok": bool(result.ok), "message": result.message,
                   "applied": _jsonable(result.applied), "ts": int(ts_ns)})


def decode_ack(payload: bytes | str) -> tuple[str, CommandResult, int]:
    """``(command_id, result, ts_ns)`` of an ack; raises `ValidationError` when malformed."""
    obj = _loads_object(payload, "ack payload")
    try:
        return (str(obj["command_id"]),
                CommandResult(ok=bool(obj["ok"]), message=str(obj.get("message", "")),
                              applied=dict(obj.get("applied") or {})), int(obj["ts"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValidationError(f"ack payload is malformed: {err!r}") from err


def encode_clock(sim_ns: int, wall_ns: int, speed: float | None) -> bytes:
    """The clock announcement; ``speed`` None (or inf) is "as fast as possible".

    >>> decode_clock(encode_clock(7, 3, 60.0))
    (7, 3, 60.0)
    """
    return _dumps({"sim_time": int(sim_ns), "wall_time": int(wall_ns),
                   "speed": None if speed is None or math.isinf(speed) else float(speed)})


def decode_clock(payload: bytes | str) -> tuple[int, int, float | None]:
    """``(sim_ns, wall_ns, speed)`` of a clock announcement; raises `ValidationError` when malformed."""
    obj = _loads_object(payload, "clock payload")
    try:
        speed = obj["speed"]
        return int(obj["sim_time"]), int(obj["wall_time"]), None if speed is None else float(speed)
    except (KeyError, TypeError, ValueError) as err:
        raise ValidationError(f"clock payload is malformed: {err!r}") from err


def encode_status(online: bool, ts_ns: int | None) -> bytes:
    """Status; the last will has no ``ts`` (it is written at connect, the broker sends it at the loss)."""
    status = "online" if online else "offline"
    return _dumps({"status": status} if ts_ns is None else {"status": status, "ts": int(ts_ns)})


def _jsonable(value: Any) -> Any:
    """Plain JSON types from what a plant put in ``applied`` (numpy scalars, tuples, NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def device_names(devices: Sequence[DeviceSpec]) -> tuple[np.ndarray, ...]:
    """`channel_names` of every device, computed once per transport."""
    return tuple(channel_names(d) for d in devices)


__all__ = [
    "PREFIX", "SPARKPLUG_GROUP", "SPARKPLUG_NAMESPACE", "CommandRejected", "CommandRequest", "Telemetry",
    "ack_topic", "channel_names", "clock_topic", "command_filter", "command_topic", "decode_ack",
    "decode_clock", "decode_command", "decode_flat", "decode_flat_samples", "decode_sparkplug",
    "device_names", "encode_ack", "encode_clock", "encode_command", "encode_flat", "encode_flat_samples",
    "encode_sparkplug_birth", "encode_sparkplug_data", "encode_sparkplug_samples", "encode_sparkplug_death",
    "encode_status", "parse_command_topic", "sparkplug_topic", "status_topic", "telemetry_topic",
    "topic_layout", "values_dict",
]
