"""`GET /backtest/{task_id}/report.html`: the backtest's self-contained HTML report (its owner only)."""

from __future__ import annotations

import asyncio

from backtest_core.contracts import TaskState
from backtest_core.io.report_html import render_report
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from backtest_gateway.deps import HeavyTurnsDep, ReaderDep, ResultCacheDep, StoreDep
from backtest_gateway.errors import ErrorBody, NotFinished, TaskNotFound
from backtest_gateway.routers.backtests import PREFIX, TaskIdPath, _load_result

router = APIRouter(prefix=PREFIX, tags=["backtests"])


@router.get(
    "/{task_id}/report.html",
    response_class=HTMLResponse,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def get_backtest_report(
    task_id: TaskIdPath, principal: ReaderDep, store: StoreDep, cache: ResultCacheDep, turns: HeavyTurnsDep
) -> HTMLResponse:
    """Return one HTML file (inline styles and SVG charts, nothing loaded from the network) of a successful
    backtest: equity, drawdown, metrics, per-symbol table, trades, configuration. Only its owner may."""
    record = await store.get_without_result(task_id)
    if record is None or record.user_id != principal.user_id:
        raise TaskNotFound(task_id)
    if record.state is not TaskState.SUCCESS:
        raise NotFinished(f"backtest {task_id} has no result to report: state is {record.state.value}")
    async with turns.turn(principal.user_id):
        result = await cache.get((task_id, record.seq), lambda: _load_result(store, task_id))
        if result is None:
            raise NotFinished(f"backtest {task_id} has no result to report: its result is not stored")
        page = await asyncio.to_thread(render_report, result, title=f"Backtest {task_id}")
    return HTMLResponse(page, headers={"Content-Disposition": f'inline; filename="backtest-{task_id}.html"'})
