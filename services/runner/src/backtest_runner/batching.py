"""Which jobs may share one sandbox run, and how many jobs one fetch may take. Pure; no I/O.

Jobs share a sandbox only when they belong to the same user and name the same strategy (the same
built-in, or the same uploaded code by digest), interval and date range: the strategy runs in a fresh
forked process per job, and whatever one job could do to the next, the same code could do to itself,
so a batch never lets a user's code touch another user's result or another strategy's cached one. The
shared interval and range let the batch load each symbol's candles once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from typing import TypeVar

from backtest_core.contracts import RunBacktestJob

T = TypeVar("T")


def batch_key(job: RunBacktestJob) -> str:
    """Return the key of the jobs this one may share a sandbox run with."""
    shared = job.config.model_dump(
        mode="json", by_alias=True, include={"strategy", "interval", "start", "end"}
    )
    return json.dumps([job.user_id, shared], sort_keys=True, separators=(",", ":"))


def group_by_key(items: Iterable[T], key: Callable[[T], str], size_max: int) -> list[list[T]]:
    """Group items by key in order of first appearance, each group at most `size_max` long."""
    if size_max < 1:
        raise ValueError(f"size_max must be >= 1, was {size_max}")
    open_groups: dict[str, list[T]] = {}
    groups: list[list[T]] = []
    for item in items:
        k = key(item)
        group = open_groups.get(k)
        if group is None or len(group) >= size_max:
            group = open_groups[k] = []
            groups.append(group)
        group.append(item)
    return groups


def fair_share(pending: int, waiting: int, limit: int) -> int:
    """Return how many jobs one fetch may take: the pending jobs split evenly between this fetch and
    the `waiting` fetches of other idle runner slots, at least 1 and at most `limit`."""
    return max(1, min(limit, math.ceil(max(pending, 0) / (max(waiting, 0) + 1))))
