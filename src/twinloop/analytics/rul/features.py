"""Window features of degradation histories, computed for every row of a whole fleet at once.

For each (normalized) sensor: trailing means over several windows (denoised level), trailing
least-squares slopes (rate of degradation), a trailing standard deviation, and the change from
the unit's own first readings (units start at different health). Plus the age of the unit.
Everything is cumulative sums over the concatenated fleet, cut at unit boundaries: no loop over
units or rows.

>>> z = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
>>> f, names = window_features(z, np.array([0., 1, 2, 3, 0]), np.array([0, 0, 0, 0, 4]), ("s",),
...                            means=(2,), slopes=(3,), std_window=2, baseline=2)
>>> names
['age', 's:mean2', 's:slope3', 's:std2', 's:drift2']
>>> f[3].tolist(), f[4].tolist()
([3.0, 2.5, 1.0, 0.5, 2.0], [0.0, 10.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MEANS = (5, 10, 20, 30)
SLOPES = (10, 30, 10_000)
STD_WINDOW = 10
BASELINE = 20


def _csum(a: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(a, axis=0)])


def _window(cs: np.ndarray, rows: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Sum over rows lo … row (inclusive) from a leading-zero cumulative sum."""
    return cs[rows + 1] - cs[lo]


def window_features(
    z: np.ndarray,
    time: np.ndarray,
    row_start: np.ndarray,
    sensor_names: Sequence[str],
    rows: np.ndarray | None = None,
    *,
    means: Sequence[int] = MEANS,
    slopes: Sequence[int] = SLOPES,
    std_window: int = STD_WINDOW,
    baseline: int = BASELINE,
) -> tuple[np.ndarray, list[str]]:
    """Features ``(len(rows), n_features)`` at ``rows`` (default all) and their names.

    ``z`` is (n_rows, n_sensors), already normalized; ``row_start[i]`` is the first row of row
    ``i``'s unit; windows are trailing and shrink at the start of a unit.
    """
    n = len(z)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    start = row_start[rows]
    t = time - time[row_start]  # age within the unit keeps the slope sums well conditioned
    cz, ct, ctt = _csum(z), _csum(t), _csum(t * t)
    ctz = _csum(t[:, None] * z)
    cols: list[np.ndarray] = [t[rows][:, None]]
    names = ["age"]

    def lo_of(w: int) -> np.ndarray:
        return np.maximum(start, rows - w + 1)

    for w in means:
        lo = lo_of(w)
        cols.append(_window(cz, rows, lo) / (rows - lo + 1)[:, None])
        names += [f"{s}:mean{w}" for s in sensor_names]
    for w in slopes:
        lo = lo_of(w)
        k = (rows - lo + 1).astype(np.float64)[:, None]
        st, stt = _window(ct, rows, lo)[:, None], _window(ctt, rows, lo)[:, None]
        sz, stz = _window(cz, rows, lo), _window(ctz, rows, lo)
        den = k * stt - st * st
        cols.append(np.where(den > 1e-12, (k * stz - st * sz) / np.where(den > 1e-12, den, 1.0), 0.0))
        names += [f"{s}:slope{w if w < 10_000 else 'all'}" for s in sensor_names]
    lo = lo_of(std_window)
    k = (rows - lo + 1)[:, None]
    m1 = _window(cz, rows, lo) / k
    m2 = _window(_csum(z * z), rows, lo) / k
    cols.append(np.sqrt(np.maximum(m2 - m1 * m1, 0.0)))
    names += [f"{s}:std{std_window}" for s in sensor_names]
    # drift from the unit's own first `baseline` rows (clipped to what the row has seen)
    hi = np.minimum(start + baseline - 1, rows)
    first = _window(cz, hi, start) / (hi - start + 1)[:, None]
    cols.append(cols[1] - first if means else z[rows] - first)
    names += [f"{s}:drift{baseline}" for s in sensor_names]
    return np.hstack(cols), names


def sensor_of(feature: str) -> str:
    """The sensor a feature name belongs to (``'age'`` for the age feature).

    >>> sensor_of("bearing.temperature:slope30"), sensor_of("age")
    ('bearing.temperature', 'age')
    """
    return feature.rsplit(":", 1)[0]


__all__ = ["MEANS", "SLOPES", "sensor_of", "window_features"]
