"""A strategy uploaded as source that raises: the user's traceback shows the line of their code."""

from __future__ import annotations

import numpy as np
import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.errors import StrategyRuntimeError
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig

SOURCE = """from backtest_core.strategy import BaseStrategy


class Raises(BaseStrategy):
    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        ratio = float(df.close[-1]) / 0.0
        return ratio
"""


def _candles(n: int = 5) -> Candles:
    day_ns = 86_400 * 10**9
    close = np.linspace(100.0, 104.0, n)
    return Candles(
        symbol="BTCUSD",
        interval="1d",
        open_time=np.arange(n, dtype=np.int64) * day_ns,
        open=close,
        high=close + 1.0,
        low=close - 1.0,
        close=close,
        volume=np.ones(n),
    )


def test_uploaded_strategy_traceback_shows_the_users_code_line_and_its_number() -> None:
    config = BacktestConfig(strategy={"source": SOURCE, "class": "Raises"}, symbols=["BTCUSD"])

    with pytest.raises(StrategyRuntimeError) as raised:
        run_backtest(config, {"BTCUSD": _candles()})

    assert raised.value.traceback_text == (
        "Traceback (most recent call last):\n"
        '  File "<user_strategy>", line 9, in decide\n'
        "    ratio = float(df.close[-1]) / 0.0\n"
        "            ~~~~~~~~~~~~~~~~~~~~^~~~~\n"
        "ZeroDivisionError: float division by zero\n"
    )
