"""`python -m backtest_gateway`: serve the gateway with uvicorn on GATEWAY_HOST:GATEWAY_PORT."""

from __future__ import annotations

import logging
import sys

import uvicorn
from backtest_observability import configure_logging
from pydantic import ValidationError

from backtest_gateway.main import SERVICE_NAME, create_app
from backtest_gateway.settings import GatewaySettings


def main() -> None:
    """Read settings from the environment and serve until interrupted."""
    configure_logging(SERVICE_NAME, logging.INFO)  # JSON lines with the trace id, uvicorn's too
    sys.setswitchinterval(0.001)  # a worker thread serialising a result yields the GIL to the loop sooner
    try:
        settings = GatewaySettings()  # jwt_secret from GATEWAY_JWT_SECRET
    except ValidationError as error:
        problems = "; ".join(
            f"GATEWAY_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        sys.exit(f"backtest-gateway: invalid settings: {problems}")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        # No permessage-deflate: compressing a SUCCESS frame (a result page, ~0.5 MB) runs on the event
        # loop and stalled every other user (13% of the loaded gateway's samples); bytes are cheaper.
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
