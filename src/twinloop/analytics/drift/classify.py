"""Tell a drifting sensor from a change in the process.

A sensor that drifts moves alone: its residual shifts while the channels physically coupled to
it (same pump: flow, pressure, power, current) stay where they were. A process change — a worn
impeller, a partly closed valve downstream — moves several coupled channels together. So: find
the channels whose residual mean moved (a `DriftDetector`), then look at each coupling group:

* one channel of a group moved, the group's others did not → **sensor** drift on that channel;
* at least ``process_share`` of a group moved (or two channels, whichever is more) → **process**
  change on that group.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> x = rng.normal(size=(800, 3)); x[400:, 2] += np.linspace(0, 4, 400)
>>> [(f.kind, f.channels) for f in classify_drift(x[:300], x, ["flow", "head", "temp"])]
[('sensor', ['temp'])]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from twinloop.analytics.drift.detectors import DriftDetector, PageHinkley
from twinloop.core.errors import ValidationError

DriftKind = Literal["sensor", "process"]


@dataclass(frozen=True)
class DriftFinding:
    """Drift of ``kind`` on ``channels``, first seen at row ``onset`` (of the scanned residuals)."""

    kind: DriftKind
    channels: list[str]
    onset: int
    group: str


def component_groups(channels: Sequence[str], whole: str = "asset") -> dict[str, list[str]]:
    """Coupling groups from channel names: a component's channels (``bearing.temperature``,
    ``bearing.vibration``) move together, and so do the asset's own (flow, pressure, power),
    under the name ``whole``.

    >>> component_groups(["flow", "power", "bearing.temperature", "bearing.vibration"])
    {'asset': ['flow', 'power'], 'bearing': ['bearing.temperature', 'bearing.vibration']}
    """
    out: dict[str, list[str]] = {}
    for c in channels:
        out.setdefault(c.split(".", 1)[0] if "." in c else whole, []).append(c)
    return out


def classify_drift(
    reference: np.ndarray,
    residuals: np.ndarray,
    channels: Sequence[str],
    groups: Mapping[str, Sequence[str]] | None = None,
    detector: DriftDetector | None = None,
    process_share: float = 0.5,
) -> list[DriftFinding]:
    """Drift findings on ``residuals`` (rows × ``channels``) against a normal ``reference``.

    ``groups`` maps a group name to physically coupled channels (default: all channels are one
    group); a channel in no group is judged alone (always *sensor*).
    """
    names = list(channels)
    r = np.asarray(residuals, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != len(names):
        raise ValidationError(f"residuals have shape {r.shape}, expected (rows, {len(names)})")
    groups = dict(groups) if groups else {"all": names}
    unknown = {c for g in groups.values() for c in g} - set(names)
    if unknown:
        raise ValidationError(f"coupling groups name unknown channels {sorted(unknown)}")
    onsets = (detector or PageHinkley()).learn(np.asarray(reference, dtype=np.float64)).onsets(r)
    moved = {c: int(o) for c, o in zip(names, onsets.tolist(), strict=True) if o >= 0}
    out: list[DriftFinding] = []
    seen: set[str] = set()
    for name, members in groups.items():
        hit = [c for c in members if c in moved]
        seen.update(members)
        if not hit:
            continue
        need = max(2, int(np.ceil(process_share * len(members))))
        if len(members) > 1 and len(hit) >= need:
            out.append(DriftFinding("process", hit, min(moved[c] for c in hit), name))
        else:
            out.extend(DriftFinding("sensor", [c], moved[c], name) for c in hit)
    out.extend(DriftFinding("sensor", [c], o, "") for c, o in moved.items() if c not in seen)
    return sorted(out, key=lambda f: (f.onset, f.channels))


__all__ = ["DriftFinding", "DriftKind", "classify_drift", "component_groups"]
