"""GraphQL types and resolvers of walk-forwards: the reads of GET /walkforward/list, /walkforward/{id} and
/walkforward/{id}/result (without the stitched equity curve: REST's result has it).

A foreign or missing walk-forward resolves to null with an error coded `walkforward_not_found` (as REST's
404). A fold's fields are those of the result's folds, read from the fold as far as it has come.
"""

# mypy: disable-error-code="untyped-decorator"
from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from backtest_research.walkforward_records import FoldRecord, WalkForwardRecord
from strawberry.scalars import JSON

from backtest_gateway.auth import Principal
from backtest_gateway.routers.walkforward import visible_walkforward
from backtest_gateway.schemas_walkforward import WalkForwardStatus, fold_outcome
from backtest_gateway.walkforward_ports import WalkForwardStore


@strawberry.type(name="TimeWindow")
class WindowType:
    start: str = strawberry.field(description="ISO-8601 UTC, the first bar's open time")
    end: str = strawberry.field(description="ISO-8601 UTC, exclusive")


@strawberry.type(name="WalkForwardFold")
class FoldType:
    fold: int
    state: str
    sweep_id: str
    train: WindowType
    test: WindowType
    params: JSON | None = strawberry.field(description="the best trial's of the train window")
    in_sample: JSON | None = strawberry.field(description="the best trial's metrics")
    out_of_sample: JSON | None = strawberry.field(description="the test window's metrics, once DONE")
    trades: int
    failure: str | None

    @classmethod
    def of(cls, fold: FoldRecord) -> FoldType:
        outcome = fold_outcome(fold)
        return cls(
            fold=fold.number,
            state=fold.state.value,
            sweep_id=fold.sweep_id,
            train=WindowType(**outcome["train"]),
            test=WindowType(**outcome["test"]),
            params=cast(JSON, outcome["params"]),
            in_sample=cast(JSON, outcome["in_sample"]),
            out_of_sample=cast(JSON, outcome["out_of_sample"]),
            trades=outcome["trades"],
            failure=fold.failure,
        )


@strawberry.type(name="WalkForward")
class WalkForwardType:
    walkforward_id: str
    user_id: str
    state: str
    counts: JSON = strawberry.field(description="folds: total and done (ended)")
    folds: list[FoldType]
    oos_metrics: JSON | None = strawberry.field(description="the stitched out-of-sample curve's, at SUCCESS")
    efficiency: float | None = strawberry.field(
        description="annualised OOS return / mean annualised IS return, at SUCCESS (null when IS <= 0)"
    )
    search: JSON
    options: JSON
    strategy: str
    symbols: list[str]
    interval: str
    failure: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, r: WalkForwardRecord) -> WalkForwardType:
        status = WalkForwardStatus.from_record(r)
        result = r.result or {}
        return cls(
            walkforward_id=r.walkforward_id,
            user_id=r.user_id,
            state=r.state.value,
            counts=cast(JSON, status.counts),
            folds=[FoldType.of(f) for f in r.folds],
            oos_metrics=cast(JSON, result.get("oos", {}).get("metrics")),
            efficiency=result.get("efficiency"),
            search=cast(JSON, status.search.model_dump(mode="json")),
            options=cast(JSON, status.options.model_dump(mode="json")),
            strategy=status.strategy,
            symbols=status.symbols,
            interval=status.interval,
            failure=r.failure,
            created_at=r.created_at,
            finished_at=r.finished_at,
        )


@strawberry.type
class WalkForwardPageType:
    items: list[WalkForwardType]
    total: int


async def walkforward_page(
    walkforwards: WalkForwardStore, principal: Principal, limit: int, offset: int
) -> WalkForwardPageType:
    """The caller's walk-forwards, newest first (an admin sees everyone's)."""
    owner = None if principal.is_admin else principal.user_id
    records, total = await walkforwards.page(owner, limit, max(0, offset))
    return WalkForwardPageType(items=[WalkForwardType.of(r) for r in records], total=total)


async def one_walkforward(
    walkforwards: WalkForwardStore, principal: Principal, walkforward_id: str
) -> WalkForwardType:
    """One walk-forward the caller may see (WalkForwardNotFound otherwise, a malformed id included)."""
    return WalkForwardType.of(await visible_walkforward(walkforwards, principal, walkforward_id))
