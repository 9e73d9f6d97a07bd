"""GraphQL at /graphql over symbols, strategies, backtests, sweeps and walk-forwards, with the same
authorization as REST.

Every query needs a bearer token (401 otherwise) and spends one read token; a user sees only their own
backtests and strategies (admins: everyone's). A missing, foreign or malformed id resolves to null with an
error whose `extensions.code` is REST's (`task_not_found`, `invalid_task_id`, `symbol_not_found`,
`strategy_not_found`, `sweep_not_found`, `walkforward_not_found`); foreign ones look exactly like missing
ones.
"""

# mypy: disable-error-code="untyped-decorator"
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast

import strawberry
from anyio import to_thread
from backtest_core.contracts import TaskState
from backtest_core.model.trade_log import TradeLog
from backtest_core.strategy.builtins import BUILTINS
from backtest_marketdata.models import Symbol, SymbolFilter
from graphql import GraphQLError
from pydantic import TypeAdapter
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.scalars import JSON
from strawberry.types import Info

from backtest_gateway.auth import Principal
from backtest_gateway.deps import MarketDep, ReaderDep, SettingsDep, StoreDep, StrategiesDep, SweepsDep
from backtest_gateway.errors import ApiError, TaskNotFound
from backtest_gateway.graphql_sweeps import (
    SweepPageType,
    SweepType,
    TrialPageType,
    one_sweep,
    sweep_page,
    trial_page,
)
from backtest_gateway.graphql_walkforwards import (
    WalkForwardPageType,
    WalkForwardType,
    one_walkforward,
    walkforward_page,
)
from backtest_gateway.ports import (
    MarketData,
    StrategyRecord,
    StrategyStore,
    SweepStore,
    TaskFilter,
    TaskRecord,
    TaskStore,
)
from backtest_gateway.result_pages import HEAVY_WORK, TRADES_PAGE_MAX
from backtest_gateway.routers.backtests import TASK_ID_PATTERN
from backtest_gateway.routers.strategies import StrategyNotFound
from backtest_gateway.routers.symbols import SymbolNotFound
from backtest_gateway.routers.walkforward import WalkForwardsDep
from backtest_gateway.schemas_strategy import BuiltinInfo
from backtest_gateway.walkforward_ports import WalkForwardStore

MAX_PAGE = 200


class Context(BaseContext):
    """The caller and the ports a query reads through."""

    def __init__(
        self,
        principal: Principal,
        tasks: TaskStore,
        strategies: StrategyStore,
        market: MarketData,
        sweeps: SweepStore,
        walkforwards: WalkForwardStore,
        page_max: int,
    ) -> None:
        super().__init__()
        self.principal = principal
        self.tasks = tasks
        self.strategies = strategies
        self.market = market
        self.sweeps = sweeps
        self.walkforwards = walkforwards
        self.page_max = min(page_max, MAX_PAGE)


async def get_context(
    principal: ReaderDep,
    tasks: StoreDep,
    strategies: StrategiesDep,
    market: MarketDep,
    sweeps: SweepsDep,
    walkforwards: WalkForwardsDep,
    settings: SettingsDep,
) -> Context:
    """Authenticate (401 without a valid token) and rate-limit the caller, then build the context."""
    return Context(principal, tasks, strategies, market, sweeps, walkforwards, settings.page_size_max)


class InvalidTaskId(ApiError):
    """A task id that is not 32 hex characters."""

    status_code = 422
    code = "invalid_task_id"

    def __init__(self, task_id: str) -> None:
        super().__init__(f"taskId must be 32 hex characters, was {task_id!r}", field="taskId")


def _graphql_error(error: ApiError, argument: str | None = None) -> GraphQLError:
    """The GraphQL error of an API error: its message, its code and the argument at fault in `extensions`."""
    return GraphQLError(error.message, extensions={"code": error.code, "field": argument or error.field})


def _limit(info: Info[Context, None], limit: int) -> int:
    return max(1, min(limit, info.context.page_max))


@strawberry.type
class IntervalCoverageType:
    interval: str
    first: datetime | None
    last: datetime | None
    count: int
    gaps: int
    missing: int


@strawberry.type(name="Symbol")
class SymbolType:
    symbol: str
    name: str
    type: str
    market_cap: float | None
    volume_24h: float | None
    is_active: bool
    last_updated: datetime
    coverage: list[IntervalCoverageType]

    @classmethod
    def of(cls, s: Symbol) -> SymbolType:
        cover = [IntervalCoverageType(interval=k, **v.model_dump()) for k, v in sorted(s.coverage.items())]
        return cls(
            symbol=s.symbol,
            name=s.name,
            type=s.type,
            market_cap=s.market_cap,
            volume_24h=s.volume_24h,
            is_active=s.is_active,
            last_updated=s.last_updated,
            coverage=cover,
        )


