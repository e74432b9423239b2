"""Vectorized checks and conversion over a whole batch; the slow path runs only for rejects.

`validate` takes the raw values of a batch (Python objects, as parsed) with their routes and
returns the accepted readings converted to their channel units, plus one `Row` per reading that
failed a check. `rate_of_change` then compares accepted readings with the last accepted value of
their twin-channel in time order; it is vectorized, and falls back to a loop only inside the
few twin-channels where a violation makes the order of decisions matter.

Timestamps are judged per message against a reference time (``ref``: the arrival time, or the
plant's announced time at arrival, see `twinloop.ingest.clock`) with per-message tolerances
(``fut``, ``age``, in ns, ``inf`` when unchecked) and a ``judge`` index into ``judges``, the names
reject messages give; without those columns the arrival time and the policy's tolerances judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from twinloop.core.readings import Quality
from twinloop.ingest.reorder import Columns, take
from twinloop.ingest.routes import IGNORED, NO_TS, ROUTE_REASONS, RouteTable

if TYPE_CHECKING:
    from twinloop.ingest.normalizer import NormalizePolicy

_REASONS = ["", "malformed", "ts_invalid", "unknown_twin", "unknown_channel", "unit_mismatch",
            "wrong_type", "not_finite", "out_of_range", "ts_future", "ts_too_old", "rate_of_change"]
_CODE = {r: i for i, r in enumerate(_REASONS)}
_BAD, _UNCERTAIN = np.uint8(Quality.BAD), np.uint8(Quality.UNCERTAIN)


@dataclass(frozen=True)
class Row:
    """One rejected reading, before it becomes a `Rejected` (which needs the message)."""

    msg: int
    route: int
    pos: int
    reason: str
    message: str
    value: float | None
    ts: int | None


def _floats(values: list[object], ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw values as float64 (NaN where not ``ok``) and the mask of those that converted."""
    n = len(values)
    if ok.all():
        try:
            return np.array(values, np.float64), ok
        except (OverflowError, TypeError, ValueError):
            pass  # an integer beyond float range: take the slow path below
    out = np.full(n, np.nan)
    ok = ok.copy()
    for i in np.flatnonzero(ok):
        try:
            out[i] = float(values[i])  # type: ignore[arg-type]
        except (OverflowError, TypeError, ValueError):
            ok[i] = False
    return out, ok


_JUDGING = ("ref", "fut", "age", "judge")


def validate(cols: Columns, values: list[object], bad: list[tuple[int, str, str]],
             routes: RouteTable, policy: NormalizePolicy,
             judges: tuple[str, ...] = ()) -> tuple[Columns, list[Row], int]:
    """Convert and check; returns (accepted columns with ``value``, rejected rows, ignored count)."""
    n = len(values)
    route = cols["route"]
    code = np.zeros(n, np.int8)
    rc = routes.array("code")[route] if n else np.zeros(0, np.int8)
    ignored = rc == IGNORED
    for rcode, reason in ROUTE_REASONS.items():
        code[rc == rcode] = _CODE[reason]
    notes: dict[int, str] = {}
    for i, reason, message in bad:
        if not ignored[i]:
            code[i] = _CODE[reason]
            notes[i] = message
    kinds = np.fromiter(map(type, values), object, n)
    numeric = np.equal(kinds, float) | np.equal(kinds, int)  # exact types: bool is no number here
    boolean = np.equal(kinds, bool) & routes.array("boolean")[route] if n else numeric
    raw, converted = _floats(values, numeric | boolean)
    code[(code == 0) & ~converted & ~ignored] = _CODE["wrong_type"]
    value = raw * routes.array("a")[route] + routes.array("b")[route]
    code[(code == 0) & ~np.isfinite(value) & ~ignored] = _CODE["not_finite"]
    quality = cols["quality"].copy()
    checked = (code == 0) & ~ignored & (quality != _BAD)
    lo, hi = routes.array("lo")[route], routes.array("hi")[route]
    margin = np.nan_to_num((hi - lo) * policy.range_margin, nan=0.0, posinf=0.0)
    outside = checked & ((value < lo - margin) | (value > hi + margin))
    if policy.range_action == "flag":
        quality[outside] = _BAD
    else:
        code[outside] = _CODE["out_of_range"]
    ts = cols["ts"].copy()
    ref, fut, old = _judging(cols, policy)
    ok = (code == 0) & ~ignored
    skew = ok & (ts - ref > fut)
    age = ok & (ref - ts > old)
    if policy.skew_action == "restamp":
        fix = skew | age
        ts[fix] = ref[fix]
        quality[fix] = np.maximum(quality[fix], _UNCERTAIN)
    else:
        code[skew] = _CODE["ts_future"]
        code[age] = _CODE["ts_too_old"]
    judge = cols.get("judge")
    rows = [_row(int(i), cols, values, raw, value, code, notes, routes,
                 (int(ref[i]), float(fut[i]), float(old[i]),
                  judges[int(judge[i])] if judge is not None and judges else ""))
            for i in np.flatnonzero((code != 0) & ~ignored)]
    keep = (code == 0) & ~ignored
    kept = {k: v for k, v in cols.items() if k not in _JUDGING}
    out = take({**kept, "ts": ts, "quality": quality, "value": value}, keep)
    return out, rows, int(ignored.sum())


