"""WS /sweep/stream/{sweep_id}: a sweep's progress and each trial as it ends, until the sweep finishes.

The frames follow the store (what GET /sweep/{id} and /trials answer), read every `sweep_stream_poll_s`:
`{"type": "status", "sweep": <GET /sweep/{id}>}` whenever the sweep changed, and `{"type": "trial",
"trial": <a row of /trials>}` once for every trial that ended (cancelled ones included), in the order they
ended. The first frames are the status and every trial ended so far; the last is the status with
`finished_at` set, then the server closes with 1000.
"""

from __future__ import annotations

import json
from datetime import datetime

import anyio
from backtest_research.sweep_records import SweepRecord
from fastapi import APIRouter, WebSocket

from backtest_gateway.errors import ApiError, SweepNotFound
from backtest_gateway.ports import SweepStore
from backtest_gateway.routers.backtest_stream import accept, close_code, serve, stream_principal
from backtest_gateway.routers.sweeps import PREFIX, visible_sweep
from backtest_gateway.schemas_sweep import SweepStatus
from backtest_gateway.settings import GatewaySettings
from backtest_gateway.stream_slots import StreamSlots

router = APIRouter(prefix=PREFIX, tags=["sweeps"])
SWEEP_ID_LENGTH = 32


@router.websocket("/stream/{sweep_id}")
async def stream_sweep(websocket: WebSocket, sweep_id: str, token: str | None = None) -> None:
    """Send the sweep's status on every change and each trial as it ends; close after it finished.

    Authenticate as for WS /backtest/stream (header, `bearer, <jwt>` subprotocols or `?token=`); a stream
    spends one read token and holds one of the user's `streams_per_user_max` slots. A missing or foreign
    sweep: one `{"error": {...}}` frame, then close 4404.
    """
    await accept(websocket)
    slots: StreamSlots = websocket.app.state.stream_slots
    sweeps: SweepStore = websocket.app.state.sweeps
    try:
        principal = await stream_principal(websocket, token)
        if len(sweep_id) != SWEEP_ID_LENGTH or not all(c in "0123456789abcdef" for c in sweep_id):
            raise SweepNotFound(sweep_id)
        record = await visible_sweep(sweeps, principal, sweep_id)
        async with slots.hold(principal.user_id):
            await _follow(websocket, sweeps, record)
    except ApiError as error:
        await websocket.send_json(error.body())
        await websocket.close(code=close_code(error), reason=error.code)


async def _follow(websocket: WebSocket, sweeps: SweepStore, record: SweepRecord) -> None:
    settings: GatewaySettings = websocket.app.state.settings

    async def relay() -> None:
        shown: datetime | None = None  # the sweep's updated_at last sent
        since: datetime | None = None  # trials changed at or after this are read again
        sent: set[int] = set()
        current: SweepRecord | None = record
        while current is not None:
            for trial in await sweeps.ended_since(current.sweep_id, since):  # read after the sweep
                since = trial.updated_at
                if trial.id not in sent:
                    sent.add(trial.id)
                    await websocket.send_text(json.dumps({"type": "trial", "trial": trial.as_json()}))
            if current.updated_at != shown or current.finished_at is not None:
                status = SweepStatus.from_record(current).model_dump(mode="json")
                await websocket.send_text(json.dumps({"type": "status", "sweep": status}))
                shown = current.updated_at
            if current.finished_at is not None:
                return
            await anyio.sleep(settings.sweep_stream_poll_s)
            current = await sweeps.get(current.sweep_id)

    await serve(websocket, relay)
