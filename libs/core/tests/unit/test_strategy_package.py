"""A strategy package (entry module + helpers, from a folder or a zip) loads, runs and states its limits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from backtest_core.engine.run import run_backtest
from backtest_core.errors import StrategyLoadError, StrategyRuntimeError
from backtest_core.model.candles import Candles
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_core.model.strategy_package import PACKAGE_MAX_BYTES, PACKAGE_MAX_FILES, read_strategy_package
from backtest_core.strategy.loader import load_strategy_class
from pydantic import ValidationError

ENTRY = """from backtest_core.strategy import BaseStrategy, Side, Signal
from helpers import sma
from lib.levels import threshold


class AboveSma(BaseStrategy):
    WINDOW_OF_1_2_3 = sma([1.0, 2.0, 3.0])

    def get_required_lookback(self):
        return 3

    def decide(self, df, interval, **p):
        if df.close[-1] > sma(df.close[-3:]) + threshold():
            return Signal(Side.BUY)
        return Signal(Side.SELL)
"""
HELPERS = "def sma(values):\n    return sum(values) / len(values)\n"
LEVELS = "def threshold():\n    return 0.5\n"
FILES = {"helpers.py": HELPERS, "lib/__init__.py": "", "lib/levels.py": LEVELS}


def _candles(close: list[float]) -> Candles:
    day_ns = 86_400 * 10**9
    prices = np.array(close)
    return Candles(
        symbol="BTCUSD",
        interval="1d",
        open_time=np.arange(len(close), dtype=np.int64) * day_ns,
        open=prices,
        high=prices + 1.0,
        low=prices - 1.0,
        close=prices,
        volume=np.ones(len(close)),
    )


def _write_folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_entry_module_imports_its_helper_modules_and_subpackage() -> None:
    cls = load_strategy_class(SourceStrategy(source=ENTRY, files=FILES))

    assert cls.__name__ == "AboveSma"
    assert cls.WINDOW_OF_1_2_3 == 2.0  # type: ignore[attr-defined]


def test_package_backtest_trades_on_the_helper_sma_plus_threshold() -> None:
    # closes 10 11 13 14 12 12, window 3, threshold 0.5 (fills at the next open, which equals the close):
    # bar 2: 13 > sma(10,11,13)=11.33+0.5 -> BUY, filled at bar 3's 14: 1400/14 = 100 units;
    # bar 3: 14 > 12.67+0.5 -> BUY (already long); bar 4: 12 < 13+0.5 -> SELL, filled at bar 5's 12:
    # one trade, pnl 100 * (12 - 14) = -200, final equity 1400 - 200 = 1200.
    config = BacktestConfig(
        strategy=SourceStrategy(source=ENTRY, files=FILES),
        symbols=["BTCUSD"],
        cash=1400.0,
        fees={"maker": 0.0, "taker": 0.0},
    )

    result = run_backtest(config, {"BTCUSD": _candles([10.0, 11.0, 13.0, 14.0, 12.0, 12.0])})

    assert result.metrics.trade_count == 1
    assert result.trades[0].entry_price == pytest.approx(14.0)
    assert result.trades[0].exit_price == pytest.approx(12.0)
    assert result.metrics.final_equity == pytest.approx(1200.0)


def test_two_packages_with_a_same_named_helper_each_see_their_own() -> None:
    first = "from backtest_core.strategy import BaseStrategy\nfrom helpers import K\n\n"
    first += "class A(BaseStrategy):\n    k = K\n"
    second = first.replace("class A", "class B")

    a = load_strategy_class(SourceStrategy(source=first, files={"helpers.py": "K = 1\n"}))
    b = load_strategy_class(SourceStrategy(source=second, files={"helpers.py": "K = 2\n"}))

    assert (a.k, b.k) == (1, 2)  # type: ignore[attr-defined]


def test_error_raised_in_a_helper_names_the_helper_file_and_line() -> None:
    files = {**FILES, "lib/levels.py": "def threshold():\n    return 1 / 0\n"}
    config = BacktestConfig(strategy=SourceStrategy(source=ENTRY, files=files), symbols=["BTCUSD"])

    with pytest.raises(StrategyRuntimeError) as caught:
        run_backtest(config, {"BTCUSD": _candles([10.0, 11.0, 13.0, 12.0])})

    assert 'File "<user_strategy/lib/levels.py>", line 2, in threshold' in caught.value.traceback_text


def test_folder_reads_strategy_py_as_entry_and_the_rest_as_helpers(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "above_sma", {"strategy.py": ENTRY, **FILES})
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "helpers.cpython-311.pyc").write_bytes(b"\0")

    spec = read_strategy_package(folder)

    assert spec.source == ENTRY
    assert spec.files == FILES
    assert load_strategy_class(spec).__name__ == "AboveSma"


def test_zip_with_one_top_folder_reads_like_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "above_sma.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in {"strategy.py": ENTRY, **FILES}.items():
            zf.writestr(f"above_sma/{name}", text)

    spec = read_strategy_package(archive)

    assert (spec.source, spec.files) == (ENTRY, FILES)


def test_single_top_level_module_is_the_entry_when_there_is_no_strategy_py(tmp_path: Path) -> None:
    folder = _write_folder(
        tmp_path / "p", {"above.py": ENTRY, "lib/__init__.py": "", "lib/levels.py": LEVELS}
    )

    assert read_strategy_package(folder).source == ENTRY


def test_package_without_a_clear_entry_module_names_what_it_found(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "p", {"a.py": ENTRY, "b.py": HELPERS})

    with pytest.raises(StrategyLoadError, match=r"entry module.*strategy\.py.*found \['a\.py', 'b\.py'\]"):
        read_strategy_package(folder)


def test_package_with_a_non_python_file_is_refused_naming_it(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "p", {"strategy.py": ENTRY, "notes.txt": "x"})

    with pytest.raises(StrategyLoadError, match=r"only \.py modules.*'notes\.txt'"):
        read_strategy_package(folder)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Helpers.py", "module paths must be"),
        ("../up.py", "module paths must be"),
        ("a-b.py", "module paths must be"),
        ("numpy.py", "must not shadow"),
        ("os/__init__.py", "must not shadow"),
        ("user_strategy.py", "must not shadow"),
    ],
)
def test_bad_or_shadowing_module_names_are_refused_with_the_rule(name: str, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected) as caught:
        SourceStrategy(source=ENTRY, files={name: HELPERS})

    assert repr(name) in str(caught.value)


def test_too_many_helper_files_states_the_limit() -> None:
    files = {f"m{i}.py": "" for i in range(PACKAGE_MAX_FILES + 1)}

    with pytest.raises(
        ValidationError, match=rf"at most {PACKAGE_MAX_FILES} helper modules, was {PACKAGE_MAX_FILES + 1}"
    ):
        SourceStrategy(source=ENTRY, files=files)


def test_too_many_bytes_states_the_limit_and_the_size() -> None:
    big = "x = 1\n" * (PACKAGE_MAX_BYTES // 6)
    size = len(ENTRY.encode()) + len(big.encode())

    with pytest.raises(ValidationError, match=rf"at most {PACKAGE_MAX_BYTES} bytes .*was {size} bytes"):
        SourceStrategy(source=ENTRY, files={"big.py": big})


def test_single_file_strategy_still_validates_and_dumps_without_files() -> None:
    spec = SourceStrategy(source=ENTRY)

    assert spec.files == {}
    assert "files" not in spec.model_dump(by_alias=True, exclude_defaults=True)
