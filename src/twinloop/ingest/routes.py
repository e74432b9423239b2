"""Routes: where a raw value of one source goes and how it is converted and checked, as arrays.

A *route* is (rule, twin, raw name, source unit) resolved once against the mapping and the asset
types: the target channel, one affine conversion (mapping scale/offset and pint units folded into
``value * a + b``; every pint conversion we use is affine), the channel's valid range, its
maximum rate of change, or the reason it cannot be taken. Per message the normalizer only looks
up route ids (cached per rule, twin and tuple of names); everything else is a numpy gather over
the whole batch: ``a[route] * raw + b[route]``.

A *slot* is one (twin, channel) and holds the last accepted value and time, for the
rate-of-change check and as an in-memory latest-value table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from typing import Any

import numpy as np

from twinloop.core.errors import NotFoundError, UnitError
from twinloop.core.units import convert
from twinloop.ingest.mapping import Rule
from twinloop.twins.asset_type import Channel
from twinloop.twins.registry import TypeRegistry

OK, IGNORED, UNKNOWN_TWIN, UNKNOWN_CHANNEL, UNIT_MISMATCH = 0, 1, 2, 3, 4
ROUTE_REASONS = {UNKNOWN_TWIN: "unknown_twin", UNKNOWN_CHANNEL: "unknown_channel",
                 UNIT_MISMATCH: "unit_mismatch"}
NO_TS = np.iinfo(np.int64).min
# route row layout; the object columns are read per rejected reading only (`describe`)
_COLUMNS: dict[str, Any] = {"a": np.float64, "b": np.float64, "lo": np.float64, "hi": np.float64,
                            "rate": np.float64, "code": np.int8, "boolean": np.bool_, "slot": np.int64,
                            "twin": object, "channel": object, "unit": object, "why": object}


def _affine(src: str | None, dst: str | None) -> tuple[float, float]:
    """``dst = a * src + b``; raises `UnitError` when the units do not convert."""
    if src is None or src == dst:
        return 1.0, 0.0
    zero, one = convert(np.array([0.0, 1.0]), src, dst or "dimensionless")  # as core.units does
    return float(one - zero), float(zero)


class RouteTable:
    """Resolved routes and per-(twin, channel) slots; arrays grow as new routes appear."""

    def __init__(self, registry: TypeRegistry, twin_types: MappingABC[str, str],
                 rate_full_range_s: float | None) -> None:
        self.registry = registry
        self.twin_types = twin_types
        self.rate_full_range_s = rate_full_range_s
        self._by_key: dict[tuple[Any, ...], int] = {}
        self._by_names: dict[tuple[Any, ...], np.ndarray] = {}
        self._channels: dict[str, dict[str, Channel] | None] = {}
        self._templates: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._rows: list[tuple[Any, ...]] = []
        self._arrays: dict[str, np.ndarray] = {}
        # slots
        self._slot_of: dict[tuple[str, str], int] = {}
        self.slot_twin: list[str] = []
        self.slot_channel: list[str] = []
        self.last_value = np.zeros(0)
        self.last_ts = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._rows)

    def clear_routes(self) -> None:
        """Forget resolved routes (after the mapping, types or twins changed); slots stay."""
        self._by_key.clear()
        self._by_names.clear()
        self._channels.clear()
        self._templates.clear()
        self._rows.clear()
        self._arrays = {}

    # --- resolution --------------------------------------------------------------------------
    def _channels_of(self, type_id: str) -> dict[str, Channel] | None:
        if type_id not in self._channels:
            try:
                self._channels[type_id] = dict(self.registry.component_channels(type_id))
            except NotFoundError:
                self._channels[type_id] = None
        return self._channels[type_id]

    def route(self, rule: Rule, twin: str | None, name: str, unit: str | None = None) -> int:
        """The route id of one raw value; resolved on first use, then a dict hit."""
        key = (rule.index, twin, name, unit)
        rid = self._by_key.get(key)
        if rid is None:
            rid = self._by_key[key] = self._resolve(rule, twin, name, unit)
        return rid

    def routes(self, rule: Rule, twin: str | None, names: tuple[str, ...]) -> np.ndarray:
        """Route ids of a message's names; one dict hit per message once the device is known."""
        key = (rule.index, twin, names)
        arr = self._by_names.get(key)
        if arr is None:
            arr = np.fromiter((self.route(rule, twin, n) for n in names), np.int64, len(names))
            if len(self._by_names) > 500_000:
                self._by_names.clear()
            self._by_names[key] = arr
        return arr

    def _add(self, row: tuple[Any, ...]) -> int:
        self._rows.append(row)
        self._arrays = {}
        return len(self._rows) - 1

    def _resolve(self, rule: Rule, twin: str | None, name: str, unit: str | None) -> int:
        """A route is a per-(rule, asset type, name, unit) template plus the twin's slot."""
        type_id = self.twin_types.get(twin) if twin else None
        tkey = (rule.index, type_id, name, unit)
        template = self._templates.get(tkey)
        if template is None:
            template = self._templates[tkey] = self._template(rule, type_id, name, unit)
        a, b, lo, hi, rate, code, boolean, channel, ch_unit, why = template
        if code == OK and type_id is not None:
            slot = self._slot(twin or "", channel)
        else:
            slot = -1
            if code == UNKNOWN_TWIN or type_id is None:
                code = UNKNOWN_TWIN
                why = ("the mapping gives no twin id" if not twin else
                       f"twin {twin!r} does not exist" if twin not in self.twin_types else
                       f"twin {twin!r} has unknown asset type {self.twin_types[twin]!r}")
            elif code == UNKNOWN_CHANNEL:
                why = f"asset type {type_id!r} of {twin!r} has no channel {channel!r}"
        return self._add((a, b, lo, hi, rate, code, boolean, slot, twin, channel, ch_unit, why))

    def _template(self, rule: Rule, type_id: str | None, name: str,
                  unit: str | None) -> tuple[Any, ...]:
        ov = rule.override(name)
        channel = (ov.channel if ov and ov.channel else None) or name
        inf = math.inf
        if ov is not None and ov.ignore:
            return (1.0, 0.0, -inf, inf, inf, IGNORED, False, channel, None, "ignored by the mapping")
        channels = self._channels_of(type_id) if type_id is not None else None
        if channels is None:
            return (1.0, 0.0, -inf, inf, inf, UNKNOWN_TWIN, False, channel, None, "")
        ch = channels.get(channel)
        if ch is None:
            return (1.0, 0.0, -inf, inf, inf, UNKNOWN_CHANNEL, False, channel, None, "")
        src = unit or (ov.unit if ov else None)
        try:
            a, b = _affine(src, ch.unit)
        except UnitError as err:
            return (1.0, 0.0, -inf, inf, inf, UNIT_MISMATCH, False, channel, None,
                    f"{channel!r}: {err.message}")
        scale, offset = (ov.scale, ov.offset) if ov else (1.0, 0.0)
        lo = -inf if ch.min is None else float(ch.min)
        hi = inf if ch.max is None else float(ch.max)
        rate = ov.max_rate if ov and ov.max_rate else inf
        if rate == inf and self.rate_full_range_s and math.isfinite(hi - lo):
            rate = (hi - lo) / self.rate_full_range_s
        return (scale * a, offset * a + b, lo, hi, rate, OK, ch.type == "boolean", channel, ch.unit, "")

    def _slot(self, twin: str, channel: str) -> int:
        key = (twin, channel)
        slot = self._slot_of.get(key)
        if slot is None:
            slot = self._slot_of[key] = len(self.slot_twin)
            self.slot_twin.append(twin)
            self.slot_channel.append(channel)
            if slot >= len(self.last_value):  # grow by doubling: 100 k slots cost 17 copies
                cap = max(1024, 2 * len(self.last_value))
                self.last_value = np.concatenate([self.last_value,
                                                  np.full(cap - len(self.last_value), np.nan)])
                self.last_ts = np.concatenate([self.last_ts,
                                               np.full(cap - len(self.last_ts), NO_TS, np.int64)])
        return slot

    # --- arrays ------------------------------------------------------------------------------
    def array(self, name: str) -> np.ndarray:
        """One route column as a numpy array (rebuilt only after new routes were added)."""
        arr = self._arrays.get(name)
        if arr is None:
            if not self._arrays and self._rows:
                cols = list(zip(*self._rows, strict=True))
                for i, (col, dtype) in enumerate(_COLUMNS.items()):
                    if dtype is not object:
                        self._arrays[col] = np.array(cols[i], dtype=dtype)
            arr = self._arrays.get(name)
            if arr is None:  # no routes yet
                arr = self._arrays[name] = np.zeros(0, _COLUMNS[name])
        return arr

    def describe(self, rid: int) -> tuple[str | None, str | None, str, str | None]:
        """(twin, channel, reason text, unit) of a route, for messages in `Rejected`."""
        row = self._rows[rid]
        return row[8], row[9], row[11], row[10]


__all__ = ["IGNORED", "NO_TS", "OK", "ROUTE_REASONS", "RouteTable"]
