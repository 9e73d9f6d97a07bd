"""GET /health: liveness and readiness for process supervisors and `scripts/up` (no authentication)."""

from __future__ import annotations

import backtest_core
from fastapi import APIRouter, Request, Response, status
from faststream.nats import NatsBroker
from pydantic import BaseModel, ConfigDict

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """`status` is "ok" when the gateway can publish commands (NATS connected), else "degraded"."""

    model_config = ConfigDict(frozen=True)

    status: str
    nats_connected: bool
    version: str


@router.get("/health")
async def health(request: Request, response: Response) -> Health:
    """Report whether the gateway is ready; 503 while NATS is disconnected."""
    broker: NatsBroker = request.app.state.broker
    connected = bool(broker.config.connection_state) and broker.connection.is_connected
    if not connected:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if connected else "degraded", nats_connected=connected, version=backtest_core.__version__
    )