@strawberry.type(name="Strategy")
class StrategyType:
    name: str
    kind: str
    description: str
    params: JSON
    user_id: str | None = None
    class_name: str | None = None
    version: int | None = None
    source: str | None = None

    @classmethod
    def of_builtin(cls, info: BuiltinInfo) -> StrategyType:
        return cls(
            name=info.name,
            kind="builtin",
            description=info.description,
            params=cast(JSON, {p.name: p.model_dump() for p in info.params}),
        )

    @classmethod
    def of_record(cls, r: StrategyRecord) -> StrategyType:
        return cls(
            name=r.name,
            kind="user",
            description=r.description,
            params=cast(JSON, dict(r.params)),
            user_id=r.user_id,
            class_name=r.class_name,
            version=r.version,
            source=r.source,
        )


@strawberry.type(name="Trade")
class TradeType:
    symbol: str
    side: str
    units: float
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    exit_reason: str
    pnl: float
    return_pct: float
    fees: float
    bars_held: int


@strawberry.type(name="Backtest")
class BacktestType:
    task_id: str
    user_id: str
    state: str
    progress: float | None
    created_at: datetime | None
    config: JSON | None
    strategy_name: str | None
    strategy_version: int | None

    @strawberry.field(description="the metrics of a successful backtest (units as in REST results)")
    async def metrics(self, info: Info[Context, None]) -> JSON | None:
        result = await _result(info, self.task_id)
        return None if result is None else result.get("metrics")

    @strawberry.field(description="one page of the backtest's trades, in execution order")
    async def trades(self, info: Info[Context, None], limit: int = 100, offset: int = 0) -> list[TradeType]:
        result = await _result(info, self.task_id)
        stored = (result or {}).get("trades") or []  # stored packed (trade_pack): decoded off the loop
        size = max(1, min(limit, TRADES_PAGE_MAX))
        return await to_thread.run_sync(_trade_page, stored, max(0, offset), size, limiter=HEAVY_WORK)

    @classmethod
    def of(cls, r: TaskRecord) -> BacktestType:
        ref = r.strategy_ref
        return cls(
            task_id=r.task_id,
            user_id=r.user_id,
            state=r.state.value,
            progress=r.progress,
            created_at=r.created_at,
            config=None if r.config is None else cast(JSON, r.config.model_dump(mode="json", by_alias=True)),
            strategy_name=None if ref is None else ref.name,
            strategy_version=None if ref is None else ref.version,
        )


_TRADES = TypeAdapter(TradeLog)


def _trade_page(stored: object, start: int, limit: int) -> list[TradeType]:
    page = _TRADES.validate_python(stored)[start : start + limit]
    return [_trade(t.model_dump()) for t in page]  # python mode: times stay datetimes


def _trade(t: dict[str, Any]) -> TradeType:
    return TradeType(**{k: t[k] for k in TradeType.__annotations__})


async def _result(info: Info[Context, None], task_id: str) -> dict[str, Any] | None:
    record = await info.context.tasks.get(task_id)
    if record is None or not info.context.principal.can_see(record.user_id):
        return None
    return record.result if record.state is TaskState.SUCCESS else None


@strawberry.type
class SymbolPageType:
    items: list[SymbolType]
    total: int


@strawberry.type
class StrategyPageType:
    builtins: list[StrategyType]
    items: list[StrategyType]
    total: int


@strawberry.type
class BacktestPageType:
    items: list[BacktestType]
    total: int


