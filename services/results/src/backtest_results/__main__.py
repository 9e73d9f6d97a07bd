"""Run the results writer: `python -m backtest_results` (settings from RESULTS_* variables)."""

from __future__ import annotations

import asyncio
import logging

from backtest_results.main import create_app
from backtest_results.settings import Settings


def main() -> None:
    """Start the results writer and run until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(create_app(Settings()).run())


if __name__ == "__main__":
    main()
