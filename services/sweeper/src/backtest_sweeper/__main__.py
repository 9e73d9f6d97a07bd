"""Run the sweeper: `python -m backtest_sweeper` (settings from SWEEPER_* variables)."""

from __future__ import annotations

import asyncio
import logging

from backtest_observability import configure_logging

from backtest_sweeper.main import SERVICE_NAME, create_app
from backtest_sweeper.settings import Settings


def main() -> None:
    """Start the sweeper and run until interrupted."""
    configure_logging(SERVICE_NAME, logging.INFO)  # JSON lines with the trace id
    asyncio.run(create_app(Settings()).run())


if __name__ == "__main__":
    main()
