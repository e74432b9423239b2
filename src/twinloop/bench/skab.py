"""SKAB harness: twinloop's anomaly detection on the Skoltech Anomaly Benchmark, SKAB's protocol.

    python -m twinloop.bench.skab --data DIR [--detector NAME] [--json]

``DIR`` holds any subset of SKAB's folders (``valve1``, ``valve2``, ``other``, ``anomaly-free``);
every CSV with ``anomaly`` / ``changepoint`` columns is one experiment. Per file, the first 400
rows train the detector and the rest are scored; the threshold is calibrated on those 400 rows
alone (their out-of-sample scores, 4-fold, see `calibrate_threshold`), so nothing is
tuned per file or per folder. Metrics are taken on the test parts only, with counts summed over
files: point-wise F1, FAR and MAR (%), and the NAB changepoint score (standard profile) with a
60 s window to the right of each true changepoint. SKAB's own leaderboard NAB uses a 30 s window
centred on the changepoint; it is reported too (``nab_standard_30s_center``), and so are F1/FAR/MAR
over whole files with the training rows scored in-sample (``whole_file``), which is how SKAB's
notebooks count them (their FAR includes ~400 easy true negatives per file).

The last line printed is one JSON object:
``{"f1": …, "far": …, "mar": …, "nab_standard": …, "files": N, "detector": …}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from twinloop.analytics.anomaly import ChannelFrame, build_detector, crossval_scores
from twinloop.analytics.thresholds import QuantileThreshold
from twinloop.bench.nab import binary_metrics, nab_score
from twinloop.core.errors import ValidationError

TRAIN_ROWS = 400
LABELS = ("anomaly", "changepoint")

#: The detectors the harness knows by name; ``default`` is the chosen default (MSET: the best F1
#: and NAB of the built-in detectors on valve1 with the fixed settings below).
#: Every detector sees 60-row (60 s) trailing means — the time scale SKAB's own baselines use
#: (MSET's 60-sample moving mean, Conv-AE's 60-step windows) — with slow channels judged by
#: their change (``stationarize``, decided per file from its training rows).
FEATURES: dict[str, Any] = {"window": 60, "stationarize": 0.5}
SPECS: dict[str, dict[str, Any]] = {
    "default": {"detector": "mset", **FEATURES},
    "pca": {"detector": "pca", **FEATURES},
    "mset": {"detector": "mset", **FEATURES},
    "iforest": {"detector": "iforest", **FEATURES},
    "autoencoder": {"detector": "autoencoder", **FEATURES},
    "hst": {"detector": "hst", **FEATURES},
    "residual": {"detector": "residual", "covariance": True, **FEATURES},
    "ensemble": {"detector": "ensemble", "members": {"pca": FEATURES, "mset": FEATURES}},
}

#: One threshold rule for every detector and file: the 99th percentile of out-of-sample normal
#: scores (4-fold over the training rows), hysteresis halfway to the median, and 5 s above the
#: level before switching on.
THRESHOLD = {"quantile": 0.99, "margin": 0.0, "hysteresis": 0.5, "min_on": 5, "min_off": 5}


@dataclass(frozen=True)
class SkabFile:
    """One SKAB experiment: timestamps (s), channel values, and labels (None for anomaly-free)."""

    name: str
    ts_s: np.ndarray
    channels: tuple[str, ...]
    values: np.ndarray
    anomaly: np.ndarray | None
    changepoint: np.ndarray | None


def load_file(path: Path) -> SkabFile:
    """Read one SKAB CSV (``;``-separated, a ``datetime`` column first)."""
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=";"),
            convert_options=pacsv.ConvertOptions(timestamp_parsers=["%Y-%m-%d %H:%M:%S"]),
        )
    except (pa.ArrowInvalid, OSError) as err:
        raise ValidationError(f"{path}: not a readable SKAB CSV: {err}") from err
    names = table.column_names
    if not names or names[0] != "datetime":
        raise ValidationError(f"{path}: the first column must be 'datetime', got {names[:1]}")
    ts = table.column("datetime").cast(pa.timestamp("s")).cast(pa.int64()).to_numpy().astype(np.float64)
    channels = tuple(c for c in names[1:] if c not in LABELS)
    values = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                              for c in channels])
    labels = {c: table.column(c).to_numpy(zero_copy_only=False).astype(np.int64)
              for c in LABELS if c in names}
    return SkabFile(path.stem if path.parent.name == "" else f"{path.parent.name}/{path.stem}",
                    ts, channels, values, labels.get("anomaly"), labels.get("changepoint"))


def find_files(data_dir: Path) -> list[Path]:
    """Every CSV under ``data_dir``, in a stable (folder, numeric name) order."""
    if not data_dir.is_dir():
        raise ValidationError(f"{data_dir} is not a folder", hint="point --data at SKAB's data folder")

    def key(p: Path) -> tuple[str, int, str]:
        return (str(p.parent), int(p.stem) if p.stem.isdigit() else 10**9, p.stem)

    return sorted(data_dir.rglob("*.csv"), key=key)


def calibrate_threshold(detector: Any, train: ChannelFrame) -> QuantileThreshold:
    """The threshold from the training rows only: their out-of-sample (4-fold) scores."""
    return QuantileThreshold(**THRESHOLD).calibrate(crossval_scores(detector, train, 4))


def predict(spec: dict[str, Any], f: SkabFile, train_rows: int = TRAIN_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels for the test part of one file, learned from its first ``train_rows`` rows, and
    for the whole file (training rows scored in-sample, as SKAB's notebooks do)."""
    frame = ChannelFrame.from_array(f.values, f.channels, (f.ts_s * 1e9).astype(np.int64))
    train = frame.rows(0, train_rows)
    detector = build_detector(spec).learn(train)
    threshold = calibrate_threshold(detector, train)
    scores, _ = detector.score(frame)  # the trailing window reaches back into the training rows
    mask, _ = threshold.apply(scores[train_rows:])
    whole, _ = threshold.apply(scores)
    return mask.astype(np.int64), whole.astype(np.int64)