def _judging(cols: Columns, policy: NormalizePolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reference time, future tolerance, age tolerance) per reading."""
    if "ref" in cols:
        return cols["ref"], cols["fut"], cols["age"]
    n = len(cols["ts"])
    age = math.inf if policy.max_age_ns is None else float(policy.max_age_ns)
    return cols["recv"], np.full(n, float(policy.max_future_ns)), np.full(n, age)


def _row(i: int, cols: Columns, values: list[object], raw: np.ndarray, value: np.ndarray,
         code: np.ndarray, notes: dict[int, str], routes: RouteTable,
         judged: tuple[int, float, float, str]) -> Row:
    reason = _REASONS[code[i]]
    rid = int(cols["route"][i])
    twin, channel, why, unit = routes.describe(rid)
    ts = int(cols["ts"][i])
    ref, fut, old, judge = judged
    known = float(raw[i]) if np.isfinite(raw[i]) else None
    u = f" {unit}" if unit else ""
    if i in notes:
        message = notes[i]
    elif reason in ROUTE_REASONS.values():
        message = why
    elif reason == "wrong_type":
        message = f"{channel!r}: {values[i]!r:.60} is not a number"
    elif reason == "not_finite":
        message = f"{channel!r}: {values[i]!r:.60} is not a finite number"
    elif reason == "out_of_range":
        lo, hi = routes.array("lo")[rid], routes.array("hi")[rid]
        message = f"{channel!r}: {value[i]:g}{u} is outside {lo:g} … {hi:g}{u}"
        known = float(value[i])
    elif reason == "ts_future":
        where = f"ahead of {judge}" if judge else "after it was received"
        message = (f"{channel!r}: timestamp is {(ts - ref) / 1e9:.3g} s {where} "
                   f"(allowed: {fut / 1e9:g} s)")
        known = float(value[i])
    else:
        where = f"behind {judge}" if judge else "before it was received"
        message = (f"{channel!r}: timestamp is {(ref - ts) / 1e9:.3g} s {where} "
                   f"(allowed: {old / 1e9:g} s)")
        known = float(value[i])
    return Row(int(cols["msg"][i]), rid, int(cols["pos"][i]), reason, message, known, ts)


def rate_of_change(cols: Columns, routes: RouteTable) -> tuple[Columns, list[Row]]:
    """Reject readings that moved faster than their channel's max rate since the last accepted one;
    accepted readings update the per-slot last value and time."""
    if not cols or len(cols["msg"]) == 0:
        return cols, []
    slot = routes.array("slot")[cols["route"]]
    rate = routes.array("rate")[cols["route"]]
    ts, value = cols["ts"], cols["value"]
    live = cols["quality"] != _BAD
    order = np.lexsort((ts, slot))
    s, t, v, r, lv = slot[order], ts[order], value[order], rate[order], live[order]
    first = np.ones(len(s), bool)
    first[1:] = s[1:] != s[:-1]
    prev_t = np.where(first, routes.last_ts[s], np.roll(t, 1))
    prev_v = np.where(first, routes.last_value[s], np.roll(v, 1))
    checkable = lv & np.isfinite(r) & (prev_t != NO_TS)
    dt = (t - prev_t) / 1e9
    with np.errstate(invalid="ignore"):  # no max rate (inf) times dt 0: not checkable anyway
        viol = checkable & (dt > 0) & (np.abs(v - prev_v) > r * dt)
    reject = np.zeros(len(s), bool)
    if viol.any():
        reject = _sequential(s, t, v, r, lv, routes, np.unique(s[viol]))
    acc = ~reject & lv
    # the newest accepted reading per slot becomes the slot's last value
    idx = np.flatnonzero(acc)
    if len(idx):
        last = idx[np.r_[s[idx][1:] != s[idx][:-1], True]]
        newer = t[last] > routes.last_ts[s[last]]
        routes.last_ts[s[last[newer]]] = t[last[newer]]
        routes.last_value[s[last[newer]]] = v[last[newer]]
    rows = []
    for j in np.flatnonzero(reject):
        i = int(order[j])
        twin, channel, _, unit = routes.describe(int(cols["route"][i]))
        u = f" {unit}" if unit else ""
        rows.append(Row(int(cols["msg"][i]), int(cols["route"][i]), int(cols["pos"][i]),
                        "rate_of_change", f"{channel!r}: {v[j]:g}{u} changed faster than "
                        f"{r[j]:g}{u}/s since the last accepted reading", float(v[j]), int(t[j])))
    keep = np.ones(len(s), bool)
    keep[order[reject]] = False
    return take(cols, keep), rows


def _sequential(s: np.ndarray, t: np.ndarray, v: np.ndarray, r: np.ndarray, live: np.ndarray,
                routes: RouteTable, slots: np.ndarray) -> np.ndarray:
    """Decide the violating slots reading by reading: a rejected spike must not make the next,
    normal reading look like a jump."""
    reject = np.zeros(len(s), bool)
    for slot in slots.tolist():
        last_t, last_v = int(routes.last_ts[slot]), float(routes.last_value[slot])
        for j in np.flatnonzero(s == slot).tolist():
            if not live[j]:
                continue
            dt = (int(t[j]) - last_t) / 1e9
            if last_t != NO_TS and dt > 0 and abs(v[j] - last_v) > r[j] * dt:
                reject[j] = True
                continue
            if t[j] >= last_t:
                last_t, last_v = int(t[j]), float(v[j])
    return reject


__all__ = ["Row", "rate_of_change", "validate"]
