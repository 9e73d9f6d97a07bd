"""Small-backtest throughput through the whole platform: one container per job beside batches.

    python bench/throughput.py [--users 20] [--per-user 10] [--runners 1,2]

Starts its own nats-server and MongoDB-compatible server (as bench/platform_bench.py does), loads the
shipped BTCUSD daily candles, and for each setting below starts a fresh stack (gateway, scheduler,
results, N runners of 2 slots; tests/fixtures/stack.py), submits `--users` x `--per-user` distinct
small backtests (sma_cross on BTCUSD 1d over 12 months, distinct params, so the cache answers none)
from `--users` users at once, and measures first submit -> last terminal document:

  one container per job  - RUNNER_BATCH_MAX=1 with the admission of before batches (1 job per user,
                           2 per runner in flight): what the platform did;
  batches                - the defaults: RUNNER_BATCH_MAX=64, 64 jobs per user and 128 per runner
                           in flight;
  in-process loop        - the same backtests with `run_backtest` in this process, one after another
                           (no isolation, no queue: the floor).

Prints backtests/s per setting and the ratio of batches to one container per job.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cpu_account import now, per_job_ms, sandboxes_started, spent, stack_account
from platform_bench import REPO, infra, servers, stacks

SLOTS = 2
BEFORE = {"RUNNER_BATCH_MAX": "1", "RUNNER_WARM_MAX": "0"}
BATCHED: dict[str, str] = {}  # the runner's defaults
BEFORE_ADMISSION = {"SCHEDULER_PER_USER_IN_FLIGHT": "1"}  # max: 2 per runner (the old default)


def drain(stack: Any, users: int, per_user: int) -> float:
    """Submit every user's backtests, then wait for all; return backtests/s, first submit -> last end."""
    submitted: list[tuple[str, float]] = []
    for user in range(users):
        configs = [stacks.small_config(user * per_user + i) for i in range(per_user)]
        submitted += stack.submit_http(configs, user=f"user{user:02d}")
    seen = stack.wait_terminal([t for t, _ in submitted], timeout_s=1800, poll_s=0.2)
    documents = stack.documents([t for t, _ in submitted])
    states = {d["state"] for d in documents}
    if states != {"SUCCESS"}:
        raise RuntimeError(f"not every backtest succeeded: {sorted(states)}")
    return len(submitted) / (max(seen.values()) - min(sent for _, sent in submitted))


def platform(
    work: Path,
    servers_: tuple[str, str, str],
    runners: int,
    batched: bool,
    n: tuple[int, int],
    started: list[Any],
) -> tuple[float, dict[str, float]]:
    """Start a fresh stack with `runners` runners, batched or not; return its drain rate and the CPU ms
    per backtest of each part of the platform (bench/cpu_account.py)."""
    nats_url, uri, readonly_uri = servers_
    max_in_flight = runners * SLOTS * (64 if batched else 1)
    scheduler = {"SCHEDULER_MAX_IN_FLIGHT": str(max_in_flight)}
    scheduler |= {"SCHEDULER_PER_USER_IN_FLIGHT": "64"} if batched else BEFORE_ADMISSION
    overrides = {"scheduler": scheduler, "runner": BATCHED if batched else BEFORE}
    image = os.environ.get("SANDBOX_IMAGE", "backtest-sandbox:latest")
    stack = stacks.Stack(
        work,
        nats_url,
        uri,
        readonly_uri,
        image,
        runners=runners,
        slots=SLOTS,
        gateway=True,
        overrides=overrides,
    )
    try:
        stack.load_candles()
        stack.start()
        stack.submit_http([stacks.small_config(599)], user="warmup")  # first container start, imports
        time.sleep(3)
        account = stack_account(stack, started)
        before, since = account.snapshot(), now()
        rate = drain(stack, *n)
        ms = per_job_ms(spent(before, account.snapshot()), n[0] * n[1])
        return rate, ms | {"containers": float(sandboxes_started(since, now()))}
    finally:
        stack.close()


def in_process(users: int, per_user: int) -> float:
    """Run the same backtests in this process one after another; return backtests/s."""
    from backtest_core.engine.run import run_backtest
    from backtest_core.model.config import BacktestConfig

    bars = infra.shipped_candles(stacks.SYMBOL)
    configs = [BacktestConfig.model_validate(stacks.small_config(i)) for i in range(users * per_user)]
    started = time.monotonic()
    for config in configs:
        run_backtest(config, {stacks.SYMBOL: bars.between(_ns(config.start), _ns(config.end))})
    return len(configs) / (time.monotonic() - started)


def _ns(moment: Any) -> int | None:
    return None if moment is None else int(moment.timestamp()) * 1_000_000_000


def main() -> None:
    """Measure every setting side by side; print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--runners", default="1,2", help="runner counts to measure, comma-separated")
    args = parser.parse_args()
    n = (args.users, args.per_user)
    runner_counts = [int(r) for r in args.runners.split(",")]
    subprocess.run(["bash", str(REPO / "deploy/sandbox/build_image.sh"), "--if-stale"], check=True)
    rows: list[tuple[str, int, float]] = []
    cpu: list[tuple[str, int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        work = Path(tmp)
        started, uri, readonly_uri, nats_server = servers(work)
        try:
            urls = (nats_server.url, uri, readonly_uri)  # type: ignore[attr-defined]
            for runners in runner_counts:
                for batched in (False, True):
                    rate, ms = platform(work / f"r{runners}-{batched}", urls, runners, batched, n, started)
                    rows.append(("batches" if batched else "one container per job", runners, rate))
                    cpu.append((rows[-1][0], runners, ms))
                    print(f"{rows[-1][0]}, {runners} runner(s): {rate:.2f} backtests/s", flush=True)
        finally:
            for server in reversed(started):
                server.stop()  # type: ignore[attr-defined]
    loop = in_process(*n)
    total = args.users * args.per_user
    title = f"{total} small backtests from {args.users} users at once ({SLOTS} slots per runner)"
    print(f"\n| {title} | runners | backtests/s |")
    print("| --- | ---: | ---: |")
    for name, runners, rate in rows:
        print(f"| {name} | {runners} | {rate:.2f} |")
    print(f"| in-process loop (`run_backtest`, no isolation) | - | {loop:.1f} |")
    parts = list(cpu[0][2]) if cpu else []
    print(f"\nCPU ms per backtest | runners | {' | '.join(parts)} |")
    print("| --- | ---: |" + " ---: |" * len(parts))
    for name, runners, ms in cpu:
        print(f"| {name} | {runners} | {' | '.join(f'{ms[p]:.1f}' for p in parts)} |")
    print("(containers: sandbox containers started in the run, a count, not ms)")
    for runners in runner_counts:
        before = next(r for name, k, r in rows if k == runners and name != "batches")
        after = next(r for name, k, r in rows if k == runners and name == "batches")
        print(f"\nbatches / one container per job with {runners} runner(s): {after / before:.1f}x")


if __name__ == "__main__":
    main()
