"""Failing strategies and cancellation through the whole platform (issue 3, "What it must show").

Over HTTP and at the same time: a good sma_cross backtest, an uploaded strategy that raises, one that
runs past the wall-clock limit and one that allocates past the memory limit; each failure ends FAILURE
with its own reason while the good one ends SUCCESS with the metrics of an in-process run. Then a
sleeping strategy is cancelled while it runs, and its container goes away. The services run as
processes with small sandbox limits (tests/e2e/conftest.py, PLATFORM_ENV).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from backtest_cli.token import create_token
from backtest_core.contracts.records import BACKTESTS_COLLECTION
from backtest_core.engine.run import run_backtest
from backtest_core.errors import StrategyLoadError, StrategyRuntimeError
from backtest_core.model.config import BacktestConfig
from backtest_core.strategy.loader import load_strategy_class
from backtest_marketdata.candle_store import MongoCandleStore
from backtest_testinfra.stack import JWT_SECRET, Stack
from docker import DockerClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WALL_CLOCK_S = 10
MEMORY_MB = 256
PLATFORM_ENV = {
    "RUNNER_WALL_CLOCK_S": str(WALL_CLOCK_S),
    "RUNNER_MEMORY_MB": str(MEMORY_MB),
    "RUNNER_SLOTS": "4",
}
LABEL_RUNNER = "io.backtest.runner_id"
LABEL_TASK = "io.backtest.task_id"
STREAM_TIMEOUT_S = 120.0
GONE_WAIT_S = 20.0

HEADER = "from backtest_core.strategy import BaseStrategy, Side, Signal\n"
RAISES = (
    HEADER
    + '''

class RefusesToTrade(BaseStrategy):
    """Raise on the first bar it sees."""

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        close = float(df.close[-1])
        raise RuntimeError(f"refusing to trade at close {close:.2f}")
'''
)
RAISE_LINE = next(n for n, line in enumerate(RAISES.splitlines(), 1) if "raise RuntimeError" in line)
SLEEPS = (
    HEADER
    + '''import time


class Sleeper(BaseStrategy):
    """Sleep half a second on every bar: a 2-year daily run needs about 6 minutes."""

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        time.sleep(0.5)
        return Signal(Side.NO)
'''
)
HOGS = (
    HEADER
    + '''

class Hog(BaseStrategy):
    """Keep 32 MiB blocks (written, so resident) until the sandbox's memory limit stops it."""

    def get_required_lookback(self):
        return 1

    def decide(self, df, interval, **p):
        hoard = []
        while True:
            hoard.append(b"\\x01" * (32 << 20))
