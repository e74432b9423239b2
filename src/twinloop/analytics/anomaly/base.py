"""The `Detector` protocol and the base every built-in detector shares.

A detector learns what normal operation looks like from a batch, then scores another batch:
one score per time step (higher = more abnormal) and an **attribution** per channel. Attributions
are shares: non-negative, and each row sums to 1 (the channels that drove that step's score).
Thresholds and alerts are separate (`twinloop.analytics.thresholds`, `…alerts`).

scikit-learn's contract: constructors only store parameters; learned state ends in ``_``;
`clone` gives an unlearned copy with the same parameters.

>>> import numpy as np
>>> from twinloop.analytics.anomaly.pca import PcaDetector
>>> rng = np.random.default_rng(0)
>>> d = PcaDetector().learn(rng.normal(size=(300, 3)))
>>> x = rng.normal(size=(5, 3)); x[4, 1] += 12.0
>>> scores, attributions = d.score(x)
>>> int(scores.argmax()), int(attributions[4].argmax()), round(float(attributions[4].sum()), 6)
(4, 1, 1.0)
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from twinloop.analytics.anomaly.frame import ChannelFrame, FrameLike, as_frame
from twinloop.core.errors import ConflictError, ValidationError

MIN_ROWS = 8
SLOW_BLOCK = 40  # rows: variance in swings slower than this counts as slow
DIFF_LAG = 10  # rows: a slow channel is judged by its change over this many rows


@runtime_checkable
class Detector(Protocol):
    """Scores how abnormal readings are, and which channels drove it."""

    name: ClassVar[str]

    def learn(self, data: FrameLike) -> Self:
        """Learn normal operation from ``data``; returns self."""
        ...

    def score(self, data: FrameLike) -> tuple[np.ndarray, np.ndarray]:
        """``(scores (n,), attributions (n, channels))`` for the rows of ``data``."""
        ...

    def clone(self) -> Self:
        """An unlearned copy with the same parameters."""
        ...


def shares(weights: np.ndarray) -> np.ndarray:
    """Rows of non-negative weights scaled to sum to 1; an all-zero row is spread evenly.

    >>> shares(np.array([[1.0, 3.0], [0.0, 0.0]])).tolist()
    [[0.25, 0.75], [0.5, 0.5]]
    """
    w = np.nan_to_num(np.asarray(weights, dtype=np.float64), nan=0.0, posinf=1e300)
    w = np.clip(w, 0.0, None)
    total = w.sum(axis=1, keepdims=True)
    even = np.full_like(w, 1.0 / max(w.shape[1], 1))
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), even)


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Causal moving mean along axis 0 (the first rows average what they have), so streaming and
    batch scoring agree and no score looks into the future.

    >>> trailing_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist()
    [1.0, 2.0, 4.0, 6.0]
    """
    if window <= 1 or len(x) == 0:
        return x
    c = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:])), x], axis=0), axis=0)
    n = np.arange(1, len(x) + 1)
    lo = np.maximum(n - window, 0)
    counts = (n - lo).reshape(-1, *([1] * (x.ndim - 1)))
    return (c[n] - c[lo]) / counts


