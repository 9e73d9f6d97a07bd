"""WS /backtest/stream/{task_id}: every event of a backtest in order, then the terminal one, then close."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextlib import aclosing

import anyio
from backtest_core.contracts import TERMINAL_STATES, BacktestSucceeded, TaskState
from backtest_core.model.results import backtest_result
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from backtest_gateway.auth import Principal, bearer_token, decode_token
from backtest_gateway.errors import ApiError, TaskNotFound
from backtest_gateway.heavy_turns import HeavyTurns
from backtest_gateway.ports import EventFeed, FeedEvent, SucceededHeader, TaskRecord, TaskStore
from backtest_gateway.ratelimit import Bucket, RateLimiter
from backtest_gateway.result_cache import ResultCache, stored_result
from backtest_gateway.result_pages import PageWindow, decode_event_result
from backtest_gateway.routers.backtests import PREFIX, TASK_ID_PATTERN, visible_task
from backtest_gateway.schemas import BacktestStatus
from backtest_gateway.settings import GatewaySettings
from backtest_gateway.stored_seq import StoredSeqWaiter
from backtest_gateway.stream_slots import StreamSlots

router = APIRouter(prefix=PREFIX, tags=["backtests"])

# WebSocket close codes: 4000 + the HTTP status the REST API would answer; 1000 after the terminal event.
CLOSE_DONE = 1000
BEARER_SUBPROTOCOL = "bearer"


def close_code(error: ApiError) -> int:
    """The WebSocket close code for an API error (4000 + its HTTP status)."""
    return 4000 + error.status_code


def _subprotocol_token(websocket: WebSocket) -> str | None:
    """The token offered as `Sec-WebSocket-Protocol: bearer, <jwt>` (browsers cannot set headers)."""
    offered: list[str] = websocket.scope.get("subprotocols", [])
    if BEARER_SUBPROTOCOL in offered[:-1]:
        return offered[offered.index(BEARER_SUBPROTOCOL) + 1]
    return None


async def stream_principal(websocket: WebSocket, token: str | None) -> Principal:
    """The caller of a WebSocket (token from `?token=`, the bearer subprotocol or the header); one read."""
    settings: GatewaySettings = websocket.app.state.settings
    token = token or _subprotocol_token(websocket) or bearer_token(websocket.headers.get("authorization"))
    principal = decode_token(token, settings)
    limiter: RateLimiter = websocket.app.state.limiter
    await limiter.take(principal.user_id, Bucket.READ)  # a stream costs a read, like GET status
    return principal


async def accept(websocket: WebSocket) -> None:
    """Accept a WebSocket, selecting the bearer subprotocol when the client offered it."""
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=BEARER_SUBPROTOCOL if BEARER_SUBPROTOCOL in offered else None)


async def _authorize(websocket: WebSocket, task_id: str, token: str | None) -> tuple[Principal, TaskRecord]:
    store: TaskStore = websocket.app.state.store
    principal = await stream_principal(websocket, token)
    if not re.fullmatch(TASK_ID_PATTERN, task_id):
        raise TaskNotFound(task_id)
    return principal, await visible_task(store, principal, task_id, with_result=False)


async def frame_text(event: FeedEvent, store: TaskStore, cache: ResultCache) -> str:
    """Return an event's frame: its JSON; a SUCCESS result cut to its first page (serialised off the loop).

    A SUCCESS header's result comes from the decoded-result cache (one decode of the stored result for
    every stream and fetch), or from the whole event (read from the stream) when the store does not hold
    it at that seq.
    """
    if isinstance(event, SucceededHeader):
        key = (event.task_id, event.seq)
        result = await cache.get(key, lambda: stored_result(store, event.task_id, event.seq))
        if result is None:
            result = await decode_event_result(await event.whole_event())
        envelope = event.model_dump(mode="json")
        return (await cache.page(key, envelope, result, PageWindow())).decode()
    if isinstance(event, BacktestSucceeded):
        envelope = event.model_dump(mode="json", exclude={"result"})
        result = backtest_result(event.result)
        return (await cache.page((event.task_id, event.seq), envelope, result, PageWindow())).decode()
    text: str = event.model_dump_json()
    return text


@router.websocket("/stream/{task_id}")
async def stream_backtest(websocket: WebSocket, task_id: str, token: str | None = None) -> None:
    """Send each event of the task as one JSON text frame, from the first, and close after the terminal one.

    A frame is sent once the task store shows its event (read-your-writes): after a frame, GET status
    shows that seq or later, and after the SUCCESS frame GET results has the result.

    Authenticate with `Authorization: Bearer <jwt>`, the subprotocols `bearer, <jwt>` (the server selects
    `bearer`) or `?token=<jwt>` (kept for old clients; redacted in logs). A stream spends one read token
    and holds one of the user's `streams_per_user_max` slots until it closes. The SUCCESS frame carries
    the result's first page of trades and equity points and `page` (as GET results). On an error the server
    sends one `{"error": {...}}` frame and closes with 4000 + the HTTP status (4401, 4404, 4429). For a
    finished task whose events have expired from the stream, one frame with the stored status is sent.
    """
    await accept(websocket)
    slots: StreamSlots = websocket.app.state.stream_slots
    try:
        principal, record = await _authorize(websocket, task_id, token)
        async with slots.hold(principal.user_id):
            await _follow(websocket, principal.user_id, task_id, record)
    except ApiError as error:
        await websocket.send_json(error.body())
        await websocket.close(code=close_code(error), reason=error.code)


async def _follow(websocket: WebSocket, user_id: str, task_id: str, record: TaskRecord) -> None:
    feed: EventFeed = websocket.app.state.feed
    store: TaskStore = websocket.app.state.store
    cache: ResultCache = websocket.app.state.result_cache
    turns: HeavyTurns = websocket.app.state.heavy_turns
    if record.state in TERMINAL_STATES and not await feed.has_events(task_id):
        # The events aged out of the stream: send the stored final status instead of waiting forever.
        await websocket.send_text(BacktestStatus.from_record(record).model_dump_json())
        await websocket.close(code=CLOSE_DONE)
        return
    settings: GatewaySettings = websocket.app.state.settings
    stored = StoredSeqWaiter(websocket.app.state.store, task_id, timeout_s=settings.stream_store_wait_s)

    async def relay() -> None:
        async with aclosing(feed.events(task_id)) as events:
            async for event in events:
                await stored.wait_for(event.seq)  # REST reads at least this event once the frame is seen
                if event.state is TaskState.SUCCESS:
                    async with turns.turn(user_id):  # a result page: one of the user's heavy answers
                        await websocket.send_text(await frame_text(event, store, cache))
                else:
                    await websocket.send_text(await frame_text(event, store, cache))
                if event.state in TERMINAL_STATES:
                    break

    await serve(websocket, relay)


async def serve(websocket: WebSocket, relay: Callable[[], Awaitable[None]]) -> None:
    """Run `relay` (which sends the frames) until it returns or the client leaves; then close with 1000
    unless the client left."""
    client_left = False

    async def send(cancel: anyio.CancelScope) -> None:
        await relay()
        cancel.cancel()

    async def watch_disconnect(cancel: anyio.CancelScope) -> None:
        nonlocal client_left
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say; frames they send are ignored
        client_left = True
        cancel.cancel()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(send, group.cancel_scope)
            group.start_soon(watch_disconnect, group.cancel_scope)
    except* WebSocketDisconnect:
        client_left = True
    if not client_left:
        await websocket.close(code=CLOSE_DONE)
