"""The backtest resource: submit, status, results, cancel, list (REST) and stream (WebSocket)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from backtest_core.contracts import (
    TERMINAL_STATES,
    CancelBacktest,
    SubmitBacktest,
    TaskState,
    new_id,
    utc_now,
)
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult
from fastapi import APIRouter, Body, Header, Path, Query, Response, status

from backtest_gateway.auth import Principal, Role
from backtest_gateway.data_check import check_data
from backtest_gateway.deps import (
    BusDep,
    HeavyTurnsDep,
    MarketDep,
    ReaderDep,
    ResultCacheDep,
    SettingsDep,
    StoreDep,
    StrategiesDep,
    SubmitterDep,
)
from backtest_gateway.errors import (
    AlreadyFinished,
    BrokerUnavailable,
    ErrorBody,
    IdempotencyKeyReused,
    NoResult,
    NotFinished,
    TaskNotFound,
)
from backtest_gateway.ports import TaskFilter, TaskRecord, TaskStore
from backtest_gateway.result_pages import (
    EQUITY_PAGE_DEFAULT,
    EQUITY_PAGE_MAX,
    TRADES_PAGE_DEFAULT,
    TRADES_PAGE_MAX,
    PageWindow,
    decode_result,
)
from backtest_gateway.schemas import (
    BacktestPage,
    BacktestResults,
    BacktestStatus,
    BacktestSubmitted,
    CancelRequested,
)
from backtest_gateway.schemas_strategy import BacktestRequest
from backtest_gateway.submissions import check_strategy, resolve_config

PREFIX = "/backtest"
TASK_ID_PATTERN = r"^[0-9a-f]{32}$"

router = APIRouter(
    prefix=PREFIX,
    tags=["backtests"],
    responses={
        401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
        422: {"model": ErrorBody, "description": "invalid request; `field` names the offending field"},
        429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
    },
)

TaskIdPath = Annotated[str, Path(pattern=TASK_ID_PATTERN, description="32 hex characters")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such task for this caller"}
}

SUBMIT_EXAMPLE = {
    "strategy": "sma_cross",
    "params": {"fast": 10, "slow": 30},
    "symbols": ["BTCUSD"],
    "interval": "1d",
    "start": "2018-01-01T00:00:00Z",
    "end": "2020-01-01T00:00:00Z",
}
SUBMIT_USER_EXAMPLE = {
    **SUBMIT_EXAMPLE,
    "strategy": {"user": "close_above_open"},
    "params": {"min_move": 5.0},
}


def config_hash(config: BacktestConfig) -> str:
    """SHA-256 of the config's canonical JSON (sorted keys), to compare idempotent resubmissions."""
    canonical = json.dumps(config.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def visible_task(
    store: TaskStore, principal: Principal, task_id: str, *, with_result: bool = True
) -> TaskRecord:
    """Return the task if the caller may see it; a foreign task is reported exactly like a missing one.

    `with_result=False` leaves the (up to ~15 MB) result out of the read.
    """
    record = await (store.get(task_id) if with_result else store.get_without_result(task_id))
    if record is None or not principal.can_see(record.user_id):
        raise TaskNotFound(task_id)
    return record


async def _load_result(store: TaskStore, task_id: str) -> BacktestResult | None:
    record = await store.get(task_id)
    return None if record is None or record.result is None else await decode_result(record.result)


def _submitted(task_id: str, state: TaskState) -> BacktestSubmitted:
    return BacktestSubmitted(
        task_id=task_id,
        state=state,
        status_url=f"{PREFIX}/status/{task_id}",
        stream_url=f"{PREFIX}/stream/{task_id}",
    )


@router.post(
    "/submit",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        409: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
async def submit_backtest(
    request: Annotated[
        BacktestRequest,
        Body(
            openapi_examples={
                "sma_cross": {"summary": "SMA crossover", "value": SUBMIT_EXAMPLE},
                "uploaded": {"summary": "your uploaded strategy", "value": SUBMIT_USER_EXAMPLE},
            }
        ),
    ],
    principal: SubmitterDep,
    store: StoreDep,
    strategies: StrategiesDep,
    market: MarketDep,
    bus: BusDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> BacktestSubmitted:
    """Queue a backtest and return its task id at once (the same Idempotency-Key returns the same task).

    `"strategy": {"user": "<name>"}` runs one of your uploaded strategies: the stored source goes into
    the config (run only in the sandbox) and the task records the strategy's name and version.
    A symbol, interval or range without stored candles is refused (422 `no_data`, saying what exists).
    """
    principal.require(Role.RESEARCHER)
    config, strategy_ref = await resolve_config(request, principal.user_id, strategies)
    check_strategy(config, source_max_bytes=settings.strategy_source_max_bytes)
    await check_data(config, market)  # 422 no_data naming what the catalog has
    task_id = new_id()
    now = utc_now()
    record = TaskRecord(
        task_id=task_id,
        user_id=principal.user_id,
        state=TaskState.PENDING,
        seq=0,
        config=config,
        idempotency_key=idempotency_key,
        strategy_ref=strategy_ref,
        created_at=now,
        updated_at=now,
    )
    await store.insert_pending(record)
    if idempotency_key is not None:
        digest = config_hash(config)
        claim = await store.claim_idempotency_key(principal.user_id, idempotency_key, task_id, digest)
        if claim.task_id != task_id:
            await store.delete_pending(task_id)
            if claim.config_hash != digest:
                raise IdempotencyKeyReused(
                    f"Idempotency-Key {idempotency_key!r} was used for task {claim.task_id} with a "
                    "different config; use a new key for a different backtest",
                    field="Idempotency-Key",
                )
            existing = await store.get(claim.task_id)
            response.status_code = status.HTTP_200_OK
            return _submitted(claim.task_id, existing.state if existing else TaskState.PENDING)
    command = SubmitBacktest(
        task_id=task_id, user_id=principal.user_id, config=config, idempotency_key=idempotency_key
    )
    try:
        await bus.submit(command)
    except Exception as error:
        await store.delete_pending(task_id)
        if idempotency_key is not None:
            await store.release_idempotency_key(principal.user_id, idempotency_key, task_id)
        raise BrokerUnavailable(f"the submission could not be queued, try again: {error}") from error
    response.headers["Location"] = f"{PREFIX}/status/{task_id}"
    return _submitted(task_id, TaskState.PENDING)


@router.get("/status/{task_id}", responses=_NOT_FOUND)
async def get_backtest_status(task_id: TaskIdPath, principal: ReaderDep, store: StoreDep) -> BacktestStatus:
    """Return a backtest's state and progress."""
    return BacktestStatus.from_record(await visible_task(store, principal, task_id, with_result=False))


@router.get(
    "/results/{task_id}",
    response_model=BacktestResults,
    responses={**_NOT_FOUND, 409: {"model": ErrorBody}},
)
async def get_backtest_results(
    task_id: TaskIdPath,
    principal: ReaderDep,
    store: StoreDep,
    cache: ResultCacheDep,
    turns: HeavyTurnsDep,
    trades_offset: Annotated[int, Query(ge=0, le=100_000_000, description="first trade of the page")] = 0,
    trades_limit: Annotated[int, Query(ge=1, le=TRADES_PAGE_MAX)] = TRADES_PAGE_DEFAULT,
    equity_offset: Annotated[int, Query(ge=0, le=100_000_000, description="first equity point")] = 0,
    equity_limit: Annotated[int, Query(ge=1, le=EQUITY_PAGE_MAX)] = EQUITY_PAGE_DEFAULT,
) -> Response:
    """Return the metrics, per-symbol breakdown and one page of the equity curve and trades of a successful
    backtest; `page` gives the totals and the offsets of the next pages (None: nothing follows)."""
    record = await store.get_without_result(task_id)
    if record is None or not principal.can_see(record.user_id):
        raise TaskNotFound(task_id)
    if record.state is TaskState.SUCCESS:
        async with turns.turn(principal.user_id):
            result = await cache.get((task_id, record.seq), lambda: _load_result(store, task_id))
            if result is not None:
                envelope = {"task_id": task_id, "state": "SUCCESS", "cached_from": record.cached_from}
                window = PageWindow(trades_offset, trades_limit, equity_offset, equity_limit)
                body = await cache.page((task_id, record.seq), envelope, result, window)
                return Response(body, media_type="application/json")
    if record.state in TERMINAL_STATES:
        why = f" ({record.failure.reason.value}: {record.failure.message})" if record.failure else ""
        raise NoResult(f"backtest {task_id} ended {record.state.value} without a result{why}")
    raise NotFinished(f"backtest {task_id} has no result yet: state is {record.state.value}")


@router.post(
    "/cancel/{task_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_NOT_FOUND, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def cancel_backtest(
    task_id: TaskIdPath, principal: ReaderDep, store: StoreDep, bus: BusDep
) -> CancelRequested:
    """Ask the scheduler to cancel a backtest that has not finished."""
    record = await visible_task(store, principal, task_id, with_result=False)
    principal.require(Role.RESEARCHER)
    if record.state in TERMINAL_STATES:
        raise AlreadyFinished(f"backtest {task_id} already ended {record.state.value}")
    try:
        await bus.cancel(CancelBacktest(task_id=task_id, user_id=principal.user_id))
    except Exception as error:
        raise BrokerUnavailable(f"the cancellation could not be queued, try again: {error}") from error
    return CancelRequested(task_id=task_id, state=record.state)


@router.get("/list")
async def list_backtests(
    principal: ReaderDep,
    store: StoreDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    state: TaskState | None = None,
    strategy: Annotated[
        str | None,
        Query(max_length=100, description="only runs of this strategy (built-in or uploaded name)"),
    ] = None,
    symbol: Annotated[str | None, Query(max_length=50, description="only runs trading this symbol")] = None,
    user_id: Annotated[
        str | None, Query(max_length=200, description="admins only: another user's tasks")
    ] = None,
) -> BacktestPage:
    """List the caller's backtests, newest first (admins: everyone's, or one user's with `user_id`),
    filtered by state, strategy and symbol when given."""
    limit = min(limit, settings.page_size_max)
    owner = user_id if principal.is_admin else principal.user_id
    page = await store.page(owner, TaskFilter(state=state, strategy=strategy, symbol=symbol), limit, offset)
    following = offset + len(page.items)
    return BacktestPage(
        items=[BacktestStatus.from_record(r) for r in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=following if following < page.total else None,
    )
