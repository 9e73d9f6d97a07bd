"""Platform latency and throughput: submit -> persisted through the whole stack, beside a bare docker run.

    python bench/platform_bench.py [--latency-runs 20] [--burst 30]

(Not `bench/platform.py`: a file of that name would shadow the standard library's `platform` module
for every script run from bench/, e.g. engine.py, since `uuid` and pandas import it.)

Starts its own nats-server (JetStream, file storage), the MongoDB-compatible server (SecantusDB,
deploy/mongo-emulator/launch.py; or ``MONGODB_URI`` + ``MONGODB_READONLY_URI`` when set), builds the
sandbox image if it is stale, loads the repo's BTCUSD daily candles into a fresh database and starts
gateway, scheduler, results and 2 runners (1 slot each) as processes (tests/reliability/stack.py).
Everything it started is stopped at the end. Small backtests: sma_cross on BTCUSD 1d over 12 months,
a different (fast, slow) per run so the cache answers none of them.

  latency     - one backtest at a time: POST /backtest/submit -> its document is terminal in MongoDB
                (polled every 10 ms), p50/p95 over --latency-runs runs after 2 warm-up runs;
  bare        - the same engine jobs (same job.json + candles .npz, same image) with `docker run --rm`
                and the runner's hardening (no network, no IPC, read-only root, tmpfs /tmp, memory,
                CPU and pids limits, no capabilities, no-new-privileges, user 65534, no logging);
                wall time of the CLI call, p50/p95;
  overhead    - p50 latency - p50 bare (target < 300 ms, issue 3);
  throughput  - --burst backtests submitted at once, first submit -> last persisted, with 2 runners and
                then with 1 (the second runner stopped), backtests/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path, package: bool = False) -> ModuleType:
    """Import a module of the repo's test tree by path (the tests are not an installed package)."""
    locations = [str(path.parent)] if package else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


infra = _load("backtest_testinfra", REPO / "tests" / "fixtures" / "__init__.py", package=True)
stacks = _load("backtest_reliability_stack", REPO / "tests" / "reliability" / "stack.py")


def bare_runs(stack: object, configs: list[dict[str, object]], image: str, work: Path) -> list[float]:
    """Run each config's engine job with a bare, hardened `docker run`; return the wall times, s."""
    from backtest_core.contracts import SandboxJob, new_id
    from backtest_core.model.config import BacktestConfig
    from backtest_marketdata.candle_store import MongoCandleStore
    from backtest_runner.job_dir import write_job_dir
    from backtest_runner.settings import RunnerSettings
    from pymongo import MongoClient

    limits = RunnerSettings().sandbox_limits()
    mib = 1024 * 1024
    times = []
    with MongoClient(stack.mongo_uri, tz_aware=True) as client:  # type: ignore[attr-defined]
        store = MongoCandleStore(client[stack.database])  # type: ignore[attr-defined]
        for raw in configs:
            config = BacktestConfig.model_validate(raw)
            candles = {
                s: store.load(s, config.interval, _ns(config.start), _ns(config.end)) for s in config.symbols
            }
            job = SandboxJob(task_id=new_id(), config=config)
            job_dir = write_job_dir(work, job, candles)
            argv = ["docker", "run", "--rm", "--network", "none", "--ipc", "none", "--read-only"]
            argv += ["--tmpfs", f"/tmp:rw,noexec,nosuid,nodev,size={limits.tmpfs_bytes // mib}m"]
            argv += ["-v", f"{job_dir}:/job:ro", "--memory", f"{limits.memory_bytes // mib}m"]
            argv += ["--memory-swap", f"{limits.memory_bytes // mib}m", "--cpus", str(limits.cpus)]
            argv += ["--pids-limit", str(limits.pids), "--cap-drop", "ALL"]
            argv += ["--security-opt", "no-new-privileges", "--user", "65534:65534", "--workdir", "/tmp"]
            argv += ["--log-driver", "none", "--entrypoint", "", image, "python3.11", "-m", "backtest_core"]
            started = time.monotonic()
            done = subprocess.run(argv, capture_output=True, timeout=120)
            times.append(time.monotonic() - started)
            last = done.stdout.decode().strip().splitlines()[-1:] or [""]
            if done.returncode != 0 or '"type":"result"' not in last[0].replace(" ", ""):
                raise RuntimeError(f"bare run failed (exit {done.returncode}): {done.stderr[-2000:]!r}")
    return times


