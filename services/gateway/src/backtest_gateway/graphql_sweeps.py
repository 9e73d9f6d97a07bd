"""GraphQL types and resolvers of sweeps: the same reads as GET /sweep/list, /sweep/{id} and /trials.

A foreign or missing sweep resolves to null with an error coded `sweep_not_found` (as REST's 404); a bad
`sort` is `invalid_query` naming the argument.
"""

# mypy: disable-error-code="untyped-decorator"
from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from backtest_research.sweep_records import SweepRecord, TrialRecord, TrialStatus
from strawberry.scalars import JSON

from backtest_gateway.auth import Principal
from backtest_gateway.errors import InvalidQuery
from backtest_gateway.ports import SweepStore
from backtest_gateway.routers.sweeps import trial_order, visible_sweep


@strawberry.type(name="Trial")
class TrialType:
    id: int
    state: str
    params: JSON
    metrics: JSON | None
    reason: str | None
    task_id: str | None
    cached: bool

    @classmethod
    def of(cls, t: TrialRecord) -> TrialType:
        return cls(
            id=t.id,
            state=t.state.value,
            params=cast(JSON, t.params),
            metrics=cast(JSON, t.metrics),
            reason=t.reason,
            task_id=t.task_id,
            cached=t.cached,
        )


@strawberry.type
class TrialPageType:
    items: list[TrialType]
    total: int


@strawberry.type(name="Sweep")
class SweepType:
    sweep_id: str
    user_id: str
    state: str
    counts: JSON
    best: JSON | None
    overfitting: JSON | None
    search: JSON
    failure: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, r: SweepRecord) -> SweepType:
        return cls(
            sweep_id=r.sweep_id,
            user_id=r.user_id,
            state=r.state.value,
            counts=cast(JSON, r.counts.model_dump()),
            best=cast(JSON, r.best),
            overfitting=cast(JSON, r.overfitting),
            search=cast(JSON, r.search.model_dump(mode="json")),
            failure=r.failure,
            created_at=r.created_at,
            finished_at=r.finished_at,
        )


@strawberry.type
class SweepPageType:
    items: list[SweepType]
    total: int


async def sweep_page(sweeps: SweepStore, principal: Principal, limit: int, offset: int) -> SweepPageType:
    """The caller's sweeps, newest first (an admin sees everyone's)."""
    owner = None if principal.is_admin else principal.user_id
    records, total = await sweeps.page(owner, limit, max(0, offset))
    return SweepPageType(items=[SweepType.of(r) for r in records], total=total)


async def one_sweep(sweeps: SweepStore, principal: Principal, sweep_id: str) -> SweepType:
    """One sweep the caller may see (SweepNotFound otherwise, a malformed id included)."""
    return SweepType.of(await visible_sweep(sweeps, principal, sweep_id))


async def trial_page(
    sweeps: SweepStore,
    principal: Principal,
    sweep_id: str,
    sort: str,
    state: str | None,
    limit: int,
    offset: int,
) -> TrialPageType:
    """A page of a visible sweep's trials, ordered as GET /sweep/{id}/trials orders them."""
    await visible_sweep(sweeps, principal, sweep_id)
    if state is not None and state not in {s.value for s in TrialStatus}:
        raise InvalidQuery(
            f"state: one of {', '.join(s.value for s in TrialStatus)}, was {state!r}", field="state"
        )
    wanted = TrialStatus(state) if state is not None else None
    trials, total = await sweeps.trials(sweep_id, trial_order(sort), limit, max(0, offset), wanted)
    return TrialPageType(items=[TrialType.of(t) for t in trials], total=total)
