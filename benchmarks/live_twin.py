"""Benchmark: the live twin scored end to end against the simulator's ground truth.

The real path, as in the demo: a broker on a free loopback port (Mosquitto, or the embedded one
where Mosquitto is missing), the runtime headless in its own process on its own DuckDB file
(`benchmarks/live_twin_runtime.py`, settings from ``TWINLOOP_*``), and ``twinloop simulate <plant>
--mqtt … --speed 60 --fault … --truth truth.jsonl`` in another, which also writes the hidden
truth. For each plant (the pump station and the office building, side by side) a schedule puts
every fault kind its simulator injects on some twins after the learning period and leaves others
fault-free. The run happens once as it is, and once more with CPU-burning processes alongside
(``--hog``). After each run the store is read and scored (`benchmarks/live_twin_read.py`,
`twinloop.bench.live_twin`):

* ``faults``, ``detected_before_failure``: share of faults with an `AlertRaised` on a right twin
  (the faulty device; for cavitation its line's pumps and tank; for a stuck AHU damper its zones)
  raised — in plant time, by the wall clock it was raised at — between the fault's start and the
  first failure it caused, its end, or the end of the run; ``detect_delay_p50_h`` of those found;
  ``detected_by_data_time`` judges the same alerts by when their data began (what a runtime that
  kept up would have caught: the gap is lag, not detection);
* ``false_alerts_per_100_twin_h``: alerts on twins of the types under test that no fault touched,
  per 100 hours of them after learning (``--learn-h``, set for every type so both plants learn
  within the run: the building's types declare days);
* ``nis_consistent_share``: twin-steps of fault-free twins whose ``est.nis`` lies in the 95 % χ²
  band for its degrees of freedom (the channels measured that step);
* ``wear_rmse``: ``est.bearing.wear`` (and any ``est.…fouling``) against the true value; baseline:
  the true value at the start held constant (``wear_rmse_constant``);
* ``rul_rel_error_50/80/90``: at 50/80/90 % of a failing unit's life (counted from the onset of its
  degradation fault), |forecast failure time − true failure time| / true RUL, newest forecast;
* ``p72_brier`` against ``p72_brier_constant`` (the same outcomes' base rate as a constant
  forecast), ``ratio`` = ours / constant (below 1: better than the constant);
* ``lag_p99_s``: p99 over wall seconds of the largest analytics lag gauge (plant seconds behind
  ingestion; None where the runtime has no gauge yet).

Figures per plant and mode nest as ``{"pump-station": {...}, "building": {...}, "hog": {"pump-station":
…}}``; the top level pools both plants of the run without hog, ``hog_summary`` those with it.

    .venv/bin/python benchmarks/live_twin.py                 # both plants, with and without hog (~13 min)
    .venv/bin/python benchmarks/live_twin.py --quick         # pump station, 2.5 plant-h, no hog (~3 min)
    .venv/bin/python benchmarks/live_twin.py --plant building --hours 6 --no-hog --out runs/

Every child (broker, runtimes, simulators, hogs) is ended on exit, Ctrl-C and errors; runtimes and
simulators also stop by themselves when this process is gone. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import getpass
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_twin_read import score_run  # noqa: E402

from twinloop.bench.live_twin import Score, truth_from_records  # noqa: E402
from twinloop.sim.truth import read_truth  # noqa: E402

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "src" / "twinloop" / "examples"
PLANTS = ("pump-station", "building")
#: Alert learning period set for every watched type (TWINLOOP_ALERTS_LEARN_S): the types declare
#: their own (pumps 2 h, the building's air handlers and chillers days), which a run of a few plant
#: hours could not hold; one period for all keeps the plants comparable and the run bounded.
DEFAULT_LEARN_H = 2.0
#: Wall seconds a child may take to start (imports on a loaded 2-core machine) or to stop.
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
#: Building mapping used when the example ships none: flat telemetry, device = twin, channels as
#: typed, timestamps judged by the clock the simulator announces (as the pump station's mapping does).
BUILDING_MAPPING = """\
version: 1
defaults:
  timestamp: device
  clock: {announced: twinloop/building/clock}
rules:
  - name: flat telemetry
    mqtt: twinloop/building/{device}/telemetry
    format: flat
  - name: sparkplug and the rest
    mqtt: spBv1.0/twinloop/+/building/#
    ignore: true
  - name: statuses, acks and commands
    mqtt: twinloop/building/#
    ignore: true
"""


# --- fault schedules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One plant's run: its faults (CLI form), and those the schedule leaves without a visible effect."""

    plant: str
    faults: tuple[str, ...]
    silent: tuple[str, ...]