@strawberry.type
class Query:
    @strawberry.field(description="symbols sorted by name")
    async def symbols(self, info: Info[Context, None], limit: int = 50, offset: int = 0) -> SymbolPageType:
        page = await to_thread.run_sync(
            info.context.market.symbols, SymbolFilter(), max(0, offset), _limit(info, limit), "symbol", False
        )
        return SymbolPageType(items=[SymbolType.of(s) for s in page.items], total=page.total)

    @strawberry.field
    async def symbol(self, info: Info[Context, None], symbol: str) -> SymbolType | None:
        found = await to_thread.run_sync(info.context.market.symbol, symbol)
        if found is None:
            raise _graphql_error(SymbolNotFound(symbol))
        return SymbolType.of(found)

    @strawberry.field(description="built-ins and your uploaded strategies (admins: everyone's)")
    async def strategies(
        self, info: Info[Context, None], limit: int = 50, offset: int = 0
    ) -> StrategyPageType:
        principal = info.context.principal
        owner = None if principal.is_admin else principal.user_id
        page = await info.context.strategies.page(owner, _limit(info, limit), max(0, offset))
        builtins = [
            StrategyType.of_builtin(BuiltinInfo.from_class(n, c)) for n, c in sorted(BUILTINS.items())
        ]
        return StrategyPageType(
            builtins=builtins, items=[StrategyType.of_record(r) for r in page.items], total=page.total
        )

    @strawberry.field(description="a built-in by name, or your uploaded strategy (admins: pass `owner`)")
    async def strategy(
        self, info: Info[Context, None], name: str, owner: str | None = None
    ) -> StrategyType | None:
        if name in BUILTINS:
            return StrategyType.of_builtin(BuiltinInfo.from_class(name, BUILTINS[name]))
        principal = info.context.principal
        user = owner if principal.is_admin and owner else principal.user_id
        record = await info.context.strategies.get(user, name)
        if record is None or not principal.can_see(record.user_id):
            raise _graphql_error(StrategyNotFound(name))
        return StrategyType.of_record(record)

    @strawberry.field(
        description="your backtests, newest first (admins: everyone's); by state, strategy name, symbol"
    )
    async def backtests(
        self,
        info: Info[Context, None],
        limit: int = 50,
        offset: int = 0,
        state: str | None = None,
        strategy: str | None = None,
        symbol: str | None = None,
    ) -> BacktestPageType:
        principal = info.context.principal
        owner = None if principal.is_admin else principal.user_id
        wanted = TaskState(state) if state in {s.value for s in TaskState} else None
        if state is not None and wanted is None:
            return BacktestPageType(items=[], total=0)
        where = TaskFilter(state=wanted, strategy=strategy, symbol=symbol)
        page = await info.context.tasks.page(owner, where, _limit(info, limit), max(0, offset))
        return BacktestPageType(items=[BacktestType.of(r) for r in page.items], total=page.total)

    @strawberry.field(
        description="one backtest of yours (an error coded task_not_found if missing or not yours)"
    )
    async def backtest(self, info: Info[Context, None], task_id: str) -> BacktestType | None:
        if not re.fullmatch(TASK_ID_PATTERN, task_id):
            raise _graphql_error(InvalidTaskId(task_id))
        record = await info.context.tasks.get(task_id)
        if record is None or not info.context.principal.can_see(record.user_id):
            raise _graphql_error(TaskNotFound(task_id), argument="taskId")
        return BacktestType.of(record)

    @strawberry.field(description="your sweeps, newest first (admins: everyone's)")
    async def sweeps(self, info: Info[Context, None], limit: int = 50, offset: int = 0) -> SweepPageType:
        return await sweep_page(info.context.sweeps, info.context.principal, _limit(info, limit), offset)

    @strawberry.field(
        description="one sweep of yours (an error coded sweep_not_found if missing or not yours)"
    )
    async def sweep(self, info: Info[Context, None], sweep_id: str) -> SweepType | None:
        try:
            return await one_sweep(info.context.sweeps, info.context.principal, sweep_id)
        except ApiError as error:
            raise _graphql_error(error, argument="sweepId") from None

    @strawberry.field(description="a page of a sweep's trials; sort `id` or a metric, `-sharpe` descending")
    async def sweep_trials(
        self,
        info: Info[Context, None],
        sweep_id: str,
        sort: str = "id",
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> TrialPageType:
        principal, size = info.context.principal, _limit(info, limit)
        try:
            return await trial_page(info.context.sweeps, principal, sweep_id, sort, state, size, offset)
        except ApiError as error:
            raise _graphql_error(error, argument=error.field or "sweepId") from None

    @strawberry.field(description="your walk-forwards, newest first (admins: everyone's)")
    async def walkforwards(
        self, info: Info[Context, None], limit: int = 50, offset: int = 0
    ) -> WalkForwardPageType:
        context = info.context
        return await walkforward_page(context.walkforwards, context.principal, _limit(info, limit), offset)

    @strawberry.field(
        description="one walk-forward of yours with its folds (an error coded walkforward_not_found if "
        "missing or not yours)"
    )
    async def walkforward(self, info: Info[Context, None], walkforward_id: str) -> WalkForwardType | None:
        try:
            return await one_walkforward(info.context.walkforwards, info.context.principal, walkforward_id)
        except ApiError as error:
            raise _graphql_error(error, argument="walkforwardId") from None


# Cost bounds, checked before anything resolves: one request cannot fan out into many result decodes.
MAX_DEPTH, MAX_ALIASES, MAX_TOKENS = 6, 10, 2_000
schema = strawberry.Schema(
    query=Query,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
    ],
)


def graphql_router() -> GraphQLRouter[Context, None]:
    """The /graphql route (POST and GET queries; no mutations, no subscriptions)."""
    return GraphQLRouter(
        schema,
        path="/graphql",
        graphql_ide=None,  # a browser's GET /graphql gets the dashboard build's GraphiQL (routers/web.py)
        context_getter=get_context,
        tags=["graphql"],
        include_in_schema=False,
    )


__all__ = ["graphql_router", "schema"]
