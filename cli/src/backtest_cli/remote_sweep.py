"""`backtest sweep --remote`: the platform runs the sweep (`POST /sweep/submit`), this command follows it.

It polls `GET /sweep/{id}` until `finished_at` is set (no trial runs any more), then prints
`GET /sweep/{id}/result`: the table of `backtest sweep`, or with `--json` the document as the gateway
sends it (the local `--json` contract plus `sweep_id`, `state`, `failure`, each trial's `task_id`).
Exit codes as `backtest submit`: 0 the sweep ended SUCCESS (whatever its trials' states); 1 it ended
FAILURE or CANCELLED (why on stderr), or the gateway could not be reached; 2 bad input, or the gateway
refused the request (validation, authentication, too many open sweeps); 130 interrupted (Ctrl-C), after
asking the gateway to cancel the sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from backtest_cli.remote import EXIT_FAILED, EXIT_OK, GatewayClient, RemoteError, _run, build_submission
from backtest_cli.sweep_output import sweep_text, trial_progress

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
POLL_INTERVAL_S = 0.5
DEFAULT_INTERVAL = "1d"  # as `backtest submit`
ENDED_COUNTS = ("done", "failed", "skipped", "cancelled")  # the trials that will not run any more


class SweepClient:
    """The gateway's /sweep API on a GatewayClient's connection; every method returns the decoded body."""

    def __init__(self, client: GatewayClient) -> None:
        self._client = client

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /sweep/submit."""
        return self._client._call("POST", "/sweep/submit", json=body)

    def status(self, sweep_id: str) -> dict[str, Any]:
        """GET /sweep/{sweep_id}."""
        return self._client._call("GET", f"/sweep/{sweep_id}")

    def result(self, sweep_id: str) -> dict[str, Any]:
        """GET /sweep/{sweep_id}/result."""
        return self._client._call("GET", f"/sweep/{sweep_id}/result")

    def cancel(self, sweep_id: str) -> dict[str, Any]:
        """POST /sweep/{sweep_id}/cancel."""
        return self._client._call("POST", f"/sweep/{sweep_id}/cancel")


def sweep_submission(args: argparse.Namespace) -> dict[str, Any]:
    """Build the body of POST /sweep/submit: `backtest submit`'s config and the search of the options."""
    search = {
        "space": list(args.grid),
        "method": args.method,
        "trials": args.trials,
        "seed": args.seed,
        "objective": args.objective,
        "min_trades": args.min_trades,
        "pbo_splits": args.pbo_splits,
    }
    return {**build_submission(args), "interval": args.interval or DEFAULT_INTERVAL, "search": search}


def follow(
    fetch_status: Callable[[], dict[str, Any]],
    ended_of: Callable[[dict[str, Any]], int],
    total: int,
    *,
    progress: bool,
) -> dict[str, Any]:
    """Poll `fetch_status` until its `finished_at` is set; return that status. The bar moves by what
    `ended_of` counts as ended (a sweep's trials, a walk-forward's folds) out of `total`."""
    with trial_progress(total, enabled=progress) as advance:
        shown = 0
        while True:
            status = fetch_status()
            ended = ended_of(status)
            if advance is not None and ended > shown:
                advance(ended - shown)
                shown = ended
            if status["finished_at"] is not None:
                return status
            time.sleep(POLL_INTERVAL_S)


def wait_until_finished(sweeps: SweepClient, sweep_id: str, total: int, *, progress: bool) -> dict[str, Any]:
    """Poll the sweep until it has finished; return that status. Ended trials move the bar."""
    return follow(
        lambda: sweeps.status(sweep_id),
        lambda status: sum(status["counts"][name] for name in ENDED_COUNTS),
        total,
        progress=progress,
    )


def cancel_interrupted(sweeps: SweepClient, sweep_id: str) -> int:
    """Ask the gateway to cancel the sweep after Ctrl-C; say what became of it; return 130."""
    try:
        sweeps.cancel(sweep_id)
        outcome = f"sweep {sweep_id} cancelled (its running trials are stopped)"
    except RemoteError as error:
        if error.code == "already_finished":
            outcome = f"sweep {sweep_id} had already ended"
        else:
            outcome = f"the cancel of sweep {sweep_id} failed, it may still run: {error}"
    print(f"backtest sweep: interrupted; {outcome}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _print_unsuccessful(sweep_id: str, status: dict[str, Any]) -> None:
    counts = status["counts"]
    ended = f"{counts['done']} of {counts['total']} trials done"
    why = f": {status['failure']}" if status.get("failure") else ""
    print(f"backtest sweep: sweep {sweep_id} ended {status['state']} ({ended}){why}", file=sys.stderr)


def handle_remote(args: argparse.Namespace) -> int:
    """Submit the sweep, follow it to its end, print its result (or why it did not succeed)."""

    def action(client: GatewayClient) -> int:
        sweeps = SweepClient(client)
        submitted = sweeps.submit(sweep_submission(args))
        sweep_id = submitted["sweep_id"]
        print(f"submitted sweep {sweep_id} ({submitted['trials']} trials)", file=sys.stderr)
        try:
            status = wait_until_finished(sweeps, sweep_id, submitted["trials"], progress=not args.no_progress)
        except KeyboardInterrupt:
            return cancel_interrupted(sweeps, sweep_id)
        if status["state"] != "SUCCESS":
            _print_unsuccessful(sweep_id, status)
            return EXIT_FAILED
        result = sweeps.result(sweep_id)
        print(json.dumps(result, allow_nan=False) if args.json else sweep_text(result))
        return EXIT_OK

    return _run(args, action)
