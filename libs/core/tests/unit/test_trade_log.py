"""A result's `TradeLog` reads, compares and serialises exactly as the list of `Trade` it stands for."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime

import numpy as np
import pydantic
import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult, Trade, TradeLog
from backtest_core.model.trade_log import PACKED
from backtest_core.model.trade_pack import PackError, pack, unpack
from backtest_core.model.trade_rows import TradeTable, build_trades

SYMBOLS = ["AAAUSDT", "BBBUSDT"]
DAY_NS = 86_400_000_000_000


def _result() -> BacktestResult:
    """A real two-symbol long/short backtest with dozens of trades (seeded random walks)."""
    rng = np.random.default_rng(7)
    candles = {}
    for symbol in SYMBOLS:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.03, 400)))
        open_ = np.r_[close[0], close[:-1]]
        times = np.arange(400, dtype=np.int64) * DAY_NS
        candles[symbol] = Candles(symbol, "1d", times, open_, close * 1.01, close * 0.99, close, np.ones(400))
    config = BacktestConfig(
        symbols=SYMBOLS,
        interval="1d",
        strategy="sma_cross",
        params={"fast": 3, "slow": 8},
        size=0.4,
        allow_short=True,
        fees={"maker": 0.001, "taker": 0.001},
    )
    return run_backtest(config, candles)


RESULT = _result()
LOG = RESULT.trades
MODELS = build_trades(LOG.table)


def test_the_engine_returns_a_trade_log_whose_rows_are_the_built_models() -> None:
    assert isinstance(LOG, TradeLog)
    assert len(LOG) == len(MODELS) > 20
    assert RESULT.metrics.open_trades is not None  # the log holds the closed trades and the open ones
    assert len(LOG) == RESULT.metrics.trade_count + RESULT.metrics.open_trades
    assert {t.side for t in MODELS} == {"long", "short"}
    assert {t.symbol for t in MODELS} == set(SYMBOLS)
    assert list(LOG) == MODELS
    assert LOG == MODELS and MODELS == LOG and MODELS[1:] != LOG


def test_indexing_reads_one_row_and_negative_indices_count_from_the_end() -> None:
    fresh = TradeLog(LOG.table)  # no models made yet: each index builds its own row
    assert fresh[0] == MODELS[0]
    assert fresh[-1] == MODELS[-1]
    assert fresh[np.int64(3)] == MODELS[3]
    n = len(MODELS)
    with pytest.raises(IndexError, match=f"trade index {n} is out of range for {n} trades"):
        fresh[len(MODELS)]
    with pytest.raises(IndexError, match="out of range"):
        fresh[-len(MODELS) - 1]
    with pytest.raises(TypeError):
        fresh["pnl"]  # type: ignore[call-overload]


def test_a_slice_is_a_trade_log_of_those_rows() -> None:
    for log in (TradeLog(LOG.table), LOG):  # without and with the models already made
        page = log[5:15:2]
        assert isinstance(page, TradeLog)
        assert list(page) == MODELS[5:15:2]
        assert len(log[len(MODELS) :]) == 0


def test_the_frame_holds_the_models_values_column_by_column() -> None:
    frame = LOG.to_frame()
    assert list(frame.columns) == list(Trade.model_fields)
    assert len(frame) == len(MODELS)
    rows = frame.to_dict("records")
    for row, trade in zip(rows, MODELS, strict=True):
        assert row["entry_time"].to_pydatetime() == trade.entry_time
        assert row["exit_time"].to_pydatetime() == trade.exit_time
        row.pop("entry_time"), row.pop("exit_time")
        assert row == {k: v for k, v in trade.model_dump().items() if k not in ("entry_time", "exit_time")}


def test_serialised_as_a_list_of_trades_and_read_back_equal() -> None:
    dumped = RESULT.model_dump()
    assert dumped["trades"] == [t.model_dump() for t in MODELS]
    again = BacktestResult.model_validate_json(RESULT.model_dump_json())
    assert isinstance(again.trades, TradeLog)
    assert again == RESULT
    assert again.trades.table.pnl.tolist() == LOG.table.pnl.tolist()
    assert np.array_equal(again.trades.table.entry_ns, LOG.table.entry_ns)
    assert BacktestResult.model_json_schema()["properties"]["trades"]["items"] == {"$ref": "#/$defs/Trade"}


def test_a_plain_list_validates_into_a_log_that_keeps_the_given_models() -> None:
    result = RESULT.model_copy(update={"trades": []})
    assert BacktestResult.model_validate(result.model_dump()).trades == []
    made = BacktestResult.model_validate({**RESULT.model_dump(), "trades": MODELS[:3]})
    assert all(a is b for a, b in zip(made.trades, MODELS[:3], strict=True))
    naive = MODELS[0].model_copy(update={"entry_time": datetime(2024, 1, 2, 3, 4, 5, 6)})
    log = TradeLog.from_trades([naive])
    seconds = int(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    assert log.table.entry_ns[0] == seconds * 10**9 + 6_000


def test_a_bad_trade_is_refused_naming_its_position_and_field() -> None:
    bad = {**MODELS[0].model_dump(), "side": "sideways"}
    with pytest.raises(pydantic.ValidationError) as err:
        BacktestResult.model_validate({**RESULT.model_dump(), "trades": [MODELS[1].model_dump(), bad]})
    assert err.value.errors()[0]["loc"] == ("trades", 1, "side")


def test_packed_between_services_the_trades_come_back_bit_for_bit() -> None:
    packed = RESULT.model_dump_json(context=PACKED)
    again = BacktestResult.model_validate_json(packed)
    assert again == RESULT
    for name in ("units", "entry_price", "exit_price", "pnl", "return_pct", "fees"):
        assert getattr(again.trades.table, name).tobytes() == getattr(LOG.table, name).tobytes()
    assert np.array_equal(again.trades.table.exit_ns, LOG.table.exit_ns)
    assert isinstance(RESULT.model_dump(mode="json", context=PACKED)["trades"], str)
    assert RESULT.model_dump(mode="json")["trades"] == [t.model_dump(mode="json") for t in MODELS]
    # About 60 bytes a trade packed, against about 300 as JSON objects.
    size = len(RESULT.model_dump_json(context=PACKED, include={"trades"}))
    assert size < 80 * len(MODELS) < len(RESULT.model_dump_json(include={"trades"})) / 3


def test_a_log_read_from_a_list_packs_and_an_empty_log_packs_too() -> None:
    listed = TradeLog.from_trades(MODELS[:5])
    assert TradeLog(unpack(pack(listed.table))) == MODELS[:5]
    empty = TradeLog.from_trades([])
    assert TradeLog(unpack(pack(empty.table))) == []


def _packed(raw: bytes) -> str:
    return "tradelog1:" + base64.b64encode(zlib.compress(raw)).decode()


NO_ROWS = b'{"rows": 2, "symbols": [], "reasons": []}\n'  # a header without its 2 x 78 bytes of columns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tradelog2:AAAA", "a packed trade log starts with 'tradelog1:'"),
        ("tradelog1:not base64!", "the packed trade log is damaged"),
        (_packed(b'{"rows": 2}\n'), "bad header"),
        (
            "tradelog1:" + base64.b64encode(zlib.compress(NO_ROWS)).decode(),
            "0 bytes for 2 trades, expected 156",
        ),
    ],
)
def test_a_damaged_packed_log_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PackError, match=message):
        unpack(text)
    with pytest.raises(pydantic.ValidationError, match=message):
        BacktestResult.model_validate({**RESULT.model_dump(), "trades": text})


def test_packed_codes_outside_the_lookups_are_refused() -> None:
    table = LOG.table.take(slice(0, 3))
    bad = TradeTable(**{**{f: getattr(table, f) for f in table.__dataclass_fields__}, "symbols": ()})
    with pytest.raises(PackError, match=r"symbol codes outside \[0, 0\)"):
        unpack(pack(bad))
