"""Run the user's strategy in a forked child process that can only send signals
(backtest_core.sandbox.signal_wire).

The sandbox entry (the trusted parent) keeps the protocol stdout, runs the engine and writes the only
result. Before forking it makes itself non-dumpable (prctl PR_SET_DUMPABLE 0), so the child can neither
ptrace it nor open /proc/<parent>/mem, /fd or /environ. The child closes every descriptor but its
pipe and stderr (its stdout is stderr), loads the strategy, computes the signals of every symbol and
sends them as fixed-format frames; it never returns into the parent's code. Whatever it sends that is
not a valid frame, or an early end, is a StrategyProcessError; a SIGKILL (the kernel's OOM killer) is
reported as such so the entry can exit the way an OOM-killed sandbox does.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Mapping

from backtest_core.engine.orchestrator import SignalPath, SymbolProgress, in_process_signals, user_traceback
from backtest_core.errors import BacktestError
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_core.sandbox.signal_wire import (
    ByteStream,
    Decided,
    Progressed,
    WireError,
    error_frame,
    progress_frame,
    read_frame,
    signals_frame,
)
from backtest_core.strategy import SignalArrays

PR_SET_DUMPABLE = 4
_MAX_FD = 1024  # the sandbox's hard RLIMIT_NOFILE


class StrategyProcessError(BacktestError):
    """The strategy process broke the protocol, or ended before sending every symbol's signals."""

    def __init__(self, message: str, killed_by: int | None = None) -> None:
        super().__init__(message)
        self.killed_by = killed_by
        self.ends_run = killed_by == signal.SIGKILL  # the kernel's OOM killer: the sandbox ends at once


def set_dumpable(dumpable: bool) -> None:
    """Set this process's dumpable flag (0: no ptrace or /proc/<pid>/mem access by same-uid processes)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_DUMPABLE, {int(dumpable)}) failed: {os.strerror(err)}")


def forked_signals(
    config: BacktestConfig,
    candles: Mapping[str, Candles],
    path: SignalPath = "auto",
    on_progress: SymbolProgress | None = None,
) -> dict[str, SignalArrays]:
    """Return every symbol's signals, computed by the strategy in a forked child (a SignalSource)."""
    symbols = list(candles)
    set_dumpable(False)
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(write_end, config, candles, path)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as stream:
            return _receive(stream, symbols, [len(candles[s]) for s in symbols], on_progress, pid)
    finally:
        _end(pid)


def _receive(
    stream: ByteStream,
    symbols: list[str],
    bars: list[int],
    on_progress: SymbolProgress | None,
    pid: int,
) -> dict[str, SignalArrays]:
    got: dict[int, SignalArrays] = {}
    while len(got) < len(symbols):
        try:
            frame = read_frame(stream, bars, got.__contains__)
        except WireError as exc:
            raise StrategyProcessError(f"the strategy process sent a malformed message: {exc}") from None
        if frame is None:
            raise _ended_early(pid, len(got), len(symbols))
        if isinstance(frame, BacktestError):
            raise frame
        if isinstance(frame, Progressed):
            if on_progress is not None:
                on_progress(symbols[frame.symbol], frame.fraction)
        elif isinstance(frame, Decided):
            got[frame.symbol] = frame.signals
            if on_progress is not None:
                on_progress(symbols[frame.symbol], 1.0)
    return {symbols[i]: got[i] for i in range(len(symbols))}


def _ended_early(pid: int, sent: int, expected: int) -> StrategyProcessError:
    _, status = os.waitpid(pid, 0)
    what = f"after sending the signals of {sent} of {expected} symbols"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        return StrategyProcessError(f"the strategy process was killed by {name} {what}", killed_by=number)
    return StrategyProcessError(
        f"the strategy process exited with code {os.waitstatus_to_exitcode(status)} {what}"
    )


def _end(pid: int) -> None:
    """Kill the child if it still runs and reap it (it has nothing more to say)."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    except ProcessLookupError:
        pass


def _child(write_end: int, config: BacktestConfig, candles: Mapping[str, Candles], path: SignalPath) -> None:
    """Compute and send the signals, then exit; only the pipe and stderr stay open."""
    code = 0
    try:
        set_dumpable(True)  # its own memory is the strategy's; only the parent is protected
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(2, 1)
        keep = sorted({0, 1, 2, write_end})
        for low, high in zip(keep, [*keep[1:], _MAX_FD], strict=True):
            os.closerange(low + 1, high)
        index = {symbol: i for i, symbol in enumerate(candles)}
        pipe = _Pipe(write_end)
        try:
            signals = in_process_signals(
                config, candles, path, lambda s, f: pipe.send([progress_frame(index[s], f)])
            )
            for symbol, arrays in signals.items():
                pipe.send(signals_frame(index[symbol], arrays))
        except BacktestError as exc:
            pipe.send([error_frame(exc)])
        except BaseException as exc:  # the user's code may raise anything, SystemExit included
            message = f"{type(exc).__name__} while running the strategy: {exc}"
            pipe.send([error_frame(BacktestError(message), user_traceback(exc))])
    except BaseException:  # nothing can be reported any more: the parent sees the pipe end early
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class _Pipe:
    """Write whole frames to the pipe, one writer at a time (signals may come from several threads)."""

    def __init__(self, fd: int) -> None:
        import threading

        self._fd = fd
        self._lock = threading.Lock()

    def send(self, parts: list[bytes | memoryview]) -> None:
        with self._lock:
            for part in parts:
                view = memoryview(part).cast("B")
                while len(view):
                    view = view[os.write(self._fd, view) :]
