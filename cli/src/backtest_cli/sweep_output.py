"""What `backtest sweep` shows, here or with `--remote`: the table of a sweep's JSON document, and the
progress bar of its finished trials. One implementation for both: the local sweep's `as_json()` and the
platform's `GET /sweep/{id}/result` are the same document."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from backtest_research.sweep import Objective

TABLE_ROWS = 10  # best trials shown in the table


def _shown(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def objective_of(document: Mapping[str, Any]) -> Objective:
    """The objective a document states: {"metric", "direction": "max"|"min", "min_trades"}."""
    spec = document["objective"]
    return Objective(spec["metric"], spec["direction"] == "max", spec["min_trades"])


def sweep_text(document: Mapping[str, Any]) -> str:
    """The counts, the best trials by the objective and the overfitting statistics, as a table."""
    objective = objective_of(document)
    ranked = sorted(
        (t for t in document["trials"] if t["metrics"] and objective.score(t["metrics"]) is not None),
        key=lambda t: -(objective.score(t["metrics"]) or 0.0),
    )
    counts = document["counts"]
    lines = [
        f"Trials {counts['total']}: {counts['done']} done, {counts['failed']} failed, "
        f"{counts['skipped']} skipped; objective {objective.metric} "
        f"{'max' if objective.maximize else 'min'}, at least {objective.min_trades} trades",
        f"{'id':>5}  {'params':<40} {objective.metric:>14} {'final_equity':>16} {'trades':>7}",
    ]
    for trial in ranked[:TABLE_ROWS]:
        metrics = trial["metrics"]
        params = " ".join(f"{k}={v}" for k, v in trial["params"].items())
        lines.append(
            f"{trial['id']:>5}  {params:<40} {_shown(metrics.get(objective.metric)):>14} "
            f"{metrics['final_equity']:>16,.2f} {metrics['trade_count']:>7}"
        )
    stats = document["overfitting"]
    if stats is None:
        lines.append("Overfitting: not computed (the sweep has not ended)")
    else:
        lines.append(
            f"Overfitting over {stats['trials']} trials: PBO {_shown(stats['pbo'])} "
            f"({stats['pbo_splits']} splits), deflated Sharpe {_shown(stats['deflated_sharpe'])}, "
            f"PSR {_shown(stats['psr'])}"
        )
    for trial in document["trials"]:
        if trial["state"] == "FAILURE":
            lines.append(f"trial {trial['id']} failed: {trial['reason']}")
    return "\n".join(lines)


@contextmanager
def trial_progress(total: int, *, enabled: bool) -> Iterator[Any]:
    """Yield `advance(n)` of a tqdm bar of finished trials on stderr (only on a terminal), or None."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, file=sys.stderr, disable=None, delay=1.0, leave=False, unit="trial") as bar:
        yield bar.update
