"""DockerSandbox on the real engine and the real sandbox image, with operator commands (no engine needed).

Each test gets its own runner id and asserts afterwards that no container with that label is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import docker
import pytest
from backtest_core.contracts import FailureReason, SandboxProgress, SandboxResult
from backtest_core.model.config import BacktestConfig
from backtest_runner.sandbox.docker_sandbox import LABEL_RUNNER, LABEL_TASK, DockerSandbox, SandboxRun
from backtest_runner.sandbox.limits import MIB, SandboxLimits
from backtest_runner.sandbox.outcome import (
    KillReason,
    KillSwitch,
    SandboxAborted,
    SandboxFailed,
    SandboxOutcome,
    SandboxSucceeded,
)
from backtest_testinfra import make_backtest_result

pytestmark = pytest.mark.integration

TASK = "0123456789abcdef0123456789abcdef"
LIMITS = SandboxLimits(
    memory_bytes=128 * MIB, cpus=1.0, pids=64, tmpfs_bytes=4 * MIB, wall_clock_s=20.0, output_bytes=1 * MIB
)
PY = "python3.11"

PROBE = r"""
import json, os, socket
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return type(exc).__name__
def write(path):
    with open(path, "w") as f:
        f.write("x")
def connect():
    socket.create_connection(("1.1.1.1", 53), timeout=2)
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapEff", "CapBnd"))]
nnp = [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")]
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(), "env": sorted(os.environ),
    "interfaces": sorted(n for _, n in socket.if_nameindex()),
    "write_root": attempt(lambda: write("/evil")), "write_job": attempt(lambda: write("/job/evil")),
    "write_tmp": attempt(lambda: write("/tmp/ok")), "write_shm": attempt(lambda: write("/dev/shm/x")),
    "connect": attempt(connect), "caps": caps, "no_new_privs": nnp,
    "job_files": sorted(os.listdir("/job")),
}))
"""


def _sandbox(
    client: docker.DockerClient, image: str, runner_id: str, command: list[str], **limits: object
) -> DockerSandbox:
    return DockerSandbox(
        client, image, LIMITS.model_copy(update=limits), runner_id, command=command, instance_id=runner_id
    )


def _run(
    sandbox: DockerSandbox, job_dir: Path, switch: KillSwitch | None = None
) -> tuple[SandboxOutcome, list[SandboxProgress]]:
    seen: list[SandboxProgress] = []
    outcome = asyncio.run(sandbox.run(SandboxRun(TASK, job_dir), seen.append, switch or KillSwitch()))
    return outcome, seen


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


class RunCommand(Protocol):
    """Run `command` in a DockerSandbox of the sandbox image on `job_dir`; `limits` override LIMITS."""

    def __call__(
        self, command: list[str], **limits: object
    ) -> tuple[SandboxOutcome, list[SandboxProgress]]: ...


@pytest.fixture
def run_command(
    docker_client: docker.DockerClient, sandbox_image: str, no_sandbox_left_behind: str, job_dir: Path
) -> RunCommand:
    """Return `run_command(command, **limits)` for this test's runner id and job directory."""

    def run_command(command: list[str], **limits: object) -> tuple[SandboxOutcome, list[SandboxProgress]]:
        return _run(
            _sandbox(docker_client, sandbox_image, no_sandbox_left_behind, command, **limits), job_dir
        )

    return run_command


def test_protocol_lines_stream_as_progress_and_a_result_line_succeeds(
    run_command: RunCommand, job_dir: Path
) -> None:
    lines = [SandboxProgress(fraction=f, stage="proposals").model_dump_json() for f in (0.0, 0.5, 1.0)]
    config = BacktestConfig(strategy="sma_cross", symbols=["BTCUSDT"], start=datetime(2020, 1, 1, tzinfo=UTC))
    lines.append(
        SandboxResult(result=make_backtest_result(config, final_equity=1100.0, bars=10)).model_dump_json()
    )
    (job_dir / "out.jsonl").write_text("\n".join(["not json: a user's print", *lines]) + "\n")

    outcome, progress = run_command([PY, "-c", "print(open('/job/out.jsonl').read())"])

    assert [p.fraction for p in progress] == [0.0, 0.5, 1.0]
    assert isinstance(outcome, SandboxSucceeded)
    assert outcome.result.metrics.final_equity == 1100.0


def test_container_is_isolated_unprivileged_and_read_only(
    docker_client: docker.DockerClient, sandbox_image: str, run_command: RunCommand, job_dir: Path
) -> None:
    (job_dir / "probe.py").write_text(PROBE)
    (job_dir / "probe.py").chmod(0o644)

    outcome, _ = run_command([PY, "/job/probe.py"])

    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.reason is FailureReason.BAD_OUTPUT  # no result line; the probe is in the message
    probe = json.loads(outcome.failure.message.split("first: ")[1].strip("'"))
    assert (probe["uid"], probe["gid"], probe["cwd"]) == (65534, 65534, "/tmp")
    image_env = {
        item.split("=")[0] for item in docker_client.images.get(sandbox_image).attrs["Config"]["Env"]
    }
    assert set(probe["env"]) == image_env | {"HOSTNAME"}  # nothing from the host or the runner
    assert probe["interfaces"] == ["lo"]
    assert probe["connect"] == "OSError" or probe["connect"].endswith("Error")
    assert probe["write_root"] == "OSError" and probe["write_job"] == "OSError"
    assert probe["write_tmp"] == "ok"
    assert probe["write_shm"] in {"FileNotFoundError", "OSError", "PermissionError"}
    assert probe["caps"] == ["0000000000000000", "0000000000000000"]
    assert probe["no_new_privs"] == ["1"]
    assert probe["job_files"] == ["probe.py"]


