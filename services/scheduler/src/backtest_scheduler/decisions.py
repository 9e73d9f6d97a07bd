"""What the scheduler does for each message: pure functions from (task, message, now) to a Plan.

The service executes a plan in this order: store the new record holding the plan's effects (its
outbox) with compare-and-set, publish the events, the job, the dead letter and the cancel broadcast,
then clear the outbox. Only a stored transition is ever published, so a task never has two different
events with the same `seq`; a scheduler that dies before clearing leaves the outbox to the next one,
which publishes it again with the same ids (task.event_id, task.job_id) before anything else, and
JetStream's duplicate window and the results writer drop the copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from backtest_core.contracts import (
    BacktestAccepted,
    BacktestCancelled,
    BacktestEvent,
    BacktestFailed,
    BacktestProgressed,
    BacktestRetrying,
    BacktestStarted,
    BacktestSucceeded,
    CancelBacktest,
    CancelRun,
    DeadLetteredJob,
    Failure,
    FailureReason,
    RunBacktestJob,
    RunFailed,
    RunProgressed,
    RunReport,
    RunStarted,
    RunSucceeded,
    SubmitBacktest,
    TaskState,
)
from backtest_core.model.results import BacktestResult

from backtest_scheduler.errors import IllegalTransition
from backtest_scheduler.state_machine import Outcome, transition
from backtest_scheduler.task import APPLIED_KEPT, Outbox, RetryPolicy, TaskRecord, event_id


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A stored SUCCESS with the same cache key: the task that produced it, its owner and its result."""

    task_id: str
    user_id: str
    result: BacktestResult


@dataclass(frozen=True, slots=True)
class Plan:
    """The effects of one message. `record` None means nothing changes; `ignored` says why."""

    record: TaskRecord | None = None
    events: tuple[BacktestEvent, ...] = ()
    job: RunBacktestJob | None = None
    dead_letter: DeadLetteredJob | None = None
    cancel_run: CancelRun | None = None
    requeue_after_s: float | None = None
    ignored: str | None = None
    created: bool = field(default=False)

    def owing(self) -> TaskRecord | None:
        """Return the record to store: the new state with this plan's effects in its outbox."""
        if self.record is None:
            return None
        outbox = Outbox(
            events=self.events, job=self.job, dead_letter=self.dead_letter, cancel_run=self.cancel_run
        )
        owed: TaskRecord = self.record.model_copy(update={"outbox": outbox})
        return owed


def _ignore(why: str) -> Plan:
    return Plan(ignored=why)


def _accept(command: SubmitBacktest, cache_key: str, now: datetime) -> tuple[TaskRecord, BacktestAccepted]:
    transition(None, TaskState.PENDING)
    record = TaskRecord(
        task_id=command.task_id,
        user_id=command.user_id,
        state=TaskState.PENDING,
        seq=1,
        attempt=1,
        config=command.config,
        trials=command.trials,
        cache_key=cache_key,
        created_at=now,
        updated_at=now,
    )
    accepted = BacktestAccepted(
        message_id=event_id(record.task_id, 1, TaskState.PENDING),
        occurred_at=now,
        task_id=record.task_id,
        user_id=record.user_id,
        chunk=record.chunk,
        seq=1,
        config=record.config,
        cache_key=cache_key,
    )
    return record, accepted


def plan_submit(
    command: SubmitBacktest,
    existing: TaskRecord | None,
    cache_key: str,
    cached: CachedResult | None,
    now: datetime,
) -> Plan:
    """Accept a new task: answer from `cached` if given, else queue attempt 1.

    A task cancelled before its submission came (see plan_cancel_unknown) is accepted and cancelled.
    """
    if existing is not None and cancelled_before_submission(existing):
        record, accepted = _accept(command, cache_key, now)
        cancelled = plan_cancel(record, now)
        return replace(cancelled, events=(accepted, *cancelled.events), cancel_run=None)
    if existing is not None:
        return _ignore(f"task {command.task_id} exists already (state {existing.state.value})")
    record, accepted = _accept(command, cache_key, now)
    if cached is None:
        return Plan(record=record, events=(accepted,), job=record.job(), created=True)
    transition(TaskState.PENDING, TaskState.SUCCESS)
    done = _next(record, TaskState.SUCCESS, now)
    succeeded = BacktestSucceeded(
        message_id=event_id(record.task_id, done.seq, TaskState.SUCCESS),
        occurred_at=now,
        task_id=record.task_id,
        user_id=record.user_id,
        chunk=record.chunk,
        seq=done.seq,
        result=cached.result,
        cached_from=cached.task_id if cached.user_id == command.user_id else None,  # never a foreign id
    )
    return Plan(record=done, events=(accepted, succeeded), created=True)


def plan_rejected_submit(
    command: SubmitBacktest, existing: TaskRecord | None, failure: Failure, now: datetime
) -> Plan:
    """Accept then fail a task that cannot run (e.g. no candles in its range): PENDING, then FAILURE."""
    if existing is not None:
        return _ignore(f"task {command.task_id} exists already (state {existing.state.value})")
    record, accepted = _accept(command, "", now)
    return _fail(record, failure, now, prior=(accepted,), created=True)


