"""SKAB's scoring, re-implemented in numpy: point-wise F1/FAR/MAR and the NAB changepoint score.

It follows the evaluation module SKAB uses (``tsad.evaluating``, copied into SKAB as
``core/metrics.py``):

* **binary**: TP, TN, FP, FN counted per file and summed; ``F1 = TP / (TP + (FN + FP)/2)``,
  ``FAR = FP / (FP + TN)``, ``MAR = FN / (FN + TP)`` (both in %, as SKAB prints them);
* **NAB**: a detection window per true changepoint (``right``: ``[cp, cp + w]``; ``center``:
  ``[cp − w/2, cp + w/2]``); overlapping windows are cut on the right ("cut right window");
  a predicted changepoint (a 0→1 or 1→0 edge of the predicted labels, and the first label
  itself) inside a window is a TP scored by the first one's position on SKAB's tanh curve from
  ``A_tp`` at the window start to ``A_fp`` at its end; predictions outside windows are FPs
  (``A_fp`` each), windows without one are FNs (``A_fn``). Scores are summed over files and
  reported as ``100·(S − S_null)/(S_perfect − S_null)``.

Profiles (A_tp, A_fp, A_fn): standard (1, −0.11, −1), low FP (1, −0.22, −1), low FN (1, −0.11, −2).

>>> t = np.arange(10)
>>> binary_counts(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0]))
(1, 1, 1, 1)
>>> cp = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
>>> round(float(nab_score([t], [cp], [cp], window=4)["standard"]), 2)  # flagged right at the changepoint
100.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROFILES: dict[str, tuple[float, float, float]] = {
    "standard": (1.0, -0.11, -1.0),
    "low_fp": (1.0, -0.22, -1.0),
    "low_fn": (1.0, -0.11, -2.0),
}
_DETAIL = 1000


def binary_counts(true: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    """``(TP, TN, FP, FN)`` of 0/1 labels."""
    t, p = np.asarray(true) == 1, np.asarray(pred) == 1
    return int((t & p).sum()), int((~t & ~p).sum()), int((~t & p).sum()), int((t & ~p).sum())


def binary_metrics(trues: Sequence[np.ndarray], preds: Sequence[np.ndarray]) -> dict[str, float]:
    """F1, FAR (%) and MAR (%) with counts summed over files."""
    tp = tn = fp = fn = 0
    for t, p in zip(trues, preds, strict=True):
        a, b, c, d = binary_counts(t, p)
        tp, tn, fp, fn = tp + a, tn + b, fp + c, fn + d
    return {
        "f1": tp / (tp + (fn + fp) / 2) if tp + fn + fp else 1.0,
        "far": 100.0 * fp / (fp + tn) if fp + tn else 0.0,
        "mar": 100.0 * fn / (fn + tp) if fn + tp else 0.0,
        "tp": tp, "tn": tn, "fp": fp, "fn": fn,
    }


def changepoints(pred: np.ndarray) -> np.ndarray:
    """SKAB's predicted changepoints: ``|diff(labels)|`` with the first label kept as is."""
    p = np.asarray(pred, dtype=np.int64)
    if len(p) == 0:
        return p
    return np.r_[p[0], np.abs(np.diff(p))]


def windows(true_cp_ts: np.ndarray, window: float, placement: str = "right") -> list[list[float]]:
    """Detection windows around true changepoints, overlaps cut on the right (SKAB's default)."""
    if placement == "right":
        bounds = [[float(t), float(t) + window] for t in true_cp_ts]
    elif placement == "center":
        bounds = [[float(t) - window / 2, float(t) + window / 2] for t in true_cp_ts]
    elif placement == "left":
        bounds = [[float(t) - window, float(t)] for t in true_cp_ts]
    else:
        raise ValueError(f"placement must be right, center or left, not {placement!r}")
    for i in range(len(bounds) - 1):
        if bounds[i][1] >= bounds[i + 1][0]:
            bounds[i + 1][0] = bounds[i][1]
    return bounds


def _curve(a_tp: float, a_fp: float) -> np.ndarray:
    x = np.linspace(-np.pi / 2, np.pi / 2, _DETAIL)
    return (a_tp - a_fp) / 2 * -np.tanh(x) / np.tanh(np.pi / 2) + (a_tp - a_fp) / 2 + a_fp


def _confusion(bounds: list[list[float]], cp_ts: np.ndarray) -> tuple[list[float], int, int]:
    """(relative positions of TPs in their windows, FP count, FN count) as SKAB counts them."""
    if not bounds:
        return [], len(cp_ts), 0
    fp = int((cp_ts < bounds[0][0]).sum())
    tps: list[float] = []
    fn = 0
    for i, (lo, hi) in enumerate(bounds):
        inside = cp_ts[(cp_ts >= lo) & (cp_ts <= hi)]
        if len(inside) == 0:
            fn += 1
        else:
            tps.append((float(inside[0]) - lo) / (hi - lo) if hi > lo else 0.0)
        if i + 1 < len(bounds):
            fp += int(((cp_ts > hi) & (cp_ts < bounds[i + 1][0])).sum())
    fp += int((cp_ts > bounds[-1][1]).sum())
    return tps, fp, fn


def nab_score(
    times: Sequence[np.ndarray],
    true_cps: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    window: float,
    placement: str = "right",
) -> dict[str, float]:
    """NAB scores (0 = null detector, 100 = perfect) per profile, summed over files.

    ``times`` are per-file timestamps (any unit, ``window`` in the same unit); ``true_cps`` 0/1
    changepoint labels; ``preds`` 0/1 *anomaly* labels (their edges are the predicted changepoints).
    """
    totals = {k: np.zeros(3) for k in PROFILES}
    for ts, cp, pred in zip(times, true_cps, preds, strict=True):
        ts = np.asarray(ts, dtype=np.float64)
        bounds = windows(ts[np.asarray(cp) == 1], window, placement)
        cp_ts = ts[changepoints(pred) == 1]
        tps, fp, fn = _confusion(bounds, cp_ts)
        for name, (a_tp, a_fp, a_fn) in PROFILES.items():
            curve = _curve(a_tp, a_fp)
            tp_score = sum(float(curve[min(int(r * _DETAIL), _DETAIL - 1)]) for r in tps)
            totals[name] += [a_fp * fp + a_fn * fn + tp_score, len(bounds) * a_fn, len(bounds) * a_tp]
    out = {}
    for name, (score, null, perfect) in totals.items():
        out[name] = 100.0 * (score - null) / (perfect - null) if perfect != null else 0.0
    return out


__all__ = ["PROFILES", "binary_counts", "binary_metrics", "changepoints", "nab_score", "windows"]
