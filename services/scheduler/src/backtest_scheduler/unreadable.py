"""What the scheduler makes of a message it cannot read: whose it is, and a reason a user can act on.

Pure; no I/O. A message that fails validation (a non-finite number sent as null, a missing field)
still names its task, so the task ends as FAILURE with the validation errors instead of waiting forever.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from backtest_core.contracts import Failure, FailureReason
from pydantic import ValidationError

_TASK_ID = re.compile(r"^[0-9a-f]{32}$")
_SHOWN_ERRORS = 5


@dataclass(frozen=True, slots=True)
class Sender:
    """The ids an unreadable message carries, each None when absent or malformed."""

    kind: str | None
    task_id: str | None
    user_id: str | None
    attempt: int | None


def sender_of(raw: bytes) -> Sender:
    """Return the kind, task id, user id and attempt written in a raw JSON message (None if absent)."""
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        return Sender(None, None, None, None)
    kind, task_id, user_id, attempt = (data.get(k) for k in ("kind", "task_id", "user_id", "attempt"))
    return Sender(
        kind=kind if isinstance(kind, str) else None,
        task_id=task_id if isinstance(task_id, str) and _TASK_ID.match(task_id) else None,
        user_id=user_id if isinstance(user_id, str) and 0 < len(user_id) <= 100 else None,
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
    )


def failure_of(what: str, error: ValidationError, reason: FailureReason) -> Failure:
    """Return a Failure naming each invalid field of `what`, e.g. "config.cash: Input should be ..."."""
    problems = [
        f"{'.'.join(str(p) for p in _field_path(e['loc']))}: {e['msg']} (was {repr(e.get('input'))[:100]})"
        for e in error.errors()[:_SHOWN_ERRORS]
    ]
    more = error.error_count() - len(problems)
    tail = f"; and {more} more" if more > 0 else ""
    return Failure(reason=reason, message=f"{what} could not be read: {'; '.join(problems)}{tail}"[:10_000])


def _field_path(loc: tuple[int | str, ...]) -> list[int | str]:
    """Drop the union tags pydantic puts in a location (e.g. "succeeded", "submit", "float", "backtest")."""
    tags = {"submit", "cancel", "started", "progressed", "succeeded", "failed", "int", "float", "str", "bool"}
    tags |= {"backtest", "trials"}  # a task's result: backtest_core.model.results.TaskResult
    return [part for part in loc if part not in tags]
