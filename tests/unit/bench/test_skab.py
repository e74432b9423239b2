"""The SKAB harness on a small synthetic SKAB-shaped data set, and the scorer against hand counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinloop.bench import skab
from twinloop.bench.nab import binary_metrics, changepoints, nab_score, windows

HEADER = ("datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;Thermocouple;"
          "Voltage;Volume Flow RateRMS;anomaly;changepoint")


def write_experiment(path: Path, seed: int, n: int = 900, start: int = 500, stop: int = 800) -> None:
    """A SKAB-like file: 1 Hz, slow temperatures, a flow drop (the 'valve') from start to stop."""
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2020-03-09T10:00:00") + np.timedelta64(seed * 3600, "s")
    flow = 32.0 + rng.normal(0, 0.5, n)
    flow[start:stop] -= 4.0
    temp = 70.0 + np.cumsum(rng.normal(0, 0.02, n))
    current = 1.3 + rng.normal(0, 0.02, n) - 0.01 * (32 - flow)
    cols = [rng.normal(0.03, 0.002, n), rng.normal(0.04, 0.002, n), current,
            0.1 + rng.normal(0, 0.05, n), temp, 25 + 0.5 * np.cumsum(rng.normal(0, 0.01, n)),
            230 + rng.normal(0, 1, n), flow]
    anomaly = np.zeros(n)
    anomaly[start:stop] = 1
    cp = np.zeros(n)
    cp[[start, stop - 1]] = 1
    lines = [HEADER]
    for i in range(n):
        stamp = str(t0 + np.timedelta64(i, "s")).replace("T", " ")
        lines.append(";".join([stamp, *(f"{c[i]:.5f}" for c in cols), f"{anomaly[i]:.1f}", f"{cp[i]:.1f}"]))
    path.write_text("\r\n".join(lines) + "\r\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("skab")
    (root / "valve1").mkdir()
    (root / "anomaly-free").mkdir()
    for k in range(3):
        write_experiment(root / "valve1" / f"{k}.csv", seed=k)
    (root / "anomaly-free" / "anomaly-free.csv").write_text(HEADER.rsplit(";", 2)[0] + "\r\n")
    return root


def test_harness_prints_one_json_line_with_the_skab_metrics(data, capsys):
    result = skab.main(["--data", str(data), "--json", "--detector", "pca"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == result
    assert {"f1", "far", "mar", "nab_standard", "files", "detector"} <= set(result)
    assert result["files"] == 3 and result["detector"] == "pca"
    assert result["f1"] > 0.75 and result["far"] < 50.0 and result["nab_standard"] > 0


def test_a_missing_folder_or_unknown_detector_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        skab.main(["--data", str(tmp_path / "nope"), "--json"])
    assert exit_info.value.code == 2 and "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        skab.main(["--data", str(tmp_path), "--detector", "magic"])


def test_binary_metrics_follow_skab():
    trues = [np.array([0, 0, 1, 1]), np.array([1, 0])]
    m = binary_metrics(trues, [np.array([0, 1, 1, 0]), np.array([1, 0])])
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (2, 2, 1, 1)
    assert m["f1"] == pytest.approx(2 / (2 + 1)) and m["far"] == pytest.approx(100 / 3)
    assert m["mar"] == pytest.approx(100 / 3)


def test_nab_windows_changepoints_and_scores():
    assert changepoints(np.array([1, 1, 0, 0, 1])).tolist() == [1, 0, 1, 0, 1]
    assert windows(np.array([10.0, 40.0]), 60.0) == [[10.0, 70.0], [70.0, 100.0]]  # cut right window
    assert windows(np.array([10.0]), 30.0, "center") == [[-5.0, 25.0]]
    t = np.arange(200.0)
    cp = np.zeros(200)
    cp[100] = 1
    null = np.zeros(200, int)
    early = np.zeros(200, int)
    early[100:] = 1  # rises exactly at the changepoint: a perfect detection
    late = np.zeros(200, int)
    late[130:] = 1  # halfway through the 60 s window
    fp = early.copy()
    fp[20] = 1  # plus one isolated false positive (two edges)
    score = lambda p: nab_score([t], [cp], [p], 60.0)["standard"]  # noqa: E731
    assert score(null) == 0.0 and score(early) == pytest.approx(100.0)
    # halfway: the tanh curve gives (A_tp + A_fp)/2 = 0.445, so 100·(0.445 + 1)/2
    assert score(late) == pytest.approx(72.25, abs=0.2)
    assert score(fp) == pytest.approx(100 * (1 - 2 * 0.11 + 1) / 2)
