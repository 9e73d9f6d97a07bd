"""`python -m backtest_runner`: run one runner process until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from backtest_observability import configure_logging

from backtest_runner.main import SERVICE_NAME, create_app
from backtest_runner.settings import RunnerSettings


async def _serve(settings: RunnerSettings) -> None:
    app = create_app(settings)
    service = await app.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    fetching = asyncio.create_task(service.run())
    logging.getLogger("backtest_runner").info(
        "runner %s started with %d slot(s)", settings.runner_id, settings.slots
    )
    await stop.wait()
    await app.stop()
    await fetching


def main() -> None:
    """Run the runner with settings from the environment."""
    configure_logging(SERVICE_NAME, logging.INFO)  # JSON lines with the trace id
    asyncio.run(_serve(RunnerSettings()))


if __name__ == "__main__":
    main()
