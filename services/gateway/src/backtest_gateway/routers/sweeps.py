"""The sweep resource: submit, status, trials (JSON or CSV), surface, result, cancel, list.

A sweep is one submission for the rate limits. Its trials run as the caller's own backtests (the
scheduler's fair share applies to them as to any); the sweeper owns the sweep once it is queued.
Every sweep is visible to its owner only (a foreign sweep is a 404, as a missing one).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from backtest_core.contracts import (
    TERMINAL_SWEEP_STATES,
    CancelSweep,
    SubmitSweep,
    SweepCounts,
    SweepState,
    new_id,
    utc_now,
)
from backtest_core.model.results import Metrics
from backtest_research.sweep_records import StrategyName, SweepRecord, TrialRecord, TrialStatus
from fastapi import APIRouter, Path, Query, Response, status

from backtest_gateway.auth import Principal, Role
from backtest_gateway.data_check import check_data
from backtest_gateway.deps import (
    BusDep,
    MarketDep,
    ReaderDep,
    SettingsDep,
    StrategiesDep,
    SubmitterDep,
    SweepsDep,
)
from backtest_gateway.errors import (
    AlreadyFinished,
    BrokerUnavailable,
    ErrorBody,
    InvalidQuery,
    SweepNotFound,
    SweepTooLarge,
    TooManySweeps,
)
from backtest_gateway.ports import SweepOrder, SweepStore
from backtest_gateway.schemas_sweep import (
    SurfaceAxis,
    SweepPage,
    SweepRequest,
    SweepStatus,
    SweepSubmitted,
    SweepSurface,
    TrialPage,
)
from backtest_gateway.submissions import check_strategy, resolve_config

PREFIX = "/sweep"
SweepIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the sweep id")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}
SORTABLE = ("id", *Metrics.model_fields)

router = APIRouter(
    prefix=PREFIX,
    tags=["sweeps"],
    responses={
        401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
        422: {"model": ErrorBody, "description": "invalid request; `field` names the offending field"},
        429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
    },
)


async def visible_sweep(sweeps: SweepStore, principal: Principal, sweep_id: str) -> SweepRecord:
    """The sweep if the caller may see it; a foreign sweep is reported exactly like a missing one."""
    record = await sweeps.get(sweep_id)
    if record is None or not principal.can_see(record.user_id):
        raise SweepNotFound(sweep_id)
    return record


@router.post(
    "/submit",
    status_code=status.HTTP_202_ACCEPTED,
    responses={403: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def submit_sweep(
    body: SweepRequest,
    sweeps: SweepsDep,
    principal: SubmitterDep,
    bus: BusDep,
    strategies: StrategiesDep,
    market: MarketDep,
    settings: SettingsDep,
    response: Response,
) -> SweepSubmitted:
    """Queue a parameter sweep: one backtest per trial of `search`, ranked by its objective.

    `search.space` takes the CLI's `--grid` specs (`fast=5:50:5`, `slow=30,50,100`, `int:5:50`, ...);
    `method` grid, random (seeded) or tpe (Optuna, seeded) with `trials`. A sweep may have at most
    `sweep_trials_max` trials (422 `sweep_too_large`) and a user `sweeps_open_per_user` sweeps not yet
    ended (429 `too_many_sweeps`).
    """
    principal.require(Role.RESEARCHER)
    size = body.search.size()
    if size > settings.sweep_trials_max:
        raise SweepTooLarge(
            f"the search has {size} trials; a sweep may have at most {settings.sweep_trials_max}",
            field="search",
        )
    open_sweeps = await sweeps.open_count(principal.user_id)
    if open_sweeps >= settings.sweeps_open_per_user:
        raise TooManySweeps(
            f"you have {open_sweeps} sweeps running; at most {settings.sweeps_open_per_user} may be open "
            "at once: wait for one to end or cancel one",
        )
    config, strategy_ref = await resolve_config(body, principal.user_id, strategies)
    # The strategy is checked as it loads; its params are the trials' (a refused trial is SKIPPED).
    check_strategy(
        config.model_copy(update={"params": {}}), source_max_bytes=settings.strategy_source_max_bytes
    )
    await check_data(config, market)
    now = utc_now()
    record = SweepRecord(
        sweep_id=new_id(),
        user_id=principal.user_id,
        state=SweepState.PENDING,
        config=config,
        search=body.search,
        strategy=StrategyName(name=strategy_ref.name, version=strategy_ref.version) if strategy_ref else None,
        counts=SweepCounts(total=size),
        created_at=now,
        updated_at=now,
    )
    await sweeps.insert(record)
    try:
        await bus.submit_sweep(SubmitSweep(sweep_id=record.sweep_id, user_id=principal.user_id))
    except Exception as error:
        await sweeps.delete_pending(record.sweep_id)
        raise BrokerUnavailable(f"the sweep could not be queued, try again: {error}") from error
    response.headers["Location"] = f"{PREFIX}/{record.sweep_id}"
    return SweepSubmitted(
        sweep_id=record.sweep_id,
        state=record.state,
        trials=size,
        status_url=f"{PREFIX}/{record.sweep_id}",
        trials_url=f"{PREFIX}/{record.sweep_id}/trials",
    )


@router.get("/list")
async def list_sweeps(
    sweeps: SweepsDep,
    principal: ReaderDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SweepPage:
    """The caller's sweeps, newest first (an admin sees everyone's)."""
    limit = min(limit, settings.page_size_max)
    owner = None if principal.is_admin else principal.user_id
    records, total = await sweeps.page(owner, limit, offset)
    return SweepPage(
        sweeps=[SweepStatus.from_record(r) for r in records], total=total, limit=limit, offset=offset
    )


@router.get("/{sweep_id}", responses=_NOT_FOUND)
async def get_sweep(sweep_id: SweepIdPath, sweeps: SweepsDep, principal: ReaderDep) -> SweepStatus:
    """A sweep's state, counts (done, failed, skipped, cancelled, running, total) and best trial so far."""
    return SweepStatus.from_record(await visible_sweep(sweeps, principal, sweep_id))


