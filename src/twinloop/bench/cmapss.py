"""NASA C-MAPSS harness: ``python -m twinloop.bench.cmapss --data DIR --subset FD001 --json``.

The standard protocol: train on ``train_FD00x.txt`` (targets capped at 125 cycles), predict at
the last cycle of every engine in ``test_FD00x.txt``, compare with ``RUL_FD00x.txt`` (truth not
clipped). The last line printed is one JSON object with ``rmse``, the PHM08 ``score``,
``coverage80`` (share of engines whose true RUL lies inside the predicted 80 % interval),
``engines`` and ``seconds``, plus the RMSE of a trivial baseline measured in the same run.

``--validate`` never reads the test files: it holds out a share of the *training* engines,
truncates each at several points (histories of at least 30 cycles ending 1–150 cycles before
failure, like the test set), and reports the same metrics on them. Models and
hyperparameters are chosen that way (see docs/rul.md). Works unchanged on all four subsets; on
FD002/FD004 the six operating regimes are found by clustering the settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from twinloop.analytics.rul import (
    GbmPrognoser,
    Prognoser,
    SimilarityPrognoser,
    Trajectories,
    coverage,
    phm08_score,
    rmse,
)
from twinloop.core.errors import TwinloopError, ValidationError

CAP = 125.0
COLUMNS = 26
SETTINGS = ("op_setting_1", "op_setting_2", "op_setting_3")
SENSORS = tuple(f"sensor_{i}" for i in range(1, 22))
MIN_HISTORY = 30
MAX_VALIDATION_RUL = 150


def read_runs(path: Path, *, train: bool) -> Trajectories:
    """One C-MAPSS train/test file (26 whitespace-separated numbers per row) as trajectories."""
    if not path.is_file():
        raise ValidationError(f"{path} not found", hint="--data must hold train/test/RUL_FD00x.txt")
    try:
        raw = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ValidationError(f"{path}: not a C-MAPSS file ({err})") from err
    if raw.shape[1] != COLUMNS:
        raise ValidationError(f"{path}: {raw.shape[1]} columns per row, expected {COLUMNS}")
    order = np.lexsort((raw[:, 1], raw[:, 0]))
    raw = raw[order]
    unit, cycle = raw[:, 0].astype(np.int64), raw[:, 1]
    rul = None
    if train:
        last = np.zeros(int(unit.max()) + 1)
        np.maximum.at(last, unit, cycle)
        rul = last[unit] - cycle
    return Trajectories(unit, cycle, raw[:, 2:5], raw[:, 5:], SENSORS, SETTINGS, rul, "cycle")


def load_subset(data: Path, subset: str) -> tuple[Trajectories, Trajectories, np.ndarray]:
    """Training runs, test runs and the true RUL of each test engine."""
    subset = subset.upper()
    train = read_runs(data / f"train_{subset}.txt", train=True)
    test = read_runs(data / f"test_{subset}.txt", train=False)
    truth_path = data / f"RUL_{subset}.txt"
    if not truth_path.is_file():
        raise ValidationError(f"{truth_path} not found")
    truth = np.loadtxt(truth_path, dtype=np.float64, ndmin=1).ravel()
    if truth.size != len(test.units):
        raise ValidationError(f"{truth_path}: {truth.size} values for {len(test.units)} test engines")
    return train, test, truth


def make_prognoser(model: str, seed: int, trees: int | None = None) -> Prognoser:
    """The prognosers the harness can run; ``gbm`` is the one chosen on validation."""
    # fewer rounds take proportionally larger steps (500 rounds at 0.03 is the validated default)
    params = None if trees is None else {"n_estimators": trees, "learning_rate": min(0.3, 15.0 / trees)}
    makers: dict[str, Callable[[], Prognoser]] = {
        "gbm": lambda: GbmPrognoser(cap=CAP, tree_params=params, seed=seed),
        "similarity": lambda: SimilarityPrognoser(cap=CAP, seed=seed),
    }
    if model not in makers:
        raise ValidationError(f"unknown model {model!r}", hint=f"use one of {', '.join(makers)}")
    return makers[model]()


def validation_cuts(runs: Trajectories, per_unit: int, seed: int) -> tuple[Trajectories, np.ndarray]:
    """Each engine truncated ``per_unit`` times like the test set; returns histories and true RUL."""
    rng = np.random.default_rng(seed)
    pieces, truth, unit_id = [], [], 0
    for start, length in zip(runs.starts, runs.lengths, strict=True):
        hi = min(MAX_VALIDATION_RUL, length - MIN_HISTORY)
        if hi < 1:
            continue
        for rul in rng.integers(1, hi + 1, per_unit):
            rows = np.arange(start, start + length - rul)
            piece = runs.take_rows(rows)
            pieces.append((np.full(len(rows), unit_id), piece))
            truth.append(float(rul))
            unit_id += 1
    return Trajectories(
        np.concatenate([u for u, _ in pieces]), np.concatenate([p.time for _, p in pieces]),
        np.vstack([p.settings for _, p in pieces]), np.vstack([p.sensors for _, p in pieces]),
        runs.sensor_names, runs.setting_names, None, runs.time_unit,
    ), np.array(truth)


def evaluate(prognoser: Prognoser, history: Trajectories, truth: np.ndarray) -> dict[str, Any]:
    dists = prognoser.predict_fleet(history)
    pred = np.array([d.mean for d in dists])
    lo, hi = np.array([d.interval(0.8) for d in dists]).T
    return {"rmse": round(rmse(pred, truth), 3), "score": round(phm08_score(pred, truth), 1),
            "engines": int(truth.size), "coverage80": round(coverage(truth, lo, hi), 3)}


def run(data: Path, subset: str, model: str = "gbm", validate: bool = False, seed: int = 0,
        share: float = 0.2, per_unit: int = 5, trees: int | None = None) -> dict[str, Any]:
    """Train and evaluate one subset; the dict is what ``--json`` prints."""
    started = time.perf_counter()
    if validate:
        train = read_runs(data / f"train_{subset.upper()}.txt", train=True)
        units = np.random.default_rng(seed).permutation(train.units)
        n_val = max(1, int(round(share * len(units))))
        fit_on, held = train.take_units(units[n_val:]), train.take_units(units[:n_val])
        history, truth = validation_cuts(held, per_unit, seed)
    else:
        fit_on, history, truth = load_subset(data, subset)
    prognoser = make_prognoser(model, seed, trees).fit(fit_on)
    result = {"subset": subset.upper(), "mode": "validation" if validate else "test", "model": model,
              **evaluate(prognoser, history, truth)}
    capped_mean = float(np.mean(np.minimum(fit_on.rul, CAP)))  # type: ignore[arg-type]
    result["baseline_rmse"] = round(rmse(np.full(truth.size, capped_mean), truth), 3)
    result["ratio_to_baseline"] = round(result["rmse"] / result["baseline_rmse"], 3)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twinloop.bench.cmapss",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train/test/RUL_FD00x.txt")
    parser.add_argument("--subset", default="FD001", help="FD001 … FD004")
    parser.add_argument("--model", default="gbm", help="gbm or similarity")
    parser.add_argument("--validate", action="store_true", help="hold out training engines; no test files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trees", type=int, default=None, help="boosting rounds (500; fewer = faster)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    try:
        result = run(args.data, args.subset, args.model, args.validate, args.seed, trees=args.trees)
    except TwinloopError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.json:
        mode = result["mode"]
        print(f"{result['subset']} {mode} ({result['model']}, {result['engines']} engines): "
              f"RMSE {result['rmse']} (baseline {result['baseline_rmse']}), PHM08 score {result['score']}, "
              f"80% interval coverage {result['coverage80']}, {result['seconds']} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
