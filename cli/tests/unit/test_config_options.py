"""The execution options of `backtest run` and `backtest submit` come from `BacktestConfig`, once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from backtest_cli.config_options import derive_options
from backtest_cli.local_data import load_symbols, resolve_paths
from backtest_cli.main import build_parser, main
from backtest_cli.remote import build_submission
from backtest_cli.run import build_config
from backtest_core.model.config import BacktestConfig, FeeModel, Frozen
from pydantic import Field

REPO = Path(__file__).resolve().parents[3]
JAN = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d" / "BTCUSD-1d-2017-01.csv"

# Every BacktestConfig field -> options that set it to a value other than its default, and that value.
# A new config field fails both round-trip tests below until it has an option (and a line here).
NON_DEFAULT: dict[str, tuple[list[str], Any]] = {
    "strategy": (["--strategy", "momentum"], "momentum"),
    "params": (["--param", "period=7"], {"period": 7}),
    "symbols": ([], ["BTCUSD"]),  # run: from the --data file name; submit: --symbols BTCUSD (below)
    "interval": ([], "1d"),  # run: from the file name; submit: --interval 1d; checked separately
    "start": (["--start", "2017-01-05"], datetime(2017, 1, 5, tzinfo=UTC)),
    "end": (["--end", "2017-01-25T12:00+02:00"], datetime(2017, 1, 25, 10, tzinfo=UTC)),
    "cash": (["--cash", "5000"], 5000.0),
    "fees": (["--fee", "0.002", "--taker-fee", "0.003"], FeeModel(maker=0.002, taker=0.003)),
    "slippage_bps": (["--slippage-bps", "2.5"], 2.5),
    "fill": (["--fill", "close"], "close"),
    "size": (["--size", "0.5"], 0.5),
    "allow_short": (["--allow-short"], True),
    "same_bar": (["--same-bar", "target_first"], "target_first"),
    "max_holding_bars": (["--max-holding-bars", "5"], 5),
    "tick_size": (["--tick-size", "0.01"], 0.01),
    "step_size": (["--step-size", "0.001"], 0.001),
    "parallel_symbols": (["--parallel", "2"], 2),
}


def _every_option() -> list[str]:
    return [arg for args, _ in NON_DEFAULT.values() for arg in args]


def _assert_every_field_is_set(config: BacktestConfig) -> None:
    assert set(NON_DEFAULT) == set(BacktestConfig.model_fields), "a config field has no line in NON_DEFAULT"
    for field, (_, expected) in NON_DEFAULT.items():
        assert getattr(config, field) == expected, field


def test_every_config_field_is_set_by_an_option_of_run() -> None:
    args = build_parser(only="run").parse_args(["run", "--data", str(JAN), *_every_option()])

    config = build_config(args, load_symbols(resolve_paths(args.data), symbol=None, interval=None))

    _assert_every_field_is_set(config)


def test_every_config_field_is_set_by_an_option_of_submit() -> None:
    argv = ["submit", "--symbols", "BTCUSD", "--interval", "4h", *_every_option()]
    args = build_parser(only="submit").parse_args(argv)

    submitted = build_submission(args)
    config = BacktestConfig.model_validate(submitted)

    assert config.interval == "4h"
    _assert_every_field_is_set(config.model_copy(update={"interval": "1d"}))


def test_submit_sends_only_the_options_given() -> None:
    args = build_parser(only="submit").parse_args(
        ["submit", "--strategy", "sma_cross", "--symbols", "BTCUSD"]
    )

    assert build_submission(args) == {
        "strategy": "sma_cross",
        "symbols": ["BTCUSD"],
        "interval": "1d",
        "params": {},
    }


def test_fee_options_set_maker_and_taker_separately_over_the_common_fee() -> None:
    args = build_parser(only="submit").parse_args(
        ["submit", "--strategy", "sma_cross", "--symbols", "BTCUSD", "--fee", "0", "--maker-fee", "0.0002"]
    )

    assert build_submission(args)["fees"] == {"maker": 0.0002, "taker": 0.0}


class _WithAnUnsupportedField(Frozen):
    weights: dict[str, float] = Field(default_factory=dict, description="weight of each symbol")


def test_a_config_field_no_option_can_express_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"_WithAnUnsupportedField\.weights: no command-line option"):
        derive_options(_WithAnUnsupportedField)


@pytest.mark.parametrize("command", ["run", "submit"])
def test_help_shows_each_settings_default_from_the_config_model(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines

    assert exit_info.value.code == 0
    for shown in (
        "--cash CASH starting cash, quote currency (default: 1000000)",
        "--fee FEE maker and taker fee per fill, fraction of notional (0.001 = 0.1%) (default: 0.001)",
        "--fill {next_open,close}",
        "(default: next_open)",
        "--same-bar {stop_first,target_first}",
        "(default: stop_first)",
        "--max-holding-bars N",
        "--tick-size TICK_SIZE price rounding; None = no rounding (default: none)",
        "--step-size STEP_SIZE quantity rounding; None = fractional (default: none)",
        "--size SIZE fraction of equity per new position (default: 1)",
        "--slippage-bps SLIPPAGE_BPS adverse price move per fill, bps (default: 0)",
        "--parallel N threads generating proposals (default: 1)",
    ):
        assert shown in text, shown