def _csv(trials: list[TrialRecord]) -> str:
    params = list(dict.fromkeys(name for trial in trials for name in trial.params))
    metrics = list(Metrics.model_fields)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "state", *params, *metrics, "reason", "task_id"])
    for trial in trials:
        values = trial.metrics or {}
        writer.writerow(
            [trial.id, trial.state.value, *(trial.params.get(p, "") for p in params)]
            + ["" if values.get(m) is None else values[m] for m in metrics]
            + [trial.reason or "", trial.task_id or ""]
        )
    return out.getvalue()


def trial_order(sort: str) -> SweepOrder:
    """The order a `sort` value names: `id` or a metric, `-` first for descending; else InvalidQuery."""
    descending, by = sort.startswith("-"), sort.removeprefix("-")
    if by not in SORTABLE:
        raise InvalidQuery(f"sort: `id` or a metric ({', '.join(SORTABLE[1:])}), was {sort!r}", field="sort")
    return SweepOrder(by=by, descending=descending)


@router.get("/{sweep_id}/trials", responses={**_NOT_FOUND, 200: {"content": {"text/csv": {}}}})
async def get_sweep_trials(
    sweep_id: SweepIdPath,
    sweeps: SweepsDep,
    principal: ReaderDep,
    settings: SettingsDep,
    sort: Annotated[str, Query(description="`id` or a metric, e.g. sharpe; `-sharpe` descending")] = "id",
    state: TrialStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    """A page of the sweep's trials: params, state, metrics, reason and the trial's task id."""
    await visible_sweep(sweeps, principal, sweep_id)
    order = trial_order(sort)
    limit = min(limit, settings.page_size_max * (50 if format == "csv" else 1))
    trials, total = await sweeps.trials(sweep_id, order, limit, offset, state)
    if format == "csv":
        return Response(_csv(trials), media_type="text/csv")
    return TrialPage(trials=[t.as_json() for t in trials], total=total, limit=limit, offset=offset)


async def _all_trials(sweeps: SweepStore, sweep_id: str) -> list[TrialRecord]:
    trials, _total = await sweeps.trials(sweep_id, SweepOrder(), 1_000_000, 0, None)
    return trials


@router.get("/{sweep_id}/surface", responses=_NOT_FOUND)
async def get_sweep_surface(
    sweep_id: SweepIdPath,
    sweeps: SweepsDep,
    principal: ReaderDep,
    x: Annotated[str, Query(description="the param across")],
    y: Annotated[str, Query(description="the param down")],
    metric: Annotated[str, Query(description="the metric shown, default the objective's")] = "",
) -> SweepSurface:
    """A heatmap of `metric` over two params of the sweep (see the schema for more than two params)."""
    record = await visible_sweep(sweeps, principal, sweep_id)
    objective = record.search.ranking()
    shown = metric or objective.metric
    if shown not in Metrics.model_fields:
        raise InvalidQuery(f"metric: one of {', '.join(Metrics.model_fields)}, was {shown!r}", field="metric")
    names = [spec.partition("=")[0].strip() for spec in record.search.space]
    for axis, name in (("x", x), ("y", y)):
        if name not in names:
            raise InvalidQuery(
                f"{axis}: a param the sweep searched ({', '.join(names)}), was {name!r}", field=axis
            )
    trials = [t for t in await _all_trials(sweeps, sweep_id) if t.state is TrialStatus.SUCCESS]
    xs = sorted({t.params[x] for t in trials if x in t.params}, key=_order)
    ys = sorted({t.params[y] for t in trials if y in t.params}, key=_order)
    best: dict[tuple[Any, Any], TrialRecord] = {}
    for trial in trials:
        cell = (trial.params.get(x), trial.params.get(y))
        held = best.get(cell)
        if held is None or _rank(trial) > _rank(held):
            best[cell] = trial
    z = [[_value(best.get((vx, vy)), shown) for vx in xs] for vy in ys]
    ids = [[best[(vx, vy)].id if (vx, vy) in best else None for vx in xs] for vy in ys]
    return SweepSurface(
        metric=shown, x=SurfaceAxis(name=x, values=xs), y=SurfaceAxis(name=y, values=ys), z=z, trials=ids
    )


def _order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _rank(trial: TrialRecord) -> tuple[float, int]:
    return (trial.score if trial.score is not None else float("-inf"), -trial.id)


def _value(trial: TrialRecord | None, metric: str) -> float | None:
    value = (trial.metrics or {}).get(metric) if trial is not None else None
    return float(value) if isinstance(value, int | float) else None


@router.get("/{sweep_id}/result", responses=_NOT_FOUND)
async def get_sweep_result(sweep_id: SweepIdPath, sweeps: SweepsDep, principal: ReaderDep) -> dict[str, Any]:
    """The sweep as `backtest sweep --json` prints it: every trial, the best, the overfitting statistics,
    the objective and the counts; plus `state` (the statistics are set once the sweep has ended)."""
    record = await visible_sweep(sweeps, principal, sweep_id)
    objective = record.search.ranking()
    trials = await _all_trials(sweeps, sweep_id)
    best = next((t.as_json() for t in trials if record.best and t.id == record.best["id"]), None)
    counts = record.counts
    return {
        "sweep_id": record.sweep_id,
        "state": record.state.value,
        "trials": [t.as_json() for t in trials],
        "best": best,
        "overfitting": record.overfitting,
        "objective": {
            "metric": objective.metric,
            "direction": "max" if objective.maximize else "min",
            "min_trades": objective.min_trades,
        },
        "counts": {
            "total": counts.total,
            "done": counts.done,
            "failed": counts.failed,
            "skipped": counts.skipped,
        },
        "failure": record.failure,
    }


@router.post(
    "/{sweep_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_NOT_FOUND, 409: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def cancel_sweep(
    sweep_id: SweepIdPath, sweeps: SweepsDep, principal: SubmitterDep, bus: BusDep
) -> SweepStatus:
    """Stop a sweep: no more trials start and the running ones are cancelled (it ends CANCELLED)."""
    principal.require(Role.RESEARCHER)
    record = await visible_sweep(sweeps, principal, sweep_id)
    if record.state in TERMINAL_SWEEP_STATES:
        raise AlreadyFinished(f"sweep {sweep_id} has ended ({record.state.value})", field="sweep_id")
    try:
        await bus.cancel_sweep(CancelSweep(sweep_id=sweep_id, user_id=record.user_id))
    except Exception as error:
        raise BrokerUnavailable(f"the cancel could not be queued, try again: {error}") from error
    return SweepStatus.from_record(record)
