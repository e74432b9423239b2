"""The data-quality detector: channels that go silent or freeze more often than in normal operation.

Dropouts and communication loss show up as missing readings (NaN cells of a `ChannelFrame` on
its time grid, see `ChannelFrame.on_grid`); a stuck transmitter repeats its last value exactly.
Value-based detectors see neither (they fill gaps with the normal centre, and a frozen value is
a plausible one). Per row and channel the indicator is 1 when the reading is missing or equal to
the previous one; its normal rate is learned per channel (a coarse, quantized sensor repeats
often, a noisy analog one never). Score: over a trailing ``span`` of rows, the indicator's rate
above normal, averaged over channels; attribution: each channel's excess.
"""

from __future__ import annotations

import numpy as np

from twinloop.analytics.anomaly.base import BaseDetector, trailing_mean


class MissingDataDetector(BaseDetector):
    """Excess rate of missing or frozen readings per channel over a trailing ``span`` of rows."""

    name = "quality"
    rescale_features = False

    def __init__(self, span: int = 10) -> None:
        super().__init__()
        self.span = span

    @property
    def history_rows(self) -> int:
        return max(int(self.span), 1)

    @property
    def score_floor(self) -> float:
        """One channel missing or frozen in a twentieth of the span."""
        return 0.05 / max(len(getattr(self, "channels_", ())), 1)

    def _standardize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        missing = ~np.isfinite(x)
        frozen = np.zeros_like(missing)
        frozen[1:] = (x[1:] == x[:-1]) & ~missing[1:]
        return (missing | frozen).astype(np.float64)

    def _fit(self, z: np.ndarray) -> None:
        self.normal_rate_ = z.mean(axis=0)

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        excess = np.clip(trailing_mean(z, max(int(self.span), 1)) - self.normal_rate_, 0.0, None)
        return excess.mean(axis=1), excess


__all__ = ["MissingDataDetector"]
