"""When an asset counts as operating, so its anomalies are judged only then.

A stopped machine's sensors mostly follow the weather: a standby pump's bearing and winding cool to
ambient and swing with day and night, which a model learned from two hours of data calls abnormal.
Condition monitoring therefore gates detection on the machine's state: learn and score only rows
where a channel (speed, load, flow) was above a level for a settling time, so start-up transients
count neither.

>>> gate = OperatingGate.parse("speed > 100 for 10m")
>>> gate
OperatingGate(channel='speed', above=100.0, settle_s=600.0)
>>> ts = np.arange(8, dtype=np.int64) * 300 * 10**9          # a row every 5 minutes
>>> speed = np.array([0, 1480, 1480, 1480, 1480, 0, 1480, 1480.0])
>>> gate.mask(ts, speed).tolist()   # settled once running for 10 minutes since the last stop
[False, False, False, True, True, False, False, False]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from twinloop.core.errors import ValidationError

_GATE = re.compile(r"^\s*([A-Za-z0-9_.:\-]+)\s*>\s*([-+0-9.eE]+)\s*(?:for\s+(\d+(?:\.\d+)?)\s*([smh]?))?\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class OperatingGate:
    """Operating means ``channel`` above ``above`` without a break for at least ``settle_s``."""

    channel: str
    above: float
    settle_s: float = 600.0

    @classmethod
    def parse(cls, text: str) -> OperatingGate:
        """``"<channel> > <level> [for <n>s|m|h]"``, e.g. ``"speed > 100 for 10m"``."""
        m = _GATE.match(text)
        if m is None:
            raise ValidationError(
                f"cannot read operating condition {text!r}",
                hint='write "<channel> > <level> for <duration>", e.g. "speed > 100 for 10m"')
        settle = float(m.group(3)) * _UNIT_S[m.group(4)] if m.group(3) else 600.0
        return cls(m.group(1), float(m.group(2)), settle)

    def mask(self, ts_ns: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Per row: operating, and for ``settle_s`` since the run's first operating row. A missing value
        is not operating; before the first row the state is unknown, so the first ``settle_s`` of data
        never count."""
        ts = np.asarray(ts_ns, dtype=np.int64)
        on = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf) > self.above
        if len(ts) == 0:
            return on
        # when the current run began: the first operating row after a non-operating one (the data's
        # first row, if it starts operating: what came before is unknown, as if it had just started)
        began = on & ~np.r_[False, on[:-1]]
        run_start = np.maximum.accumulate(np.where(began, ts, np.iinfo(np.int64).min))
        return on & (ts - run_start >= int(self.settle_s * 1e9))


def parse_gates(spec: Mapping[str, str | None]) -> dict[str, OperatingGate | None]:
    """Gates per asset type from settings, e.g. ``{"Pump": "speed > 100 for 10m"}``; an empty text,
    ``off`` or None means the type has none (judged whenever it reports).

    >>> parse_gates({"Pump": "speed > 100", "Tank": "off"})["Tank"] is None
    True
    """
    return {type_id: None if not text or str(text).strip().lower() in ("off", "none") else
            OperatingGate.parse(str(text)) for type_id, text in spec.items()}


__all__ = ["OperatingGate", "parse_gates"]
