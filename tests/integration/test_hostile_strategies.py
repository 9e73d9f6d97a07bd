"""Hostile uploaded strategies in the real sandbox: each fails for the right reason, nothing else suffers.

Every case uploads a strategy as source (`SourceStrategy`) and runs it through the runner's real path
(`JobExecutor` + `DockerSandbox` on the real `backtest-sandbox` image, hostile limits: 256 MiB, 64 pids,
8 MiB /tmp, 6 s wall clock, 4 MiB output) while a good SMA-crossover backtest runs at the same time in
the same runner work dir. Each test proves, besides its own point:

- the hostile job ends in exactly one `RunFailed` with the expected `FailureReason` and message;
- the concurrent good job ends `RunSucceeded` with exactly the result of `run_backtest` in-process;
- no container labelled with the test's runner id is left, and the runner's work dir is empty.

What each case proves:

- fork bomb (naive): 64 pids, 256 MiB or the clock, whichever the kernel hits first, ends it
  (`out_of_memory`, `strategy_error` naming the failed fork, or `timeout`; all three are seen here).
- fork bomb (ignores errors): still capped by the pids limit; the wall clock ends it (`timeout`).
- memory bomb (touching every page): `out_of_memory`, naming the 256 MiB limit.
- one huge numpy allocation: `out_of_memory` too (numpy's MemoryError subclass is recognised).
- what the container shows of itself: hostname `sandbox`, no host nameserver in /etc/resolv.conf,
  hard rlimits the user cannot raise (no core dumps, no message queues, 1024 descriptors).
- CPU spin / sleep forever: `timeout` with the limit in the message.
- TCP to 127.0.0.1: refused by the container's own loopback; a listener on the host's loopback saw
  no connection. TCP to a public address: `Network is unreachable` (no route, so nothing is sent);
  the only interface is `lo`. DNS: fails (no resolver is reachable).
- writing outside /tmp (/, /job, /etc, site-packages, /dev/shm, /dev/mqueue): every write fails.
- filling /tmp: stops at the 8 MiB tmpfs with `No space left on device` (`strategy_error`).
- host files: /etc/shadow (present on the host) does not exist in the container; /proc shows only
  the sandbox's two processes; /proc/1/environ is closed (EACCES), os.environ holds only PATH, HOME
  and HOSTNAME, and a secret set in the runner's environment appears nowhere in the container.
- printing gigabytes: `output_limit` at the 4 MiB cap; raw bytes on every descriptor (its own pipe
  included) are a malformed message from the strategy process (`strategy_error`).
- forging: a result with final equity 1e300 written to every descriptor, /proc/1/fd/1 or its own
  stdout is never accepted; the strategy process cannot open the entry's /proc fd/1, mem or environ
  (EACCES) nor ptrace it; a megabyte `<script>` progress stage never reaches a report.
- io_uring_setup: denied by the seccomp profile (ENOSYS).
- ctypes/syscalls: setuid(0), setgid(0), unshare, mount, chroot, ptrace all fail with EPERM; the
  process has no capabilities, no_new_privs and a seccomp filter; the uid stays 65534.
- symlinks: links in /tmp to /etc/shadow and to the host's work dir resolve inside the container
  (nothing there); /job is read-only, so no link can be planted in the job dir the runner deletes.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest
from backtest_core.contracts import (
    Failure,
    FailureReason,
    RunBacktestJob,
    RunFailed,
    RunProgressed,
    RunSucceeded,
)
from backtest_core.engine.run import run_backtest
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_core.model.results import BacktestResult
from backtest_runner.executor import Disposition, JobExecutor
from backtest_runner.progress import ProgressThrottle
from backtest_runner.sandbox.docker_sandbox import LABEL_ROLE, LABEL_RUNNER, ROLE_SANDBOX, DockerSandbox
from backtest_runner.sandbox.limits import MIB, SandboxLimits
from backtest_runner.sandbox.outcome import KillSwitch
from backtest_testinfra import MemoryCandles, Recorder

pytestmark = pytest.mark.integration

START = datetime(2018, 1, 1, tzinfo=UTC)
END = datetime(2019, 7, 1, tzinfo=UTC)
HOSTILE_LIMITS = SandboxLimits(
    memory_bytes=256 * MIB, cpus=1.0, pids=64, tmpfs_bytes=8 * MIB, wall_clock_s=6.0, output_bytes=4 * MIB
)
# The good job runs under the same limits except the clock: two cores are shared with the hostile job.
GOOD_LIMITS = HOSTILE_LIMITS.model_copy(update={"wall_clock_s": 120.0})
GOOD_PARAMS = {"fast": 10, "slow": 30}
SECRET_NAME = "RUNNER_HOSTILE_TEST_SECRET"
SECRET_VALUE = "s3cr3t-" + os.urandom(8).hex()

HEADER = (
    "import ctypes, errno, json, os, socket, sys, time\n"
    "from backtest_core.strategy import NO_SIGNAL, BaseStrategy\n\n\n"
    "class Hostile(BaseStrategy):\n"
    "    def decide(self, df, interval, **p):\n"
)


def _strategy(body: str) -> SourceStrategy:
    """Return a strategy whose decide() runs `body` (indented 8 spaces, may use the HEADER imports)."""
    indented = "".join(f"        {line}\n" for line in body.strip("\n").splitlines())
    return SourceStrategy(source=HEADER + indented)


def _job(task_id: str, strategy: str | SourceStrategy, symbols: list[str], **params: int) -> RunBacktestJob:
    config = BacktestConfig(strategy=strategy, params=params, symbols=symbols, start=START, end=END)
    return RunBacktestJob(task_id=task_id, attempt=1, user_id="u", config=config, cache_key=task_id)


@pytest.fixture(scope="module")
def candles() -> MemoryCandles:
    return MemoryCandles()


@pytest.fixture(scope="module")
def good_expected(candles: MemoryCandles) -> BacktestResult:
    """The good job's result computed in-process, the reference the sandboxed run must equal."""
    config = _job("0" * 32, "sma_cross", ["BTCUSD", "ETHUSD"], **GOOD_PARAMS).config
    result = run_backtest(
        config, {s: candles.load(s, "1d", None, None) for s in config.symbols}, equity_points_max=5000
    )
    assert result.metrics.trade_count > 0
    return result


