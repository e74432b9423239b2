"""Filter health: is each twin's filter consistent with its readings, over a rolling window?

A consistent filter's normalized innovation squared (NIS) is χ²-distributed with as many degrees of
freedom as channels were measured, so about 95 % of its steps fall inside the two-sided 95 % band;
each channel's normalized innovation ``ν/σ`` is about N(0, 1). A wrong plant fact (the old preset's
55 m static head) shows as NIS in the thousands and channels tens of σ off; a filter too timid
(noise set too high) as NIS below the band. `HealthWindow` keeps the last ``window`` steps of
every twin (rows, like the filter) and judges them.

>>> h = HealthWindow(("a", "b"), window=50, min_epochs=10)
>>> h.grow(1)
>>> rng = np.random.default_rng(0)
>>> for _ in range(50):
...     z = rng.standard_normal((1, 2))
...     h.record(np.array([0]), (z**2).sum(axis=1), z)
>>> h.summary(0)["consistent"]
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Two-sided band the NIS of a consistent filter falls in 95 % of the time.
BAND = (0.025, 0.975)


def chi2_band(dof: int) -> tuple[float, float]:
    """The 2.5 % and 97.5 % quantiles of χ² with ``dof`` degrees of freedom."""
    from scipy.special import gammaincinv

    return (float(2.0 * gammaincinv(dof / 2.0, BAND[0])), float(2.0 * gammaincinv(dof / 2.0, BAND[1])))


class HealthWindow:
    """The last ``window`` steps of every twin: NIS inside its band, and each channel's ``ν/σ``."""

    def __init__(self, channels: tuple[str, ...], window: int = 600, min_epochs: int = 120,
                 min_share: float = 0.8, max_bias: float = 1.5) -> None:
        self.channels = channels
        self.window, self.min_epochs = int(window), int(min_epochs)
        self.min_share, self.max_bias = float(min_share), float(max_bias)
        m = len(channels)
        bands = np.array([chi2_band(k) for k in range(1, m + 1)]) if m else np.zeros((0, 2))
        self._lo = np.concatenate([[0.0], bands[:, 0]])  # index: channels measured
        self._hi = np.concatenate([[0.0], bands[:, 1]])
        self._inside = np.zeros((0, self.window), dtype=bool)
        self._z = np.full((0, self.window, m), np.nan)
        self._count = np.zeros(0, dtype=np.int64)
        self._next = np.zeros(0, dtype=np.int64)

    def grow(self, k: int) -> None:
        """Room for ``k`` more twins."""
        m = len(self.channels)
        self._inside = np.concatenate([self._inside, np.zeros((k, self.window), bool)])
        self._z = np.concatenate([self._z, np.full((k, self.window, m), np.nan)])
        self._count = np.concatenate([self._count, np.zeros(k, np.int64)])
        self._next = np.concatenate([self._next, np.zeros(k, np.int64)])

    def reset(self, rows: np.ndarray) -> None:
        """Forget the window of ``rows`` (after a recalibration: judge the new parameters afresh)."""
        self._count[rows] = 0
        self._next[rows] = 0
        self._z[rows] = np.nan

    def record(self, rows: np.ndarray, nis: np.ndarray, z: np.ndarray) -> None:
        """One step of ``rows``: their NIS and normalized innovations ``(k, m)`` (NaN = not measured)."""
        measured = np.isfinite(z).sum(axis=1)
        keep = measured > 0  # a step with nothing measured says nothing about consistency
        rows, nis, z, measured = rows[keep], nis[keep], z[keep], measured[keep]
        if not len(rows):
            return
        slot = self._next[rows]
        self._inside[rows, slot] = (nis >= self._lo[measured]) & (nis <= self._hi[measured])
        self._z[rows, slot] = z
        self._next[rows] = (slot + 1) % self.window
        self._count[rows] = np.minimum(self._count[rows] + 1, self.window)

    def share(self) -> np.ndarray:
        """Per twin: share of the window's steps whose NIS lies in the band (NaN before any step)."""
        n = self._count
        filled = np.arange(self.window)[None, :] < n[:, None]
        with np.errstate(invalid="ignore"):
            return np.where(n > 0, (self._inside & filled).sum(axis=1) / np.maximum(n, 1), np.nan)

    def summary(self, row: int) -> dict[str, Any]:
        """One twin's health: share in band, per-channel mean and std of ``ν/σ``, and a verdict."""
        n = int(self._count[row])
        z = self._z[row, :n] if n < self.window else self._z[row]
        share = float(self.share()[row]) if n else None
        with np.errstate(invalid="ignore"), _quiet():
            mean, std = np.nanmean(z, axis=0), np.nanstd(z, axis=0)
        channels = {c: {"mean": _num(mean[j]), "std": _num(std[j])} for j, c in enumerate(self.channels)}
        reason = None
        if n < self.min_epochs:
            consistent = None
            reason = f"judged after {self.min_epochs} steps; {n} so far"
        else:
            worst = int(np.nanargmax(np.abs(mean))) if np.isfinite(mean).any() else None
            bias = float(abs(mean[worst])) if worst is not None else 0.0
            consistent = bool(share is not None and share >= self.min_share and bias <= self.max_bias)
            if not consistent:
                reason = (f"NIS inside its 95 % band in {100 * (share or 0):.0f} % of the last {n} steps "
                          f"(expected about 95 %, at least {100 * self.min_share:.0f} %)")
                if worst is not None:
                    reason += f"; {self.channels[worst]} off by {mean[worst]:+.1f} σ on average"
        return {"consistent": consistent, "nis_in_band_share": share, "steps": n, "window": self.window,
                "reason": reason, "channels": channels}


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


class _quiet:
    """Silence numpy's 'mean of empty slice' for channels a twin never measured."""

    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: Any) -> None:
        self._w.__exit__(*exc)


__all__ = ["BAND", "HealthWindow", "chi2_band"]
