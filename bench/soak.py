"""Soak: backtests and a sweep through 2 gateways, 2 schedulers, 2 runners, 2 sweepers and the results
writer on a three-node NATS cluster (R3 streams and KV buckets), with a fault every `--fault-every`
seconds: a random kill -9 of one of those processes or of a NATS node, restarted 5 s later.

Backtests are submitted over HTTP in waves every 10 s, from `--users` users, alternating the gateways;
each carries an Idempotency-Key, so a submission whose answer was lost (its gateway killed) is retried on
the other gateway as the same backtest. The sweep (`--sweep-trials`, a grid over sma_cross) is submitted
first. Prints submitted, finished, succeeded, duplicates (tasks with more than one terminal event), lost
(no terminal state when the soak ends), p50/p99 submit-to-terminal latency and leftover sandbox
containers, for the backtests and for the sweep's trials. Usage:
    .venv/bin/python bench/soak.py --backtests 1000 --sweep-trials 1000 --minutes 5
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from platform_bench import REPO, infra, stacks

RESTART_AFTER_S = 5.0
WAVE_S = 10.0
RETRY_FOR_S = 120.0  # a submission is retried (on the other gateway) this long before it counts as refused
DRAIN_TIMEOUT_S = 900.0
SWEEP_START = "2019-01-01T00:00:00Z"
SWEEP_END = "2021-01-01T00:00:00Z"


def faults(
    stack: Any, cluster: Any, every_s: float, stop: threading.Event, log: list[str], seed: int
) -> None:
    """Every `every_s` seconds kill -9 one random service or NATS node, restart it RESTART_AFTER_S later."""
    rng = random.Random(seed)
    while not stop.wait(every_s):
        target = rng.choice([*stack.services, *(f"nats-{i}" for i in range(len(cluster.nodes)))])
        if target.startswith("nats-"):
            node = cluster.nodes[int(target.removeprefix("nats-"))]
            node.kill()
            time.sleep(RESTART_AFTER_S)
            node.process.start()
        else:
            stack.services[target].kill()
            time.sleep(RESTART_AFTER_S)
            stack.services[target].start()
        log.append(f"{time.strftime('%H:%M:%S')} kill -9 + restart {target}")


def post(stack: Any, path: str, body: dict[str, Any], user: str, key: str, first: int) -> dict[str, Any]:
    """POST to gateway `first`, then the other on a failure, until accepted (202); return the answer."""
    headers = stack.headers(user) | {"Idempotency-Key": key}
    deadline = time.monotonic() + RETRY_FOR_S
    attempt = first
    while True:
        url = stack.gateway_urls[attempt % len(stack.gateway_urls)]
        try:
            response = httpx.post(f"{url}{path}", json=body, headers=headers, timeout=15)
            if response.status_code == 202:
                answer: dict[str, Any] = response.json()
                return answer
            problem = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as error:
            problem = repr(error)
        if time.monotonic() > deadline:
            raise stacks.StackError(f"POST {path} not accepted in {RETRY_FOR_S:.0f} s: {problem}")
        attempt += 1
        time.sleep(0.5)


def get(stack: Any, path: str, user: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET from whichever gateway answers."""
    for attempt in range(240):
        url = stack.gateway_urls[attempt % len(stack.gateway_urls)]
        try:
            response = httpx.get(f"{url}{path}", params=params, headers=stack.headers(user), timeout=15)
            if response.status_code == 200:
                answer: dict[str, Any] = response.json()
                return answer
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise stacks.StackError(f"GET {path} answered no gateway")


