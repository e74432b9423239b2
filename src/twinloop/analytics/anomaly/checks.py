"""The conformance battery every `Detector` passes (run by tests/conformance/test_detectors.py).

Each check is ``check_x(factory)`` with ``factory()`` returning a fresh, unlearned detector, and
raises ``AssertionError`` naming the detector and what broke. The data is small and synthetic:
three correlated channels plus noise, with a clear fault (one channel breaking the correlation)
in the last rows of the scored batch.

>>> from twinloop.analytics.anomaly.pca import PcaDetector
>>> run_checks(lambda: PcaDetector(window=3))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twinloop.analytics.anomaly.base import Detector
from twinloop.analytics.anomaly.frame import ChannelFrame
from twinloop.core.errors import ConflictError, ValidationError
from twinloop.core.readings import ReadingBatch

Factory = Callable[[], Detector]
CHANNELS = ("flow", "power", "temperature", "vibration")
FAULT_ROWS = 20


def normal_frame(n: int = 400, seed: int = 0, start_ns: int = 0) -> ChannelFrame:
    """Normal operation: flow drives power and temperature; vibration is independent noise."""
    rng = np.random.default_rng(seed)
    flow = 100.0 + 10.0 * np.sin(np.linspace(0.0, 6.0, n)) + rng.normal(0.0, 1.0, n)
    power = 0.5 * flow + rng.normal(0.0, 0.5, n)
    temperature = 40.0 + 0.1 * flow + rng.normal(0.0, 0.3, n)
    vibration = 2.0 + rng.normal(0.0, 0.1, n)
    ts = start_ns + np.arange(n, dtype=np.int64) * 1_000_000_000
    return ChannelFrame(ts, CHANNELS, np.column_stack([flow, power, temperature, vibration]), "asset-1")


def faulty_frame(n: int = 200, seed: int = 1) -> ChannelFrame:
    """Normal rows, then `FAULT_ROWS` where power jumps by ~7 of its standard deviations (50 of its noise)."""
    f = normal_frame(n, seed, start_ns=10**12)
    values = f.values.copy()
    values[-FAULT_ROWS:, 1] += 25.0
    return ChannelFrame(f.ts_ns, f.channels, values, f.asset_id)


def check_shapes(factory: Factory) -> None:
    """Scores are one finite float per row; attributions one row per row, one column per channel."""
    d = factory().learn(normal_frame())
    test = faulty_frame()
    scores, attr = d.score(test)
    name = d.name
    assert scores.shape == (len(test),), f"{name}: scores shape {scores.shape}"
    assert attr.shape == (len(test), len(CHANNELS)), f"{name}: attributions shape {attr.shape}"
    assert np.isfinite(scores).all(), f"{name}: non-finite scores"
    empty_scores, empty_attr = d.score(test.rows(0, 0))
    assert empty_scores.shape == (0,) and empty_attr.shape == (0, len(CHANNELS)), f"{name}: empty batch"


def check_attributions(factory: Factory) -> None:
    """Attributions are shares: non-negative, each row sums to 1."""
    d = factory().learn(normal_frame())
    _, attr = d.score(faulty_frame())
    assert (attr >= 0).all(), f"{d.name}: negative attribution"
    assert np.allclose(attr.sum(axis=1), 1.0), f"{d.name}: attribution rows do not sum to 1"


def check_detects_and_explains(factory: Factory) -> None:
    """The faulty rows score above 95 % of the batch's normal rows (tree detectors saturate beyond the
    training range, so not above all of them), and power leads the attribution."""
    d = factory().learn(normal_frame())
    scores, attr = d.score(faulty_frame())
    tail = scores[-FAULT_ROWS // 2 :]  # smoothed detectors need a few rows to catch up
    normal = scores[: -FAULT_ROWS - 10]
    assert np.median(tail) > np.quantile(normal, 0.95), f"{d.name}: fault not above normal"
    assert int(attr[-FAULT_ROWS // 2 :].mean(axis=0).argmax()) == 1, f"{d.name}: power does not lead"


def check_deterministic(factory: Factory) -> None:
    """Two detectors with the same parameters (and seed) learn and score identically."""
    a = factory().learn(normal_frame()).score(faulty_frame())
    b = factory().learn(normal_frame()).score(faulty_frame())
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), "same seed, different scores"


def check_no_mutation(factory: Factory) -> None:
    """Learning and scoring leave their inputs untouched; scoring leaves the detector untouched."""
    train, test = normal_frame(), faulty_frame()
    train_copy, test_copy = train.values.copy(), test.values.copy()
    d = factory().learn(train)
    first = d.score(test)
    second = d.score(test)
    unchanged = np.array_equal(train.values, train_copy) and np.array_equal(test.values, test_copy)
    assert unchanged, f"{d.name}: an input changed"
    assert np.array_equal(first[0], second[0]), f"{d.name}: scoring changed the detector"


def check_clone(factory: Factory) -> None:
    """`clone` is unlearned, has equal parameters, and learns to the same result."""
    d = factory().learn(normal_frame())
    c = d.clone()
    assert type(c) is type(d) and c is not d
    assert repr(c) == repr(factory()), f"{d.name}: clone parameters differ: {c!r}"
    try:
        c.score(faulty_frame())
    except ConflictError:
        pass
    else:
        raise AssertionError(f"{d.name}: a clone must not be learned")
    assert np.array_equal(c.learn(normal_frame()).score(faulty_frame())[0], d.score(faulty_frame())[0])


def check_inputs(factory: Factory) -> None:
    """Reading batches and arrays work like frames; channel order and missing values are handled;
    too little data is refused with a `ValidationError`."""
    train = normal_frame()
    d = factory().learn(train)
    test = faulty_frame()
    ref = d.score(test)[0]
    n, m = test.values.shape
    batch = ReadingBatch.from_arrays(
        "asset-1", np.tile(np.array(CHANNELS, dtype=object), n), np.repeat(test.ts_ns, m), test.values.ravel()
    )
    assert np.allclose(d.score(batch)[0], ref), f"{d.name}: batch and frame disagree"
    shuffled = test.select(CHANNELS[::-1])
    assert np.allclose(d.score(shuffled)[0], ref), f"{d.name}: channel order matters"
    holes = test.values.copy()
    holes[::7, 2] = np.nan
    s, a = d.score(ChannelFrame(test.ts_ns, test.channels, holes))
    assert np.isfinite(s).all() and np.isfinite(a).all(), f"{d.name}: NaN readings break scoring"
    try:
        factory().learn(train.rows(0, 3))
    except ValidationError:
        pass
    else:
        raise AssertionError(f"{d.name}: learning from 3 rows must be refused")


CHECKS: list[Callable[[Factory], None]] = [
    check_shapes,
    check_attributions,
    check_detects_and_explains,
    check_deterministic,
    check_no_mutation,
    check_clone,
    check_inputs,
]


def run_checks(factory: Factory) -> None:
    """Every check, in order."""
    for check in CHECKS:
        check(factory)


__all__ = ["CHANNELS", "CHECKS", "FAULT_ROWS", "faulty_frame", "normal_frame", "run_checks"]
