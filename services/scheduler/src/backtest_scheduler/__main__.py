"""Run the scheduler: `python -m backtest_scheduler` (settings from SCHEDULER_* variables)."""

from __future__ import annotations

import asyncio
import logging

from backtest_scheduler.main import create_app
from backtest_scheduler.settings import Settings


def main() -> None:
    """Start the scheduler and run until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(create_app(Settings()).run())


if __name__ == "__main__":
    main()
