"""DockerSandbox: one hardened container per backtest or batch, thrown away, or kept warm for the next
batch of the same batch key (sandbox.warm). The only module using the Docker SDK."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
from backtest_core.contracts import SANDBOX_JOB_DIR, FailureReason, SandboxProgress
from docker.models.containers import Container
from docker.types import LogConfig, Ulimit

from backtest_runner.sandbox.limits import SandboxLimits
from backtest_runner.sandbox.outcome import (
    ContainerExit,
    KillReason,
    KillSwitch,
    SandboxAborted,
    SandboxFailed,
    SandboxOutcome,
    classify,
    failed,
)
from backtest_runner.sandbox.output import OutputAccountant, ParsedLine
from backtest_runner.sandbox.seccomp import load_seccomp_profile
from backtest_runner.sandbox.warm import STDERR, STDOUT, WarmContainer, WarmPool

log = logging.getLogger(__name__)

LABEL_ROLE = "io.backtest.role"
LABEL_TASK = "io.backtest.task_id"
LABEL_RUNNER = "io.backtest.runner_id"
LABEL_INSTANCE = "io.backtest.instance_id"
DEFAULT_INSTANCE = "default"
ROLE_SANDBOX = "sandbox"
SANDBOX_COMMAND = ("python3.11", "-I", "-m", "backtest_core")  # -I: nothing from the cwd (/tmp) or env
WARM_DIR = "warm"  # under the runner's work directory: one directory per warm container, its /job
WARM_DIR_MODE = 0o755  # the sandbox user (65534) reads it as "other" (runner.job_dir)
# a warm container's entry: batch directory names on stdin (backtest_core.sandbox.entry)
SERVE_FLAG = "--serve"
SANDBOX_WORKDIR = "/tmp"
SANDBOX_USER = "65534:65534"  # nobody:nogroup
SANDBOX_HOSTNAME = "sandbox"  # not the container id, which Docker would also put in $HOSTNAME
# /etc/resolv.conf would otherwise copy the host's nameservers; there is no network to use them anyway.
SANDBOX_DNS = ("127.0.0.1",)
# Hard limits the user cannot raise: no core dumps (a 1 GiB core would fill /tmp), no POSIX message
# queues (their quota is per uid, shared by every sandbox), and a bounded descriptor table. No
# RLIMIT_NPROC: it counts per uid across all sandboxes; the pids cgroup limits each container instead.
SANDBOX_ULIMITS = (
    Ulimit(name="core", soft=0, hard=0),
    Ulimit(name="msgqueue", soft=0, hard=0),
    Ulimit(name="nofile", soft=1024, hard=1024),
)
_DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


@dataclass(frozen=True, slots=True)
class SandboxRun:
    """One run: the task it belongs to and the host directory mounted read-only at /job.

    With `warm_key` (a batch's runner.batching.batch_key), the batch may run in a warm container of
    that key (sandbox.warm): `job_dir` is then moved into the container's own mounted directory while
    it runs, and deleted after.
    """

    task_id: str
    job_dir: Path
    warm_key: str | None = None


ProgressCallback = Callable[[SandboxProgress], None]
LineCallback = Callable[[ParsedLine], None]


class _WallClock:
    """The wall-clock limit of the job running now: kill with TIMEOUT unless restarted in time."""

    def __init__(self, seconds: float, kill_switch: KillSwitch) -> None:
        self._seconds = seconds
        self._kill_switch = kill_switch
        self._timer: threading.Timer | None = None

    def restart(self) -> None:
        """Give the next job the whole limit, from now."""
        self.stop()
        self._timer = threading.Timer(self._seconds, self._kill_switch.kill, (KillReason.TIMEOUT,))
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        """Cancel the running timer, if any."""
        if self._timer is not None:
            self._timer.cancel()


def _forward(line: ParsedLine, on_line: LineCallback, batch_clock: _WallClock | None) -> None:
    if batch_clock is not None and not isinstance(line, SandboxProgress):
        batch_clock.restart()  # a job of the batch ended: the next one gets the whole limit
    on_line(line)


class DockerSandbox:
    """Run `python -m backtest_core` in a container with no network, a read-only root and hard limits.

    The image and command come from the operator's settings, never from a job. Every container carries
    labels (role, task id, runner id, platform instance id) so `remove_orphans` finds what a crashed
    runner left behind, and `SandboxContainers` finds the containers of runners that are gone, while
    another platform instance's containers on the same engine are never touched.
    `seccomp_profile` is the profile's JSON (default: deploy/sandbox/seccomp.json, Docker's default
    with io_uring denied).
    """

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        limits: SandboxLimits,
        runner_id: str,
        command: Sequence[str] = SANDBOX_COMMAND,
        seccomp_profile: str | None = None,
        instance_id: str = DEFAULT_INSTANCE,
        warm_idle_s: float = 0.0,
        warm_max: int = 0,
    ) -> None:
        self._client = client
        self._warm = WarmPool(warm_idle_s, warm_max, _discard)
        self._containers = SandboxContainers(client, instance_id)
        self._instance_id = instance_id
        self._seccomp = load_seccomp_profile() if seccomp_profile is None else seccomp_profile
        self._image = image
        self._limits = limits
        self._runner_id = runner_id
        self._command = list(command)

    @property
    def limits(self) -> SandboxLimits:
        """Return the limits every container of this sandbox runs under."""
        return self._limits

    def close(self) -> int:
        """Remove the idle warm containers (at shutdown); return how many."""
        return self._warm.close()

    def remove_orphans(self) -> int:
        """Remove every sandbox container of this instance labelled with this runner's id; return how many."""
        return self._containers.remove_of(self._runner_id)

    async def run(
        self, run: SandboxRun, on_progress: ProgressCallback, kill_switch: KillSwitch
    ) -> SandboxOutcome:
        """Run one sandbox to the end; `on_progress` is called on the event loop's thread, in order."""
        loop = asyncio.get_running_loop()

        def forward(line: ParsedLine) -> None:
            if isinstance(line, SandboxProgress):
                loop.call_soon_threadsafe(on_progress, line)

        outcome = await asyncio.to_thread(self._run_blocking, run, 1, forward, kill_switch)
        assert outcome is not None  # one job: the container's end is the job's outcome
        return outcome

    async def run_batch(
        self, run: SandboxRun, jobs: int, on_line: LineCallback, kill_switch: KillSwitch
    ) -> SandboxOutcome | None:
        """Run a batch directory of `jobs` jobs; every protocol line (progress and each job's final
        line) goes to `on_line` on the event loop's thread, in order. Return None if every job ended
        with its final line, else what the container's end means for the job running then (the first
        without a final line); the wall clock restarts at each final line, the output cap is per job."""
        loop = asyncio.get_running_loop()

        def forward(line: ParsedLine) -> None:
            loop.call_soon_threadsafe(on_line, line)

        if run.warm_key is not None and self._warm.enabled:
            return await asyncio.to_thread(self._run_warm_blocking, run, jobs, forward, kill_switch)
        return await asyncio.to_thread(self._run_blocking, run, jobs, forward, kill_switch)

    def _run_warm_blocking(
        self, run: SandboxRun, jobs: int, on_line: LineCallback, kill_switch: KillSwitch
    ) -> SandboxOutcome | None:
        """Run a batch in an idle warm container of its key, else in a new one; keep the container
        for the next batch if this one ended cleanly."""
        assert run.warm_key is not None
        if kill_switch.reason is not None:
            return SandboxAborted(kill_switch.reason)
        warm = self._warm.take(run.warm_key)
        clock = _WallClock(self._limits.wall_clock_s, kill_switch)
        keep = False
        try:
            if warm is None:
                warm = self._start_warm(run)
            kill_switch.arm(_killer(warm.container))
            moved = warm.home / run.job_dir.name
            os.rename(run.job_dir, moved)  # the same file system: the runner's work directory
            clock.restart()
            warm.request(moved.name)
            output = OutputAccountant(self._limits.output_bytes, self._limits.stderr_tail_bytes, jobs)
            for stream, data in warm.frames():
                lines = output.feed_stdout(data) if stream == STDOUT else []
                if stream == STDERR:
                    output.feed_stderr(data)
                for line in lines:
                    _forward(line, on_line, clock)
                if output.over_limit:
                    kill_switch.kill(KillReason.OUTPUT_LIMIT)
                if output.finished >= jobs:
                    keep = kill_switch.reason is None
                    return None if keep else SandboxAborted(kill_switch.reason or KillReason.SHUTDOWN)
            for line in output.finish():  # the container ended before the batch did
                _forward(line, on_line, clock)
            return self._ended(warm.container, output, jobs, kill_switch, batch=True)
        except _DOCKER_ERRORS as exc:
            return self._docker_failure(exc, kill_switch)
        finally:
            clock.stop()
            kill_switch.disarm()
            if warm is not None:
                shutil.rmtree(warm.home / run.job_dir.name, ignore_errors=True)
            if warm is not None and keep:
                self._warm.put(run.warm_key, warm)
            elif warm is not None:
                _discard(warm)

    def _start_warm(self, run: SandboxRun) -> WarmContainer:
        """Create and start a `--serve` container mounting the batch key's directory, stdin attached."""
        home = run.job_dir.parent / WARM_DIR / f"{run.task_id}-{uuid.uuid4().hex[:12]}"
        home.mkdir(parents=True, mode=WARM_DIR_MODE)
        home.chmod(WARM_DIR_MODE)
        try:
            container = self._create(run, home, [*self._command, SERVE_FLAG])
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)
            raise
        try:
            params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            socket = self._client.api.attach_socket(container.id, params=params)
            socket._sock.settimeout(None)  # a job may print nothing for its whole wall-clock limit
            container.start()
        except BaseException:
            _remove(container)
            shutil.rmtree(home, ignore_errors=True)
            raise
        return WarmContainer(container, socket, home)

    def _run_blocking(
        self, run: SandboxRun, jobs: int, on_line: LineCallback, kill_switch: KillSwitch
    ) -> SandboxOutcome | None:
        if kill_switch.reason is not None:
            return SandboxAborted(kill_switch.reason)
        container: Container | None = None
        clock = _WallClock(self._limits.wall_clock_s, kill_switch)
        try:
            container = self._create(run)
            kill_switch.arm(_killer(container))
            stream = self._client.api.attach(container.id, stdout=True, stderr=True, stream=True, demux=True)
            container.start()
            clock.restart()
            output = OutputAccountant(self._limits.output_bytes, self._limits.stderr_tail_bytes, jobs)
            batch_clock = clock if jobs > 1 else None
            for stdout, stderr in stream:
                if stdout:
                    for line in output.feed_stdout(stdout):
                        _forward(line, on_line, batch_clock)
                if stderr:
                    output.feed_stderr(stderr)
                if output.over_limit:
                    kill_switch.kill(KillReason.OUTPUT_LIMIT)
            for line in output.finish():
                _forward(line, on_line, batch_clock)
            return self._ended(container, output, jobs, kill_switch, batch=jobs > 1)
        except _DOCKER_ERRORS as exc:
            return self._docker_failure(exc, kill_switch)
        finally:
            clock.stop()
            kill_switch.disarm()
            if container is not None:
                _remove(container)

    def _ended(
        self, container: Container, output: OutputAccountant, jobs: int, kill_switch: KillSwitch, batch: bool
    ) -> SandboxOutcome | None:
        """Return what an exited container means: None for a batch whose every job ended with its final
        line, else its exit classified (the job running then, or the one job)."""
        status = container.wait(timeout=60)
        container.reload()
        state = container.attrs.get("State", {})
        exit_ = ContainerExit(int(status.get("StatusCode", -1)), bool(state.get("OOMKilled", False)))
        if batch and output.finished >= jobs:
            return None
        return classify(exit_, output, kill_switch.reason, self._limits)

    def _docker_failure(self, exc: Exception, kill_switch: KillSwitch) -> SandboxOutcome:
        """Return what a Docker error while running means: an abort if the run was being killed anyway."""
        if isinstance(exc, docker.errors.ImageNotFound):
            return _infrastructure(f"the sandbox image {self._image!r} is not on this Docker engine: {exc}")
        if kill_switch.reason in (KillReason.CANCELLED, KillReason.SHUTDOWN):
            return SandboxAborted(kill_switch.reason)
        return _infrastructure(f"Docker failed while running the sandbox: {type(exc).__name__}: {exc}")

    def _create(
        self, run: SandboxRun, mount: Path | None = None, command: Sequence[str] | None = None
    ) -> Container:
        """Create (not start) the hardened container of a run: `mount` (default the run's job directory)
        read-only at /job, `command` (default the operator's) as its process."""
        limits = self._limits
        command = self._command if command is None else command
        serve = SERVE_FLAG in command
        return self._client.containers.create(
            self._image,
            list(command),
            entrypoint=[],
            stdin_open=serve,
            working_dir=SANDBOX_WORKDIR,
            user=SANDBOX_USER,
            environment={},
            network_mode="none",
            hostname=SANDBOX_HOSTNAME,
            dns=list(SANDBOX_DNS),
            ipc_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmpfs_bytes}"},
            volumes={str(mount or run.job_dir): {"bind": SANDBOX_JOB_DIR, "mode": "ro"}},
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            nano_cpus=limits.nano_cpus,
            pids_limit=limits.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges", f"seccomp={self._seccomp}"],
            ulimits=list(SANDBOX_ULIMITS),
            log_config=LogConfig(type=LogConfig.types.NONE),
            labels={
                LABEL_ROLE: ROLE_SANDBOX,
                LABEL_TASK: run.task_id,
                LABEL_RUNNER: self._runner_id,
                LABEL_INSTANCE: self._instance_id,
            },
            name=f"backtest-{run.task_id}-{int(time.time() * 1000)}",
            detach=True,
        )


