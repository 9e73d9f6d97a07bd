"""The runner's executor + DockerSandbox with the real engine in the real sandbox image, on real candles.

No broker here (a recording publisher): this pins what a job produces in the hardened container, from a
good backtest (identical to `run_backtest` in-process) to each hostile strategy's failure reason.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import docker
import pytest
from backtest_core.contracts import (
    BATCH_FILE,
    FailureReason,
    RunBacktestJob,
    RunFailed,
    RunProgressed,
    RunSucceeded,
    SandboxBatch,
)
from backtest_core.engine.run import run_backtest
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_runner.executor import Disposition, JobExecutor
from backtest_runner.ports import RunReport
from backtest_runner.progress import ProgressThrottle
from backtest_runner.sandbox.docker_sandbox import (
    LABEL_ROLE,
    LABEL_RUNNER,
    LABEL_TASK,
    ROLE_SANDBOX,
    DockerSandbox,
    SandboxRun,
)
from backtest_runner.sandbox.limits import MIB, SandboxLimits
from backtest_runner.sandbox.outcome import KillReason, KillSwitch, SandboxOutcome
from backtest_testinfra import MemoryCandles, Recorder

pytestmark = pytest.mark.integration

START = datetime(2018, 1, 1, tzinfo=UTC)
END = datetime(2019, 7, 1, tzinfo=UTC)
LIMITS = SandboxLimits(
    memory_bytes=384 * MIB, cpus=1.0, pids=64, tmpfs_bytes=8 * MIB, wall_clock_s=30.0, output_bytes=8 * MIB
)
Execution = tuple[Disposition, list[RunReport]]
TASK = "feedfacefeedfacefeedfacefeedface"

HEADER = (
    "import time\n"
    "from backtest_core.strategy import NO_SIGNAL, BaseStrategy\n\n\n"
    "class Hostile(BaseStrategy):\n"
)
RAISES = HEADER + (
    "    calls = 0\n"
    "    def decide(self, df, interval, **p):\n"
    "        Hostile.calls += 1\n"
    "        if Hostile.calls > 20:\n"
    "            raise ValueError(f'user strategy gave up after {Hostile.calls - 1} bars')\n"
    "        return NO_SIGNAL\n"
)
SLEEPS = HEADER + "    def decide(self, df, interval, **p):\n        time.sleep(3600)\n"
ALLOCATES = HEADER + (
    "    hoard = []\n"
    "    def decide(self, df, interval, **p):\n"
    "        self.hoard.append(bytearray(64 * 1024 * 1024))\n"
    "        return NO_SIGNAL\n"
)
PRINTS = (
    HEADER + "    def decide(self, df, interval, **p):\n        while True:\n            print('x' * 1000)\n"
)


@pytest.fixture
def no_sandbox_left_behind(docker_client: docker.DockerClient) -> Iterator[str]:
    """Yield a unique runner id (also the sandboxes' instance id, so the runners of a platform running
    on the same engine never take them for a gone runner's); afterwards assert that no container
    labelled with it remains."""
    runner_id = f"test-{os.getpid()}-{os.urandom(4).hex()}"
    yield runner_id
    label = [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"{LABEL_RUNNER}={runner_id}"]
    left = docker_client.containers.list(all=True, filters={"label": label})
    for container in left:
        container.remove(force=True)
    assert [c.name for c in left] == []


@pytest.fixture(scope="module")
def candles() -> MemoryCandles:
    return MemoryCandles()


def _job(strategy: str | SourceStrategy, **params: int) -> RunBacktestJob:
    config = BacktestConfig(
        strategy=strategy, params=params, symbols=["BTCUSD", "ETHUSD"], start=START, end=END
    )
    return RunBacktestJob(task_id=TASK, attempt=1, user_id="u", config=config, cache_key="c")


class Execute(Protocol):
    """Run one job through the executor in the sandbox image: ``execute(job, limits=..., cancel...)``."""

    def __call__(
        self, job: RunBacktestJob, limits: SandboxLimits = ..., cancel_on_first_progress: bool = ...
    ) -> Execution: ...


@pytest.fixture
def execute(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    no_sandbox_left_behind: str,
    candles: MemoryCandles,
    tmp_path: Path,
) -> Execute:
    """Return `execute(job)`: the executor with DockerSandbox on the real image, in tmp_path."""
    runner_id = no_sandbox_left_behind

    def execute(
        job: RunBacktestJob, limits: SandboxLimits = LIMITS, cancel_on_first_progress: bool = False
    ) -> Execution:
        recorder = Recorder()
        switch = KillSwitch()
        executor = JobExecutor(
            runner_id=runner_id,
            candles=candles,
            sandbox=DockerSandbox(docker_client, sandbox_image, limits, runner_id, instance_id=runner_id),
            publisher=recorder,
            work_dir=tmp_path,
            equity_points_max=5000,
            throttle_factory=lambda: ProgressThrottle(0.0, 0.0, time.monotonic),
        )

        async def main() -> Disposition:
            if cancel_on_first_progress:

                async def cancel_when_running() -> None:
                    while not any(isinstance(r, RunProgressed) for r in recorder.reports):
                        await asyncio.sleep(0.01)
                    running = docker_client.containers.list(filters={"label": f"{LABEL_RUNNER}={runner_id}"})
                    assert len(running) == 1
                    switch.kill(KillReason.CANCELLED)

                canceller = asyncio.create_task(cancel_when_running())
                try:
                    return await executor.execute(job, switch)
                finally:
                    canceller.cancel()
            return await executor.execute(job, switch)

        return asyncio.run(main()), recorder.reports

    return execute


def _failure(reports: list[RunReport]) -> RunFailed:
    assert reports[0].kind == "started"
    last = reports[-1]
    assert isinstance(last, RunFailed), last
    return last


def test_a_good_job_succeeds_with_the_result_of_run_backtest_in_process(
    execute: Execute, candles: MemoryCandles, tmp_path: Path
) -> None:
    job = _job("sma_cross", fast=10, slow=30)

    disposition, reports = execute(job)

    expected = run_backtest(
        job.config, {s: candles.load(s, "1d", None, None) for s in job.config.symbols}, equity_points_max=5000
    )
    kinds = [r.kind for r in reports]
    assert disposition is Disposition.ACK
    assert kinds[0] == "started" and kinds[-1] == "succeeded" and kinds.count("progressed") >= 2
    fractions = [r.fraction for r in reports if isinstance(r, RunProgressed)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    succeeded = reports[-1]
    assert isinstance(succeeded, RunSucceeded)
    assert succeeded.result.metrics == expected.metrics
    assert succeeded.result.metrics.trade_count == expected.metrics.trade_count > 0
    assert succeeded.result == expected
    assert succeeded.duration_ms > 0
    assert list(tmp_path.iterdir()) == []


PACKAGE_ENTRY = (
    "from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Side, Signal\n"
    "from helpers import sma\n"
    "from lib.rules import crossed\n\n\n"
    "class PackagedCross(BaseStrategy):\n"
    "    def get_required_lookback(self):\n"
    "        return 31\n\n"
    "    def decide(self, df, interval, **p):\n"
    "        side = crossed(sma(df.close, 10), sma(df.close, 30))\n"
    "        return NO_SIGNAL if side is None else Signal(Side.BUY if side > 0 else Side.SELL)\n"
)
PACKAGE_FILES = {
    "helpers.py": "def sma(close, n):\n    return [close[-n - 1:-1].mean(), close[-n:].mean()]\n",
    "lib/__init__.py": "",
    "lib/rules.py": (
        "def crossed(fast, slow):\n"
        "    if fast[0] <= slow[0] and fast[1] > slow[1]:\n        return 1\n"
        "    if fast[0] >= slow[0] and fast[1] < slow[1]:\n        return -1\n"
        "    return None\n"
    ),
}


def test_a_package_strategy_imports_its_helpers_in_the_sandbox_and_equals_an_in_process_run(
    execute: Execute, candles: MemoryCandles
) -> None:
    job = _job(SourceStrategy(source=PACKAGE_ENTRY, files=PACKAGE_FILES))

    disposition, reports = execute(job)

    expected = run_backtest(
        job.config, {s: candles.load(s, "1d", None, None) for s in job.config.symbols}, equity_points_max=5000
    )
    succeeded = reports[-1]
    assert disposition is Disposition.ACK
    assert isinstance(succeeded, RunSucceeded), succeeded
    assert succeeded.result.metrics == expected.metrics
    assert expected.metrics.trade_count > 5


def test_a_strategy_that_raises_is_a_strategy_error_with_the_users_traceback(execute: Execute) -> None:
    job = _job(SourceStrategy(source=RAISES))

    _, reports = execute(job)

    failure = _failure(reports).failure
    assert failure.reason is FailureReason.STRATEGY_ERROR
    assert failure.traceback is not None
    assert "ValueError: user strategy gave up after 20 bars" in failure.traceback
    assert 'File "<user_strategy>", line 10, in decide' in failure.traceback  # the user's raise line


def test_a_strategy_that_sleeps_forever_is_a_timeout(execute: Execute) -> None:
    job = _job(SourceStrategy(source=SLEEPS))
    limits = LIMITS.model_copy(update={"wall_clock_s": 4.0})

    _, reports = execute(job, limits)

    failure = _failure(reports).failure
    assert failure.reason is FailureReason.TIMEOUT
    assert failure.message == "the backtest ran longer than the wall-clock limit of 4 s"


def test_a_strategy_that_allocates_past_the_limit_is_out_of_memory(execute: Execute) -> None:
    job = _job(SourceStrategy(source=ALLOCATES))

    _, reports = execute(job)

    failure = _failure(reports).failure
    assert failure.reason is FailureReason.OUT_OF_MEMORY
    assert "memory limit of 384 MiB" in failure.message


def test_a_strategy_that_prints_past_the_cap_is_an_output_limit(execute: Execute) -> None:
    job = _job(SourceStrategy(source=PRINTS))

    _, reports = execute(job)

    failure = _failure(reports).failure
    assert failure.reason is FailureReason.OUTPUT_LIMIT
    assert failure.message.startswith(f"the sandbox wrote more than the output cap of {8 * MIB} bytes")


def test_cancelling_kills_the_container_and_reports_nothing_terminal(
    execute: Execute, docker_client: docker.DockerClient, no_sandbox_left_behind: str
) -> None:
    job = _job(SourceStrategy(source=SLEEPS))

    disposition, reports = execute(job, cancel_on_first_progress=True)

    assert disposition is Disposition.ACK
    assert {r.kind for r in reports} == {"started", "progressed"}
    left = docker_client.containers.list(
        all=True,
        filters={"label": [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"{LABEL_RUNNER}={no_sandbox_left_behind}"]},
    )
    assert left == []


# One strategy file whose `mode` param picks its behaviour: the jobs of a batch share the strategy.
MODES = (
    "import time\n"
    "from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Side\n\n\n"
    "class Modes(BaseStrategy):\n"
    "    hoard = []\n"
    "    def get_required_lookback(self):\n"
    "        return 30\n\n"
    "    def decide(self, df, interval, mode=0, n=10, **p):\n"
    "        if mode == 1:\n"
    "            raise ValueError('mode 1 gives up')\n"
    "        if mode == 2:\n"
    "            self.hoard.append(bytearray(64 * 1024 * 1024))\n"
    "        if mode == 3:\n"
    "            time.sleep(3600)\n"
    "        mean = df.close[-n:].mean()\n"
    "        if df.close[-1] > mean * 1.02:\n"
    "            return Side.BUY\n"
    "        return Side.SELL if df.close[-1] < mean * 0.98 else NO_SIGNAL\n"
)


class CountingSandbox(DockerSandbox):
    """A DockerSandbox that records the task ids of every container it starts."""

    containers: list[list[str]]

    async def run(
        self, run: SandboxRun, on_progress: Callable[..., None], kill_switch: KillSwitch
    ) -> SandboxOutcome:
        self.containers.append([run.task_id])
        return await super().run(run, on_progress, kill_switch)

    async def run_batch(
        self, run: SandboxRun, jobs: int, on_line: Callable[..., None], kill_switch: KillSwitch
    ) -> SandboxOutcome | None:
        batch = SandboxBatch.model_validate_json((run.job_dir / BATCH_FILE).read_text())
        self.containers.append([job.task_id for job in batch.jobs])
        return await super().run_batch(run, jobs, on_line, kill_switch)


class Switchboard:
    """The job loop's part for executor.execute_batch: one kill switch per container."""

    def __init__(self) -> None:
        self.switches: list[KillSwitch] = []

    def arm(self, task_ids: Sequence[str]) -> KillSwitch:
        self.switches.append(KillSwitch())
        return self.switches[-1]

    def cancelled(self, task_id: str) -> bool:
        return False


def test_a_batch_runs_in_one_container_and_each_fault_stays_with_its_own_job(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    no_sandbox_left_behind: str,
    candles: MemoryCandles,
    tmp_path: Path,
) -> None:
    modes = [0, 2, 0, 3, 1, 0]  # ok, out of memory, ok, sleeps past the clock, raises, ok
    jobs = [
        _job(SourceStrategy(source=MODES), mode=mode, n=10 + i).model_copy(update={"task_id": f"{i:032x}"})
        for i, mode in enumerate(modes)
    ]
    recorder = Recorder()
    limits = LIMITS.model_copy(update={"wall_clock_s": 6.0})
    runner_id = no_sandbox_left_behind
    sandbox = CountingSandbox(docker_client, sandbox_image, limits, runner_id, instance_id=runner_id)
    sandbox.containers = []
    executor = JobExecutor(
        runner_id=no_sandbox_left_behind,
        candles=candles,
        sandbox=sandbox,
        publisher=recorder,
        work_dir=tmp_path,
        equity_points_max=5000,
        throttle_factory=lambda: ProgressThrottle(0.0, 0.0, time.monotonic),
    )
    ended: dict[str, Disposition] = {}

    async def done(job: RunBacktestJob, disposition: Disposition) -> None:
        ended[job.task_id] = disposition

    asyncio.run(executor.execute_batch(jobs, Switchboard(), done))

    ids = [job.task_id for job in jobs]
    # One container for all six; the out-of-memory job again alone; the rest batched until the sleeper's
    # clock ran out (its own timeout); then the two after it.
    assert sandbox.containers == [ids, [ids[1]], ids[2:], ids[4:]]
    assert ended == dict.fromkeys(ids, Disposition.ACK)
    finals = {r.task_id: r for r in recorder.reports if isinstance(r, RunSucceeded | RunFailed)}
    assert len([r for r in recorder.reports if isinstance(r, RunSucceeded | RunFailed)]) == len(ids)
    data = {s: candles.load(s, "1d", None, None) for s in jobs[0].config.symbols}
    for index in (0, 2, 5):
        succeeded = finals[ids[index]]
        assert isinstance(succeeded, RunSucceeded)
        assert succeeded.result == run_backtest(jobs[index].config, data, equity_points_max=5000)
        assert succeeded.result.metrics.trade_count > 0
    reasons = {index: finals[ids[index]].failure.reason for index in (1, 3, 4)}  # type: ignore[union-attr]
    assert reasons == {
        1: FailureReason.OUT_OF_MEMORY,
        3: FailureReason.TIMEOUT,
        4: FailureReason.STRATEGY_ERROR,
    }
    assert "mode 1 gives up" in (finals[ids[4]].failure.traceback or "")  # type: ignore[union-attr]
    assert list(tmp_path.iterdir()) == []


def _warm_executor(
    docker_client: docker.DockerClient,
    image: str,
    runner_id: str,
    candles: MemoryCandles,
    work: Path,
    recorder: Recorder,
    idle_s: float = 60.0,
) -> tuple[JobExecutor, DockerSandbox]:
    limits = LIMITS.model_copy(update={"wall_clock_s": 6.0})
    sandbox = DockerSandbox(
        docker_client, image, limits, runner_id, instance_id=runner_id, warm_idle_s=idle_s, warm_max=4
    )
    executor = JobExecutor(
        runner_id=runner_id,
        candles=candles,
        sandbox=sandbox,
        publisher=recorder,
        work_dir=work,
        equity_points_max=5000,
        throttle_factory=lambda: ProgressThrottle(0.0, 0.0, time.monotonic),
    )
    return executor, sandbox


def _run_batches(executor: JobExecutor, batches: Sequence[Sequence[RunBacktestJob]]) -> list[Disposition]:
    ended: list[Disposition] = []

    async def done(job: RunBacktestJob, disposition: Disposition) -> None:
        ended.append(disposition)

    async def main() -> None:
        for batch in batches:
            await executor.execute_batch(batch, Switchboard(), done)

    asyncio.run(main())
    return ended


def _sandboxes(docker_client: docker.DockerClient, runner_id: str) -> list[str]:
    containers = docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUNNER}={runner_id}"})
    return sorted(c.id for c in containers)