class BaseDetector:
    """Shared machinery: parameters and `clone`, channel alignment, scaling, NaN handling, features.

    Subclasses implement ``_fit(z)`` and ``_score(z) -> (scores, weights)`` on prepared data ``z``;
    ``weights`` are per-channel, non-negative, and become shares here. Preparation, learned on the
    training batch and replayed on every scored batch:

    1. standardize each channel with its training mean and spread; a missing reading becomes the
       training centre (0) — `MissingDataDetector` is the one that looks at gaps;
    2. ``stationarize`` (a share in (0, 1], None = off): a channel whose training variance sits
       mostly (more than that share) in slow swings longer than `SLOW_BLOCK` rows — a temperature
       creeping along — cannot have its *level* judged from a short normal batch, so the detector
       sees its change over `DIFF_LAG` rows instead;
    3. ``window`` > 1: a trailing mean over that many rows, so a small sustained shift stands out
       of the noise (collective anomalies last longer than one sample); causal, so batch and
       streaming scoring agree given the same history;
    4. re-standardize the features on their training statistics.
    """

    name: ClassVar[str] = "base"
    #: Whether prepared features are re-standardized (step 4); off for indicator features.
    rescale_features: ClassVar[bool] = True

    def __init__(self, window: int = 1, stationarize: float | None = None) -> None:
        self.window = window
        self.stationarize = stationarize

    # --- scikit-learn style parameters ---------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters by name (what `clone` copies)."""
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self"}

    def clone(self) -> Self:
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # --- learning and scoring --------------------------------------------------------------------
    def learn(self, data: FrameLike) -> Self:
        frame = as_frame(data)
        self._check_params()
        x = frame.values
        seen = np.isfinite(x).any(axis=0)
        if len(frame) < MIN_ROWS:
            raise ValidationError(
                f"{self.name} needs at least {MIN_ROWS} rows of normal operation to learn, got {len(frame)}"
            )
        if not seen.any():
            raise ValidationError(f"{self.name}: the training data has no finite values")
        finite = np.where(np.isfinite(x), x, np.nan)
        with np.errstate(all="ignore"):
            center = np.where(seen, np.nanmean(finite, axis=0), 0.0)
            spread = np.where(seen, np.nanstd(finite, axis=0), 0.0)
        # A channel that never moved in training still has a sensor resolution; never divide by ~0.
        self.channels_ = frame.channels
        self.center_ = center
        self.scale_ = np.maximum(spread, 1e-3 * np.maximum(np.abs(center), 1.0))
        z = self._standardize(x)
        self.slow_ = self._slow_channels(z)
        f = self._transform(z)
        warmup = self.history_rows
        if len(f) - warmup >= MIN_ROWS:  # the first rows' means are over fewer rows: not typical
            f = f[warmup:]
        self.feature_center_ = f.mean(axis=0) if self.rescale_features else np.zeros(f.shape[1])
        self.feature_scale_ = (
            np.maximum(f.std(axis=0), 1e-9) if self.rescale_features else np.ones(f.shape[1])
        )
        self._fit((f - self.feature_center_) / self.feature_scale_)
        self.n_learned_ = len(frame)
        return self

    def score(self, data: FrameLike) -> tuple[np.ndarray, np.ndarray]:
        self._check_learned()
        frame = align(as_frame(data), self.channels_, positional=isinstance(data, np.ndarray), who=self.name)
        if len(frame) == 0:
            return np.zeros(0), np.zeros((0, len(self.channels_)))
        scores, weights = self._score(self.features(frame.values))
        scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=1e300)
        return scores, shares(weights)

    def features(self, x: np.ndarray) -> np.ndarray:
        """Raw rows (time × learned channels) → what the model sees (steps 1-4)."""
        f = self._transform(self._standardize(x))
        return (f - self.feature_center_) / self.feature_scale_

    @property
    def score_floor(self) -> float:
        """The smallest spread of scores that means something (0: any); ensembles normalize with it."""
        return 0.0

    @property
    def history_rows(self) -> int:
        """Rows before the first scored one that a fully formed score needs (smoothing, changes)."""
        return int(self.window) - 1 + (DIFF_LAG if self.stationarize is not None else 0)

    # --- for subclasses ---------------------------------------------------------------------------
    def _fit(self, z: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _standardize(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.center_) / self.scale_
        return np.where(np.isfinite(z), z, 0.0)

    def _slow_channels(self, z: np.ndarray) -> np.ndarray:
        blocks = len(z) // SLOW_BLOCK
        if self.stationarize is None or blocks < 3:
            return np.zeros(z.shape[1], dtype=bool)
        means = z[: blocks * SLOW_BLOCK].reshape(blocks, SLOW_BLOCK, -1).mean(axis=1)
        return means.var(axis=0) > float(self.stationarize) * np.maximum(z.var(axis=0), 1e-12)

    def _transform(self, z: np.ndarray) -> np.ndarray:
        if self.slow_.any():
            change = np.zeros_like(z[:, self.slow_])
            change[DIFF_LAG:] = z[DIFF_LAG:, self.slow_] - z[:-DIFF_LAG, self.slow_]
            z = z.copy()
            z[:, self.slow_] = change
        return trailing_mean(z, int(self.window))

    def _check_params(self) -> None:
        if int(self.window) < 1:
            raise ValidationError(f"{self.name}: window must be >= 1, got {self.window}")
        if self.stationarize is not None and not 0.0 < float(self.stationarize) <= 1.0:
            raise ValidationError(f"{self.name}: stationarize must be in (0, 1] or None")

    def _check_learned(self) -> None:
        if not hasattr(self, "channels_"):
            raise ConflictError(
                f"{self.name} detector has not learned yet", hint="call learn() on normal operation first"
            )


def align(
    frame: ChannelFrame, channels: tuple[str, ...], positional: bool = False, who: str = ""
) -> ChannelFrame:
    """``frame`` with exactly the learned ``channels``; channels it lacks become missing readings.

    A plain array of the right width is taken column by column; a batch sharing no channel with
    what was learned is refused (it is the wrong asset or the wrong type, not a quiet one).
    """
    if frame.channels == channels:
        return frame
    if positional and frame.values.shape[1] == len(channels):
        return ChannelFrame(frame.ts_ns, channels, frame.values, frame.asset_id)
    if not set(frame.channels) & set(channels):
        raise ValidationError(
            f"{who}: the batch has none of the learned channels {list(channels)[:5]}…",
            hint="score readings of the asset (type) the detector learned",
        )
    return frame.select(channels)


def crossval_scores(detector: Detector, data: FrameLike, folds: int = 4) -> np.ndarray:
    """Out-of-sample scores of every row of ``data``: each of ``folds`` contiguous blocks is scored
    by a clone learned on the others (with the rows before the block as history, as in operation).

    In-sample scores flatter detectors that memorize (MSET, autoencoders); a threshold calibrated
    on them fires on everything new. Calibrate on these instead.
    """
    frame = as_frame(data)
    edges = np.linspace(0, len(frame), folds + 1).round().astype(int)
    if folds < 2 or len(frame) - int(np.diff(edges).max()) < MIN_ROWS:
        raise ValidationError(f"need more rows for {folds}-fold calibration, got {len(frame)}")
    out = []
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        rest = np.r_[frame.values[:a], frame.values[b:]]
        model = detector.clone().learn(ChannelFrame.from_array(rest, frame.channels))
        lo = max(0, a - int(getattr(detector, "history_rows", 0)))
        out.append(model.score(frame.rows(lo, b))[0][a - lo :])
    return np.concatenate(out)


def calibration_scores(detector: Detector, data: FrameLike, folds: int = 4) -> np.ndarray:
    """Out-of-sample scores of ``data`` for calibrating a threshold: those a learned detector kept from
    its own learning (``oos_scores_``, an ensemble's), else `crossval_scores`."""
    kept = getattr(detector, "oos_scores_", None)
    if kept is not None and len(kept) == len(as_frame(data)):
        return np.asarray(kept, dtype=np.float64)
    return crossval_scores(detector, data, folds)


def holdout_scores(detector: Detector, data: FrameLike, fraction: float = 0.25) -> np.ndarray:
    """Scores of the last ``fraction`` of ``data`` from a clone learned on the rest.

    In-sample scores flatter detectors that memorize (MSET, autoencoders); a threshold calibrated
    on them fires on everything new. Calibrate on out-of-sample scores instead.
    """
    frame = as_frame(data)
    cut = int(round(len(frame) * (1.0 - fraction)))
    if cut < MIN_ROWS or len(frame) - cut < 2:
        raise ValidationError(f"need more rows for a holdout split, got {len(frame)}")
    model = detector.clone().learn(frame.rows(0, cut))
    return model.score(frame.rows(cut))[0]


__all__ = [
    "DIFF_LAG", "MIN_ROWS", "SLOW_BLOCK", "BaseDetector", "ChannelFrame", "Detector", "align",
    "calibration_scores", "crossval_scores", "holdout_scores", "shares", "trailing_mean",
]
