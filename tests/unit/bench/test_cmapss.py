"""The C-MAPSS harness on tiny synthetic data sets written in the real whitespace format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinloop.analytics.rul.synthetic import synthetic_fleet, write_cmapss
from twinloop.bench.cmapss import load_subset, main, validation_cuts


def _write(folder: Path, subset: str, regimes: int) -> np.ndarray:
    train = synthetic_fleet(n_units=16, seed=1, regimes=regimes, life=(70, 140))
    test = synthetic_fleet(n_units=8, seed=2, regimes=regimes, life=(70, 140))
    return write_cmapss(folder, subset, train, test, seed=3)


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_harness_runs_the_standard_protocol_on_six_regimes(tmp_path: Path, capsys) -> None:
    subset = "FD004"
    truth = _write(tmp_path, subset, regimes=6)
    assert (tmp_path / f"train_{subset}.txt").read_text().splitlines()[0].endswith("  ")
    assert main(["--data", str(tmp_path), "--subset", subset, "--trees", "30", "--json"]) == 0
    out = _last_json(capsys)
    assert {"subset", "rmse", "score", "engines", "coverage80", "seconds"} <= set(out)
    assert out["subset"] == subset and out["engines"] == truth.size
    assert 0.0 <= out["coverage80"] <= 1.0 and out["score"] >= 0.0
    assert out["rmse"] < out["baseline_rmse"], "the prognoser must beat predicting the mean"


def test_loader_reads_truth_unclipped_and_sorts(tmp_path: Path) -> None:
    truth = _write(tmp_path, "FD002", 6)
    train, test, rul = load_subset(tmp_path, "FD002")
    assert np.array_equal(rul, truth) and train.rul is not None
    assert np.all(train.rul[train.last_rows()] == 0) and len(test.units) == truth.size
    cuts, cut_truth = validation_cuts(train, per_unit=2, seed=0)
    assert len(cuts.units) == cut_truth.size and np.all((cut_truth >= 1) & (cut_truth <= 150))


def test_validate_mode_never_reads_the_test_files(tmp_path: Path, capsys) -> None:
    _write(tmp_path, "FD003", 1)
    (tmp_path / "test_FD003.txt").unlink()
    (tmp_path / "RUL_FD003.txt").unlink()
    assert main(["--data", str(tmp_path), "--subset", "FD003", "--validate", "--model", "similarity"]) == 0
    out = _last_json(capsys)
    assert out["mode"] == "validation" and out["engines"] > 0 and out["rmse"] < out["baseline_rmse"]


def test_bad_files_give_a_clear_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "train_FD001.txt").write_text("1 2 3\n")
    assert main(["--data", str(tmp_path), "--subset", "FD001"]) == 2
    assert "expected 26" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "nowhere"), "--subset", "FD001"]) == 2
