"""What WS /sweep/stream and WS /walkforward/stream share: the caller's own resource found, one stream
slot held while it is followed, and its frames read from the store every `sweep_stream_poll_s` until it
has finished.

A stream's frames are what REST answers at the moment they are read (the sweeper stores first and
publishes after, so the store is never behind its events). An error is one `{"error": {...}}` frame and
the close 4000 + REST's HTTP status (4401, 4404, 4429); the end is the close 1000.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from fastapi import WebSocket

from backtest_gateway.auth import Principal
from backtest_gateway.errors import ApiError
from backtest_gateway.routers.backtest_stream import accept, close_code, serve, stream_principal
from backtest_gateway.settings import GatewaySettings
from backtest_gateway.stream_slots import StreamSlots

Record = TypeVar("Record")
Frame = dict[str, Any]
_STORED_ID = re.compile(r"[0-9a-f]{32}")


def is_stored_id(value: str) -> bool:
    """Whether `value` can be a sweep's or walk-forward's id (32 lowercase hex characters)."""
    return _STORED_ID.fullmatch(value) is not None


async def stream_owned(
    websocket: WebSocket,
    token: str | None,
    find: Callable[[Principal], Awaitable[Record]],
    follow: Callable[[WebSocket, Record], Awaitable[None]],
) -> None:
    """Accept, authenticate (one read token), `find` the caller's record (an ApiError when it is missing
    or foreign) and `follow` it holding one of the user's stream slots; an ApiError on the way is sent
    as one error frame, then the close 4000 + its status."""
    await accept(websocket)
    slots: StreamSlots = websocket.app.state.stream_slots
    try:
        principal = await stream_principal(websocket, token)
        record = await find(principal)
        async with slots.hold(principal.user_id):
            await follow(websocket, record)
    except ApiError as error:
        await websocket.send_json(error.body())
        await websocket.close(code=close_code(error), reason=error.code)


async def poll_store(
    websocket: WebSocket,
    first: Record,
    reread: Callable[[Record], Awaitable[Record | None]],
    frames: Callable[[Record], Awaitable[list[Frame]]],
    finished: Callable[[Record], bool],
) -> None:
    """Send the `frames` of the record as read now, every `sweep_stream_poll_s` until it has `finished`
    (the frames of that last read are sent too), then close 1000; stop when the client leaves.

    `frames` keeps what it has sent: it returns only what is new since its previous call.
    """
    settings: GatewaySettings = websocket.app.state.settings

    async def relay() -> None:
        current: Record | None = first
        while current is not None:
            for frame in await frames(current):
                await websocket.send_text(json.dumps(frame))
            if finished(current):
                return
            await anyio.sleep(settings.sweep_stream_poll_s)
            current = await reread(current)

    await serve(websocket, relay)
