"""`backtest strategy upload|list|show|versions` on the real gateway app; packages and NAME@VERSION."""

from __future__ import annotations

import json
import threading
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
import uvicorn
from backtest_cli.local_data import load_symbols, resolve_paths
from backtest_cli.main import build_parser, main
from backtest_cli.remote import build_submission
from backtest_core.engine.run import run_backtest
from backtest_core.model.config import BacktestConfig, SourceStrategy
from backtest_gateway.main import create_app
from backtest_gateway.settings import GatewaySettings
from faststream.nats import NatsBroker, TestNatsBroker
from gateway_fakes import (
    InMemoryEventFeed,
    InMemoryMarketData,
    InMemoryQuotaStore,
    InMemoryStrategyStore,
    InMemoryTaskStore,
)

REPO = Path(__file__).resolve().parents[2]
BTC_2018 = (
    REPO / "data" / "binance" / "spot" / "monthly" / "klines" / "BTCUSD" / "1d" / "BTCUSD-1d-2018-*.csv"
)
SECRET = "strategy-cli-secret-0123456789abcdef-01"
ENTRY = """from backtest_core.strategy import NO_SIGNAL, BaseStrategy, Param, Side, Signal
from helpers import sma


class AboveSma(BaseStrategy):
    params = {"n": Param(5, "window, bars", minimum=2)}

    def get_required_lookback(self):
        return 5

    def decide(self, df, interval, **p):
        level = sma(df.close, p["n"])
        if df.close[-1] > level * 1.02:
            return Signal(Side.BUY)
        if df.close[-1] < level * 0.98:
            return Signal(Side.SELL)
        return NO_SIGNAL
"""
HELPERS = "def sma(close, n):\n    return float(close[-n:].mean())\n"
SINGLE = "from backtest_core.strategy import BaseStrategy, Side, Signal\n\n\nclass Buy(BaseStrategy):\n"
SINGLE += "    def decide(self, df, interval, **p):\n        return Signal(Side.BUY)\n"


