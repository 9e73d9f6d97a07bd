"""Client of Binance's public kline REST API: paging, weight headers, 429/418 back-off, resume.

Spot: ``GET {base}/api/v3/klines`` (limit <= 1000); USD-M futures: ``GET {base}/fapi/v1/klines``
(limit <= 1500). Rows are 12-field arrays like the archive CSV files. Pages are requested by
``startTime`` = last open time + 1 ms, so gaps in Binance's history are skipped, not looped on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import httpx
import numpy as np
from backtest_core.errors import DataError
from backtest_core.io.data_files import MICROSECONDS_THRESHOLD, NS_PER_MS, NS_PER_US
from backtest_core.model.candles import COLUMNS, Candles, interval_ns
from pydantic import BaseModel, ConfigDict, Field

from backtest_marketdata.candle_store import MongoCandleStore
from backtest_marketdata.models import WriteReport

Market = Literal["spot", "futures"]
PATHS: dict[Market, str] = {"spot": "/api/v3/klines", "futures": "/fapi/v1/klines"}
MAX_LIMIT: dict[Market, int] = {"spot": 1000, "futures": 1500}
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


class BinanceApiError(DataError):
    """Binance answered with an error status, or kept rate-limiting after every retry."""


class BinanceSettings(BaseModel):
    """Where and how politely to call Binance (override `base_url` to use a mirror or a test server)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://api.binance.com"
    market: Market = "spot"
    weight_limit_1m: int = Field(default=6000, gt=0, description="request weight allowed per minute")
    weight_reserve: float = Field(default=0.1, ge=0, lt=1, description="pause when used > limit*(1-reserve)")
    max_retries: int = Field(default=5, ge=0, description="retries after 429/418/5xx before giving up")
    default_retry_after_s: float = Field(default=1.0, ge=0, description="back-off when Retry-After is absent")
    timeout_s: float = Field(default=10.0, gt=0)
    page_limit: int | None = Field(default=None, ge=1, description="bars per request; None: the maximum")