def _user(job: RunBacktestJob, user: str, index: int) -> RunBacktestJob:
    return job.model_copy(update={"user_id": user, "task_id": f"{index:032x}"})


def test_batches_of_one_key_reuse_a_warm_container_and_another_users_get_their_own(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    no_sandbox_left_behind: str,
    candles: MemoryCandles,
    tmp_path: Path,
) -> None:
    runner_id = no_sandbox_left_behind
    recorder = Recorder()
    executor, sandbox = _warm_executor(docker_client, sandbox_image, runner_id, candles, tmp_path, recorder)
    jobs = [_user(_job("sma_cross", fast=5 + i, slow=30), "u", i) for i in range(4)]
    try:
        _run_batches(executor, [jobs[:2]])
        first = _sandboxes(docker_client, runner_id)
        _run_batches(executor, [jobs[2:3], jobs[3:]])  # two more batches of the same key, one a job alone
        same_key = _sandboxes(docker_client, runner_id)
        other = _user(_job("sma_cross", fast=5, slow=30), "v", 9)
        _run_batches(executor, [[other]])
        both = _sandboxes(docker_client, runner_id)
        mounts = {
            c.labels[LABEL_TASK]: [m["Source"] for m in c.attrs["Mounts"]]
            for c in docker_client.containers.list(filters={"label": f"{LABEL_RUNNER}={runner_id}"})
        }
    finally:
        closed = sandbox.close()

    assert len(first) == 1 and same_key == first  # three batches, one container
    assert len(both) == 2 and first[0] in both  # user v never gets user u's container
    sources = sorted(s for sources in mounts.values() for s in sources)
    assert len(sources) == 2 and len(set(sources)) == 2 and not sources[0].startswith(sources[1])
    assert closed == 2 and _sandboxes(docker_client, runner_id) == []
    finals = [r for r in recorder.reports if isinstance(r, RunSucceeded)]
    assert [r.task_id for r in finals] == [job.task_id for job in [*jobs, other]]
    data = {s: candles.load(s, "1d", None, None) for s in jobs[0].config.symbols}
    for job, succeeded in zip([*jobs, other], finals, strict=True):
        assert succeeded.result == run_backtest(job.config, data, equity_points_max=5000)
    assert [p.name for p in (tmp_path / "warm").iterdir()] == []  # each container's directory went with it


