"""`python -m backtest_gateway`: serve the gateway with uvicorn on GATEWAY_HOST:GATEWAY_PORT."""

from __future__ import annotations

import logging

import uvicorn

from backtest_gateway.main import create_app
from backtest_gateway.settings import GatewaySettings


def main() -> None:
    """Read settings from the environment and serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = GatewaySettings()  # jwt_secret comes from GATEWAY_JWT_SECRET
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