def package_folder(root: Path) -> Path:
    folder = root / "above_sma"
    folder.mkdir()
    (folder / "strategy.py").write_text(ENTRY)
    (folder / "helpers.py").write_text(HELPERS)
    return folder


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main(["run", "--data", str(BTC_2018), *args, "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_local_run_of_a_package_folder_and_its_zip_equal_run_backtest_of_the_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = package_folder(tmp_path)
    archive = tmp_path / "above_sma.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in folder.iterdir():
            zf.write(file, f"above_sma/{file.name}")
    config = BacktestConfig(
        strategy=SourceStrategy(source=ENTRY, files={"helpers.py": HELPERS}), symbols=["BTCUSD"]
    )
    loaded = load_symbols(resolve_paths([str(BTC_2018)]), symbol=None, interval=None)["BTCUSD"]
    expected = run_backtest(config, {"BTCUSD": loaded.candles})

    from_folder = run_json(capsys, "--strategy", str(folder))
    from_zip = run_json(capsys, "--strategy", str(archive))

    assert len(loaded.files) == 12
    assert from_folder["final_equity"] == expected.metrics.final_equity
    assert from_folder["trade_count"] == expected.metrics.trade_count
    assert from_zip == from_folder
    assert expected.metrics.trade_count > 5


def test_local_run_of_a_package_with_a_bad_module_name_is_exit_2_stating_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = package_folder(tmp_path)
    (folder / "Bad-Name.py").write_text("x = 1\n")

    code = main(["run", "--data", str(BTC_2018), "--strategy", str(folder), "--no-progress"])

    assert code == 2
    assert "module paths must be lower-case letters, digits and _" in capsys.readouterr().err


@pytest.fixture
async def gateway_url(unused_tcp_port: int) -> AsyncIterator[str]:
    """Serve the real gateway app (in-memory stores and broker) on a free port; yield its URL."""
    settings = GatewaySettings(jwt_secret=SECRET, nats_url="nats://127.0.0.1:1")
    broker = NatsBroker(settings.nats_url)
    app = create_app(
        settings,
        broker=broker,
        store=InMemoryTaskStore(),
        feed=InMemoryEventFeed(),
        strategy_store=InMemoryStrategyStore(),
        market=InMemoryMarketData(),
        quotas=InMemoryQuotaStore(),
    )
    async with TestNatsBroker(broker):
        config = uvicorn.Config(app, host="127.0.0.1", port=unused_tcp_port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{unused_tcp_port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@pytest.fixture
def cli(gateway_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Return `cli(*args) -> (exit code, stdout, stderr)` for `backtest strategy ...` as user alice."""
    settings = GatewaySettings(jwt_secret=SECRET, nats_url="nats://127.0.0.1:1")
    now = int(time.time())
    claims = {"sub": "alice", "role": "researcher", "iss": settings.jwt_issuer, "aud": settings.jwt_audience}
    token = jwt.encode({**claims, "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")
    monkeypatch.setenv("BACKTEST_TOKEN", token)
    monkeypatch.setenv("BACKTEST_GATEWAY", gateway_url)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["strategy", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_upload_of_a_folder_then_of_a_file_makes_versions_1_and_2_and_both_stay_readable(cli, tmp_path):
    folder = package_folder(tmp_path)
    single = tmp_path / "buy.py"
    single.write_text(SINGLE)

    first = cli("upload", str(folder), "--param", "n=7")
    second = cli("upload", str(single), "--name", "above_sma", "--description", "always buy")
    versions = cli("versions", "above_sma", "--json")
    shown = cli("show", "above_sma@1", "--json")
    listed = cli("list")

    assert first[:2] == (0, "uploaded above_sma version 1 (class AboveSma, 1 helper modules)\n"
                         "run it: backtest submit --strategy above_sma@1 --symbols ...\n")  # fmt: skip
    assert second[0] == 0 and "uploaded above_sma version 2 (class Buy)" in second[1]
    body = json.loads(versions[1])
    assert [(v["version"], v["class_name"], v["files"], v["params"]) for v in body["versions"]] == [
        (1, "AboveSma", ["helpers.py"], {"n": 7}),
        (2, "Buy", [], {}),
    ]
    assert body["latest"] == 2
    assert (json.loads(shown[1])["source"], json.loads(shown[1])["files"]) == (ENTRY, {"helpers.py": HELPERS})
    assert any(line.split() == ["above_sma", "user", "2", "Buy"] for line in listed[1].splitlines())
    assert any(line.split() == ["sma_cross", "builtin"] for line in listed[1].splitlines())


def test_show_of_a_missing_version_is_exit_2_with_the_gateways_message(cli, tmp_path):
    cli("upload", str(package_folder(tmp_path)))

    code, _, err = cli("show", "above_sma@9")

    assert code == 2
    assert "strategy 'above_sma' has no version 9" in err


def test_upload_of_a_path_that_is_no_strategy_is_exit_2_naming_what_is_expected(cli, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")

    code, _, err = cli("upload", str(notes))

    assert code == 2
    assert f"expected a .py file, a folder or a .zip, was {str(notes)!r}" in err


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("boll_rev@3", {"user": "boll_rev", "version": 3}),
        ("user:boll_rev", {"user": "boll_rev"}),
        ("user:boll_rev@12", {"user": "boll_rev", "version": 12}),
        ("sma_cross", "sma_cross"),
    ],
)
def test_submit_strategy_option_names_a_stored_strategy_and_version(option, expected):
    args = build_parser("submit").parse_args(["submit", "--strategy", option, "--symbols", "BTCUSD"])

    assert build_submission(args)["strategy"] == expected


def test_submit_with_a_malformed_stored_strategy_is_exit_2_stating_the_forms(capsys):
    code = main(["submit", "--strategy", "user:Boll-Rev", "--symbols", "BTCUSD", "--token", "t"])

    assert code == 2
    assert "a stored strategy is user:NAME, user:NAME@VERSION or NAME@VERSION" in capsys.readouterr().err