def test_a_warm_container_whose_job_failed_is_not_reused_and_idle_ones_expire(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    no_sandbox_left_behind: str,
    candles: MemoryCandles,
    tmp_path: Path,
) -> None:
    runner_id = no_sandbox_left_behind
    recorder = Recorder()
    executor, sandbox = _warm_executor(
        docker_client, sandbox_image, runner_id, candles, tmp_path, recorder, idle_s=2.0
    )
    ok, oom, again = (
        _user(_job(SourceStrategy(source=MODES), mode=mode, n=10), "u", i) for i, mode in enumerate((0, 2, 0))
    )
    try:
        _run_batches(executor, [[ok]])
        warm = _sandboxes(docker_client, runner_id)
        _run_batches(executor, [[oom]])  # killed by the kernel in the warm container: it is not kept
        after_oom = _sandboxes(docker_client, runner_id)
        _run_batches(executor, [[again]])
        fresh = _sandboxes(docker_client, runner_id)
        deadline = time.monotonic() + 30
        while _sandboxes(docker_client, runner_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        expired = _sandboxes(docker_client, runner_id)
    finally:
        sandbox.close()

    assert len(warm) == 1 and after_oom == [] and len(fresh) == 1 and fresh != warm
    assert expired == []  # idle 2 s: removed without a shutdown
    finals = {r.task_id: r for r in recorder.reports if isinstance(r, RunSucceeded | RunFailed)}
    assert isinstance(finals[ok.task_id], RunSucceeded) and isinstance(finals[again.task_id], RunSucceeded)
    failed = finals[oom.task_id]
    assert isinstance(failed, RunFailed) and failed.failure.reason is FailureReason.OUT_OF_MEMORY
