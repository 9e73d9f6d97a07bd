"""Account for a sandbox's stdout and stderr: the byte cap, protocol lines, and a stderr tail."""

from __future__ import annotations

from typing import TypeAlias

from backtest_core.contracts import SandboxError, SandboxLine, SandboxProgress, SandboxResult
from pydantic import TypeAdapter

ParsedLine: TypeAlias = SandboxProgress | SandboxResult | SandboxError
_LINE: TypeAdapter[ParsedLine] = TypeAdapter(SandboxLine)
NOISE_SAMPLE_CHARS = 500


class OutputAccountant:
    """Count stdout + stderr bytes against a cap, split stdout into SandboxLines, keep the stderr tail.

    Feed raw chunks in arrival order. Once the cap is crossed nothing more is parsed or buffered and
    `over_limit` is True (the caller kills the container). Stdout lines that are not protocol JSON are
    counted as noise (a user's print) and the first one is kept as a sample.

    A batch of `jobs` jobs ends in `jobs` final lines; each job is a segment of its own: the final line
    of every job but the last starts a new segment (byte count, stderr tail and noise from zero, no
    final line yet), so the cap holds per job and the state describes the job running now.
    """

    def __init__(self, limit_bytes: int, stderr_tail_bytes: int, jobs: int = 1) -> None:
        self.limit_bytes = limit_bytes
        self.stderr_tail_bytes = stderr_tail_bytes
        self.jobs = jobs
        self.finished = 0  # final lines seen (jobs ended)
        self.total_bytes = 0
        self.over_limit = False
        self.terminal: SandboxResult | SandboxError | None = None
        self.lines_after_terminal = 0
        self.noise_lines = 0
        self.noise_sample: str | None = None
        self._partial = bytearray()
        self._stderr = bytearray()

    def _count(self, chunk: bytes) -> bool:
        """Add a chunk to the total; return False once the cap is crossed."""
        self.total_bytes += len(chunk)
        if self.total_bytes > self.limit_bytes:
            self.over_limit = True
            self._partial.clear()
        return not self.over_limit

    def feed_stdout(self, chunk: bytes) -> list[ParsedLine]:
        """Take a stdout chunk; return the protocol lines it completed (progress and final), in order."""
        if self.over_limit or not self._count(chunk):
            return []
        self._partial += chunk
        if b"\n" not in chunk:
            return []
        *complete, rest = bytes(self._partial).split(b"\n")
        self._partial = bytearray(rest)
        return [line for raw in complete if (line := self._parse(raw)) is not None]

    def feed_stderr(self, chunk: bytes) -> None:
        """Take a stderr chunk; keep only the last `stderr_tail_bytes`."""
        if self.over_limit or not self._count(chunk):
            return
        self._stderr += chunk
        if len(self._stderr) > self.stderr_tail_bytes:
            del self._stderr[: len(self._stderr) - self.stderr_tail_bytes]

    def finish(self) -> list[ParsedLine]:
        """Parse a last stdout line that had no newline; call once after the stream ended."""
        if self.over_limit or not self._partial:
            return []
        raw, self._partial = bytes(self._partial), bytearray()
        line = self._parse(raw)
        return [] if line is None else [line]

    @property
    def stderr_tail(self) -> str:
        """Return the kept end of stderr, decoded leniently."""
        return self._stderr.decode("utf-8", errors="replace")

    def _parse(self, raw: bytes) -> ParsedLine | None:
        raw = raw.strip()
        if not raw:
            return None
        try:
            if not raw.startswith(b"{") or b'"type"' not in raw:  # cheap reject of prints and floods
                raise ValueError("not a protocol line")
            line = _LINE.validate_json(raw)
        except ValueError:  # pydantic.ValidationError is a ValueError
            self.noise_lines += 1
            if self.noise_sample is None:
                self.noise_sample = raw[:NOISE_SAMPLE_CHARS].decode("utf-8", errors="replace")
            return None
        if self.terminal is not None:
            self.lines_after_terminal += 1
            return None
        if isinstance(line, SandboxResult | SandboxError):
            self.finished += 1
            if self.finished < self.jobs:
                self._next_segment()
            else:
                self.terminal = line
        return line

    def _next_segment(self) -> None:
        self.total_bytes = 0
        self.noise_lines = 0
        self.noise_sample = None
        self._stderr.clear()