@pytest.fixture
def runner_id(docker_client: docker.DockerClient) -> Iterator[str]:
    """Yield a unique runner id; afterwards assert no sandbox container labelled with it remains."""
    rid = f"hostile-{os.getpid()}-{os.urandom(4).hex()}"
    yield rid
    label = [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"{LABEL_RUNNER}={rid}"]
    left = docker_client.containers.list(all=True, filters={"label": label})
    for container in left:
        container.remove(force=True)
    assert [c.name for c in left] == []


class Harness:
    """Run one hostile job next to one good job through the runner's executor and real sandbox."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        runner_id: str,
        candles: MemoryCandles,
        expected: BacktestResult,
        work_dir: Path,
    ) -> None:
        self.client, self.image, self.runner_id = client, image, runner_id
        self.candles, self.expected, self.work_dir = candles, expected, work_dir

    def _executor(self, limits: SandboxLimits, recorder: Recorder) -> JobExecutor:
        return JobExecutor(
            runner_id=self.runner_id,
            candles=self.candles,
            sandbox=DockerSandbox(
                self.client, self.image, limits, self.runner_id, instance_id=self.runner_id
            ),
            publisher=recorder,
            work_dir=self.work_dir,
            equity_points_max=5000,
            throttle_factory=lambda: ProgressThrottle(0.0, 0.0, time.monotonic),
        )

    def run(self, strategy: SourceStrategy) -> Failure:
        """Run both jobs at once; assert the good one succeeded and nothing is left; return the failure."""
        hostile_job = _job("a" * 32, strategy, ["BTCUSD"])
        good_job = _job("b" * 32, "sma_cross", ["BTCUSD", "ETHUSD"], **GOOD_PARAMS)
        hostile, good = Recorder(), Recorder()

        async def both() -> tuple[Disposition, Disposition]:
            return await asyncio.gather(
                self._executor(HOSTILE_LIMITS, hostile).execute(hostile_job, KillSwitch()),
                self._executor(GOOD_LIMITS, good).execute(good_job, KillSwitch()),
            )

        dispositions = asyncio.run(both())

        self.hostile_reports = hostile.reports
        assert list(dispositions) == [Disposition.ACK, Disposition.ACK]
        assert good.reports[0].kind == "started" and isinstance(good.reports[-1], RunSucceeded)
        assert good.reports[-1].result == self.expected
        terminal = [r for r in hostile.reports if isinstance(r, RunFailed | RunSucceeded)]
        assert len(terminal) == 1 and isinstance(terminal[0], RunFailed), terminal
        assert hostile.reports[0].kind == "started" and hostile.reports[-1] is terminal[0]
        assert list(self.work_dir.iterdir()) == []
        label = [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"{LABEL_RUNNER}={self.runner_id}"]
        assert self.client.containers.list(all=True, filters={"label": label}) == []
        return terminal[0].failure


@pytest.fixture
def harness(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    runner_id: str,
    candles: MemoryCandles,
    good_expected: BacktestResult,
    tmp_path: Path,
) -> Harness:
    return Harness(docker_client, sandbox_image, runner_id, candles, good_expected, tmp_path / "work")


def _observed(failure: Failure) -> dict[str, object]:
    """Return the JSON a probing strategy raised as `RuntimeError(json)` (strategy_error message)."""
    assert failure.reason is FailureReason.STRATEGY_ERROR, failure
    prefix = "Hostile raised RuntimeError on BTCUSD: "
    assert failure.message.startswith(prefix), failure.message
    observed: dict[str, object] = json.loads(failure.message[len(prefix) :])
    return observed


# --- processes, memory, CPU, time -------------------------------------------------------------------


def test_a_fork_bomb_ends_at_the_pids_memory_or_time_limit(harness: Harness) -> None:
    failure = harness.run(_strategy("while True:\n    os.fork()"))

    # 64 copies of an interpreter with numpy and pandas loaded fill 256 MiB about when the 64th fork
    # fails, and 64 runnable processes share one CPU: the kernel decides which limit is hit first
    # (seen here: all three). Each is a right reason; what must hold is that one of them ends it.
    expected = {
        FailureReason.OUT_OF_MEMORY: "the sandbox exceeded its memory limit of 256 MiB and was killed",
        FailureReason.STRATEGY_ERROR: "Hostile raised BlockingIOError on BTCUSD: [Errno 11]",
        FailureReason.TIMEOUT: "the backtest ran longer than the wall-clock limit of 6 s",
    }
    assert failure.reason in expected
    assert failure.message.startswith(expected[failure.reason])


def test_a_fork_bomb_that_ignores_errors_is_held_by_the_pids_limit_until_the_timeout(
    harness: Harness,
) -> None:
    body = "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass"

    failure = harness.run(_strategy(body))

    assert failure.reason is FailureReason.TIMEOUT
    assert failure.message == "the backtest ran longer than the wall-clock limit of 6 s"


def test_a_memory_bomb_is_out_of_memory_at_256_mib(harness: Harness) -> None:
    body = "hoard = []\nwhile True:\n    hoard.append(b'x' * (32 << 20))"

    failure = harness.run(_strategy(body))

    assert failure.reason is FailureReason.OUT_OF_MEMORY
    assert failure.message.startswith(
        ("the sandbox exceeded its memory limit of 256 MiB", "the strategy ran out of memory: ")
    )


def test_one_huge_numpy_allocation_is_out_of_memory(harness: Harness) -> None:
    failure = harness.run(_strategy("import numpy\nnumpy.ones(1 << 40)"))

    assert failure.reason is FailureReason.OUT_OF_MEMORY
    assert failure.message.startswith("the strategy ran out of memory: Hostile raised MemoryError on BTCUSD")
    assert "Unable to allocate 8.00 TiB" in failure.message


def test_a_cpu_spin_forever_is_a_timeout(harness: Harness) -> None:
    failure = harness.run(_strategy("while True:\n    pass"))

    assert failure.reason is FailureReason.TIMEOUT
    assert failure.message == "the backtest ran longer than the wall-clock limit of 6 s"


def test_a_sleep_forever_is_a_timeout(harness: Harness) -> None:
    failure = harness.run(_strategy("time.sleep(10**6)"))

    assert failure.reason is FailureReason.TIMEOUT
    assert failure.message == "the backtest ran longer than the wall-clock limit of 6 s"


# --- network ----------------------------------------------------------------------------------------


def test_tcp_to_loopback_reaches_only_the_containers_own_loopback(harness: Harness) -> None:
    with socket.socket() as listener:  # a real server on the HOST's loopback the strategy aims at
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]

        failure = harness.run(_strategy(f"socket.create_connection(('127.0.0.1', {port}), timeout=3)"))

        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected to the host
    assert failure.reason is FailureReason.STRATEGY_ERROR
    assert (
        failure.message == "Hostile raised ConnectionRefusedError on BTCUSD: [Errno 111] Connection refused"
    )


def test_tcp_to_a_public_address_has_no_route_and_the_only_interface_is_loopback(harness: Harness) -> None:
    body = (
        "lines = open('/proc/net/dev').read().splitlines()[2:]\n"
        "stats = {l.split(':')[0].strip(): l.split(':')[1].split() for l in lines}\n"
        "try:\n"
        "    socket.create_connection(('93.184.216.34', 443), timeout=3)\n"
        "    outcome = 'connected'\n"
        "except OSError as exc:\n"
        "    outcome = exc.errno\n"
        "raise RuntimeError(json.dumps({'ifaces': sorted(stats), 'connect': outcome}))"
    )

    observed = _observed(harness.run(_strategy(body)))

    assert observed == {"ifaces": ["lo"], "connect": errno.ENETUNREACH}


def test_a_dns_lookup_fails_as_a_strategy_error(harness: Harness) -> None:
    failure = harness.run(_strategy("socket.getaddrinfo('example.com', 443)"))

    assert failure.reason is FailureReason.STRATEGY_ERROR
    assert failure.message.startswith("Hostile raised gaierror on BTCUSD: [Errno -3]")


# --- files ------------------------------------------------------------------------------------------


def test_every_write_outside_tmp_fails(harness: Harness) -> None:
    body = (
        "import backtest_core\n"
        "targets = ['/evil', '/job/evil', '/job/candles/BTCUSD.npz', '/etc/passwd', '/dev/shm/evil',\n"
        "           '/dev/mqueue/evil', os.path.dirname(backtest_core.__file__) + '/evil.py']\n"
        "seen = {}\n"
        "for target in targets:\n"
        "    try:\n"
        "        with open(target, 'a') as f:\n"
        "            f.write('x')\n"
        "        seen[target] = 'written'\n"
        "    except OSError as exc:\n"
        "        seen[target] = errno.errorcode[exc.errno]\n"
        "raise RuntimeError(json.dumps(seen))"
    )

    observed = _observed(harness.run(_strategy(body)))

    site = "/usr/local/lib/python3.11/dist-packages/backtest_core/evil.py"
    assert observed == {
        "/evil": "EROFS",
        "/job/evil": "EROFS",
        "/job/candles/BTCUSD.npz": "EACCES",  # root's file, checked before the read-only mount
        "/etc/passwd": "EACCES",
        "/dev/shm/evil": "ENOENT",
        "/dev/mqueue/evil": "EMFILE",  # creating a POSIX queue needs RLIMIT_MSGQUEUE > 0
        site: "EROFS",
    }


def test_filling_tmp_stops_at_the_tmpfs_size_with_no_space_left(harness: Harness) -> None:
    body = "with open('/tmp/fill', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))\n"

    failure = harness.run(_strategy(body))

    assert failure.reason is FailureReason.STRATEGY_ERROR
    assert failure.message == "Hostile raised OSError on BTCUSD: [Errno 28] No space left on device"


def test_host_files_processes_and_secrets_are_not_visible(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)  # the runner's own environment
    assert Path("/etc/shadow").exists()
    body = (
        "seen = {'pids': sorted(int(d) for d in os.listdir('/proc') if d.isdigit())}\n"
        "try:\n"
        "    seen['shadow'] = open('/etc/shadow').read()\n"
        "except OSError as exc:\n"
        "    seen['shadow'] = errno.errorcode[exc.errno]\n"
        "try:\n"
        "    seen['proc1_environ'] = open('/proc/1/environ', 'rb').read().decode()\n"
        "except OSError as exc:\n"
        "    seen['proc1_environ'] = errno.errorcode[exc.errno]\n"
        "seen['os_environ'] = sorted(os.environ)\n"
        "seen['ppid'] = os.getppid()\n"
        f"seen['secret_anywhere'] = {SECRET_VALUE!r} in seen['proc1_environ'] + repr(os.environ)\n"
        "raise RuntimeError(json.dumps(seen))"
    )

    observed = _observed(harness.run(_strategy(body)))

    pids = observed.pop("pids")
    assert isinstance(pids, list) and pids[0] == 1 and len(pids) == 2  # the entry and the strategy process
    assert observed == {
        "shadow": "ENOENT",
        "proc1_environ": "EACCES",  # the entry (pid 1) is non-dumpable: its /proc files are closed
        "os_environ": ["HOME", "HOSTNAME", "PATH"],
        "ppid": 1,
        "secret_anywhere": False,
    }


def test_symlinks_in_tmp_resolve_inside_the_container_and_job_is_read_only(harness: Harness) -> None:
    host_dir = str(harness.work_dir)
    body = (
        "seen = {}\n"
        f"for name, target in [('shadow', '/etc/shadow'), ('workdir', {host_dir!r})]:\n"
        "    os.symlink(target, '/tmp/' + name)\n"
        "    seen[name] = os.path.exists('/tmp/' + name)\n"
        "try:\n"
        "    os.symlink('/etc/shadow', '/job/link')\n"
        "    seen['job'] = 'linked'\n"
        "except OSError as exc:\n"
        "    seen['job'] = errno.errorcode[exc.errno]\n"
        "raise RuntimeError(json.dumps(seen))"
    )

    observed = _observed(harness.run(_strategy(body)))

    assert observed == {"shadow": False, "workdir": False, "job": "EROFS"}


# --- output -----------------------------------------------------------------------------------------


def test_printing_gigabytes_is_an_output_limit(harness: Harness) -> None:
    failure = harness.run(_strategy("line = 'x' * 4095\nfor _ in range(1 << 20):\n    print(line)"))

    assert failure.reason is FailureReason.OUTPUT_LIMIT
    assert failure.message.startswith(f"the sandbox wrote more than the output cap of {4 * MIB} bytes")


def test_raw_bytes_on_every_descriptor_are_a_malformed_message_from_the_strategy_process(
    harness: Harness,
) -> None:
    body = (
        "fds = [int(fd) for fd in os.listdir('/proc/self/fd') if int(fd) > 2]\n"
        "chunk = b'{' * (1 << 20)\n"
        "while True:\n"
        "    for fd in fds:\n"
        "        try:\n"
        "            os.write(fd, chunk)\n"
        "        except OSError:\n"
        "            pass"
    )

    failure = harness.run(_strategy(body))

    assert failure.reason is FailureReason.STRATEGY_ERROR
    assert failure.message == MALFORMED_BRACE


# --- results the strategy cannot forge --------------------------------------------------------------

# A strategy that computes a genuine result for the job's config, sets its final equity to 1e300 and
# holds it as one protocol line in `line` (bytes).
FORGE = (
    "from pathlib import Path\n"
    "from backtest_core.model.candles import read_candles\n"
    "from backtest_core.contracts import SandboxBatch, SandboxProgress, SandboxResult\n"
    "from backtest_core.engine.run import run_backtest\n"
    "from backtest_core.model.trade_log import PACKED\n"
    "batch = next(Path('/job').rglob('batch.json'))  # a job runs as a batch of one, warm or not\n"
    "job = SandboxBatch.model_validate_json(batch.read_text()).jobs[0]\n"
    "candles = {s: read_candles(batch.parent / 'candles' / f'{s}.npz') for s in job.config.symbols}\n"
    "real = run_backtest(job.config.model_copy(update={'strategy': 'sma_cross', 'params': {}}), candles)\n"
    "metrics = real.metrics.model_copy(update={'final_equity': 1e300})\n"
    "fake = real.model_copy(update={'config': job.config, 'metrics': metrics})\n"
    "line = (SandboxResult(result=fake).model_dump_json(context=PACKED) + '\\n').encode()\n"
)
# What the entry says when the strategy process writes JSON ('{' is not a frame kind) into its pipe.
MALFORMED_BRACE = (
    "the strategy process sent a malformed message: frame kind must be one of [1, 2, 3], was 123"
)


def test_a_forged_result_with_final_equity_1e300_written_anywhere_is_never_accepted(harness: Harness) -> None:
    body = FORGE + (
        "fds = sorted(map(int, os.listdir('/proc/self/fd')))\n"
        "targets = [f'/proc/self/fd/{fd}' for fd in fds if fd > 2]\n"
        "for target in targets + ['/proc/1/fd/1', f'/proc/{os.getppid()}/fd/1']:\n"
        "    try:\n"
        "        with open(target, 'wb') as f:\n"
        "            f.write(line)\n"
        "        break\n"
        "    except OSError:\n"
        "        pass\n"
        "print(line.decode())\n"
        "os._exit(0)"
    )

    failure = harness.run(_strategy(body))  # asserts a RunFailed: no RunSucceeded at all

    assert failure.reason is FailureReason.STRATEGY_ERROR
    assert failure.message == MALFORMED_BRACE


def test_a_forged_result_on_the_strategys_own_stdout_is_only_stderr_noise(harness: Harness) -> None:
    body = FORGE + "sys.stdout.write(line.decode())\nsys.stdout.flush()\nos._exit(0)"

    failure = harness.run(_strategy(body))

    assert failure.reason is FailureReason.STRATEGY_ERROR
    assert failure.message == (
        "the strategy process exited with code 0 after sending the signals of 0 of 1 symbols"
    )


def test_the_strategy_process_cannot_open_the_entrys_stdout_memory_or_environment(harness: Harness) -> None:
    body = (
        "seen = {}\n"
        "for name in ('fd/1', 'mem', 'environ'):\n"
        "    try:\n"
        "        open(f'/proc/{os.getppid()}/{name}', 'rb').close()\n"
        "        seen[name] = 'opened'\n"
        "    except OSError as exc:\n"
        "        seen[name] = errno.errorcode[exc.errno]\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "ctypes.set_errno(0)\n"
        "result = libc.ptrace(16, os.getppid(), None, None)\n"
        "seen['ptrace_attach'] = [result, errno.errorcode.get(ctypes.get_errno(), 'OK')]\n"
        "seen['ppid'] = os.getppid()\n"
        "raise RuntimeError(json.dumps(seen))"
    )

    observed = _observed(harness.run(_strategy(body)))

    assert observed == {
        "fd/1": "EACCES",
        "mem": "EACCES",
        "environ": "EACCES",
        "ptrace_attach": [-1, "EPERM"],
        "ppid": 1,
    }


def test_a_megabyte_progress_stage_from_the_strategy_never_reaches_a_report(harness: Harness) -> None:
    body = (
        "stage = '<script>alert(1)</script>' * 40_000\n"
        "line = json.dumps({'type': 'progress', 'fraction': 0.5, 'stage': stage}) + '\\n'\n"
        "for fd in sorted(map(int, os.listdir('/proc/self/fd'))):\n"
        "    try:\n"
        "        os.write(fd, line.encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "raise RuntimeError('stage sent')"
    )

    failure = harness.run(_strategy(body))

    stages = [r.stage for r in harness.hostile_reports if isinstance(r, RunProgressed)]
    assert stages and set(stages) <= {"loading", "signals", "portfolio", "metrics", "done"}
    assert failure.reason is FailureReason.STRATEGY_ERROR
    assert failure.message == MALFORMED_BRACE


# --- privileges -------------------------------------------------------------------------------------


def test_ctypes_syscalls_for_privileges_fail_with_eperm(harness: Harness) -> None:
    body = (
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "calls = {\n"
        "    'setuid': lambda: libc.setuid(0),\n"
        "    'setgid': lambda: libc.setgid(0),\n"
        "    'unshare_user_mount': lambda: libc.unshare(0x10000000 | 0x00020000),\n"
        "    'mount': lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None),\n"
        "    'chroot': lambda: libc.chroot(b'/tmp'),\n"
        "    'ptrace_attach': lambda: libc.ptrace(16, 1, None, None),\n"
        "}\n"
        "seen = {}\n"
        "for name, call in calls.items():\n"
        "    ctypes.set_errno(0)\n"
        "    seen[name] = [call(), errno.errorcode.get(ctypes.get_errno(), 'OK')]\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "seen['status'] = {k: status[k].strip() for k in ('CapEff', 'CapPrm', 'NoNewPrivs', 'Seccomp')}\n"
        "seen['uid'] = [os.getuid(), os.geteuid()]\n"
        "raise RuntimeError(json.dumps(seen))"
    )

    observed = _observed(harness.run(_strategy(body)))

    assert observed == {
        "setuid": [-1, "EPERM"],
        "setgid": [-1, "EPERM"],
        "unshare_user_mount": [-1, "EPERM"],
        "mount": [-1, "EPERM"],
        "chroot": [-1, "EPERM"],
        "ptrace_attach": [-1, "EPERM"],
        "status": {"CapEff": "0" * 16, "CapPrm": "0" * 16, "NoNewPrivs": "1", "Seccomp": "2"},
        "uid": [65534, 65534],
    }


def test_io_uring_setup_is_denied_by_the_seccomp_profile(harness: Harness) -> None:
    body = (
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed\n"
        "ctypes.set_errno(0)\n"
        "fd = libc.syscall(425, 8, params)  # io_uring_setup(entries=8, params) on x86_64\n"
        "error = errno.errorcode.get(ctypes.get_errno(), 'OK')\n"
        "raise RuntimeError(json.dumps({'io_uring_setup': [fd, error]}))"
    )

    observed = _observed(harness.run(_strategy(body)))

    assert observed["io_uring_setup"] in ([-1, "EPERM"], [-1, "ENOSYS"])


def test_the_container_shows_no_host_identity_and_its_rlimits_cannot_be_raised(harness: Harness) -> None:
    body = (
        "import resource\n"
        "seen = {'hostname': open('/etc/hostname').read().strip(),\n"
        "        'resolv': open('/etc/resolv.conf').read().split()}\n"
        "for name in ('CORE', 'MSGQUEUE', 'NOFILE'):\n"
        "    limit = getattr(resource, 'RLIMIT_' + name)\n"
        "    seen[name] = list(resource.getrlimit(limit))\n"
        "    try:\n"
        "        resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "        seen[name].append('raised')\n"
        "    except (ValueError, OSError) as exc:\n"
        "        seen[name].append(type(exc).__name__)\n"
        "raise RuntimeError(json.dumps(seen))"
    )

    observed = _observed(harness.run(_strategy(body)))

    assert observed == {
        "hostname": "sandbox",
        "resolv": ["nameserver", "127.0.0.1"],
        "CORE": [0, 0, "ValueError"],
        "MSGQUEUE": [0, 0, "ValueError"],
        "NOFILE": [1024, 1024, "ValueError"],
    }
