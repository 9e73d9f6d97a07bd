"""Exit 0 when the container's `python -m MODULE` process holds an established TCP connection to NATS.

Usage: python nats_connected.py MODULE URL_VARIABLE, e.g. `nats_connected.py backtest_runner RUNNER_NATS_URL`.
The NATS port(s) come from the URL the service itself connects to (the variable, comma-separated URLs
allowed). Exit 1 when no such process runs or it has no connection to NATS, 2 on bad arguments. The
Kubernetes exec probes of the scheduler, runner and results run it (deploy/kubernetes/30-probes.yaml).
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ESTABLISHED = "01"  # the TCP state in /proc/net/tcp
DEFAULT_NATS_PORT = 4222


def nats_ports(urls: str) -> set[int]:
    """Return the ports of comma-separated NATS URLs (4222 when a URL names none)."""
    return {urlsplit(url.strip()).port or DEFAULT_NATS_PORT for url in urls.split(",") if url.strip()}


def module_pids(module: str) -> list[int]:
    """Return the pids whose command line runs `-m module`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a == b"-m" and b == module.encode() for a, b in itertools.pairwise(argv)):
            pids.append(int(entry.name))
    return sorted(pids)


def socket_inodes(pid: int) -> set[str]:
    """Return the inodes of the sockets a process holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def established_remote_ports(pid: int) -> set[int]:
    """Return the remote ports of the process's established TCP connections (IPv4 and IPv6)."""
    inodes = socket_inodes(pid)
    ports = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == ESTABLISHED and inode in inodes:
                ports.add(int(remote.rsplit(":", 1)[1], 16))
    return ports


def check(module: str, url_variable: str) -> tuple[int, str]:
    """Return the exit code and the line to print for one probe."""
    urls = os.environ.get(url_variable, "")
    if not urls:
        return 2, f"{url_variable} is not set: expected the service's NATS URL, e.g. nats://nats:4222"
    wanted = nats_ports(urls)
    pids = module_pids(module)
    if not pids:
        return 1, f"no process runs python -m {module}"
    for pid in pids:
        connected = established_remote_ports(pid) & wanted
        if connected:
            return 0, f"{module} (pid {pid}) is connected to NATS on port {min(connected)}"
    ports = ", ".join(str(p) for p in sorted(wanted))
    return 1, f"{module} (pid {', '.join(map(str, pids))}) has no established connection to NATS port {ports}"


def main(argv: list[str]) -> int:
    """Run the probe on `MODULE URL_VARIABLE`."""
    if len(argv) != 2:
        print(f"expected 2 arguments (MODULE URL_VARIABLE), got {len(argv)}: {argv}", file=sys.stderr)
        return 2
    code, line = check(argv[0], argv[1])
    print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
