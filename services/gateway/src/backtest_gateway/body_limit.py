"""Refuse HTTP request bodies over `request_body_max_bytes` with 413, before the app reads them whole."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backtest_gateway.errors import error_body


class BodyLimitMiddleware:
    """ASGI middleware: 413 on a Content-Length over `max_bytes`, or once a streamed body passes it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the received bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        received = 0
        too_large = refused = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # stop reading; whatever the app answers becomes 413
                too_large = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def limited_send(message: Message) -> None:
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(send, received)

        await self.app(scope, counting_receive, limited_send)

    async def _refuse(self, send: Send, size: int) -> None:
        message = f"request body must be at most {self.max_bytes} bytes, was {size} bytes or more"
        body = json.dumps(error_body("payload_too_large", message, None)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
