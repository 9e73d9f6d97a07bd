"""Warm sandboxes: a container that ran a batch waits, idle, for the next batch of the same batch key.

Starting a container and its interpreter costs far more CPU than a small backtest (about 0.2 s of
Docker engine and runc, then the imports). A warm container is the same hardened container as a
throw-away one, started with `python -m backtest_core --serve`: it reads the names of batch directories
from stdin, one a line, and answers each with its protocol lines. It only ever serves one batch key
(runner.batching.batch_key: one user, one strategy, one interval and date range), and its /job mount is
its own directory, into which each batch's directory is moved while it runs, so it never sees another
user's jobs; what a strategy could leave behind for the next batch, the same code could do to itself in
one batch.

A container goes back to the pool only after a batch ended cleanly (every final line read, no kill);
it is removed when it stayed idle `idle_s` seconds, when the pool holds `max_idle` others, and at shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.models.containers import Container
from docker.utils.socket import SocketError, next_frame_header, read_exactly

log = logging.getLogger(__name__)

STDOUT, STDERR = 1, 2  # stream ids of a multiplexed (non-tty) attach stream


@dataclass(eq=False)
class WarmContainer:
    """A started `--serve` container, its attach socket (stdin in, multiplexed stdout/stderr out) and
    the host directory it mounts at /job."""

    container: Container
    socket: Any  # the hijacked HTTP connection's socket.SocketIO
    home: Path

    def request(self, name: str) -> None:
        """Ask the container to run the batch directory `name` (under its /job)."""
        self.socket._sock.sendall(f"{name}\n".encode())

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """Yield (stream id, whole frame) until the container's output ends."""
        while True:
            stream, size = next_frame_header(self.socket)
            if size < 0:
                return
            try:
                yield stream, read_exactly(self.socket, size) if size else b""
            except SocketError:
                return


class WarmPool:
    """Idle warm containers by batch key, each removed after `idle_s` seconds unused."""

    def __init__(self, idle_s: float, max_idle: int, remove: Callable[[WarmContainer], None]) -> None:
        self._idle_s = idle_s
        self._max_idle = max_idle
        self._remove = remove
        self._lock = threading.Lock()
        self._idle: dict[WarmContainer, tuple[str, threading.Timer]] = {}  # insertion order: oldest first

    @property
    def enabled(self) -> bool:
        """Return True if containers are kept warm at all."""
        return self._max_idle > 0 and self._idle_s > 0

    def idle_count(self) -> int:
        """Return how many containers wait idle now."""
        with self._lock:
            return len(self._idle)

    def take(self, key: str) -> WarmContainer | None:
        """Return an idle container of `key` (no longer idle), or None."""
        with self._lock:
            for warm, (owner, timer) in self._idle.items():
                if owner == key:
                    timer.cancel()
                    del self._idle[warm]
                    return warm
        return None

    def put(self, key: str, warm: WarmContainer) -> None:
        """Keep `warm` idle for `key`; the oldest idle container goes if the pool is full."""
        evicted: list[WarmContainer] = []
        with self._lock:
            while len(self._idle) >= self._max_idle:
                oldest = next(iter(self._idle))
                self._idle.pop(oldest)[1].cancel()
                evicted.append(oldest)
            timer = threading.Timer(self._idle_s, self._expire, (warm,))
            timer.daemon = True
            self._idle[warm] = (key, timer)
            timer.start()
        for container in evicted:
            self._remove(container)

    def close(self) -> int:
        """Remove every idle container; return how many."""
        with self._lock:
            idle = list(self._idle)
            for _, timer in self._idle.values():
                timer.cancel()
            self._idle.clear()
        for warm in idle:
            self._remove(warm)
        return len(idle)

    def _expire(self, warm: WarmContainer) -> None:
        with self._lock:
            if self._idle.pop(warm, None) is None:
                return  # taken meanwhile
        log.debug("warm sandbox %s idle for %.0f s: removing it", warm.container.name, self._idle_s)
        self._remove(warm)
