"""One error shape everywhere: `{"error": {"code": ..., "message": ..., "field": ...}}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine code, a human message, and the offending field if any."""

    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error the API reports on purpose, with its HTTP status and code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, dict[str, str | None]]:
        """Return the JSON body of this error."""
        return error_body(self.code, self.message, self.field)


class Unauthorized(ApiError):
    """No valid token."""

    status_code = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """Valid token, but the role does not allow the action."""

    status_code = 403
    code = "forbidden"


class TaskNotFound(ApiError):
    """No such task for this caller (foreign tasks look exactly like missing ones)."""

    status_code = 404
    code = "task_not_found"

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no backtest with task_id {task_id!r}", field="task_id")


class Conflict(ApiError):
    """The request is valid but the task's state does not allow it."""

    status_code = 409
    code = "conflict"


class NotFinished(Conflict):
    """Results were asked for before the task succeeded."""

    code = "not_finished"


class NoResult(Conflict):
    """The task ended without a result (failed or cancelled)."""

    code = "no_result"


class AlreadyFinished(Conflict):
    """Cancel was asked for a task that already ended."""

    code = "already_finished"


class IdempotencyKeyReused(ApiError):
    """The same Idempotency-Key was sent with a different config."""

    status_code = 422
    code = "idempotency_key_reused"


class NotFound(ApiError):
    """No such resource for this caller (foreign resources look exactly like missing ones)."""

    status_code = 404
    code = "not_found"


class StrategyRejected(ApiError):
    """Uploaded strategy source failed a static check (size, syntax, no strategy class)."""

    status_code = 422
    code = "strategy_rejected"


class RateLimited(ApiError):
    """The caller's token bucket is empty; retry after `retry_after_s` seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooManyStreams(ApiError):
    """The caller already holds the most WebSocket streams a user may have open."""

    status_code = 429
    code = "too_many_streams"


class QuotasUnavailable(Exception):
    """The shared quota store (NATS KV) did not answer; callers let the request through and log it."""


class BrokerUnavailable(ApiError):
    """NATS did not acknowledge the command in time."""

    status_code = 503
    code = "broker_unavailable"


def error_body(code: str, message: str, field: str | None = None) -> dict[str, dict[str, str | None]]:
    """Build the JSON body of an error."""
    return {"error": {"code": code, "message": message, "field": field}}


_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}

_LOCATION_ROOTS = {"body", "query", "path", "header", "cookie"}


def _field_of(loc: tuple[int | str, ...]) -> str | None:
    parts = [str(part) for part in loc]
    if parts and parts[0] in _LOCATION_ROOTS:
        parts = parts[1:]
    # pydantic puts the union member's tag into the location (e.g. "str", "BuiltinStrategy"); drop it.
    parts = [p for p in parts if not (p[:1].isupper() or p in {"str", "int", "float", "bool"})]
    return ".".join(parts) or None


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _field_of(tuple(first.get("loc", ())))
    messages = []
    for err in errors:
        where = _field_of(tuple(err.get("loc", ())))
        messages.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    body = error_body("validation_error", "; ".join(dict.fromkeys(messages)), field)
    return JSONResponse(body, status_code=422)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response of `app` use the one error shape."""
    app.exception_handler(ApiError)(_api_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(Exception)(_unexpected)


class SweepNotFound(ApiError):
    """No such sweep for this caller (a foreign sweep looks exactly like a missing one)."""

    status_code = 404
    code = "sweep_not_found"

    def __init__(self, sweep_id: str) -> None:
        super().__init__(f"no sweep with sweep_id {sweep_id!r}", field="sweep_id")


class SweepTooLarge(ApiError):
    """The search has more trials than one sweep may run."""

    status_code = 422
    code = "sweep_too_large"


class TooManySweeps(ApiError):
    """The caller already has as many open sweeps as a user may."""

    status_code = 429
    code = "too_many_sweeps"


class InvalidQuery(ApiError):
    """A query parameter names something that does not exist (e.g. a sort key or an axis)."""

    status_code = 422
    code = "invalid_query"
