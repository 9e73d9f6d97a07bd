"""`python -m backtest_gateway`: serve the gateway with uvicorn on GATEWAY_HOST:GATEWAY_PORT."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from backtest_gateway.main import create_app
from backtest_gateway.settings import GatewaySettings


def main() -> None:
    """Read settings from the environment and serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = GatewaySettings()  # jwt_secret from GATEWAY_JWT_SECRET
    except ValidationError as error:
        problems = "; ".join(
            f"GATEWAY_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        sys.exit(f"backtest-gateway: invalid settings: {problems}")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