def _h(x: float) -> str:
    return f"{max(x, 0.0) * 3600:.0f}s"


def plan(plant: str, hours: float, learn_h: float) -> Plan:
    """Faults of every kind the plant's simulator injects, starting after learning, scaled to the run.

    ``o`` is the onset (learning + 15 min), ``w`` the plant hours left after it. The degrading
    unit is set to fail at about 70 % of ``w``. A stuck valve shows only when someone commands the
    valve, which nobody does in this run: it is scheduled (so the kind is exercised) but counted as
    silent, outside the detection share.
    """
    o = learn_h + 0.25
    w = max(hours - o, 0.5)

    def span(a: float, b: float | None = None) -> str:
        return f"start={_h(o + a * w)}" + (f",end={_h(o + b * w)}" if b is not None else "")

    if plant == "pump-station":
        # pump-A1 (initial wear ≈ 0.06) fails ≈ 1.8 plant-h after onset at factor 20 000.
        factor = 20000.0 * 1.8 / (0.7 * w)
        faults = (
            f"bearing_wear:pump-A1:factor={factor:.0f},{span(0)}",
            f"drift:pump-A2:channel=bearing.temperature,rate_per_h=6,{span(0, 0.7)}",
            f"stuck_valve:pump-A3:{span(0)}",
            f"cavitation:line-A:drop_bar=1.2,{span(0.35, 0.6)}",
            f"stuck_at:pump-B1:channel=flow,{span(0, 0.4)}",
            f"spikes:pump-B1:channel=discharge_pressure,probability=0.02,magnitude=1.0,{span(0.5, 0.9)}",
            f"noise_burst:pump-C1:channel=motor.current,std=3,{span(0, 0.4)}",
            f"dropout:pump-C1:channel=bearing.vibration_rms,probability=0.5,{span(0.5, 0.9)}",
            f"comm_loss:pump-C3:{span(0.2, 0.45)}",
        )
        return Plan(plant, faults, ("stuck_valve:pump-A3",))
    if plant == "building":
        # chiller-1 (fouling ≈ 0.03) is degraded at fouling ≈ 1.55; fouling grows 1e-4·(1+factor)/h.
        factor = 1.52 / (1e-4 * 0.7 * w)
        faults = (
            f"fouling_acceleration:chiller-1:factor={factor:.0f},{span(0)}",
            f"damper_stuck:ahu-2:position=0,{span(0)}",
            f"drift:zone-1-north:channel=air_temperature,rate_per_h=1.5,{span(0, 0.7)}",
            f"stuck_at:zone-1-east:channel=co2,{span(0, 0.4)}",
            f"spikes:zone-1-east:channel=humidity,probability=0.02,magnitude=15,{span(0.5, 0.9)}",
            f"noise_burst:ahu-1:channel=supply_air_temperature,std=1.0,{span(0, 0.4)}",
            f"dropout:ahu-1:channel=airflow,probability=0.5,{span(0.5, 0.9)}",
            f"comm_loss:zone-3-south:{span(0.2, 0.45)}",
        )
        return Plan(plant, faults, ())
    raise SystemExit(f"unknown plant {plant!r}: one of {', '.join(PLANTS)}")


# --- children ----------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when this process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Children:
    """Every process this benchmark starts, ended in reverse order on `stop_all`."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], log: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
             timeout: float = STOP_TIMEOUT_S) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc, timeout=10)
        self.procs.clear()


MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
log_dest file {log}
user {user}
"""


@contextlib.contextmanager
def broker(children: Children, root: Path) -> Iterator[tuple[str, str]]:
    """A broker on a free loopback port: (URL, which broker). Mosquitto runs as one of our children
    (so it dies with us even on SIGKILL); the embedded broker watches its parent itself."""
    from twinloop.connectors.broker import EmbeddedBroker, MosquittoBroker
    from twinloop.connectors.urls import free_port, port_open

    if not MosquittoBroker.available():
        embedded = EmbeddedBroker(host="127.0.0.1").start()
        try:
            yield embedded.url, "embedded"
        finally:
            embedded.stop()
        return
    port = free_port("127.0.0.1")
    conf = root / "mosquitto.conf"
    # as whoever runs us: mosquitto started as root otherwise drops to a user who cannot write here
    conf.write_text(MOSQUITTO_CONF.format(port=port, log=root / "mosquitto.log", user=getpass.getuser()))
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = children.start([binary, "-c", str(conf)], root / "mosquitto.out")
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mosquitto did not start; see {root / 'mosquitto.log'}")
        time.sleep(0.1)
    try:
        yield f"mqtt://127.0.0.1:{port}", "mosquitto"
    finally:
        children.stop(proc, timeout=10)