class BinanceKlineClient:
    """Fetch klines page by page; `sleep` and `clock` are injected so tests never wait for real."""

    def __init__(
        self,
        settings: BinanceSettings,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._http = http or httpx.Client(base_url=settings.base_url, timeout=settings.timeout_s)
        self._sleep = sleep
        self._clock = clock
        self.used_weight: int | None = None
        self.requests = 0

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def page(
        self, symbol: str, interval: str, start_ns: int, end_ns: int | None = None, limit: int | None = None
    ) -> Candles:
        """Return one page of bars with open time >= start_ns (and < end_ns), at most `limit` bars."""
        interval_ns(interval)
        max_limit = MAX_LIMIT[self.settings.market]
        limit = (self.settings.page_limit or max_limit) if limit is None else limit
        if not 1 <= limit <= max_limit:
            raise DataError(f"limit must be in 1..{max_limit} for {self.settings.market}, was {limit}")
        params: dict[str, str | int] = {
            "symbol": symbol,
            "interval": interval,
            "startTime": start_ns // NS_PER_MS,
            "limit": limit,
        }
        if end_ns is not None:
            params["endTime"] = (end_ns - 1) // NS_PER_MS
        payload = self._get(PATHS[self.settings.market], params)
        url = f"{self.settings.base_url}{PATHS[self.settings.market]}?startTime={params['startTime']}"
        return parse_klines(payload, symbol, interval, url)

    def pages(
        self, symbol: str, interval: str, start_ns: int, end_ns: int | None = None
    ) -> Iterator[Candles]:
        """Yield successive non-empty pages from start_ns until end_ns or the newest bar."""
        cursor = start_ns
        limit = self.settings.page_limit or MAX_LIMIT[self.settings.market]
        while end_ns is None or cursor < end_ns:
            bars = self.page(symbol, interval, cursor, end_ns, limit)
            if end_ns is not None:
                bars = bars.between(None, end_ns)
            if len(bars) == 0:
                return
            yield bars
            if len(bars) < limit:
                return
            cursor = int(bars.open_time[-1]) + NS_PER_MS

    def fetch_into(
        self,
        store: MongoCandleStore,
        symbol: str,
        interval: str,
        start_ns: int,
        end_ns: int | None = None,
        on_page: Callable[[Candles, WriteReport], None] | None = None,
    ) -> WriteReport:
        """Fetch [start_ns, end_ns) into `store`, page by page, resuming after the last stored bar.

        Each page is written as it arrives, so an interrupted fetch continues from where it stopped.
        """
        stored = store.open_times(symbol, interval, start_ns, end_ns)
        cursor = start_ns if len(stored) == 0 else int(stored[-1]) + interval_ns(interval)
        total = WriteReport(symbol=symbol, interval=interval)
        for bars in self.pages(symbol, interval, cursor, end_ns):
            report = store.write(bars)
            total = total + report
            if on_page is not None:
                on_page(bars, report)
        return total

    def _get(self, path: str, params: dict[str, str | int]) -> Any:
        for attempt in range(self.settings.max_retries + 1):
            self._respect_weight()
            response = self._http.get(path, params=params)
            self.requests += 1
            self._note_weight(response)
            if response.status_code in (418, 429) or response.status_code >= 500:
                if attempt == self.settings.max_retries:
                    break
                self._sleep(self._retry_after(response))
                continue
            if response.status_code != 200:
                raise BinanceApiError(
                    f"GET {response.request.url}: expected HTTP 200, was {response.status_code}: "
                    f"{response.text[:200]}"
                )
            try:
                return response.json()
            except ValueError:
                raise DataError(
                    f"GET {response.request.url}: expected a JSON array of klines, "
                    f"was {response.text[:120]!r}"
                ) from None
        raise BinanceApiError(
            f"GET {path} {params}: still HTTP {response.status_code} "
            f"after {self.settings.max_retries} retries"
        )

    def _retry_after(self, response: httpx.Response) -> float:
        header = response.headers.get("Retry-After")
        try:
            return max(0.0, float(header)) if header is not None else self.settings.default_retry_after_s
        except ValueError:
            return self.settings.default_retry_after_s

    def _note_weight(self, response: httpx.Response) -> None:
        header = response.headers.get(WEIGHT_HEADER)
        if header is not None and header.strip().isdigit():
            self.used_weight = int(header)

    def _respect_weight(self) -> None:
        """Before a request, wait for the next minute if the used weight is within the reserve."""
        if self.used_weight is None:
            return
        ceiling = self.settings.weight_limit_1m * (1 - self.settings.weight_reserve)
        if self.used_weight >= ceiling:
            now = self._clock()
            self._sleep(60.0 - (now % 60.0) + 0.5)
            self.used_weight = None


def parse_klines(payload: Any, symbol: str, interval: str, source: str) -> Candles:
    """Turn a klines JSON payload (a list of 12-field arrays) into `Candles`; name the bad row if any."""
    if not isinstance(payload, list):
        raise DataError(
            f"{source}: expected a JSON array of klines, was {type(payload).__name__}: {str(payload)[:120]}"
        )
    for index, row in enumerate(payload):
        if not isinstance(row, list) or len(row) != 12:
            raise DataError(f"{source}: row {index}: expected an array of 12 fields, was {str(row)[:120]}")
    try:
        raw_time = np.array([row[0] for row in payload], dtype=np.int64)
        values = np.array([row[1:6] for row in payload], dtype=np.float64).reshape(len(payload), 5)
    except (TypeError, ValueError, OverflowError):
        for index, row in enumerate(payload):
            try:
                int(row[0])
                [float(v) for v in row[1:6]]
            except (TypeError, ValueError, OverflowError):
                raise DataError(
                    f"{source}: row {index}: expected numbers in fields 1-6, was {str(row)[:120]}"
                ) from None
        raise
    if not bool(np.isfinite(values).all()) or bool((values < 0).any()):
        row_index = int(np.argmax(~np.isfinite(values).all(axis=1) | (values < 0).any(axis=1)))
        raise DataError(
            f"{source}: row {row_index}: expected finite prices >= 0, was {payload[row_index][:6]}"
        )
    factor = NS_PER_US if len(raw_time) and raw_time[0] >= MICROSECONDS_THRESHOLD else NS_PER_MS
    open_time = raw_time * factor
    if len(open_time) > 1 and not bool(np.all(np.diff(open_time) > 0)):
        row_index = int(np.argmax(np.diff(open_time) <= 0)) + 1
        raise DataError(f"{source}: row {row_index}: open times must strictly increase")
    return Candles(
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        **{name: np.ascontiguousarray(values[:, i]) for i, name in enumerate(COLUMNS)},
    )
