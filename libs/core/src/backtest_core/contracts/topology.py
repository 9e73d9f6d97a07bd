"""Where messages travel: every JetStream stream, subject, durable consumer and KV bucket of the platform,
and the broker limits a message is held to. No subject literal lives anywhere else."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stream(StrEnum):
    """JetStream stream names."""

    COMMANDS = "BACKTEST_COMMANDS"
    JOBS = "BACKTEST_JOBS"
    RUNS = "BACKTEST_RUNS"
    EVENTS = "BACKTEST_EVENTS"
    DEAD = "BACKTEST_DEAD"
    ADVISORIES = "BACKTEST_ADVISORIES"
    SWEEP_COMMANDS = "SWEEP_COMMANDS"
    SWEEP_EVENTS = "SWEEP_EVENTS"
    WALKFORWARD_EVENTS = "WALKFORWARD_EVENTS"


class Subject:
    """Subjects. Per-task subjects end in the task id so a consumer can filter one backtest."""

    SUBMIT = "backtest.command.submit"
    CANCEL = "backtest.command.cancel"
    COMMANDS_ALL = "backtest.command.>"
    JOB_RUN = "backtest.job.run"
    RUNS_ALL = "backtest.run.>"
    EVENTS_ALL = "backtest.event.>"
    DEAD_JOB = "backtest.dead.job"
    CANCEL_RUN = "backtest.control.cancel"  # core NATS broadcast, not stored
    # JetStream's advisory (published by the server) when a runner job ran out of deliveries; captured
    # in Stream.ADVISORIES so that one emitted while the scheduler reconnects is not lost.
    JOBS_MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.BACKTEST_JOBS.runner"

    SWEEP_SUBMIT = "sweep.command.submit"
    SWEEP_CANCEL = "sweep.command.cancel"
    SWEEP_COMMANDS_ALL = "sweep.command.>"
    WALKFORWARD_SUBMIT = "sweep.command.walkforward.submit"
    WALKFORWARD_CANCEL = "sweep.command.walkforward.cancel"
    SWEEP_EVENTS_ALL = "sweep.event.>"
    WALKFORWARD_EVENTS_ALL = "walkforward.event.>"

    @staticmethod
    def sweep_event(sweep_id: str) -> str:
        """Subject of one sweep's events."""
        return f"sweep.event.{sweep_id}"

    @staticmethod
    def walkforward_event(walkforward_id: str) -> str:
        """Subject of one walk-forward's events."""
        return f"walkforward.event.{walkforward_id}"

    @staticmethod
    def run(task_id: str) -> str:
        """Subject of the runner's reports about one task."""
        return f"backtest.run.{task_id}"

    @staticmethod
    def event(task_id: str) -> str:
        """Subject of one task's state events."""
        return f"backtest.event.{task_id}"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """How a stream is declared: a work queue deletes a message once acked; the others keep history."""

    name: Stream
    subjects: tuple[str, ...]
    work_queue: bool = False
    max_age_s: float = 7 * 24 * 3600.0
    duplicate_window_s: float = 120.0


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec(Stream.COMMANDS, (Subject.COMMANDS_ALL,)),
    StreamSpec(Stream.JOBS, (Subject.JOB_RUN,), work_queue=True),
    StreamSpec(Stream.RUNS, (Subject.RUNS_ALL,)),
    StreamSpec(Stream.EVENTS, (Subject.EVENTS_ALL,)),
    StreamSpec(Stream.DEAD, (Subject.DEAD_JOB,), max_age_s=30 * 24 * 3600.0),
    StreamSpec(Stream.ADVISORIES, (Subject.JOBS_MAX_DELIVERIES_ADVISORY,)),
    StreamSpec(Stream.SWEEP_COMMANDS, (Subject.SWEEP_COMMANDS_ALL,)),
    StreamSpec(Stream.SWEEP_EVENTS, (Subject.SWEEP_EVENTS_ALL,)),
    StreamSpec(Stream.WALKFORWARD_EVENTS, (Subject.WALKFORWARD_EVENTS_ALL,)),
)

# Durable consumer names.
SCHEDULER_COMMANDS_CONSUMER = "scheduler-commands"
SCHEDULER_RUNS_CONSUMER = "scheduler-runs"
SCHEDULER_ADVISORIES_CONSUMER = "scheduler-advisories"
RUNNER_JOBS_CONSUMER = "runner"
RESULTS_EVENTS_CONSUMER = "results-writer"
SWEEPER_COMMANDS_CONSUMER = "sweeper-commands"
SWEEPER_EVENTS_CONSUMER = "sweeper-trials"
SWEEPER_SWEEP_EVENTS_CONSUMER = "sweeper-walkforward"  # the folds' sweeps' ends

# The runner consumer's redelivery settings: a job unacked for RUNNER_JOBS_ACK_WAIT_S (the runner calls
# in_progress() well within it) is redelivered; after RUNNER_JOBS_MAX_DELIVER deliveries JetStream
# publishes Subject.JOBS_MAX_DELIVERIES_ADVISORY and the scheduler dead-letters the job.
RUNNER_JOBS_ACK_WAIT_S = 30.0
RUNNER_JOBS_MAX_DELIVER = 3

# The largest message body carrying a result (RunSucceeded, BacktestSucceeded), JSON bytes with the trades
# packed (trade_log.PACKED; about 200,000 trades): the result is stored as one MongoDB document (at most
# 16 MiB). deploy/nats/nats.conf raises the broker's payload limit above it. A larger result ends as
# FailureReason.OUTPUT_LIMIT, never as a message that cannot go.
MAX_RESULT_BYTES = 15 * 1024 * 1024

# JetStream key-value buckets.
TASKS_BUCKET = "backtest_tasks"  # scheduler-owned task state
ADMISSION_BUCKET = "backtest_admission"  # scheduler-owned: who holds and waits for runner slots