class SandboxContainers:
    """The sandbox containers of one platform instance on a Docker engine, grouped by runner.

    Used to find and remove what runners that are gone left behind; every query filters on the
    instance label, so containers of another instance on the same engine are invisible here.
    """

    def __init__(self, client: docker.DockerClient, instance_id: str) -> None:
        self._client = client
        self._instance_id = instance_id

    def _list(self, *labels: str) -> list[Container]:
        wanted = [f"{LABEL_ROLE}={ROLE_SANDBOX}", f"{LABEL_INSTANCE}={self._instance_id}", *labels]
        # ignore_removed: a container removed between the list and its inspect (a job that just ended) is
        # simply not listed, instead of failing the whole sweep with a 404
        containers: list[Container] = self._client.containers.list(
            all=True, filters={"label": wanted}, ignore_removed=True
        )
        return containers

    def runner_ids(self) -> set[str]:
        """Return the ids of the runners that own at least one sandbox container of this instance."""
        return {c.labels.get(LABEL_RUNNER, "") for c in self._list()} - {""}

    def remove_of(self, runner_id: str) -> int:
        """Force-remove every sandbox container of this instance owned by `runner_id`; return how many."""
        containers = self._list(f"{LABEL_RUNNER}={runner_id}")
        for container in containers:
            log.warning("removing orphan sandbox container %s of runner %s", container.name, runner_id)
            _remove(container)
        return len(containers)


def _infrastructure(message: str) -> SandboxFailed:
    return failed(FailureReason.INFRASTRUCTURE, message)


def _killer(container: Container) -> Callable[[], None]:
    """Return a non-blocking kill: the Docker call runs in its own thread, because dockerd only answers
    a kill once the container's output is drained, and the caller may be the thread that drains it (or
    the event loop)."""

    def kill_now() -> None:
        try:
            container.kill()
        except docker.errors.APIError as exc:  # already exited: nothing to kill
            log.debug("kill of %s ignored: %s", container.name, exc)
        except _DOCKER_ERRORS as exc:
            log.error("kill of %s failed: %s", container.name, exc)

    def kill() -> None:
        threading.Thread(target=kill_now, name=f"kill-{container.name}", daemon=True).start()

    return kill


def _discard(warm: WarmContainer) -> None:
    """Close a warm container's attach socket and remove the container."""
    with contextlib.suppress(OSError):
        warm.socket.close()
    _remove(warm.container)
    shutil.rmtree(warm.home, ignore_errors=True)


def _remove(container: Container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except _DOCKER_ERRORS as exc:
        log.error("could not remove sandbox container %s: %s", container.name, exc)