def plan_unreadable_submit(
    task_id: str, user_id: str, existing: TaskRecord | None, failure: Failure, now: datetime
) -> Plan:
    """End a task whose submission cannot be read (no valid config): FAILURE at seq 1, no job."""
    if existing is not None and not cancelled_before_submission(existing):
        return _ignore(f"task {task_id} exists already (state {existing.state.value})")
    transition(None, TaskState.FAILURE)
    record = TaskRecord(
        task_id=task_id,
        user_id=user_id,
        state=TaskState.FAILURE,
        seq=1,
        attempt=1,
        config=None,
        cache_key="",
        created_at=now,
        updated_at=now,
    )
    event = BacktestFailed(
        message_id=event_id(task_id, 1, TaskState.FAILURE),
        occurred_at=now,
        task_id=task_id,
        user_id=user_id,
        seq=1,
        failure=failure,
    )
    return Plan(record=record, events=(event,), created=existing is None)


def plan_unreadable_report(
    record: TaskRecord | None, attempt: int | None, failure: Failure, now: datetime
) -> Plan:
    """End the task of a run report that cannot be read as FAILURE (unless it is stale or finished)."""
    if record is None:
        return _ignore("unreadable report of an unknown task")
    if attempt is not None and attempt != record.attempt:
        return _ignore(f"unreadable report of attempt {attempt}, the task is on attempt {record.attempt}")
    if transition(record.state, TaskState.FAILURE) is Outcome.ABSORBED:
        return _ignore(f"task {record.task_id} is {record.state.value} already")
    return _fail(record, failure, now)


def cancelled_before_submission(record: TaskRecord) -> bool:
    """Return whether the record only says "cancel this task when its submission comes"."""
    return record.state is TaskState.CANCELLED and record.seq == 0


def plan_cancel_unknown(command: CancelBacktest, now: datetime) -> Plan:
    """Remember a cancel that came before its submission (no event yet: the owner is not known)."""
    record = TaskRecord(
        task_id=command.task_id,
        user_id=command.user_id,
        state=TaskState.CANCELLED,
        seq=0,
        attempt=1,
        config=None,
        cache_key="",
        created_at=now,
        updated_at=now,
    )
    return Plan(record=record, created=True)


def _next(record: TaskRecord, state: TaskState, now: datetime, **changes: object) -> TaskRecord:
    new: TaskRecord = record.model_copy(
        update={"state": state, "seq": record.seq + 1, "updated_at": now, **changes}
    )
    return new


def _fail(
    record: TaskRecord,
    failure: Failure,
    now: datetime,
    *,
    prior: tuple[BacktestEvent, ...] = (),
    dead_letter: DeadLetteredJob | None = None,
    created: bool = False,
) -> Plan:
    transition(record.state, TaskState.FAILURE)
    failed = _next(record, TaskState.FAILURE, now, requeue_at=None)
    event = BacktestFailed(
        message_id=event_id(record.task_id, failed.seq, TaskState.FAILURE),
        occurred_at=now,
        task_id=record.task_id,
        user_id=record.user_id,
        chunk=record.chunk,
        seq=failed.seq,
        failure=failure,
    )
    return Plan(record=failed, events=(*prior, event), dead_letter=dead_letter, created=created)


def plan_report(record: TaskRecord | None, report: RunReport, policy: RetryPolicy, now: datetime) -> Plan:
    """Turn a runner's report into the task's next event; stale, late and illegal reports are ignored."""
    if record is None:
        return _ignore(f"report for unknown task {report.task_id}")
    if report.message_id in record.applied:
        return _ignore(f"report {report.message_id} was applied already (redelivered)")
    if report.attempt != record.attempt:
        return _ignore(f"report of attempt {report.attempt}, the task is on attempt {record.attempt}")
    plan = _apply_report(record, report, policy, now)
    if plan.record is None:
        return plan
    applied = (*plan.record.applied, report.message_id)[-APPLIED_KEPT:]
    return replace(plan, record=plan.record.model_copy(update={"applied": applied}))


