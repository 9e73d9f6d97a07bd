"""The Binance kline client against a real HTTP server on loopback serving Binance-format pages.

The server answers `GET /api/v3/klines` and `/fapi/v1/klines` like Binance (startTime, endTime, limit;
12-field arrays; `X-MBX-USED-WEIGHT-1M`) from the repo's real daily BTC/USD rows of 2019-01..2019-05,
which contain a real 12-day gap (2019-03-20 .. 2019-03-31). Scripted answers (429/418 with
Retry-After, a malformed page) replace the normal answer for chosen requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from backtest_core.errors import DataError
from backtest_core.io.data_files import read_binance_klines
from backtest_marketdata.binance_rest import BinanceApiError, BinanceKlineClient, BinanceSettings
from backtest_marketdata.candle_store import MongoCandleStore
from pymongo.database import Database

pytestmark = pytest.mark.integration

JAN_1_2019_NS = 1_546_300_800_000_000_000
JUN_1_2019_NS = 1_559_347_200_000_000_000
MS = 1_000_000


@dataclass
class Scripted:
    """One scripted answer: status, headers and body for the request number `at` (0-based)."""

    at: int
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BinanceState:
    rows: list[list[Any]]
    scripted: list[Scripted] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    weight_step: int = 2


def recorded_rows(files: list[Path]) -> list[list[Any]]:
    """Turn real kline CSV rows into the REST API's JSON arrays (prices as strings, like Binance)."""
    rows: list[list[Any]] = []
    for path in files:
        for line in path.read_text().splitlines():
            f = line.split(",")
            rows.append([int(f[0]), *f[1:6], int(f[6]), f[7], int(f[8]), f[9], f[10], f[11]])
    return rows


def make_handler(state: BinanceState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            number = len(state.requests)
            state.requests.append((url.path, query))
            weight = str(state.weight_step * (number + 1))
            for answer in state.scripted:
                if answer.at == number:
                    self._send(answer.status, answer.body, {**answer.headers, "X-MBX-USED-WEIGHT-1M": weight})
                    return
            if url.path not in ("/api/v3/klines", "/fapi/v1/klines"):
                self._send(404, '{"code": -1, "msg": "not found"}', {})
                return
            start = int(query.get("startTime", 0))
            end = int(query.get("endTime", 2**62))
            limit = int(query.get("limit", 500))
            page = [row for row in state.rows if start <= row[0] <= end][:limit]
            self._send(200, json.dumps(page), {"X-MBX-USED-WEIGHT-1M": weight})

        def _send(self, status: int, body: str, headers: dict[str, str]) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def binance(real_files: Any) -> Iterator[tuple[str, BinanceState]]:
    months = ["2019-01", "2019-02", "2019-03", "2019-04", "2019-05"]
    state = BinanceState(rows=recorded_rows([real_files.month(m) for m in months]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Sleeps:
    """Records requested sleeps instead of waiting (the client's injected `sleep`)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client_for(base_url: str, sleeps: Sleeps, **settings: Any) -> BinanceKlineClient:
    return BinanceKlineClient(
        BinanceSettings(base_url=base_url, **settings), sleep=sleeps, clock=lambda: 149.5
    )


def test_pages_by_start_time_and_skips_the_real_gap(
    binance: tuple[str, BinanceState], real_files: Any
) -> None:
    base_url, state = binance
    client = client_for(base_url, Sleeps(), page_limit=50)
    pages = list(client.pages("BTCUSD", "1d", JAN_1_2019_NS, JUN_1_2019_NS))
    assert [len(p) for p in pages] == [50, 50, 39]
    starts = [int(q["startTime"]) for _, q in state.requests]
    assert starts[0] == JAN_1_2019_NS // MS
    assert starts[1] == int(pages[0].open_time[-1]) // MS + 1
    assert [q["limit"] for _, q in state.requests] == ["50", "50", "50"]
    closes = np.concatenate([p.close for p in pages])
    expected = np.concatenate(
        [read_binance_klines(real_files.month(m)).close for m in ("2019-01", "2019-02")]
    )
    assert np.array_equal(closes[:59], expected)
    assert client.used_weight == 6


def test_429_and_418_back_off_for_retry_after_then_succeed(binance: tuple[str, BinanceState]) -> None:
    base_url, state = binance
    state.scripted = [
        Scripted(0, 429, '{"code": -1003, "msg": "Too many requests"}', {"Retry-After": "3"}),
        Scripted(1, 418, '{"code": -1003, "msg": "IP banned"}', {"Retry-After": "7"}),
    ]
    sleeps = Sleeps()
    page = client_for(base_url, sleeps).page("BTCUSD", "1d", JAN_1_2019_NS, limit=10)
    assert len(page) == 10
    assert sleeps.calls == [3.0, 7.0]
    assert len(state.requests) == 3


def test_rate_limit_after_every_retry_raises(binance: tuple[str, BinanceState]) -> None:
    base_url, state = binance
    state.scripted = [Scripted(i, 429, "{}", {"Retry-After": "1"}) for i in range(3)]
    with pytest.raises(BinanceApiError, match="still HTTP 429 after 2 retries"):
        client_for(base_url, Sleeps(), max_retries=2).page("BTCUSD", "1d", JAN_1_2019_NS)


def test_used_weight_near_the_limit_waits_for_the_next_minute(binance: tuple[str, BinanceState]) -> None:
    base_url, state = binance
    state.weight_step = 5500
    sleeps = Sleeps()
    client = client_for(base_url, sleeps, page_limit=50)
    list(client.pages("BTCUSD", "1d", JAN_1_2019_NS, JUN_1_2019_NS))
    # weight 5500 >= 6000 * 0.9 after the first answer; the clock reads 29.5 s past the minute,
    # so each later request first waits 60 - 29.5 + 0.5 s
    assert sleeps.calls == [31.0, 31.0]


def test_malformed_page_stops_the_fetch_and_a_rerun_resumes_after_the_stored_bars(
    binance: tuple[str, BinanceState], mongo_db: Database[dict[str, Any]]
) -> None:
    base_url, state = binance
    store = MongoCandleStore(mongo_db)
    store.ensure_indexes()
    state.scripted = [Scripted(1, 200, '[[1548633600000, "3500.0", "oops"]]')]
    client = client_for(base_url, Sleeps(), page_limit=50)
    with pytest.raises(DataError, match=r"row 0: expected an array of 12 fields"):
        client.fetch_into(store, "BTCUSD", "1d", JAN_1_2019_NS, JUN_1_2019_NS)
    assert len(store.load("BTCUSD", "1d")) == 50
    report = client.fetch_into(store, "BTCUSD", "1d", JAN_1_2019_NS, JUN_1_2019_NS)
    assert report.added == 89
    assert int(state.requests[2][1]["startTime"]) == JAN_1_2019_NS // MS + 50 * 86_400_000
    stored = store.load("BTCUSD", "1d")
    assert len(stored) == 139
    assert [g.missing for g in store.gaps("BTCUSD", "1d")] == [12]


def test_futures_use_the_fapi_path_and_1500_bar_pages(binance: tuple[str, BinanceState]) -> None:
    base_url, state = binance
    client = client_for(base_url, Sleeps(), market="futures")
    pages = list(client.pages("BTCUSD", "1d", JAN_1_2019_NS))
    assert [len(p) for p in pages] == [139]
    assert state.requests[0][0] == "/fapi/v1/klines"
    assert state.requests[0][1]["limit"] == "1500"
    with pytest.raises(DataError, match=r"limit must be in 1\.\.1500 for futures, was 2000"):
        client.page("BTCUSD", "1d", JAN_1_2019_NS, limit=2000)
