"""`twinloop rul train` fits the data-driven second opinion on simulated runs to failure and keeps it;
the runtime then serves both opinions with their disagreement."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from twinloop.cli import rul_cmd
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path
from twinloop.sim.batch import run_fleet, write_parquet
from twinloop.sim.pump_station_layout import PUMP_CHANNELS

H = 3600 * 10**9
T0 = 1_767_225_600 * 10**9


def test_train_keeps_a_second_opinion_that_the_runtime_serves(tmp_path) -> None:
    fleet = run_fleet(n_units=10, seed=3, dt_s=1800.0, sample_every_s=3600.0, wear_scale=10.0).readings
    path = write_parquet(fleet, tmp_path / "runs.parquet")
    url = f"duckdb:///{tmp_path / 'rul.duckdb'}"
    settings = load_settings(store_url=url, plant=example_plant_path())
    with Runtime.open(settings) as rt:  # seed the store; nothing trained yet
        assert rt.rul is not None
        channels = [c for c, _, _ in PUMP_CHANNELS]
        unit, t_h = fleet.column("unit").to_numpy(), fleet.column("t_h").to_numpy()
        rows = np.flatnonzero((unit == 0) & (t_h <= 0.8 * t_h[unit == 0].max()))
        values = np.column_stack([fleet.column(c).to_numpy()[rows] for c in channels])
        rt.store.append(ReadingBatch.from_arrays(
            "pump-A1", np.tile(np.array(channels, dtype=object), len(rows)),
            np.repeat(T0 + (t_h[rows] * H).astype(np.int64), len(channels)), values.ravel()))
        before = rt.rul.update("pump-A1")
        assert before.second_opinion is not None and "not trained" in before.second_opinion["missing"]
        assert before.disagreement is None
    runner = CliRunner()
    missing = runner.invoke(rul_cmd.app, ["train", str(tmp_path / "nope.parquet"), "--store", url])
    assert missing.exit_code == 1 and "no such file" in missing.output
    trained = runner.invoke(rul_cmd.app, ["train", str(path), "--store", url, "--trees", "40"])
    assert trained.exit_code == 0, trained.output
    assert "pump-bearing-gbm" in trained.output and "10 units" in trained.output
    with Runtime.open(load_settings(store_url=url, plant=example_plant_path())) as rt:
        assert rt.rul is not None
        after = rt.rul.update("pump-A1")
        second = after.second_opinion or {}
        assert second.get("model") == "gbm" and second["mean"] >= 0.0
        assert set(second["p_fail"]) == {"24h", "72h", "7d"}
        assert after.disagreement is not None and 0.0 <= after.disagreement <= 1.0
    shown = runner.invoke(rul_cmd.app, ["show", "pump-A1", "--store", url])
    assert shown.exit_code == 0 and "second opinion (gbm)" in shown.output and "disagreement" in shown.output
