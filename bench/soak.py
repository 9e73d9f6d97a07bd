"""Soak: backtests through 2 runners, the scheduler and the results writer on a three-node NATS cluster
(R3 streams and KV buckets), with a fault every `--fault-every` seconds: a random kill -9 of a runner,
the scheduler, the results writer or a NATS node, restarted 5 s later.

Prints submitted, finished, succeeded, duplicates (tasks with more than one terminal event), lost (no
terminal state when the soak ends), p50/p99 submit-to-terminal latency and leftover sandbox containers.
Submits over NATS as the gateway does (the gateway does not take a list of NATS URLs yet). Usage:
    .venv/bin/python bench/soak.py --backtests 300 --minutes 4
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

from platform_bench import REPO, infra, stacks

RESTART_AFTER_S = 5.0


def faults(
    stack: object, cluster: object, every_s: float, stop: threading.Event, log: list[str], seed: int
) -> None:
    """Every `every_s` seconds kill -9 one random service or NATS node, restart it RESTART_AFTER_S later."""
    rng = random.Random(seed)
    services = stack.services  # type: ignore[attr-defined]
    nodes = cluster.nodes  # type: ignore[attr-defined]
    while not stop.wait(every_s):
        target = rng.choice([*services, *(f"nats-{i}" for i in range(len(nodes)))])
        if target.startswith("nats-"):
            node = nodes[int(target.removeprefix("nats-"))]
            node.kill()
            time.sleep(RESTART_AFTER_S)
            node.process.start()
        else:
            services[target].kill()
            time.sleep(RESTART_AFTER_S)
            services[target].start()
        log.append(f"{time.strftime('%H:%M:%S')} kill -9 + restart {target}")


def main() -> None:
    """Run the soak, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backtests", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=4.0, help="submission period; then drain")
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds between faults")
    parser.add_argument("--seed", type=int, default=16, help="picks the fault targets")
    args = parser.parse_args()
    image = os.environ.get("SANDBOX_IMAGE", "backtest-sandbox:latest")
    subprocess.run(["bash", str(REPO / "deploy/sandbox/build_image.sh"), "--if-stale"], check=True)
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
            stream_replicas=3,
        )
        stop, log = threading.Event(), []
        sent: dict[str, float] = {}
        try:
            stack.load_candles()
            stack.start()
            injector = threading.Thread(
                target=faults, args=(stack, cluster, args.fault_every, stop, log, args.seed)
            )
            injector.start()
            waves = max(1, int(args.minutes * 6))  # a wave every 10 s
            per_wave = -(-args.backtests // waves)
            for wave in range(waves):
                start = wave * per_wave
                configs = [
                    stacks.small_config(i % 600) for i in range(start, min(start + per_wave, args.backtests))
                ]
                now = time.monotonic()
                for _ in range(30):  # a NATS node may be down at this moment: retry the wave's publish
                    try:
                        sent |= {task: now for task in stack.submit_nats(configs)}
                        break
                    except Exception:  # retried as new commands: a half-published wave adds uncounted runs
                        time.sleep(1)
                time.sleep(10)
            stop.set()
            injector.join()
            try:
                seen = stack.wait_terminal(list(sent), timeout_s=300, poll_s=0.2)
            except stacks.StackError:
                seen = {}
            terminal = stack.terminal_event_counts(list(sent))
            docs = {d["_id"]: d["state"] for d in stack.documents(list(sent))}
        finally:
            stop.set()
            stack.close()
            leftovers = stack.remove_containers()
            mongo.stop()
            cluster.stop()
    finished = [t for t in sent if docs.get(t) in stacks.TERMINAL]
    latencies = [seen[t] - sent[t] for t in sent if t in seen]
    pct = stacks.percentiles(latencies, (50, 99)) if latencies else {"p50": float("nan"), "p99": float("nan")}
    print("\n".join(log))
    print("\n| submitted | finished | succeeded | duplicates | lost | p50 s | p99 s | leftover containers |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    succeeded = sum(docs.get(t) == "SUCCESS" for t in sent)
    duplicates = sum(count > 1 for count in terminal.values())
    print(
        f"| {len(sent)} | {len(finished)} | {succeeded} | {duplicates} | {len(sent) - len(finished)} "
        f"| {pct['p50']:.1f} | {pct['p99']:.1f} | {len(leftovers)} |"
    )


if __name__ == "__main__":
    main()
