"""`backtest walkforward` on the shipped BTCUSD daily files: the JSON contract, windows that
`--start/--end` reproduce, and errors naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backtest_cli.main import main

REPO = Path(__file__).resolve().parents[2]
BTC_DIR = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
ARGS = [
    "walkforward",
    "--data",
    str(BTC_DIR),
    "--grid",
    "fast=5,10",
    "--grid",
    "slow=30,60",
    "--fee",
    "0.001",
]


def test_walkforward_json_follows_the_contract_and_its_in_sample_is_the_sweep_of_the_train_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*ARGS, "--train", "500", "--test", "90d", "--json", "--no-progress", "--workers", "1"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert set(got) == {"folds", "oos", "efficiency"}
    assert len(got["folds"]) == (1865 - 500) // 90
    first = got["folds"][0]
    assert set(first) >= {"train", "test", "params", "in_sample", "out_of_sample"}
    assert first["train"]["end"] == first["test"]["start"]
    assert first["out_of_sample"]["bars"] == 90
    assert got["oos"]["equity"][-1]["equity"] == pytest.approx(got["oos"]["metrics"]["final_equity"])
    # the fold's in-sample figures are a sweep of exactly its train window (--start/--end as printed)
    train = first["train"]
    window = ["--start", train["start"], "--end", train["end"], "--json", "--no-progress"]
    assert main(["sweep", *ARGS[1:], *window]) == 0
    sweep = json.loads(capsys.readouterr().out)
    assert sweep["best"]["params"] == first["params"]
    assert sweep["best"]["metrics"] == first["in_sample"]


def test_a_window_longer_than_the_data_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--train", "1800", "--test", "100", "--no-progress"]) == 2
    assert "no fold fits: train 1800 + gap 0 + test 100 bars > the data's 1865" in capsys.readouterr().err


def test_the_folds_are_planned_over_the_bars_of_start_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    # at most 365 daily bars in 2018: train 200 + test 100 fits once (a second fold needs 300 + 100)
    options = ["--start", "2018-01-01", "--end", "2019-01-01", "--json", "--no-progress", "--workers", "1"]
    assert main([*ARGS, "--train", "200", "--test", "100", *options]) == 0
    folds = json.loads(capsys.readouterr().out)["folds"]
    assert len(folds) == 1 and folds[0]["train"]["start"] == "2018-01-01T00:00:00Z"
    assert folds[0]["test"]["end"] < "2019-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--remote"], "option --symbols: --remote needs the symbols"),
        (["--remote", "--symbols", "BTCUSD", "--data", str(BTC_DIR)], "option --data: not with --remote"),
        (["--symbols", "BTCUSD", "--data", str(BTC_DIR)], "option --symbols: only with --remote"),
    ],
)
def test_options_that_do_not_fit_where_it_runs_exit_2_naming_them(
    capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    grid = ["--grid", "fast=5,10", "--grid", "slow=30,60", "--train", "500", "--test", "90"]
    assert main(["walkforward", *grid, *options]) == 2
    assert message in capsys.readouterr().err
