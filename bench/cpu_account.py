"""Where the CPU of a platform run goes: per service process, the servers, the Docker engine, the sandboxes.

Wall-clock rates on a shared 2-core machine move with whatever else runs; CPU seconds spent by the
platform's own processes do not. `CpuAccount.snapshot()` before and after a run, then `spent(before,
after)` gives CPU seconds per part:

  <service name>  - each service process of the stack (utime + stime from /proc/<pid>/stat)
  NatsServer, MongoEmulator - nats-server and the MongoDB-compatible server the benchmark started
  docker engine   - dockerd and containerd (the per-container shims exit with their container, and
                    their CPU is lost to this account: it is a lower bound)
  sandboxes       - every container's processes: the cgroup `docker` of the cpuacct controller
                    (cgroup v1; cgroup v2: `system.slice`'s docker scopes are not summed, the row is 0)
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DOCKER_CGROUP_USAGE = Path("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage")  # ns, removed containers included
ENGINE_PROCESSES = ("dockerd", "containerd")
SANDBOX_LABEL = "label=io.backtest.role=sandbox"
SANDBOX_CREATED = ("--filter", "type=container", "--filter", "event=create", "--filter", SANDBOX_LABEL)


def process_cpu_s(pid: int) -> float:
    """Return the CPU seconds (user + system, and of waited-for children) of a live process, else 0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS


def _pids_named(name: str) -> list[int]:
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def _sandboxes_s() -> float:
    try:
        return int(DOCKER_CGROUP_USAGE.read_text()) / 1e9
    except OSError:
        return 0.0


@dataclass
class CpuAccount:
    """The processes to account for: named pids (services, servers) plus the Docker engine and sandboxes."""

    pids: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, pid: int) -> None:
        """Count `pid` under `name` (several pids may share a name)."""
        self.pids.setdefault(name, []).append(pid)

    def snapshot(self) -> dict[str, float]:
        """Return the CPU seconds spent so far by each part."""
        parts = {name: sum(process_cpu_s(pid) for pid in pids) for name, pids in self.pids.items()}
        engine = [pid for name in ENGINE_PROCESSES for pid in _pids_named(name)]
        parts["docker engine"] = sum(process_cpu_s(pid) for pid in engine)
        parts["sandboxes"] = _sandboxes_s()
        return parts


def sandboxes_started(since: float, until: float) -> int:
    """Return how many sandbox containers the Docker engine created between two time.time() moments."""
    window = ["--since", f"{since:.3f}", "--until", f"{until:.3f}"]
    found = subprocess.run(
        ["docker", "events", *window, "--format", "{{.ID}}", *SANDBOX_CREATED],
        capture_output=True,
        text=True,
        check=False,
    )
    return len(found.stdout.split())


def now() -> float:
    """Return the wall-clock time sandboxes_started takes."""
    return time.time()


def spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Return the CPU seconds each part spent between two snapshots."""
    return {name: after[name] - before.get(name, 0.0) for name in after}


def stack_account(stack: object, servers: list[object]) -> CpuAccount:
    """Account for a tests/reliability Stack's service processes and the benchmark's servers."""
    account = CpuAccount()
    for service in stack.services.values():  # type: ignore[attr-defined]
        if service.process is not None:
            account.add(service.kind, service.process.pid)
    for server in servers:
        account.add(type(server).__name__, server.process.pid)  # type: ignore[attr-defined]
    return account


def per_job_ms(parts: Mapping[str, float], jobs: int) -> dict[str, float]:
    """Return each part's CPU milliseconds per job, and their total under "total"."""
    out = {name: 1000 * seconds / jobs for name, seconds in sorted(parts.items())}
    out["total"] = sum(out.values())
    return out