'''
)
SYNTAX_ERROR = (
    HEADER
    + """

class Broken(BaseStrategy):
    def decide(self, df, interval, **p)
        return Signal(Side.NO)
"""
)
RANGE: dict[str, Any] = {"interval": "1d", "start": "2018-01-01T00:00:00Z", "end": "2020-01-01T00:00:00Z"}
GOOD: dict[str, Any] = {
    "strategy": "sma_cross",
    "params": {"fast": 7, "slow": 25},
    "symbols": ["BTCUSD", "ETHUSD"],
    **RANGE,
}
UPLOADED_RAISES: dict[str, Any] = {"strategy": {"user": "refuses_to_trade"}, "symbols": ["BTCUSD"], **RANGE}
TIMES_OUT: dict[str, Any] = {
    "strategy": {"source": SLEEPS, "class": "Sleeper"},
    "symbols": ["BTCUSD"],
    **RANGE,
}
OUT_OF_MEMORY: dict[str, Any] = {"strategy": {"source": HOGS, "class": "Hog"}, "symbols": ["BTCUSD"], **RANGE}
UNKNOWN_NAME: dict[str, Any] = {"strategy": "no_such_strategy", "symbols": ["BTCUSD"], **RANGE}
BAD_SYNTAX: dict[str, Any] = {
    "strategy": {"source": SYNTAX_ERROR, "class": "Broken"},
    "symbols": ["BTCUSD"],
    **RANGE,
}


def _token_headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(user, 'researcher', JWT_SECRET.encode(), ttl_s=3600)}"}


def _client(platform: Stack, user: str) -> httpx.Client:
    return httpx.Client(base_url=platform.gateway_url, headers=_token_headers(user), timeout=30)


def _submit(http: httpx.Client, body: dict[str, Any]) -> str:
    response = http.post("/backtest/submit", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def _stream(
    platform: Stack, task_id: str, user: str, cancel_at_progress: bool = False
) -> list[dict[str, Any]]:
    """Every frame of WS /backtest/stream/{task_id} until the server closes it with 1000.

    With `cancel_at_progress`, POST /backtest/cancel/{task_id} when the first PROGRESS frame arrives
    (the sandbox is running the strategy then) and record the response on that frame as `_cancel`.
    """
    url = platform.gateway_url.replace("http", "ws", 1) + f"/backtest/stream/{task_id}"
    frames: list[dict[str, Any]] = []
    with connect(url, additional_headers=_token_headers(user), open_timeout=10) as ws:
        while True:
            try:
                frame = json.loads(ws.recv(timeout=STREAM_TIMEOUT_S))
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1000, f"{closed}: {frames}"
                return frames
            except TimeoutError:
                pytest.fail(f"no event for {STREAM_TIMEOUT_S} s; got {frames}\n{platform.log_tails()}")
            if (
                cancel_at_progress
                and frame["state"] == "PROGRESS"
                and not any("_cancel" in f for f in frames)
            ):
                with _client(platform, user) as http:
                    frame["_cancel"] = http.post(f"/backtest/cancel/{task_id}").status_code
            frames.append(frame)


def _document(platform: Stack, task_id: str) -> dict[str, Any]:
    """The task's stored document once the results writer has stored its terminal state."""
    deadline = time.monotonic() + 30
    while True:
        doc = platform.db[BACKTESTS_COLLECTION].find_one({"_id": task_id})
        if doc is not None and doc["state"] in {"SUCCESS", "FAILURE", "CANCELLED"}:
            return dict(doc)
        if time.monotonic() > deadline:
            pytest.fail(f"task {task_id} not stored as finished: {doc}\n{platform.log_tails()}")
        time.sleep(0.2)


def _sandboxes(docker_client: Any, platform: Stack, task_id: str | None = None) -> list[Any]:
    labels = [f"{LABEL_RUNNER}={platform.runner_ids()[0]}"]
    if task_id is not None:
        labels.append(f"{LABEL_TASK}={task_id}")
    return list(docker_client.containers.list(all=True, filters={"label": labels}))


def _container_actions(docker_client: Any, platform: Stack, task_id: str) -> list[str]:
    """Docker's create/start/die/destroy events of this task's sandboxes since the platform started."""
    labels = [f"{LABEL_RUNNER}={platform.runner_ids()[0]}", f"{LABEL_TASK}={task_id}"]
    events = docker_client.events(
        since=platform.started_at, until=int(time.time()) + 1, filters={"label": labels, "type": "container"},
        decode=True,
    )  # fmt: skip
    return [e["Action"] for e in events if e["Action"] in ("create", "start", "die", "destroy")]


@dataclass(frozen=True)
class Run:
    task_id: str
    frames: list[dict[str, Any]]
    document: dict[str, Any]

    @property
    def states(self) -> list[str]:
        return [frame["state"] for frame in self.frames]

    @property
    def terminal(self) -> dict[str, Any]:
        return self.frames[-1]


@pytest.fixture(scope="module")
def runs(platform: Stack) -> dict[str, Run]:
    """Submit the good backtest and the three failing ones at once, follow each to its end."""
    users = {"good": "gina", "raises": "rafa", "timeout": "tim", "oom": "olga"}
    with _client(platform, users["raises"]) as http:
        created = http.post("/strategy/create", json={"name": "refuses_to_trade", "source": RAISES})
        assert created.status_code == 201, created.text
    bodies = {"good": GOOD, "raises": UPLOADED_RAISES, "timeout": TIMES_OUT, "oom": OUT_OF_MEMORY}
    task_ids = {}
    for name, body in bodies.items():
        with _client(platform, users[name]) as http:
            task_ids[name] = _submit(http, body)
    frames = {name: _stream(platform, task_id, users[name]) for name, task_id in task_ids.items()}
    return {name: Run(task_ids[name], frames[name], _document(platform, task_ids[name])) for name in bodies}


def test_good_backtest_next_to_failing_ones_succeeds_with_the_metrics_of_a_local_run(
    platform: Stack, runs: dict[str, Run]
) -> None:
    good = runs["good"]
    config = BacktestConfig.model_validate(GOOD)
    store = MongoCandleStore(platform.db)
    local = run_backtest(config, {symbol: store.load(symbol, "1d") for symbol in config.symbols})

    assert good.states[:2] == ["PENDING", "STARTED"] and good.states[-1] == "SUCCESS"
    assert good.document["state"] == "SUCCESS"
    assert good.document["result"]["metrics"] == pytest.approx(
        local.metrics.model_dump(mode="json"), rel=1e-12, abs=1e-12
    )
    assert good.terminal["result"]["metrics"] == pytest.approx(
        local.metrics.model_dump(mode="json"), rel=1e-12, abs=1e-12
    )
    assert local.metrics.trade_count > 0


def test_the_good_and_failing_backtests_ran_while_the_slow_one_ran(
    platform: Stack, runs: dict[str, Run], docker_client: DockerClient
) -> None:
    """Every sandbox of the batch started before the one that runs until the wall-clock limit died."""
    labels = [f"{LABEL_RUNNER}={platform.runner_ids()[0]}"]
    events = docker_client.events(
        since=platform.started_at, until=int(time.time()) + 1, filters={"label": labels, "type": "container"},
        decode=True,
    )  # fmt: skip
    order = [
        (e["Action"], e["Actor"]["Attributes"][LABEL_TASK]) for e in events if e["Action"] in ("start", "die")
    ]
    slow_died = order.index(("die", runs["timeout"].task_id))
    started_before = {task for action, task in order[:slow_died] if action == "start"}

    # other tests of this module may start sandboxes meanwhile: the batch's must all be among them
    assert {run.task_id for run in runs.values()} <= started_before


def test_strategy_that_raises_fails_with_the_users_traceback_and_line(
    platform: Stack, runs: dict[str, Run]
) -> None:
    raised = runs["raises"]
    config = BacktestConfig.model_validate(raised.document["config"])
    store = MongoCandleStore(platform.db)
    with pytest.raises(StrategyRuntimeError) as local:
        run_backtest(config, {"BTCUSD": store.load("BTCUSD", "1d")})
    failure = raised.document["failure"]

    assert raised.states[-1] == "FAILURE" and raised.document["state"] == "FAILURE"
    assert failure["reason"] == "strategy_error"
    assert failure["message"] == str(local.value)
    assert failure["message"].startswith(
        "RefusesToTrade raised RuntimeError on BTCUSD: refusing to trade at close "
    )
    assert (
        f'  File "<user_strategy>", line {RAISE_LINE}, in decide\n'
        '    raise RuntimeError(f"refusing to trade at close {close:.2f}")\n'
    ) in failure["traceback"]
    assert failure["traceback"] == local.value.traceback_text
    assert "backtest_core" not in failure["traceback"]
    assert raised.terminal["failure"] == failure
    assert raised.document["strategy_ref"] == {"owner": "rafa", "name": "refuses_to_trade", "version": 1}


def test_strategy_past_the_wall_clock_limit_fails_with_timeout(runs: dict[str, Run]) -> None:
    slow = runs["timeout"]

    assert slow.states[:2] == ["PENDING", "STARTED"] and slow.states[-1] == "FAILURE"
    assert slow.document["failure"]["reason"] == "timeout"
    assert slow.document["failure"]["message"] == (
        f"the backtest ran longer than the wall-clock limit of {WALL_CLOCK_S} s"
    )
    assert slow.terminal["failure"]["reason"] == "timeout"
    assert "RETRY" not in slow.states


def test_strategy_past_the_memory_limit_fails_with_out_of_memory(runs: dict[str, Run]) -> None:
    hog = runs["oom"]
    message = hog.document["failure"]["message"]

    assert hog.states[-1] == "FAILURE" and "RETRY" not in hog.states
    assert hog.document["failure"]["reason"] == "out_of_memory"
    assert f"memory limit of {MEMORY_MB} MiB" in message
    assert hog.terminal["failure"]["reason"] == "out_of_memory"


def test_each_failed_run_used_one_container_that_is_gone(
    platform: Stack, runs: dict[str, Run], docker_client: DockerClient
) -> None:
    for name in ("raises", "timeout", "oom"):
        task_id = runs[name].task_id

        assert _container_actions(docker_client, platform, task_id) == [
            "create",
            "start",
            "die",
            "destroy",
        ], name
        assert _sandboxes(docker_client, platform, task_id) == [], name


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (UNKNOWN_NAME, "strategy", "unknown built-in strategy 'no_such_strategy'; built-ins are ["),
        (BAD_SYNTAX, "source", "syntax error in strategy source at line 5"),
    ],
    ids=["unknown_name", "syntax_error"],
)
def test_invalid_strategy_is_refused_at_submit_naming_what_was_wrong(
    platform: Stack, body: dict[str, Any], field: str, message: str
) -> None:
    """The gateway refuses what the sandbox would refuse, without running user code (422, nothing queued)."""
    with _client(platform, "ivan") as http:
        response = http.post("/backtest/submit", json=body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("strategy_rejected", field)
    assert message in error["message"]


def test_strategy_only_the_sandbox_can_load_fails_with_the_loaders_message(platform: Stack) -> None:
    """A module/class strategy is looked up inside the sandbox image: a missing one is FAILURE
    invalid_strategy with the loader's message."""
    spec = {"module": "no_such_module", "class": "Nothing"}
    with pytest.raises(StrategyLoadError) as loader:
        load_strategy_class(spec)
    with _client(platform, "ivan") as http:
        task_id = _submit(http, {"strategy": spec, "symbols": ["BTCUSD"], **RANGE})
    frames = _stream(platform, task_id, "ivan")
    doc = _document(platform, task_id)

    assert frames[-1]["state"] == "FAILURE" and doc["state"] == "FAILURE"
    assert doc["failure"]["reason"] == "invalid_strategy"
    assert doc["failure"]["message"] == str(loader.value)
    assert frames[-1]["failure"]["message"] == str(loader.value)


def test_invalid_strategy_messages_name_what_was_wrong() -> None:
    with pytest.raises(StrategyLoadError) as unknown:
        load_strategy_class("no_such_strategy")
    with pytest.raises(StrategyLoadError) as syntax:
        load_strategy_class({"source": SYNTAX_ERROR, "class": "Broken"})

    assert str(unknown.value).startswith("unknown built-in strategy 'no_such_strategy'; built-ins are [")
    assert "'sma_cross'" in str(unknown.value)
    assert str(syntax.value) == "syntax error in strategy source, line 5: expected ':'"


@pytest.fixture(scope="module")
def cancelled(platform: Stack) -> Run:
    """Submit the sleeping strategy, cancel it at its first progress report, follow it to its end."""
    body = {"strategy": {"source": SLEEPS, "class": "Sleeper"}, "symbols": ["ETHUSD"], **RANGE}
    with _client(platform, "cora") as http:
        task_id = _submit(http, body)
    frames = _stream(platform, task_id, "cora", cancel_at_progress=True)
    return Run(task_id, frames, _document(platform, task_id))


def test_cancelling_a_running_backtest_ends_cancelled(cancelled: Run) -> None:
    cancel_codes = [frame["_cancel"] for frame in cancelled.frames if "_cancel" in frame]

    assert cancel_codes == [202]
    assert cancelled.states[:2] == ["PENDING", "STARTED"]
    assert cancelled.states[-1] == "CANCELLED"
    assert cancelled.document["state"] == "CANCELLED"
    assert cancelled.document.get("failure") is None


def test_cancelled_backtest_container_is_stopped_and_removed(
    platform: Stack, cancelled: Run, docker_client: DockerClient
) -> None:
    deadline = time.monotonic() + GONE_WAIT_S
    while _sandboxes(docker_client, platform, cancelled.task_id) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert _sandboxes(docker_client, platform, cancelled.task_id) == []
    assert _container_actions(docker_client, platform, cancelled.task_id) == [
        "create",
        "start",
        "die",
        "destroy",
    ]


def test_cancelling_a_finished_backtest_is_refused(platform: Stack, cancelled: Run) -> None:
    with _client(platform, "cora") as http:
        again = http.post(f"/backtest/cancel/{cancelled.task_id}")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_finished"


def test_no_sandbox_container_is_left_after_the_module(
    platform: Stack, runs: dict[str, Run], cancelled: Run, docker_client: DockerClient
) -> None:
    deadline = time.monotonic() + GONE_WAIT_S
    while _sandboxes(docker_client, platform) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert _sandboxes(docker_client, platform) == []
