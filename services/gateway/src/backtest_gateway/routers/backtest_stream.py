"""WS /backtest/stream/{task_id}: every event of a backtest in order, then the terminal one, then close."""

from __future__ import annotations

import re
from contextlib import aclosing

import anyio
from backtest_core.contracts import TERMINAL_STATES
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from backtest_gateway.auth import bearer_token, decode_token
from backtest_gateway.errors import ApiError, TaskNotFound
from backtest_gateway.ports import EventFeed, TaskRecord, TaskStore
from backtest_gateway.routers.backtests import PREFIX, TASK_ID_PATTERN, visible_task
from backtest_gateway.schemas import BacktestStatus
from backtest_gateway.settings import GatewaySettings
from backtest_gateway.stored_seq import StoredSeqWaiter

router = APIRouter(prefix=PREFIX, tags=["backtests"])

# WebSocket close codes: 4000 + the HTTP status the REST API would answer; 1000 after the terminal event.
CLOSE_DONE = 1000


def close_code(error: ApiError) -> int:
    """The WebSocket close code for an API error (4000 + its HTTP status)."""
    return 4000 + error.status_code


async def _authorize(websocket: WebSocket, task_id: str, token: str | None) -> TaskRecord:
    settings: GatewaySettings = websocket.app.state.settings
    store: TaskStore = websocket.app.state.store
    principal = decode_token(token or bearer_token(websocket.headers.get("authorization")), settings)
    if not re.fullmatch(TASK_ID_PATTERN, task_id):
        raise TaskNotFound(task_id)
    return await visible_task(store, principal, task_id)


@router.websocket("/stream/{task_id}")
async def stream_backtest(websocket: WebSocket, task_id: str, token: str | None = None) -> None:
    """Send each event of the task as one JSON text frame, from the first, and close after the terminal one.

    A frame is sent once the task store shows its event (read-your-writes): after a frame, GET status
    shows that seq or later, and after the SUCCESS frame GET results has the result.

    Authenticate with `?token=<jwt>` or `Authorization: Bearer <jwt>`. On an error the server sends one
    `{"error": {...}}` frame and closes with 4000 + the HTTP status (4401, 4404). For a finished task
    whose events have expired from the stream, one frame with the stored status is sent instead.
    """
    await websocket.accept()
    try:
        record = await _authorize(websocket, task_id, token)
    except ApiError as error:
        await websocket.send_json(error.body())
        await websocket.close(code=close_code(error), reason=error.code)
        return
    feed: EventFeed = websocket.app.state.feed
    if record.state in TERMINAL_STATES and not await feed.has_events(task_id):
        # The events aged out of the stream: send the stored final status instead of waiting forever.
        await websocket.send_text(BacktestStatus.from_record(record).model_dump_json())
        await websocket.close(code=CLOSE_DONE)
        return
    client_left = False
    settings: GatewaySettings = websocket.app.state.settings
    stored = StoredSeqWaiter(websocket.app.state.store, task_id, timeout_s=settings.stream_store_wait_s)

    async def relay(cancel: anyio.CancelScope) -> None:
        async with aclosing(feed.events(task_id)) as events:
            async for event in events:
                await stored.wait_for(event.seq)  # REST reads at least this event once the frame is seen
                await websocket.send_text(event.model_dump_json())
                if event.state in TERMINAL_STATES:
                    break
        cancel.cancel()

    async def watch_disconnect(cancel: anyio.CancelScope) -> None:
        nonlocal client_left
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say; frames they send are ignored
        client_left = True
        cancel.cancel()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(relay, group.cancel_scope)
            group.start_soon(watch_disconnect, group.cancel_scope)
    except* WebSocketDisconnect:
        client_left = True
    if not client_left:
        await websocket.close(code=CLOSE_DONE)
