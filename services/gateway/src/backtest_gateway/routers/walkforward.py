"""The walk-forward resource: submit, status, result, cancel, list.

A walk-forward is one submission for the rate limits, with a sweep's caps: its trials (folds x the
search's) at most `sweep_trials_max`, and at most `sweeps_open_per_user` walk-forwards of a user open.
The gateway plans the folds from the stored candles (as `backtest walkforward` does from its files) and
stores the walk-forward; the sweeper owns it once it is queued: each fold's train window is a sweep,
then its best params trade the test window as a backtest. Every walk-forward is visible to its owner
only (a foreign one is a 404, as a missing one).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import numpy as np
from anyio import to_thread
from backtest_core.contracts import (
    TERMINAL_SWEEP_STATES,
    CancelWalkForward,
    SubmitWalkForward,
    SweepState,
    new_id,
    utc_now,
)
from backtest_core.model.config import BacktestConfig
from backtest_research.space import SpaceError
from backtest_research.walkforward_records import (
    STITCHED_BARS_MAX,
    TEST_RUN_BARS_MAX,
    WalkForwardRecord,
    test_run_bars,
    walkforward_folds,
)
from backtest_research.walkforward_sandbox import wraps
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.requests import HTTPConnection

from backtest_gateway.adapters.mongo_walkforwards import MongoWalkForwardStore
from backtest_gateway.adapters.nats_walkforward_bus import NatsWalkForwardBus
from backtest_gateway.auth import Principal, Role
from backtest_gateway.data_check import check_data
from backtest_gateway.deps import MarketDep, ReaderDep, SettingsDep, StrategiesDep, SubmitterDep
from backtest_gateway.errors import (
    AlreadyFinished,
    ApiError,
    BrokerUnavailable,
    ErrorBody,
    NoResult,
    NotFinished,
    SweepTooLarge,
    TooManySweeps,
)
from backtest_gateway.ports import MarketData
from backtest_gateway.schemas_walkforward import (
    WalkForwardPage,
    WalkForwardRequest,
    WalkForwardStatus,
    WalkForwardSubmitted,
)
from backtest_gateway.submissions import check_strategy, resolve_config
from backtest_gateway.walkforward_ports import WalkForwardBus, WalkForwardStore

PREFIX = "/walkforward"
WalkForwardIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the walk-forward id")]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}


class WalkForwardNotFound(ApiError):
    """No such walk-forward for this caller (a foreign one looks exactly like a missing one)."""

    status_code = 404
    code = "walkforward_not_found"

    def __init__(self, walkforward_id: str) -> None:
        super().__init__(f"no walk-forward with id {walkforward_id!r}", field="walkforward_id")


class InvalidFolds(ApiError):
    """The fold options do not read, or no fold fits the data."""

    status_code = 422
    code = "invalid_folds"


def get_walkforwards(connection: HTTPConnection) -> WalkForwardStore:
    """The walk-forward store: the app's if set (tests), else a MongoDB store made on first use (one
    for HTTP and WebSocket routes alike)."""
    state = connection.app.state
    store: WalkForwardStore | None = getattr(state, "walkforwards", None)
    if store is None:
        settings = state.settings
        store = MongoWalkForwardStore.connect(settings.mongodb_uri, settings.mongodb_database)
        state.walkforwards = store
    return store


def get_walkforward_bus(request: Request) -> WalkForwardBus:
    """The walk-forward command publisher: the app's if set (tests), else one on the app's broker."""
    state = request.app.state
    bus: WalkForwardBus | None = getattr(state, "walkforward_bus", None)
    if bus is None:
        bus = NatsWalkForwardBus(state.broker, state.settings.publish_timeout_s)
        state.walkforward_bus = bus
    return bus


WalkForwardsDep = Annotated[WalkForwardStore, Depends(get_walkforwards)]
WalkForwardBusDep = Annotated[WalkForwardBus, Depends(get_walkforward_bus)]

router = APIRouter(
    prefix=PREFIX,
    tags=["walkforward"],
    responses={
        401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
        422: {"model": ErrorBody, "description": "invalid request; `field` names the offending field"},
        429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
    },
)


async def visible_walkforward(
    walkforwards: WalkForwardStore, principal: Principal, walkforward_id: str
) -> WalkForwardRecord:
    """The walk-forward if the caller may see it; a foreign one is reported exactly like a missing one."""
    record = await walkforwards.get(walkforward_id)
    if record is None or not principal.can_see(record.user_id):
        raise WalkForwardNotFound(walkforward_id)
    return record


async def bar_grid(config: BacktestConfig, market: MarketData) -> np.ndarray:
    """The open times (ns) of the union of the symbols' stored bars in the config's range."""
    start = None if config.start is None else int(config.start.timestamp()) * 1_000_000_000
    end = None if config.end is None else int(config.end.timestamp()) * 1_000_000_000

    def read() -> np.ndarray:
        times = [market.candles(s, config.interval, start, end).open_time for s in config.symbols]
        return np.unique(np.concatenate(times))

    return await to_thread.run_sync(read)


def _refuse_unsupported(body: WalkForwardRequest, config: BacktestConfig) -> None:
    if body.search.method == "tpe":
        raise InvalidFolds("search.method: walk-forward takes grid or random (tpe: a sweep)", field="search")
    refused = wraps(config)
    if refused is not None:
        raise InvalidFolds(f"strategy: {refused}", field="strategy")


@router.post(
    "/submit",
    status_code=status.HTTP_202_ACCEPTED,
    responses={403: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def submit_walkforward(
    body: WalkForwardRequest,
    walkforwards: WalkForwardsDep,
    principal: SubmitterDep,
    bus: WalkForwardBusDep,
    strategies: StrategiesDep,
    market: MarketDep,
    settings: SettingsDep,
    response: Response,
) -> WalkForwardSubmitted:
    """Queue a walk-forward validation: per fold a sweep of `search` on the train window, its best
    params on the test window (warmed up on the bars before it, equity carried from fold to fold).

    `train`, `test` (required), `step` (default `test`) and `gap` (default 0) are bars or durations
    (`90d`); `anchored` starts every train window at the first bar. The folds are planned over the stored
    bars of the symbols in [start, end) as `backtest walkforward` plans them (422 `invalid_folds` when
    none fits). Caps as a sweep: folds x trials at most `sweep_trials_max` (422 `sweep_too_large`),
    `sweeps_open_per_user` walk-forwards open (429 `too_many_sweeps`); a fold's test run covers at most
    5,000 bars (train + gap + test: its every bar's equity comes back), the test windows at most
    100,000 bars in all (their equity is stored).
    """
    principal.require(Role.RESEARCHER)
    config, _ref = await resolve_config(body, principal.user_id, strategies)
    _refuse_unsupported(body, config)
    check_strategy(
        config.model_copy(update={"params": {}}), source_max_bytes=settings.strategy_source_max_bytes
    )
    await check_data(config, market)
    walkforward_id = new_id()
    times = await bar_grid(config, market)
    try:
        options, folds = walkforward_folds(
            walkforward_id, times, config.interval, body.train, body.test, body.step, body.gap, body.anchored
        )
    except SpaceError as error:
        named = re.match(r"option -*(\w+):", str(error))  # a length that does not read names its option
        field = named[1] if named else "train"
        raise InvalidFolds(
            f"{error} (the data has {len(times)} {config.interval} bars)", field=field
        ) from error
    longest = max(test_run_bars(times, fold) for fold in folds)
    if longest > TEST_RUN_BARS_MAX:
        raise InvalidFolds(
            f"a fold's test run covers train + gap + test = {longest} bars; at most {TEST_RUN_BARS_MAX}",
            field="train",
        )
    stitched = sum(fold.test_bars for fold in folds)
    if stitched > STITCHED_BARS_MAX:
        raise InvalidFolds(
            f"the folds' test windows hold {stitched} bars in all; at most {STITCHED_BARS_MAX} "
            "(fewer folds or a longer interval)",
            field="test",
        )
    size = body.search.size() * len(folds)
    if size > settings.sweep_trials_max:
        raise SweepTooLarge(
            f"the walk-forward has {len(folds)} folds x {body.search.size()} trials = {size}; "
            f"at most {settings.sweep_trials_max}",
            field="search",
        )
    open_now = await walkforwards.open_count(principal.user_id)
    if open_now >= settings.sweeps_open_per_user:
        raise TooManySweeps(
            f"you have {open_now} walk-forwards running; at most {settings.sweeps_open_per_user} may be open "
            "at once: wait for one to end or cancel one",
        )
    now = utc_now()
    record = WalkForwardRecord(
        walkforward_id=walkforward_id,
        user_id=principal.user_id,
        state=SweepState.PENDING,
        config=config,
        search=body.search,
        options=options,
        folds=folds,
        created_at=now,
        updated_at=now,
    )
    await walkforwards.insert(record)
    try:
        await bus.submit(SubmitWalkForward(walkforward_id=walkforward_id, user_id=principal.user_id))
    except Exception as error:
        await walkforwards.delete_pending(walkforward_id)
        raise BrokerUnavailable(f"the walk-forward could not be queued, try again: {error}") from error
    response.headers["Location"] = f"{PREFIX}/{walkforward_id}"
    return WalkForwardSubmitted(
        walkforward_id=walkforward_id,
        state=record.state,
        folds=len(folds),
        status_url=f"{PREFIX}/{walkforward_id}",
        result_url=f"{PREFIX}/{walkforward_id}/result",
    )


@router.get("/list")
async def list_walkforwards(
    walkforwards: WalkForwardsDep,
    principal: ReaderDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> WalkForwardPage:
    """The caller's walk-forwards, newest first (an admin sees everyone's)."""
    limit = min(limit, settings.page_size_max)
    owner = None if principal.is_admin else principal.user_id
    records, total = await walkforwards.page(owner, limit, offset)
    return WalkForwardPage(
        walkforwards=[WalkForwardStatus.from_record(r) for r in records],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{walkforward_id}", responses=_NOT_FOUND)
async def get_walkforward(
    walkforward_id: WalkForwardIdPath, walkforwards: WalkForwardsDep, principal: ReaderDep
) -> WalkForwardStatus:
    """A walk-forward's state, folds done of total, and each fold's windows, state, sweep and params."""
    return WalkForwardStatus.from_record(await visible_walkforward(walkforwards, principal, walkforward_id))


@router.get("/{walkforward_id}/result", responses={**_NOT_FOUND, 409: {"model": ErrorBody}})
async def get_walkforward_result(
    walkforward_id: WalkForwardIdPath, walkforwards: WalkForwardsDep, principal: ReaderDep
) -> dict[str, Any]:
    """The walk-forward as `backtest walkforward --json` prints it: the folds (windows, params, in- and
    out-of-sample metrics), the stitched out-of-sample metrics and equity, the efficiency. 409 until it
    has ended SUCCESS."""
    record = await visible_walkforward(walkforwards, principal, walkforward_id)
    if record.result is not None:
        return record.result
    if record.finished_at is None:
        raise NotFinished(f"walk-forward {walkforward_id} is {record.state.value}", field="walkforward_id")
    why = f": {record.failure}" if record.failure else ""
    raise NoResult(f"walk-forward {walkforward_id} ended {record.state.value}{why}", field="walkforward_id")


@router.post(
    "/{walkforward_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_NOT_FOUND, 409: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def cancel_walkforward(
    walkforward_id: WalkForwardIdPath,
    walkforwards: WalkForwardsDep,
    principal: SubmitterDep,
    bus: WalkForwardBusDep,
) -> WalkForwardStatus:
    """Stop a walk-forward: its folds' sweeps and its test run are cancelled (it ends CANCELLED)."""
    principal.require(Role.RESEARCHER)
    record = await visible_walkforward(walkforwards, principal, walkforward_id)
    if record.state in TERMINAL_SWEEP_STATES:
        raise AlreadyFinished(
            f"walk-forward {walkforward_id} has ended ({record.state.value})", field="walkforward_id"
        )
    try:
        await bus.cancel(CancelWalkForward(walkforward_id=walkforward_id, user_id=record.user_id))
    except Exception as error:
        raise BrokerUnavailable(f"the cancel could not be queued, try again: {error}") from error
    return WalkForwardStatus.from_record(record)