def test_sleeping_past_the_wall_clock_limit_is_a_timeout(run_command: RunCommand) -> None:
    command = [PY, "-c", "import time; time.sleep(3600)"]

    outcome, _ = run_command(command, wall_clock_s=1.5)

    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.reason is FailureReason.TIMEOUT
    assert outcome.failure.message == "the backtest ran longer than the wall-clock limit of 1.5 s"


def test_allocating_past_the_memory_limit_is_out_of_memory(run_command: RunCommand) -> None:
    command = [PY, "-c", "x = bytearray(512 * 1024 * 1024)\nprint(len(x))"]

    outcome, _ = run_command(command)

    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.reason is FailureReason.OUT_OF_MEMORY
    assert "memory limit of 128 MiB" in outcome.failure.message
    assert "exit code 137, OOMKilled=True" in outcome.failure.message


def test_printing_past_the_output_cap_is_an_output_limit(run_command: RunCommand) -> None:
    command = [PY, "-c", "import sys\nwhile True: sys.stdout.write('spam ' * 200 + '\\n')"]

    outcome, _ = run_command(command)

    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.reason is FailureReason.OUTPUT_LIMIT
    assert outcome.failure.message.startswith("the sandbox wrote more than the output cap of 1048576 bytes")


def test_stderr_counts_toward_the_output_cap(run_command: RunCommand) -> None:
    command = [PY, "-c", "import sys\nwhile True: sys.stderr.write('e' * 4096)"]

    outcome, _ = run_command(command)

    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.reason is FailureReason.OUTPUT_LIMIT


def test_cancelling_kills_the_running_container(
    docker_client: docker.DockerClient, sandbox_image: str, no_sandbox_left_behind: str, job_dir: Path
) -> None:
    line = SandboxProgress(fraction=0.1, stage="proposals").model_dump_json()
    command = [PY, "-c", f"import time\nprint({line!r}, flush=True)\ntime.sleep(3600)"]
    sandbox = _sandbox(docker_client, sandbox_image, no_sandbox_left_behind, command)
    switch = KillSwitch()

    async def main() -> SandboxOutcome:
        def on_progress(progress: SandboxProgress) -> None:
            labels = [f"{LABEL_TASK}={TASK}", f"{LABEL_RUNNER}={no_sandbox_left_behind}"]
            assert len(docker_client.containers.list(filters={"label": labels})) == 1
            switch.kill(KillReason.CANCELLED)

        return await sandbox.run(SandboxRun(TASK, job_dir), on_progress, switch)

    outcome = asyncio.run(main())

    assert outcome == SandboxAborted(KillReason.CANCELLED)


def test_exit_without_a_result_line_is_bad_output_with_the_stderr_tail(run_command: RunCommand) -> None:
    command = [PY, "-c", "import sys\nsys.stderr.write('Segmentation fault, pretend\\n')\nsys.exit(3)"]

    outcome, _ = run_command(command)

    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.reason is FailureReason.BAD_OUTPUT
    assert outcome.failure.message.startswith("the sandbox exited with code 3 and no result or error line")
    assert outcome.failure.traceback == "Segmentation fault, pretend\n"


def test_a_missing_image_is_an_infrastructure_failure(
    docker_client: docker.DockerClient, no_sandbox_left_behind: str, job_dir: Path
) -> None:
    sandbox = _sandbox(docker_client, "backtest-sandbox:does-not-exist", no_sandbox_left_behind, [PY])

    outcome, _ = _run(sandbox, job_dir)

    assert isinstance(outcome, SandboxFailed)
    assert outcome.failure.reason is FailureReason.INFRASTRUCTURE
    assert "'backtest-sandbox:does-not-exist' is not on this Docker engine" in outcome.failure.message


def test_orphans_of_this_runner_are_removed_and_others_kept(
    docker_client: docker.DockerClient, sandbox_image: str, no_sandbox_left_behind: str, job_dir: Path
) -> None:
    mine = _sandbox(docker_client, sandbox_image, no_sandbox_left_behind, [PY, "-c", "pass"])
    other = _sandbox(docker_client, sandbox_image, no_sandbox_left_behind + "-other", [PY, "-c", "pass"])
    orphan = mine._create(SandboxRun(TASK, job_dir))
    survivor = other._create(SandboxRun(TASK, job_dir))
    try:
        assert mine.remove_orphans() == 1
        assert [c.id for c in docker_client.containers.list(all=True, filters={"id": orphan.id})] == []
        assert other.remove_orphans() == 1
    finally:
        for container in (orphan, survivor):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