def evaluate(
    data_dir: Path, detector: str = "default", train_rows: int = TRAIN_ROWS, window_s: float = 60.0
) -> dict[str, Any]:
    """Run one detector over every labelled file under ``data_dir``; SKAB metrics summed over files."""
    if detector not in SPECS:
        raise ValidationError(f"unknown detector {detector!r}", hint=f"one of: {', '.join(SPECS)}")
    files = [f for f in map(load_file, find_files(data_dir)) if f.anomaly is not None]
    if not files:
        raise ValidationError(f"no labelled SKAB CSV files under {data_dir}")
    trues, cps, preds, times, wholes = [], [], [], [], []
    for f in files:
        if len(f.ts_s) <= train_rows + 1:
            raise ValidationError(f"{f.name}: only {len(f.ts_s)} rows, the protocol trains on {train_rows}")
        test, whole = predict(SPECS[detector], f, train_rows)
        preds.append(test)
        wholes.append(whole)
        trues.append(f.anomaly[train_rows:])
        cps.append(f.changepoint[train_rows:] if f.changepoint is not None else np.zeros(0))
        times.append(f.ts_s[train_rows:])
    out = binary_metrics(trues, preds)
    nab = nab_score(times, cps, preds, window=window_s, placement="right")
    skab_nab = nab_score(times, cps, preds, window=30.0, placement="center")
    whole = binary_metrics([f.anomaly for f in files], wholes)
    return {
        "f1": round(out["f1"], 4),
        "far": round(out["far"], 2),
        "mar": round(out["mar"], 2),
        "nab_standard": round(nab["standard"], 2),
        "nab_low_fp": round(nab["low_fp"], 2),
        "nab_low_fn": round(nab["low_fn"], 2),
        "nab_standard_30s_center": round(skab_nab["standard"], 2),
        "whole_file": {k: round(whole[k], 4 if k == "f1" else 2) for k in ("f1", "far", "mar")},
        "files": len(files),
        "detector": detector,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m twinloop.bench.skab", description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="SKAB data folder (valve1/, … below it)")
    ap.add_argument("--detector", default="default", choices=sorted(SPECS))
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--window", type=float, default=60.0, help="NAB window [s] right of a changepoint")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        result = evaluate(args.data, args.detector, window_s=args.window)
    except ValidationError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if not args.json:
        print(f"SKAB {args.data}: {result['files']} files, detector {args.detector}, "
              f"first {TRAIN_ROWS} rows of each file train")
        print(f"  F1 {result['f1']:.3f}  FAR {result['far']:.2f} %  MAR {result['mar']:.2f} %  "
              f"NAB standard ({args.window:g} s right) {result['nab_standard']:.2f}")
        print("  published best (full SKAB, Conv-AE): F1 0.78, FAR 13.55 %")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
