"""The platform rows of bench/sweep.py: the same grid as one sweep through gateway, sweeper, scheduler and
N runners (1 slot each), on its own nats-server and MongoDB-compatible server per run.

The one-minute random walk is written into the stack's database as the symbol the benchmark uses; the
sweep is POST /sweep/submit with the grid as its space; the time is from the submit to the sweep's
`finished_at` (the sweeper's clock: this host's), read by polling GET /sweep/{id}, so the poll's period
adds nothing. Each row starts a fresh stack, so the result
cache of one run answers nothing of the next.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_marketdata.ingest import Ingestor
from pymongo import MongoClient

REPO = Path(__file__).resolve().parents[1]
SWEEP_TIMEOUT_S = 3600.0


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


platform_bench = _load("bench_platform", REPO / "bench" / "platform_bench.py")
cpu_account = _load("bench_cpu_account", REPO / "bench" / "cpu_account.py")
stacks = platform_bench.stacks


def _write_candles(uri: str, database: str, candles: dict[str, Candles]) -> None:
    with MongoClient(uri, tz_aware=True) as client:
        ingestor = Ingestor(client[database])
        ingestor.ensure_indexes()
        for name, series in candles.items():
            ingestor.candles.write(series)
            ingestor.symbols.ensure(name)
            ingestor.symbols.set_coverage(ingestor.candles.coverage(name, series.interval))


def _sweep(stack: Any, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    with httpx.Client(base_url=stack.gateway_url, headers=stack.headers(), timeout=120) as http:
        started = time.time()  # the services stamp finished_at with this host's wall clock
        submitted = http.post("/sweep/submit", json=body)
        if submitted.status_code != 202:
            raise RuntimeError(f"POST /sweep/submit answered {submitted.status_code}: {submitted.text}")
        sweep_id = submitted.json()["sweep_id"]
        deadline = time.monotonic() + SWEEP_TIMEOUT_S
        while (finished := http.get(f"/sweep/{sweep_id}").json()["finished_at"]) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no end in {SWEEP_TIMEOUT_S:.0f} s\n{stack.log_tails()}")
            time.sleep(0.25)  # a faster poll loads the gateway and the store it measures
        seconds = datetime.fromisoformat(finished).timestamp() - started
        result: dict[str, Any] = http.get(f"/sweep/{sweep_id}/result").json()
    return seconds, result


def platform_sweep(
    config: BacktestConfig, candles: dict[str, Candles], grid_specs: list[str], runners: int
) -> tuple[float, dict[str, Any]]:
    """Run the grid as one platform sweep with `runners` runners; return (seconds, GET /result)."""
    image = os.environ.get("SANDBOX_IMAGE", "backtest-sandbox:latest")
    subprocess.run(["bash", str(REPO / "deploy/sandbox/build_image.sh"), "--if-stale"], check=True)
    body = config.model_dump(mode="json", exclude={"params"}) | {"search": {"space": grid_specs}}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        work = Path(tmp)
        started, uri, readonly_uri, nats_server = platform_bench.servers(work)
        stack = stacks.Stack(
            work / "stack", nats_server.url, uri, readonly_uri, image,
            runners=runners, slots=1, gateway=True, sweeper=True,
        )  # fmt: skip
        try:
            _write_candles(uri, stack.database, candles)
            stack.start()
            account = cpu_account.stack_account(stack, started)
            before, since = account.snapshot(), cpu_account.now()
            seconds, result = _sweep(stack, body)
            ms = cpu_account.per_job_ms(cpu_account.spent(before, account.snapshot()), len(result["trials"]))
            containers = cpu_account.sandboxes_started(since, cpu_account.now())
            parts = ", ".join(f"{name} {value:.1f}" for name, value in ms.items())
            print(f"  platform/{runners}: CPU ms a trial: {parts}; {containers} containers", flush=True)
            return seconds, result
        finally:
            stack.close()
            for server in reversed(started):
                server.stop()