def _ns(moment: object) -> int | None:
    if moment is None:
        return None
    return int(moment.timestamp()) * 1_000_000_000  # type: ignore[attr-defined]


def latency_runs(stack: object, configs: list[dict[str, object]]) -> list[float]:
    """Submit each config alone and wait for its terminal document; return submit->persisted, s."""
    times = []
    for config in configs:
        [(task_id, sent)] = stack.submit_http([config])  # type: ignore[attr-defined]
        seen = stack.wait_terminal([task_id], timeout_s=120, poll_s=0.01)  # type: ignore[attr-defined]
        times.append(seen[task_id] - sent)
    return times


def throughput(stack: object, configs: list[dict[str, object]]) -> float:
    """Submit all configs at once; return backtests/s from the first submit to the last persisted."""
    submitted = stack.submit_http(configs)  # type: ignore[attr-defined]
    seen = stack.wait_terminal([t for t, _ in submitted], timeout_s=600, poll_s=0.05)  # type: ignore[attr-defined]
    return len(configs) / (max(seen.values()) - min(sent for _, sent in submitted))


def servers(work: Path) -> tuple[list[object], str, str, object]:
    """Start nats-server and (unless MONGODB_URI is set) the emulator; return them and the URIs."""
    nats_server = infra.NatsServer(work / "nats")
    nats_server.start()
    started: list[object] = [nats_server]
    if os.environ.get("MONGODB_URI"):
        uri = os.environ["MONGODB_URI"]
        return started, uri, os.environ.get("MONGODB_READONLY_URI", uri), nats_server
    mongo = infra.MongoEmulator(work / "mongo")
    mongo.start()
    started.append(mongo)
    return started, mongo.uri, mongo.readonly_uri, nats_server


def main() -> None:
    """Measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=30)
    args = parser.parse_args()
    image = os.environ.get("SANDBOX_IMAGE", "backtest-sandbox:latest")
    subprocess.run(["bash", str(REPO / "deploy/sandbox/build_image.sh"), "--if-stale"], check=True)
    with tempfile.TemporaryDirectory(prefix="bench-platform-") as tmp:
        work = Path(tmp)
        started, uri, readonly_uri, nats_server = servers(work)
        print(f"MongoDB: {'MONGODB_URI' if os.environ.get('MONGODB_URI') else 'SecantusDB emulator'}")
        stack = stacks.Stack(
            work / "stack", nats_server.url, uri, readonly_uri, image, runners=2, slots=1, gateway=True
        )
        try:
            stack.load_candles()
            stack.start()
            n = args.latency_runs
            latency_runs(stack, [stacks.small_config(500 + i) for i in range(2)])  # warm-up
            latency = latency_runs(stack, [stacks.small_config(i) for i in range(n)])
            bare = bare_runs(stack, [stacks.small_config(i) for i in range(n)], image, work / "bare")
            two = throughput(stack, [stacks.small_config(100 + i) for i in range(args.burst)])
            stack.services["runner-1"].stop()
            one = throughput(stack, [stacks.small_config(300 + i) for i in range(args.burst)])
        finally:
            stack.close()
            for server in reversed(started):
                server.stop()  # type: ignore[attr-defined]
    lat, bar = stacks.percentiles(latency, (50, 95)), stacks.percentiles(bare, (50, 95))
    print(f"\n| measure ({n} small backtests, BTCUSD 1d, 12 months) | p50 ms | p95 ms |")
    print("| --- | ---: | ---: |")
    ms = {k: f"{v * 1000:.0f}" for k, v in (("lp50", lat["p50"]), ("lp95", lat["p95"]))}
    ms |= {k: f"{v * 1000:.0f}" for k, v in (("bp50", bar["p50"]), ("bp95", bar["p95"]))}
    print(f"| platform: submit -> persisted (gateway ... MongoDB) | {ms['lp50']} | {ms['lp95']} |")
    print(f"| bare `docker run` of the same job, same hardening | {ms['bp50']} | {ms['bp95']} |")
    print(f"| platform overhead (p50 - p50 bare; target < 300) | {(lat['p50'] - bar['p50']) * 1000:.0f} | |")
    print(f"\n| throughput ({args.burst} at once, 1 slot per runner) | backtests/s |")
    print("| --- | ---: |")
    print(f"| 1 runner | {one:.2f} |\n| 2 runners | {two:.2f} |")


if __name__ == "__main__":
    main()
