"""TracingMiddleware: one SERVER span per HTTP request, continuing a caller's `traceparent` if sent."""

from __future__ import annotations

from typing import Any

from backtest_observability import extract_context
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SERVER_ERROR = 500


class TracingMiddleware:
    """ASGI middleware: the span is current while the route runs, so commands it publishes join the trace.

    The span is named `<METHOD> <route template>` (e.g. `POST /backtest`) once routing matched, else
    `<METHOD> <path>`; it records the response status code. WebSocket and lifespan scopes pass through.
    """

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self._app = app
        self._tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        method: str = scope["method"]
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        attributes: dict[str, Any] = {"http.request.method": method, "url.path": scope["path"]}
        with self._tracer.start_as_current_span(
            f"{method} {scope['path']}",
            context=extract_context(carrier),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= SERVER_ERROR:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self._app(scope, receive, send_traced)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None)
                if isinstance(template, str):
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
