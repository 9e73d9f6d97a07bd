"""The headers an event is published with, so a follower can read a large event without its body.

A SUCCESS event carries the whole result (up to MAX_RESULT_BYTES). Its envelope (every field but the
result) also travels in the `Backtest-Envelope` header, so the gateway's streams consume the events
stream headers-only (JetStream's `headers_only` consumers add `Nats-Msg-Size`) and never receive a result
they would only throw away: a stream's SUCCESS frame reads the result from the task store.
"""

from __future__ import annotations

import json

from backtest_core.contracts import BacktestEvent, BacktestSucceeded

from backtest_messaging.streams import MSG_ID_HEADER

EVENT_ENVELOPE_HEADER = "Backtest-Envelope"
MSG_SIZE_HEADER = "Nats-Msg-Size"  # set by JetStream on messages of a headers-only consumer


def publish_headers(message_id: str) -> dict[str, str]:
    """Return the headers of a JSON message on a stream: its de-duplication id and content type."""
    return {MSG_ID_HEADER: message_id, "content-type": "application/json"}


def event_headers(event: BacktestEvent) -> dict[str, str]:
    """Return the publish headers of `event`: `publish_headers`, and for a result its envelope."""
    headers = publish_headers(event.message_id)
    if isinstance(event, BacktestSucceeded):
        # ASCII JSON on one line: a header value may hold neither a line break nor raw UTF-8.
        envelope = event.model_dump(mode="json", exclude={"result"})
        headers[EVENT_ENVELOPE_HEADER] = json.dumps(envelope, ensure_ascii=True, separators=(",", ":"))
    return headers
