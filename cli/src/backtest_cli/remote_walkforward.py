"""`backtest walkforward --remote`: the platform runs the walk-forward (`POST /walkforward/submit`), this
command follows it.

It polls `GET /walkforward/{id}` until `finished_at` is set, then prints `GET /walkforward/{id}/result`:
the fold table of `backtest walkforward`, or with `--json` the same document as the local `--json`.
Exit codes as `backtest sweep --remote`: 0 SUCCESS; 1 it ended FAILURE or CANCELLED (why on stderr) or
the gateway could not be reached; 2 bad input or the gateway refused the request; 130 interrupted
(Ctrl-C), after asking the gateway to cancel the walk-forward.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from backtest_cli.remote import EXIT_FAILED, EXIT_OK, GatewayClient, RemoteError, _run, build_submission
from backtest_cli.remote_sweep import DEFAULT_INTERVAL, EXIT_INTERRUPTED, follow

FOLD_OPTIONS = ("train", "test", "step", "gap")


def walkforward_submission(args: argparse.Namespace) -> dict[str, Any]:
    """Build the body of POST /walkforward/submit: `backtest submit`'s config, the search and the folds."""
    search = {
        "space": list(args.grid),
        "method": args.method,
        "trials": args.trials,
        "seed": args.seed,
        "objective": args.objective,
        "min_trades": args.min_trades,
    }
    folds: dict[str, Any] = {
        name: getattr(args, name) for name in FOLD_OPTIONS if getattr(args, name) is not None
    }
    return {
        **build_submission(args),
        "interval": args.interval or DEFAULT_INTERVAL,
        "search": search,
        **folds,
        "anchored": args.anchored,
    }


def wait_until_finished(
    client: GatewayClient, walkforward_id: str, folds: int, *, progress: bool
) -> dict[str, Any]:
    """Poll the status until `finished_at` is set; return that status. Ended folds move the bar."""
    return follow(
        lambda: client._call("GET", f"/walkforward/{walkforward_id}"),
        lambda status: int(status["counts"]["done"]),
        folds,
        progress=progress,
    )


def _cancel_interrupted(client: GatewayClient, walkforward_id: str) -> int:
    try:
        client._call("POST", f"/walkforward/{walkforward_id}/cancel")
        outcome = f"walk-forward {walkforward_id} cancelled"
    except RemoteError as error:
        outcome = f"the cancel of walk-forward {walkforward_id} failed, it may still run: {error}"
    print(f"backtest walkforward: interrupted; {outcome}", file=sys.stderr)
    return EXIT_INTERRUPTED


def handle_remote(args: argparse.Namespace, text: Any) -> int:
    """Submit the walk-forward, follow it to its end, print its result (`text` renders the table)."""

    def action(client: GatewayClient) -> int:
        submitted = client._call("POST", "/walkforward/submit", json=walkforward_submission(args))
        walkforward_id = submitted["walkforward_id"]
        print(f"submitted walk-forward {walkforward_id} ({submitted['folds']} folds)", file=sys.stderr)
        try:
            status = wait_until_finished(
                client, walkforward_id, submitted["folds"], progress=not args.no_progress
            )
        except KeyboardInterrupt:
            return _cancel_interrupted(client, walkforward_id)
        if status["state"] != "SUCCESS":
            why = f": {status['failure']}" if status.get("failure") else ""
            print(f"backtest walkforward: {walkforward_id} ended {status['state']}{why}", file=sys.stderr)
            return EXIT_FAILED
        result = client._call("GET", f"/walkforward/{walkforward_id}/result")
        print(json.dumps(result, allow_nan=False) if args.json else text(result))
        return EXIT_OK

    return _run(args, action)