def sweep_body(trials: int) -> dict[str, Any]:
    """A grid of at least `trials` sma_cross configs (fast 2..26, slow from 30; ranges include their
    end), every one valid."""
    slows = -(-trials // 25)
    return {
        "strategy": "sma_cross",
        "symbols": [stacks.SYMBOL],
        "interval": "1d",
        "start": SWEEP_START,
        "end": SWEEP_END,
        "search": {"space": ["fast=2:26:1", f"slow=30:{29 + slows}:1"], "objective": "sharpe"},
    }


def sweep_trials(stack: Any, sweep_id: str, user: str) -> list[dict[str, Any]]:
    """Every trial of the sweep, page by page."""
    trials: list[dict[str, Any]] = []
    while True:
        page = get(stack, f"/sweep/{sweep_id}/trials", user, {"limit": 200, "offset": len(trials)})
        trials += page["trials"]
        if not page["trials"] or len(trials) >= page["total"]:
            return trials


def wait_sweep(stack: Any, sweep_id: str, user: str) -> dict[str, Any]:
    """Poll the sweep until it has finished (or DRAIN_TIMEOUT_S passed); return its last status."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    status = get(stack, f"/sweep/{sweep_id}", user)
    while status["finished_at"] is None and time.monotonic() < deadline:
        time.sleep(1.0)
        status = get(stack, f"/sweep/{sweep_id}", user)
    return status


def row(name: str, stack: Any, sent: dict[str, float], seen: dict[str, float]) -> str:
    """One line of the table for the tasks in `sent` (task id -> monotonic submit time), but for the
    leftover containers (counted once the stack has stopped)."""
    docs = {d["_id"]: d["state"] for d in stack.documents(list(sent))}
    terminal = stack.terminal_event_counts(list(sent))
    finished = [t for t in sent if docs.get(t) in stacks.TERMINAL]
    succeeded = sum(docs.get(t) == "SUCCESS" for t in sent)
    duplicates = sum(count > 1 for count in terminal.values())
    latencies = [seen[t] - sent[t] for t in sent if t in seen]
    pct = stacks.percentiles(latencies, (50, 99)) if latencies else {"p50": float("nan"), "p99": float("nan")}
    return (
        f"| {name} | {len(sent)} | {len(finished)} | {succeeded} | {duplicates} "
        f"| {len(sent) - len(finished)} | {pct['p50']:.1f} | {pct['p99']:.1f} |"
    )


def main() -> None:
    """Run the soak, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backtests", type=int, default=1000)
    parser.add_argument("--sweep-trials", type=int, default=1000, help="0: no sweep")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=5.0, help="submission period; then drain")
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults")
    parser.add_argument("--seed", type=int, default=16, help="picks the fault targets")
    args = parser.parse_args()
    image = os.environ.get("SANDBOX_IMAGE", "backtest-sandbox:latest")
    subprocess.run(["bash", str(REPO / "deploy/sandbox/build_image.sh"), "--if-stale"], check=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        work = Path(tmp)
        cluster = infra.NatsCluster(work / "nats")
        cluster.start()
        mongo = infra.MongoEmulator(work / "mongo")
        mongo.start()
        stack = stacks.Stack(
            work / "stack",
            cluster.url,
            mongo.uri,
            mongo.readonly_uri,
            image,
            runners=2,
            slots=1,
            schedulers=2,
            gateway=True,
            gateways=2,
            sweeper=True,
            sweepers=2,
            stream_replicas=3,
        )
        stop, log = threading.Event(), []
        sent: dict[str, float] = {}
        trial_sent: dict[str, float] = {}
        table: list[str] = []
        sweep_status = None
        try:
            stack.load_candles()
            stack.start()
            sweeper_user = "sweeper-user"
            sweep_id = None
            if args.sweep_trials:
                sweep_at = time.monotonic()
                sweep_id = post(
                    stack, "/sweep/submit", sweep_body(args.sweep_trials), sweeper_user, "soak-sweep", 0
                )["sweep_id"]
            injector = threading.Thread(
                target=faults, args=(stack, cluster, args.fault_every, stop, log, args.seed)
            )
            injector.start()
            waves = max(1, int(args.minutes * 60 / WAVE_S))
            per_wave = -(-args.backtests // waves)
            for wave in range(waves):
                wave_started = time.monotonic()
                for i in range(wave * per_wave, min((wave + 1) * per_wave, args.backtests)):
                    config = stacks.small_config(i % 600, months=12 + i // 600)
                    user = f"user-{i % args.users}"
                    now = time.monotonic()
                    task = post(stack, "/backtest/submit", config, user, f"soak-{i}", i)["task_id"]
                    sent.setdefault(task, now)
                time.sleep(max(0.0, WAVE_S - (time.monotonic() - wave_started)))
            stop.set()
            injector.join()
            try:
                seen = stack.wait_terminal(list(sent), timeout_s=DRAIN_TIMEOUT_S, poll_s=0.5)
            except stacks.StackError:
                seen = {}
            trial_seen: dict[str, float] = {}
            if sweep_id is not None:
                sweep_status = wait_sweep(stack, sweep_id, sweeper_user)
                trials = sweep_trials(stack, sweep_id, sweeper_user)
                trial_sent = {t["task_id"]: sweep_at for t in trials}
                try:
                    trial_seen = stack.wait_terminal(list(trial_sent), timeout_s=60, poll_s=0.5)
                except stacks.StackError:
                    trial_seen = {}
            table = [row("backtests", stack, sent, seen)]
            if sweep_id is not None and sweep_status is not None:
                table.append(row(f"sweep trials ({sweep_status['state']})", stack, trial_sent, trial_seen))
        finally:
            stop.set()
            stack.close()
            leftovers = stack.remove_containers()
            mongo.stop()
            cluster.stop()
    print("\n".join(log))
    print(
        f"\nsoak took {time.monotonic() - started:.0f} s; "
        f"sweep counts: {sweep_status['counts'] if sweep_status else None}"
    )
    print(
        "\n| runs | submitted | finished | succeeded | duplicates | lost | p50 s | p99 s "
        "| leftover containers |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(f"{line} {len(leftovers)} |" for line in table))


if __name__ == "__main__":
    main()
