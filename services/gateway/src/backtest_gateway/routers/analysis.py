"""Analysis of finished backtests: combine several into a portfolio, rank them by any metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import numpy as np
from backtest_core.contracts import TERMINAL_STATES, TaskState
from backtest_core.model.config import BuiltinStrategy, ModuleStrategy
from backtest_core.model.results import Metrics
from fastapi import APIRouter, Body, Query

from backtest_gateway.deps import ReaderDep, SettingsDep, StoreDep
from backtest_gateway.errors import ErrorBody, NoResult, NotFinished
from backtest_gateway.portfolio import Curve, combine, statistics
from backtest_gateway.ports import MetricQuery, RankedTask
from backtest_gateway.routers.backtests import visible_task
from backtest_gateway.schemas_analysis import (
    CombinedPoint,
    PerformancePage,
    PortfolioAnalysis,
    PortfolioRequest,
    RankedBacktest,
)

router = APIRouter(
    prefix="/analysis",
    tags=["analysis"],
    responses={
        401: {"model": ErrorBody, "description": "missing, invalid or expired token"},
        422: {"model": ErrorBody, "description": "invalid request; `field` names the offending field"},
        429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
    },
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RankMetric = StrEnum(  # type: ignore[misc]
    "RankMetric",
    {
        name: name
        for name, field in Metrics.model_fields.items()
        if field.annotation in (float, int, float | None)
    },
)
DEFAULT_METRIC = RankMetric("sharpe")
PORTFOLIO_EXAMPLE = {
    "items": [
        {"task_id": "0123456789abcdef0123456789abcdef", "weight": 0.6},
        {"task_id": "fedcba9876543210fedcba9876543210", "weight": 0.4},
    ],
    "capital": 1_000_000,
}


def _ns(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _curve(result: dict[str, object], task_id: str) -> Curve:
    points = result.get("equity_curve")
    if not isinstance(points, list) or not points:
        raise NoResult(f"backtest {task_id} has an empty equity curve", field="items")
    times = np.array([_ns(_datetime(p["time"])) for p in points], dtype=np.int64)
    equity = np.array([float(p["equity"]) for p in points])
    if equity[0] <= 0:
        raise NoResult(f"backtest {task_id} starts with equity {equity[0]}, must be > 0", field="items")
    return Curve(times, equity)


def _datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value))


@router.post("/portfolio", responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
async def analyse_portfolio(
    request: Annotated[
        PortfolioRequest, Body(openapi_examples={"two": {"summary": "60/40", "value": PORTFOLIO_EXAMPLE}})
    ],
    principal: ReaderDep,
    store: StoreDep,
) -> PortfolioAnalysis:
    """Combine finished backtests of yours by weight: equity curve, correlation of returns, metrics."""
    curves = []
    for item in request.items:
        record = await visible_task(store, principal, item.task_id)
        if record.state is not TaskState.SUCCESS or record.result is None:
            if record.state in TERMINAL_STATES:
                raise NoResult(
                    f"backtest {item.task_id} ended {record.state.value} without a result", field="items"
                )
            raise NotFinished(
                f"backtest {item.task_id} has no result yet: state is {record.state.value}", field="items"
            )
        curves.append(_curve(record.result, item.task_id))
    weights = [item.weight for item in request.items]
    combined = combine(curves, weights, request.capital)
    total = sum(weights)
    return PortfolioAnalysis(
        task_ids=[item.task_id for item in request.items],
        weights=[w / total for w in weights],
        requested_weights=weights,
        equity_curve=[
            CombinedPoint(time=EPOCH + timedelta(microseconds=int(t) // 1000), equity=float(v))
            for t, v in zip(combined.times, combined.value, strict=True)
        ],
        correlation=combined.correlation,
        correlation_periods=combined.overlap,
        metrics=statistics(combined.value, combined.periods_per_year),
    )


def _label(task: RankedTask) -> str:
    if task.strategy_ref is not None:
        return f"user:{task.strategy_ref.name}@v{task.strategy_ref.version}"
    spec = task.config.strategy if task.config else None
    if isinstance(spec, str):
        return spec
    if isinstance(spec, BuiltinStrategy):
        return str(spec.builtin)
    if isinstance(spec, ModuleStrategy):
        return f"{spec.module}:{spec.class_name}"
    return "source"


@router.get("/performance")
async def rank_performance(
    principal: ReaderDep,
    store: StoreDep,
    settings: SettingsDep,
    metric: RankMetric = DEFAULT_METRIC,
    descending: bool = True,
    min_value: Annotated[float | None, Query(description="keep backtests with metric >= this")] = None,
    max_value: Annotated[float | None, Query(description="keep backtests with metric <= this")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    user_id: Annotated[str | None, Query(max_length=200, description="admins only: one user's")] = None,
) -> PerformancePage:
    """Rank your finished backtests by any metric (those where it is undefined are left out)."""
    limit = min(limit, settings.page_size_max)
    owner = user_id if principal.is_admin else principal.user_id
    query = MetricQuery(
        metric=str(metric.value),
        descending=descending,
        min_value=min_value,
        max_value=max_value,
        limit=limit,
        offset=offset,
    )
    page = await store.ranked(owner, query)
    items = [
        RankedBacktest(
            rank=offset + i + 1,
            task_id=task.task_id,
            user_id=task.user_id,
            strategy=_label(task),
            symbols=task.config.symbols if task.config else [],
            interval=task.config.interval if task.config else None,
            value=float(task.metrics[query.metric]),
            metrics=task.metrics,
            strategy_ref=task.strategy_ref,
            created_at=task.created_at,
        )
        for i, task in enumerate(page.items)
    ]
    following = offset + len(items)
    return PerformancePage(
        metric=query.metric,
        descending=descending,
        items=items,
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=following if following < page.total else None,
    )