def _runtime_env(plant: str, url: str, data: Path, learn_h: float, broker_kind: str, tag: str
                 ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINLOOP_")}
    plant_file = EXAMPLES / plant / "plant.yaml"
    env.update({
        "TWINLOOP_DATA_DIR": str(data),
        "TWINLOOP_PLANT": str(plant_file),
        "TWINLOOP_MQTT_URL": url,
        "TWINLOOP_MQTT_CLIENT_ID": f"twinloop-bench-{tag}",
        "TWINLOOP_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    })
    if broker_kind == "embedded":
        env["TWINLOOP_MQTT_PROTOCOL"] = "3.1.1"
    if not (plant_file.parent / "mapping.yaml").is_file():
        mapping = data / "mapping.yaml"
        mapping.write_text(BUILDING_MAPPING if plant == "building" else "")
        env["TWINLOOP_MAPPING"] = str(mapping)
    env["TWINLOOP_ALERTS_LEARN_S"] = str(learn_h * 3600.0)
    return env


def _wait_ready(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the runtime exited early (rc {proc.returncode}); see {path.parent}")
        if path.is_file() and '"ready"' in path.read_text(encoding="utf-8"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the runtime was not ready within {timeout:.0f} s; see {path.parent}")


def _hogs(children: Children, n: int, log: Path) -> list[subprocess.Popen[bytes]]:
    burn = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end: pass\n"
    return [children.start([sys.executable, "-c", burn], log) for _ in range(n)]


# --- one run -----------------------------------------------------------------------------------------


def run_once(plants: list[str], hours: float, speed: float, learn_h: float, seed: int,
             hog_procs: int, root: Path) -> dict[str, tuple[Score, dict[str, Any]]]:
    """Run the plants side by side (with ``hog_procs`` CPU burners) and score each one."""
    children = Children()
    results: dict[str, tuple[Score, dict[str, Any]]] = {}
    wall: dict[str, float] = {}
    try:
        with broker(children, root) as (url, kind):
            if hog_procs:
                _hogs(children, hog_procs, root / "hog.log")
            runtimes, sims = {}, {}
            for plant in plants:
                data = root / plant
                data.mkdir(parents=True, exist_ok=True)
                tag = f"{plant}-{os.getpid()}-{int(time.time())}"
                env = _runtime_env(plant, url, data, learn_h, kind, tag)
                runtimes[plant] = children.start(
                    [sys.executable, str(HERE / "live_twin_runtime.py"), str(data / "lags.jsonl"),
                     str(os.getpid())], data / "runtime.log", env=env, cwd=data)
            for plant in plants:
                _wait_ready(root / plant / "lags.jsonl", runtimes[plant], START_TIMEOUT_S)
            started = time.monotonic()
            for plant in plants:
                p = plan(plant, hours, learn_h)
                fault_args = [a for f in p.faults for a in ("--fault", f)]
                sims[plant] = children.start(
                    [sys.executable, "-c", "from twinloop.cli.simulate_cmd import app; app()", plant,
                     "--mqtt", url, "--speed", f"{speed:g}", "--seed", str(seed), "--qos", "1",
                     "--duration", f"{hours * 3600:.0f}s", "--truth", str(root / plant / "truth.jsonl"),
                     "--truth-every", "60s", "--parent-pid", str(os.getpid()), *fault_args],
                    root / plant / "simulator.log", env={**os.environ, "COLUMNS": "200"})
            budget = hours * 3600.0 / speed * 1.5 + START_TIMEOUT_S
            for plant, proc in sims.items():
                try:
                    proc.wait(max(budget - (time.monotonic() - started), 1.0))
                except subprocess.TimeoutExpired:
                    print(f"  {plant}: simulator over its time budget, stopping it", flush=True)
                    children.stop(proc, signal.SIGINT)
                wall[plant] = time.monotonic() - started
            for proc in runtimes.values():
                children.stop(proc, signal.SIGTERM)
    finally:
        children.stop_all()
    for plant in plants:
        data = root / plant
        truth = truth_from_records(read_truth(data / "truth.jsonl"))
        p = plan(plant, hours, learn_h)
        silent = frozenset(f.id for f in truth.faults if f"{f.kind}:{f.device}" in p.silent)
        store_url = f"duckdb:///{data / 'twinloop.duckdb'}"
        score, details = score_run(store_url, truth, data / "lags.jsonl", silent,
                                   judged_from_s=learn_h * 3600.0)
        details["wall_s"] = round(wall.get(plant, math.nan), 1)
        details["plant_h"] = round(truth.hours, 2)
        results[plant] = (score, details)
    return results


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _print(title: str, figures: dict[str, Any], details: dict[str, Any] | None = None) -> None:
    print(f"{title}:")
    keys = ("faults", "detected_before_failure", "detected_by_kind", "detected_by_data_time",
            "detect_delay_p50_h", "false_alerts_per_100_twin_h", "nis_consistent_share", "wear_rmse",
            "wear_rmse_constant",
            "rul_rel_error_50", "rul_rel_error_80", "rul_rel_error_90", "p72_brier", "p72_brier_constant",
            "p72_forecasts", "p72_censored", "lag_p99_s")
    print("  " + " · ".join(f"{k} {_fmt(figures.get(k))}" for k in keys))
    if details:
        print("  " + " · ".join(f"{k} {_fmt(v)}" for k, v in details.items()), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plant", choices=[*PLANTS, "both"], default=None,
                    help="default: both (quick: pump-station)")
    ap.add_argument("--hours", type=float, default=None, help="plant hours per run (default 6; quick 2.5)")
    ap.add_argument("--speed", type=float, default=60.0, help="simulated seconds per wall second")
    ap.add_argument("--hog", action=argparse.BooleanOptionalAction, default=None,
                    help="also run with CPU-burning processes alongside (default on; quick off)")
    ap.add_argument("--hog-procs", type=int, default=1, help="CPU burners in the hog run")
    ap.add_argument("--learn-h", type=float, default=None,
                    help=f"alert learning period set for every type (default {DEFAULT_LEARN_H:g}; quick 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="keep each run's store, logs and truth here")
    ap.add_argument("--quick", action="store_true",
                    help="a ~3-minute smoke: pump station, 2.5 plant-h, no hog")
    a = ap.parse_args(argv)
    plant = a.plant or ("pump-station" if a.quick else "both")
    plants = list(PLANTS) if plant == "both" else [plant]
    hours = a.hours if a.hours is not None else (2.5 if a.quick else 6.0)
    hog = a.hog if a.hog is not None else not a.quick
    learn_h = a.learn_h if a.learn_h is not None else (1.0 if a.quick else DEFAULT_LEARN_H)
    if not 0 < learn_h < hours - 0.75:
        raise SystemExit(f"--learn-h must be positive and leave faults room: at most --hours − 0.75 "
                         f"({hours - 0.75:g} h here); faults start 15 min after learning")
    if not (hours > 0 and a.speed > 0 and math.isfinite(a.speed)):
        raise SystemExit("--hours and --speed must be positive (and --speed finite)")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    tmp = None
    if a.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="twinloop-live-twin-")
        out = Path(tmp.name)
    else:
        out = a.out.resolve()
    modes = [("plain", 0)] + ([("hog", max(a.hog_procs, 1))] if hog else [])
    print(f"live twin: {', '.join(plants)} · {hours:g} plant-h at {a.speed:g}× · learning "
          f"{learn_h:g} h · modes {[m for m, _ in modes]} "
          f"· files under {out}", flush=True)
    for p in plants:
        print(f"  {p} faults: {' '.join(plan(p, hours, learn_h).faults)}", flush=True)
    report: dict[str, Any] = {}
    t0 = time.monotonic()
    try:
        for mode, procs in modes:
            root = out / mode
            root.mkdir(parents=True, exist_ok=True)
            print(f"run '{mode}'{f' with {procs} CPU hog(s)' if procs else ''} …", flush=True)
            results = run_once(plants, hours, a.speed, learn_h, a.seed, procs, root)
            section: dict[str, Any] = {}
            for p, (score, details) in results.items():
                figures = score.figures()
                _print(f"  {mode} · {p}", figures, details)
                section[p] = {**figures, "details": details}
            pooled = Score.pooled(s for s, _ in results.values()).figures()
            _print(f"  {mode} · all plants", pooled)
            if mode == "plain":
                report.update(pooled)
                report.update(section)
            else:
                report["hog"] = {**section, "summary": pooled}
                report["hog_summary"] = pooled
    except KeyboardInterrupt:
        print("interrupted: every child stopped", flush=True)
        raise SystemExit(130) from None
    finally:
        if tmp is not None:
            tmp.cleanup()
    report["config"] = {"plants": plants, "hours": hours, "speed": a.speed,
                        "hog_procs": a.hog_procs if hog else 0, "learn_h": learn_h, "seed": a.seed,
                        "quick": a.quick, "wall_s": round(time.monotonic() - t0, 1)}
    print(json.dumps(report, separators=(",", ":"), default=str))


if __name__ == "__main__":
    main()
