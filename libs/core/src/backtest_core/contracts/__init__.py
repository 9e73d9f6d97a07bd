"""Every NATS subject, stream and message of the platform. No subject literal lives anywhere else.

Flow (commands are imperative, events past tense):

    gateway --SubmitBacktest/CancelBacktest--> [BACKTEST_COMMANDS] --> scheduler
    scheduler --RunBacktestJob--> [BACKTEST_JOBS work queue] --> runner (one per free slot)
    runner --RunStarted/RunProgressed/RunSucceeded/RunFailed--> [BACKTEST_RUNS] --> scheduler
    scheduler --BacktestEvent (state machine)--> [BACKTEST_EVENTS] --> results (MongoDB), gateway (WebSocket)
    scheduler --CancelRun--> core NATS broadcast --> every runner (kills the container if it has it)
    scheduler --DeadLetteredJob--> [BACKTEST_DEAD]
    gateway --SubmitSweep/CancelSweep--> [SWEEP_COMMANDS] --> sweeper
    sweeper --SubmitBacktest (a chunk of trials each)/CancelBacktest--> [BACKTEST_COMMANDS] --> scheduler
    [BACKTEST_EVENTS] (the trials' ends) --> sweeper --SweepEvent--> [SWEEP_EVENTS] --> anyone
    gateway --SubmitWalkForward/CancelWalkForward--> [SWEEP_COMMANDS] --> sweeper (one sweep per fold)
    [SWEEP_EVENTS] (the folds' sweeps' ends) --> sweeper --SubmitBacktest (a fold's test run)--> ...
    sweeper --WalkForwardEvent (a fold trained or ended, a state)--> [WALKFORWARD_EVENTS] --> anyone

Modules: `topology` (streams, subjects, consumers, KV buckets, broker limits), `messages` (every message;
each frozen, rejecting unknown fields, with `schema_version`, a unique `message_id` used as the JetStream
`Nats-Msg-Id` for de-duplication, and a timezone-aware UTC timestamp), `sandbox_protocol` (runner <->
container), and the two contracts kept outside the bus: `records` (the `backtests` MongoDB document every
service reads or writes) and `auth` (the access token's claims). Everything of the first three is
re-exported here (`from backtest_core.contracts import SubmitBacktest`); import `records` and `auth` by
module (`from backtest_core.contracts.records import BACKTESTS_COLLECTION`).
"""

from backtest_core.contracts.messages import (
    MAX_CHUNK_TRIALS,
    MAX_STAGE_CHARS,
    SCHEMA_VERSION,
    TERMINAL_STATES,
    TERMINAL_SWEEP_STATES,
    BacktestAccepted,
    BacktestCancelled,
    BacktestEvent,
    BacktestEventBase,
    BacktestFailed,
    BacktestProgressed,
    BacktestRetrying,
    BacktestStarted,
    BacktestSucceeded,
    CancelBacktest,
    CancelRun,
    CancelSweep,
    CancelWalkForward,
    Command,
    DeadLetteredJob,
    Failure,
    FailureReason,
    Message,
    RunBacktestJob,
    RunFailed,
    RunProgressed,
    RunReport,
    RunStarted,
    RunSucceeded,
    Stage,
    SubmitBacktest,
    SubmitSweep,
    SubmitWalkForward,
    SweepCommand,
    SweepCounts,
    SweepEvent,
    SweepState,
    TaskId,
    TaskState,
    TrialSpec,
    WalkForwardEvent,
    new_id,
    utc_now,
)
from backtest_core.contracts.sandbox_protocol import (
    BATCH_FILE,
    SANDBOX_JOB_DIR,
    SandboxBatch,
    SandboxError,
    SandboxJob,
    SandboxLine,
    SandboxProgress,
    SandboxResult,
)
from backtest_core.contracts.topology import (
    ADMISSION_BUCKET,
    MAX_RESULT_BYTES,
    RESULTS_EVENTS_CONSUMER,
    RUNNER_JOBS_ACK_WAIT_S,
    RUNNER_JOBS_CONSUMER,
    RUNNER_JOBS_MAX_DELIVER,
    SCHEDULER_ADVISORIES_CONSUMER,
    SCHEDULER_COMMANDS_CONSUMER,
    SCHEDULER_RUNS_CONSUMER,
    STREAMS,
    SWEEPER_COMMANDS_CONSUMER,
    SWEEPER_EVENTS_CONSUMER,
    SWEEPER_SWEEP_EVENTS_CONSUMER,
    TASKS_BUCKET,
    Stream,
    StreamSpec,
    Subject,
)

__all__ = [
    "ADMISSION_BUCKET",
    "BATCH_FILE",
    "MAX_CHUNK_TRIALS",
    "MAX_RESULT_BYTES",
    "MAX_STAGE_CHARS",
    "RESULTS_EVENTS_CONSUMER",
    "RUNNER_JOBS_ACK_WAIT_S",
    "RUNNER_JOBS_CONSUMER",
    "RUNNER_JOBS_MAX_DELIVER",
    "SANDBOX_JOB_DIR",
    "SCHEDULER_ADVISORIES_CONSUMER",
    "SCHEDULER_COMMANDS_CONSUMER",
    "SCHEDULER_RUNS_CONSUMER",
    "SCHEMA_VERSION",
    "STREAMS",
    "SWEEPER_COMMANDS_CONSUMER",
    "SWEEPER_EVENTS_CONSUMER",
    "SWEEPER_SWEEP_EVENTS_CONSUMER",
    "TASKS_BUCKET",
    "TERMINAL_STATES",
    "TERMINAL_SWEEP_STATES",
    "BacktestAccepted",
    "BacktestCancelled",
    "BacktestEvent",
    "BacktestEventBase",
    "BacktestFailed",
    "BacktestProgressed",
    "BacktestRetrying",
    "BacktestStarted",
    "BacktestSucceeded",
    "CancelBacktest",
    "CancelRun",
    "CancelSweep",
    "CancelWalkForward",
    "Command",
    "DeadLetteredJob",
    "Failure",
    "FailureReason",
    "Message",
    "RunBacktestJob",
    "RunFailed",
    "RunProgressed",
    "RunReport",
    "RunStarted",
    "RunSucceeded",
    "SandboxBatch",
    "SandboxError",
    "SandboxJob",
    "SandboxLine",
    "SandboxProgress",
    "SandboxResult",
    "Stage",
    "Stream",
    "StreamSpec",
    "Subject",
    "SubmitBacktest",
    "SubmitSweep",
    "SubmitWalkForward",
    "SweepCommand",
    "SweepCounts",
    "SweepEvent",
    "SweepState",
    "TaskId",
    "TaskState",
    "TrialSpec",
    "WalkForwardEvent",
    "new_id",
    "utc_now",
]
