"""Market-data test helpers: the real daily candle files shipped in the repo, and derived variants.

`mongo_db` / `mongo_readonly_uri` (a real MongoDB-compatible server) come from the shared fixtures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from backtest_testinfra import zip_binance_archive
from backtest_testinfra.binance_archives import ChecksumKind

REPO = Path(__file__).resolve().parents[3]
BTC_DAILY = REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d"
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)


class RealFiles:
    """Builds Binance-archive variants of the repo's real Bitstamp BTC/USD daily files under `root`."""

    source = BTC_DAILY
    header = HEADER

    def __init__(self, root: Path) -> None:
        self.root = root

    def month(self, month: str) -> Path:
        """Return the shipped real file of `month` (YYYY-MM)."""
        path = BTC_DAILY / f"BTCUSD-1d-{month}.csv"
        assert path.is_file(), f"missing shipped data file {path}"
        return path

    def lines(self, month: str) -> list[str]:
        """Return the rows of a real month file."""
        return self.month(month).read_text().splitlines()

    def write(self, relative: str, lines: list[str]) -> Path:
        """Write rows as a CSV under `root` and return its path."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path

    def copy(self, month: str, folder: str = "spot") -> Path:
        """Copy a real month file unchanged into `root/folder`."""
        return self.write(f"{folder}/BTCUSD-1d-{month}.csv", self.lines(month))

    @staticmethod
    def to_microseconds(line: str) -> str:
        """Rewrite a row's open and close times from milliseconds to microseconds."""
        fields = line.split(",")
        fields[0] = str(int(fields[0]) * 1000)
        fields[6] = str(int(fields[6]) * 1000)
        return ",".join(fields)

    @staticmethod
    def zip(csv_path: Path, *, checksum: ChecksumKind | None = "valid") -> Path:
        """Zip a CSV as Binance does, with a `.CHECKSUM` beside it (see `zip_binance_archive`)."""
        return zip_binance_archive(csv_path, checksum=checksum)


@pytest.fixture
def real_files(tmp_path: Path) -> RealFiles:
    """Real BTC/USD daily data (2014-11 .. 2020-01) and a scratch folder for its variants."""
    return RealFiles(tmp_path)
