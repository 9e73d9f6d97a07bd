"""`backtest run` on bad input: one clear line on stderr naming the file/line or option, exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from backtest_cli.main import main

REPO = Path(__file__).resolve().parents[2]
BTC_DIR = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
JAN = BTC_DIR / "BTCUSD-1d-2017-01.csv"


def run_failing(capsys: pytest.CaptureFixture[str], *args: str, code: int = 2) -> str:
    """Run `backtest run`, require the exit code and no traceback, return stderr."""
    assert main(["run", *args, "--no-progress"]) == code
    out, err = capsys.readouterr()
    assert out == ""
    if code == 2:
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
    return err


def test_missing_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    err = run_failing(capsys, "--data", "no/such/BTCUSD-1d-2017-01.csv")
    assert "--data 'no/such/BTCUSD-1d-2017-01.csv': no such file or folder" in err


def test_malformed_row_names_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "BTCUSD-1d-2017-01.csv"
    lines = JAN.read_text().splitlines()
    lines[2] = lines[2].replace(",", ";", 3)
    bad.write_text("\n".join(lines) + "\n")
    err = run_failing(capsys, "--data", str(bad))
    assert f"{bad}: line 3: expected 12 comma-separated fields" in err


def test_file_name_without_symbol_asks_for_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nameless = tmp_path / "klines.csv"
    shutil.copy(JAN, nameless)
    err = run_failing(capsys, "--data", str(nameless))
    assert "klines.csv" in err and "pass the symbol with --symbol" in err


def test_overlapping_files_of_one_symbol_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    copy = tmp_path / "BTCUSD-1d-2017-01-copy.csv"
    shutil.copy(JAN, copy)
    err = run_failing(
        capsys, "--data", str(JAN), str(tmp_path / "*.csv"), "--symbol", "BTCUSD", "--interval", "1d"
    )
    assert "overlaps" in err and "BTCUSD-1d-2017-01" in err


def test_files_of_different_intervals_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    hourly = tmp_path / "ETHUSD-1h-2017-01.csv"
    shutil.copy(JAN, hourly)
    err = run_failing(capsys, "--data", str(JAN), str(hourly))
    assert "one interval" in err and "1d" in err and "1h" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--param", "fast"), "option --param: expected KEY=VALUE"),
        (("--param", "fast=3", "--param", "fast=4"), "option --param: fast given twice"),
        (("--size", "1.5"), "option --size: Input should be less than or equal to 1, was 1.5"),
        (("--cash", "0"), "option --cash: Input should be greater than 0"),
        (("--fee", "-0.1"), "option --fee: Input should be greater than or equal to 0"),
        (("--parallel", "0"), "option --parallel:"),
        (("--start", "yesterday"), "option --start: expected ISO-8601"),
        (("--start", "2017-02-01", "--end", "2017-01-15"), "option --start/--end: start must be < end"),
        (("--interval", "7m"), "interval must be one of"),
        (("--strategy", "no_such_strategy"), "unknown built-in strategy 'no_such_strategy'"),
        (("--strategy", "missing.py"), "option --strategy: cannot read missing.py"),
        (("--param", "fast=30", "--param", "slow=10"), "fast must be < slow, was fast=30, slow=10"),
        (("--param", "speed=3"), "unknown ['speed']"),
    ],
)
def test_bad_option_is_named_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    err = run_failing(capsys, "--data", str(JAN), *args)
    assert expected in err


def strategy_file(folder: Path, class_name: str, returned: str) -> Path:
    """Write a strategy whose decide() returns `returned` (line 4 of the file); return its path."""
    source = folder / f"{class_name.lower()}.py"
    source.write_text(
        "from backtest_core.strategy import BaseStrategy, Side, Signal\n"
        f"class {class_name}(BaseStrategy):\n"
        "    def decide(self, df, interval, **params):\n"
        f"        return {returned}\n"
    )
    return source


def test_unknown_fill_is_rejected_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--data", str(JAN), "--fill", "midpoint"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'midpoint'" in capsys.readouterr().err


def test_strategy_that_raises_exits_1_with_the_users_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = strategy_file(tmp_path, "Broken", "1 / 0")
    err = run_failing(capsys, "--data", str(JAN), "--strategy", str(source), code=1)
    assert "the strategy failed: Broken raised ZeroDivisionError on BTCUSD" in err
    assert 'File "<user_strategy>", line 4, in decide' in err


def test_fee_out_of_range_is_reported_once_with_what_was_expected(capsys: pytest.CaptureFixture[str]) -> None:
    err = run_failing(capsys, "--data", str(JAN), "--fee", "0.2")

    assert err.strip() == "backtest run: option --fee: Input should be less than 0.1, was 0.2"


def test_an_order_with_its_target_below_the_entry_exits_1_naming_bar_and_prices(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = strategy_file(tmp_path, "UpsideDown", "Signal(Side.BUY, take_profit=df.close[-1] * 0.5)")
    err = run_failing(capsys, "--data", str(JAN), "--strategy", str(source), code=1)
    # Bar 0 of January 2017 closes at 998.80; half of it is 499.40.
    assert err.strip() == (
        "backtest run: the strategy failed: BTCUSD bar 0 (2017-01-01T00:00:00Z): BUY with take-profit "
        "499.4 below its entry reference 998.8 (the bar's close); a long's take-profit must be above its "
        "entry and its stop-loss below; 30 later bar(s) have the same problem"
    )


def test_a_lookback_longer_than_the_data_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    err = run_failing(capsys, "--data", str(JAN), "--param", "fast=10", "--param", "slow=99999")
    assert err.strip() == (
        "backtest run: SmaCrossStrategy needs 100000 bars (get_required_lookback()), the data of BTCUSD "
        "has 31: give a longer range or a shorter look-back"
    )