def _apply_report(record: TaskRecord, report: RunReport, policy: RetryPolicy, now: datetime) -> Plan:
    target = _report_target(report, policy)
    try:
        if transition(record.state, target) is Outcome.ABSORBED:
            return _ignore(f"task {record.task_id} is {record.state.value} already")
    except IllegalTransition as error:
        return _ignore(str(error))
    base = {"task_id": record.task_id, "user_id": record.user_id, "chunk": record.chunk, "occurred_at": now}
    match report:
        case RunStarted():
            new = _next(record, TaskState.STARTED, now)
            event: BacktestEvent = BacktestStarted(
                **base,
                message_id=event_id(record.task_id, new.seq, TaskState.STARTED),
                seq=new.seq,
                attempt=report.attempt,
            )
        case RunProgressed():
            if record.state is TaskState.PROGRESS and report.fraction <= record.progress:
                return _ignore(
                    f"task {record.task_id} reported progress {report.fraction} after {record.progress}"
                )
            new = _next(record, TaskState.PROGRESS, now, progress=report.fraction)
            event = BacktestProgressed(
                **base,
                message_id=event_id(record.task_id, new.seq, TaskState.PROGRESS),
                seq=new.seq,
                fraction=report.fraction,
                stage=report.stage,
            )
        case RunSucceeded():
            new = _next(record, TaskState.SUCCESS, now)
            event = BacktestSucceeded(
                **base,
                message_id=event_id(record.task_id, new.seq, TaskState.SUCCESS),
                seq=new.seq,
                result=report.result,
            )
        case RunFailed() if target is TaskState.RETRY:
            return _retry(record, report.failure, policy, now)
        case RunFailed() if report.failure.reason is FailureReason.INFRASTRUCTURE:
            return _dead_letter(record, report.failure, now, f"gave up after {record.attempt} attempts")
        case RunFailed():
            return _fail(record, report.failure, now)
    return Plan(record=new, events=(event,))


def _report_target(report: RunReport, policy: RetryPolicy) -> TaskState:
    match report:
        case RunStarted():
            return TaskState.STARTED
        case RunProgressed():
            return TaskState.PROGRESS
        case RunSucceeded():
            return TaskState.SUCCESS
        case RunFailed():
            retryable = report.failure.reason is FailureReason.INFRASTRUCTURE
            return TaskState.RETRY if retryable and policy.may_retry(report.attempt) else TaskState.FAILURE


def _retry(record: TaskRecord, failure: Failure, policy: RetryPolicy, now: datetime) -> Plan:
    delay_s = policy.delay_s(record.attempt)
    new = _next(
        record,
        TaskState.RETRY,
        now,
        attempt=record.attempt + 1,
        failures=(*record.failures, failure),
        requeue_at=now + timedelta(seconds=delay_s),
    )
    event = BacktestRetrying(
        message_id=event_id(record.task_id, new.seq, TaskState.RETRY),
        occurred_at=now,
        task_id=record.task_id,
        user_id=record.user_id,
        chunk=record.chunk,
        seq=new.seq,
        attempt=new.attempt,
        delay_s=delay_s,
        failure=failure,
    )
    return Plan(record=new, events=(event,), requeue_after_s=delay_s)


def _dead_letter(record: TaskRecord, last: Failure, now: datetime, why: str) -> Plan:
    history = (*record.failures, last)
    message = f"{why}; last failure ({last.reason.value}): {last.message}"[:10_000]
    failure = Failure(reason=FailureReason.DEAD_LETTER, message=message)
    dead = DeadLetteredJob(occurred_at=now, job=record.job(), history=list(history))
    return _fail(record.model_copy(update={"failures": history}), failure, now, dead_letter=dead)


def plan_requeue(record: TaskRecord | None, now: datetime) -> Plan:
    """Queue the job of a task whose retry back-off has passed."""
    if record is None or record.state is not TaskState.RETRY or record.requeue_at is None:
        shown = "unknown" if record is None else record.state.value
        return _ignore(f"nothing to requeue (task {shown})")
    new = record.model_copy(update={"requeue_at": None, "updated_at": now})
    return Plan(record=new, job=new.job())


def plan_cancel(record: TaskRecord | None, now: datetime) -> Plan:
    """Cancel a task that has not finished: broadcast CancelRun to the runners, emit CANCELLED."""
    if record is None:
        return _ignore("cancel of an unknown task")
    if transition(record.state, TaskState.CANCELLED) is Outcome.ABSORBED:
        return _ignore(f"task {record.task_id} is {record.state.value} already")
    new = _next(record, TaskState.CANCELLED, now, requeue_at=None)
    event = BacktestCancelled(
        message_id=event_id(record.task_id, new.seq, TaskState.CANCELLED),
        occurred_at=now,
        task_id=record.task_id,
        user_id=record.user_id,
        chunk=record.chunk,
        seq=new.seq,
    )
    return Plan(record=new, events=(event,), cancel_run=CancelRun(occurred_at=now, task_id=record.task_id))


def plan_max_deliveries(
    record: TaskRecord | None, job: RunBacktestJob, deliveries: int, now: datetime
) -> Plan:
    """Dead-letter a job that JetStream delivered `deliveries` times without an acknowledgement."""
    if record is None:
        return _ignore(f"dead job of unknown task {job.task_id}")
    if job.attempt != record.attempt:
        return _ignore(f"dead job of attempt {job.attempt}, the task is on attempt {record.attempt}")
    if transition(record.state, TaskState.FAILURE) is Outcome.ABSORBED:
        return _ignore(f"task {record.task_id} is {record.state.value} already")
    last = Failure(
        reason=FailureReason.INFRASTRUCTURE,
        message=f"job delivered {deliveries} times without an acknowledgement (runner died or hung)",
    )
    return _dead_letter(record, last, now, "deliveries exhausted")
