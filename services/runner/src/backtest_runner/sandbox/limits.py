"""The limits every sandbox container runs under."""

from __future__ import annotations

from backtest_core.model.config import Frozen
from pydantic import Field

MIB = 1024 * 1024


class SandboxLimits(Frozen):
    """Resource limits of one sandbox run. Memory includes swap (memswap = mem), so nothing spills to disk."""

    memory_bytes: int = Field(default=1024 * MIB, ge=32 * MIB, description="RAM + swap, bytes")
    cpus: float = Field(default=1.0, gt=0, le=64, description="CPU cores (CFS quota)")
    pids: int = Field(default=128, ge=8, le=4096, description="max processes + threads in the container")
    tmpfs_bytes: int = Field(default=64 * MIB, ge=MIB, description="size of the writable /tmp, bytes")
    wall_clock_s: float = Field(default=300.0, gt=0, description="run time before the container is killed")
    output_bytes: int = Field(default=64 * MIB, ge=4096, description="stdout + stderr cap, bytes")
    stderr_tail_bytes: int = Field(default=16 * 1024, ge=256, description="stderr kept for diagnostics")

    @property
    def nano_cpus(self) -> int:
        """Return the CPU limit in the Docker API's unit (1e9 = one core)."""
        return round(self.cpus * 1_000_000_000)
