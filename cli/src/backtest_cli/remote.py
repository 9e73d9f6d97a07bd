"""`backtest submit|status|results|cancel|list`: the gateway's client (HTTP + WebSocket progress).

Exit codes: 0 success; 1 the backtest failed or was cancelled, or the gateway could not be reached;
2 bad input (an option, or the gateway rejected the request: validation, authentication, not found).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
from backtest_core.contracts import MAX_RESULT_BYTES, TaskState
from backtest_core.model.config import BacktestConfig
from backtest_core.model.results import BacktestResult, PeriodReturn, SymbolMetrics

from backtest_cli.config_options import add_config_options, config_values
from backtest_cli.report_file import add_report_option, write_report
from backtest_cli.run import UsageError, parse_params, parse_strategy
from backtest_cli.run_report import report_text, settings_rows, strategy_label
from backtest_cli.strategy_option import stored_strategy_ref

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_GATEWAY = "http://127.0.0.1:8000"
TERMINAL = ("SUCCESS", "FAILURE", "CANCELLED")
POLL_INTERVAL_S = 1.0
RESULTS_WAIT_S = 30.0  # the results writer stores a finished state shortly after the event
TRADES_PAGE = 5_000  # trades per results page: the gateway's largest page


class RemoteError(Exception):
    """The gateway answered with an error (its code, message and field), or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class GatewayClient:
    """A thin client of the gateway's /backtest API; every method returns the decoded JSON body."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def submit(self, config: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """POST /backtest/submit."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/backtest/submit", json=config, headers=headers)

    def status(self, task_id: str) -> dict[str, Any]:
        """GET /backtest/status/{task_id}."""
        return self._call("GET", f"/backtest/status/{task_id}")

    def results(self, task_id: str) -> dict[str, Any]:
        """GET /backtest/results/{task_id}, every page of trades and equity points joined into one result."""
        path = f"/backtest/results/{task_id}"
        return self.rest_of_result(path, self._call("GET", path, params={"trades_limit": TRADES_PAGE}))

    def rest_of_result(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Fetch the pages after `body` (its `page` says which) and return the body with the whole result."""
        result = body["result"]
        trades, equity, page = list(result["trades"]), list(result["equity_curve"]), body.get("page")
        while page and (page["trades_next_offset"] is not None or page["equity_next_offset"] is not None):
            query = {
                "trades_offset": page["trades_next_offset"] or page["trades_total"],
                "trades_limit": TRADES_PAGE,
                "equity_offset": page["equity_next_offset"] or page["equity_total"],
            }
            more = self._call("GET", path, params=query)
            trades += more["result"]["trades"]
            equity += more["result"]["equity_curve"]
            page = more["page"]
        whole = {key: value for key, value in body.items() if key != "page"}
        return {**whole, "result": {**result, "trades": trades, "equity_curve": equity}}

    def cancel(self, task_id: str) -> dict[str, Any]:
        """POST /backtest/cancel/{task_id}."""
        return self._call("POST", f"/backtest/cancel/{task_id}")

    def list_backtests(self, limit: int, offset: int, state: str | None = None) -> dict[str, Any]:
        """GET /backtest/list: one page of the caller's backtests, newest first."""
        query: dict[str, str | int] = {"limit": limit, "offset": offset}
        if state is not None:
            query["state"] = state
        return self._call("GET", "/backtest/list", params=query)

    def events(self, task_id: str) -> Iterator[dict[str, Any]]:
        """Yield the task's events from WS /backtest/stream/{task_id} until the server closes it."""
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        url = "ws" + self.base_url.removeprefix("http") + f"/backtest/stream/{task_id}"
        headers = {"Authorization": f"Bearer {self._token}"}
        # The SUCCESS frame carries the whole result (up to MAX_RESULT_BYTES of JSON): allow such frames.
        big = 2 * MAX_RESULT_BYTES
        with connect(url, additional_headers=headers, open_timeout=10, max_size=big) as ws:
            while True:
                try:
                    frame = json.loads(ws.recv())
                except ConnectionClosed:
                    return
                if "error" in frame:
                    raise _remote_error(frame, status=None)
                yield frame

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise RemoteError(f"cannot reach the gateway at {self.base_url}: {error}") from None
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise RemoteError(f"HTTP {response.status_code} from {path}: {response.text[:200]}") from None
        if response.is_error:
            raise _remote_error(body, status=response.status_code)
        return body


def _remote_error(body: dict[str, Any], *, status: int | None) -> RemoteError:
    error = body.get("error") or {}
    field = f" (field {error['field']})" if error.get("field") else ""
    prefix = f"HTTP {status} " if status else ""
    message = f"{prefix}{error.get('code', 'error')}: {error.get('message', body)}{field}"
    return RemoteError(message, status=status, code=error.get("code"))


# --- rendering ------------------------------------------------------------------------------------


def results_json(body: dict[str, Any]) -> dict[str, Any]:
    """Flatten a results response: task, metrics at the top level (like `backtest run --json`), the rest."""
    result = body["result"]
    return {
        "task_id": body["task_id"],
        "state": body["state"],
        "cached_from": body.get("cached_from"),
        **result["metrics"],
        "rejected_proposals": result["rejected_proposals"],
        "engine_version": result["engine_version"],
        "settings": result["config"],
        "per_symbol": result["per_symbol"],
        "trades": result["trades"],
        "equity_curve": result["equity_curve"],
    }


def results_text(body: dict[str, Any]) -> str:
    """Return a table of the task, its settings, its metrics and the per-symbol breakdown."""
    result = body["result"]
    config = BacktestConfig.model_validate(result["config"])
    cached = f" (cached from {body['cached_from']})" if body.get("cached_from") else ""
    rows = [
        ("Task", body["task_id"] + cached),
        *settings_rows(config),
        ("Symbols / interval", f"{','.join(config.symbols)} / {config.interval}"),
    ]
    per_symbol = [SymbolMetrics.model_validate(item) for item in result.get("per_symbol", [])]
    yearly = [PeriodReturn.model_validate(item) for item in result.get("yearly_returns", [])]
    return report_text(rows, result["metrics"], result.get("rejected_proposals", 0), per_symbol, yearly)


def list_text(page: dict[str, Any]) -> str:
    """Return one row per backtest (task, state, strategy, symbols, interval, created) and the page's span."""
    rows = [("Task", "State", "Strategy", "Symbols", "Interval", "Created")]
    for item in page["items"]:
        config = BacktestConfig.model_validate(item["config"]) if item.get("config") else None
        rows.append(
            (
                item["task_id"],
                item["state"],
                "-" if config is None else strategy_label(config.strategy),
                "-" if config is None else ",".join(config.symbols),
                "-" if config is None else config.interval,
                item.get("created_at") or "-",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = ["  ".join([*(f"{v:<{w}}" for v, w in zip(row, widths, strict=False)), row[-1]]) for row in rows]
    first, shown = page["offset"] + 1, len(page["items"])
    span = f"backtests {first} to {first + shown - 1} of {page['total']}" if shown else "no backtests here"
    return "\n".join([*lines, span] if shown else [span])


def status_text(body: dict[str, Any]) -> str:
    """Return the status as `key  value` lines."""
    progress = body.get("progress")
    rows = [
        ("Task", body["task_id"]),
        ("State", body["state"]),
        (
            "Progress",
            "-" if progress is None else f"{progress * 100:.1f}% {body.get('stage') or ''}".rstrip(),
        ),
        ("Created", body.get("created_at") or "-"),
        ("Updated", body.get("updated_at") or "-"),
    ]
    if body.get("failure"):
        failure = body["failure"]
        rows.append(("Failure", f"{failure['reason']}: {failure['message']}"))
    return "\n".join(f"{label:<9}{value}" for label, value in rows)


# --- commands -------------------------------------------------------------------------------------


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway",
        default=os.environ.get("BACKTEST_GATEWAY", DEFAULT_GATEWAY),
        help=f"gateway URL (default $BACKTEST_GATEWAY or {DEFAULT_GATEWAY})",
    )
    parser.add_argument("--token", default=None, help="access token (default $BACKTEST_TOKEN)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `submit`, `status`, `results` and `cancel` to the `backtest` parser."""
    submit = subparsers.add_parser("submit", help="run a backtest on the platform and follow its progress")
    _add_common(submit)
    submit.add_argument(
        "--strategy", required=True, help="built-in name, module:Class or path/to/file.py[:Class]"
    )
    submit.add_argument("--symbols", required=True, help="comma-separated symbols, e.g. BTCUSD,ETHUSD")
    submit.add_argument("--interval", default="1d", help="bar interval (default 1d)")
    submit.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="repeat it")
    add_config_options(submit)
    submit.add_argument("--idempotency-key", help="resubmitting with the same key returns the same task")
    submit.add_argument("--no-wait", action="store_true", help="print the task id and return at once")
    submit.add_argument("--json", action="store_true", help="print the result as one JSON object")
    submit.set_defaults(handler=handle_submit)
    for name, help_text, handler in (
        ("status", "show a backtest's state and progress", handle_status),
        ("results", "show a finished backtest's metrics", handle_results),
        ("cancel", "cancel a backtest that has not finished", handle_cancel),
    ):
        command = subparsers.add_parser(name, help=help_text)
        _add_common(command)
        command.add_argument("task_id", metavar="TASK_ID")
        command.add_argument("--json", action="store_true", help="print the response as JSON")
        if name == "results":
            add_report_option(command)
        command.set_defaults(handler=handler)
    listing = subparsers.add_parser("list", help="list your backtests, newest first")
    _add_common(listing)
    listing.add_argument("--state", choices=[state.value for state in TaskState], help="only this state")
    listing.add_argument("--limit", type=int, default=50, help="backtests per page (default 50)")
    listing.add_argument("--offset", type=int, default=0, help="backtests to skip (default 0)")
    listing.add_argument("--json", action="store_true", help="print the page as JSON")
    listing.set_defaults(handler=handle_list)


def _client(args: argparse.Namespace) -> GatewayClient:
    token = args.token or os.environ.get("BACKTEST_TOKEN")
    if not token:
        raise UsageError(
            "option --token: a token is needed (or set BACKTEST_TOKEN); see `backtest token create`"
        )
    return GatewayClient(args.gateway, token)


def _run(args: argparse.Namespace, action: Any) -> int:
    try:
        client = _client(args)
        try:
            code: int = action(client)
            return code
        finally:
            client.close()
    except UsageError as error:
        print(f"backtest {args.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RemoteError as error:
        print(f"backtest {args.command}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT if error.status is not None and 400 <= error.status < 500 else EXIT_FAILED


def build_submission(args: argparse.Namespace) -> dict[str, Any]:
    """Build the JSON config of `backtest submit` (the gateway validates it and names bad fields)."""
    try:
        stored = stored_strategy_ref(args.strategy)
    except ValueError as error:
        raise UsageError(f"option --strategy: {error}") from None
    strategy = stored if stored is not None else parse_strategy(args.strategy)
    config: dict[str, Any] = {
        "strategy": strategy
        if isinstance(strategy, str | dict)
        else strategy.model_dump(mode="json", by_alias=True),
        "symbols": [s.strip() for s in args.symbols.split(",") if s.strip()],
        "interval": args.interval,
        "params": parse_params(args.param),
    }
    for field, value in config_values(args).items():
        config[field] = value.isoformat() if isinstance(value, datetime) else value
    return config


def follow(client: GatewayClient, task_id: str) -> dict[str, Any]:
    """Show a progress bar on stderr until the task ends; return its terminal event (or final status)."""
    from tqdm import tqdm
    from websockets.exceptions import WebSocketException

    bar = tqdm(total=100, unit="%", file=sys.stderr, disable=None, leave=False, desc=task_id[:8])
    last: dict[str, Any] = {"task_id": task_id, "state": "PENDING"}
    try:
        try:
            for event in client.events(task_id):
                last = event
                if event["state"] == "PROGRESS":
                    bar.update(round(event["fraction"] * 100) - bar.n)
                    bar.set_postfix_str(event.get("stage", ""), refresh=False)
                else:
                    bar.set_description_str(f"{task_id[:8]} {event['state']}")
                if event["state"] in TERMINAL:
                    return last
        except (OSError, TimeoutError, WebSocketException) as error:  # no WebSocket (proxy?): poll instead
            print(f"backtest submit: progress stream unavailable ({error}); polling", file=sys.stderr)
        while last["state"] not in TERMINAL:
            time.sleep(POLL_INTERVAL_S)
            last = client.status(task_id)
            bar.update(round((last.get("progress") or 0.0) * 100) - bar.n)
        return last
    finally:
        bar.close()


def wait_for_results(
    client: GatewayClient, task_id: str, timeout_s: float = RESULTS_WAIT_S
) -> dict[str, Any]:
    """GET the results, retrying while the results writer has not yet stored the finished state."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.results(task_id)
        except RemoteError as error:
            if error.code != "not_finished" or time.monotonic() > deadline:
                raise
        time.sleep(POLL_INTERVAL_S / 4)


def _print_results(body: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(results_json(body), allow_nan=False) if as_json else results_text(body))


def _print_unsuccessful(task_id: str, terminal: dict[str, Any]) -> None:
    failure = terminal.get("failure") or {}
    why = f": {failure.get('reason')}: {failure.get('message')}" if failure else ""
    print(f"backtest {task_id} ended {terminal['state']}{why}", file=sys.stderr)
    if failure.get("traceback"):
        print(failure["traceback"], file=sys.stderr)


def handle_submit(args: argparse.Namespace) -> int:
    """Submit, follow the progress, then print the metrics (or why it failed)."""

    def action(client: GatewayClient) -> int:
        submitted = client.submit(build_submission(args), args.idempotency_key)
        task_id = submitted["task_id"]
        if args.no_wait:
            print(json.dumps(submitted) if args.json else task_id)
            return EXIT_OK
        print(f"submitted {task_id}", file=sys.stderr)
        terminal = follow(client, task_id)
        if terminal["state"] != "SUCCESS":
            _print_unsuccessful(task_id, terminal)
            return EXIT_FAILED
        if "result" in terminal:  # the SUCCESS frame carries the result's first page: fetch the rest
            body = {"task_id": task_id, "state": "SUCCESS", "cached_from": terminal.get("cached_from")}
            first = {**body, "page": terminal.get("page"), "result": terminal["result"]}
            _print_results(client.rest_of_result(f"/backtest/results/{task_id}", first), args.json)
        else:
            _print_results(wait_for_results(client, task_id), args.json)
        return EXIT_OK

    return _run(args, action)


def handle_status(args: argparse.Namespace) -> int:
    """Print a task's state and progress."""

    def action(client: GatewayClient) -> int:
        body = client.status(args.task_id)
        print(json.dumps(body) if args.json else status_text(body))
        return EXIT_OK

    return _run(args, action)


def handle_results(args: argparse.Namespace) -> int:
    """Print a finished task's metrics."""

    def action(client: GatewayClient) -> int:
        body = client.results(args.task_id)
        _print_results(body, args.json)
        if args.report is not None:
            result = BacktestResult.model_validate(body["result"])
            write_report(args.report, result, title=f"Backtest {args.task_id}")
        return EXIT_OK

    return _run(args, action)


def handle_list(args: argparse.Namespace) -> int:
    """Print one page of the caller's backtests."""

    def action(client: GatewayClient) -> int:
        page = client.list_backtests(args.limit, args.offset, args.state)
        print(json.dumps(page) if args.json else list_text(page))
        return EXIT_OK

    return _run(args, action)


def handle_cancel(args: argparse.Namespace) -> int:
    """Request cancellation of a task."""

    def action(client: GatewayClient) -> int:
        body = client.cancel(args.task_id)
        print(
            json.dumps(body) if args.json else f"cancel requested for {body['task_id']} (was {body['state']})"
        )
        return EXIT_OK

    return _run(args, action)
