"""JSON logs: one object per line with time, level, service, logger, message, trace_id and span_id."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

from opentelemetry import trace

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged as a field.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

# Credentials that can reach a log line: `?token=` / `access_token=` query values (WebSocket URLs in
# uvicorn's access log) and `Bearer <token>` headers.
_CREDENTIALS = re.compile(r"(?i)((?:\b|_)(?:access_)?token=|\bbearer\s+)[^\s&\"'#]+")
REDACTED = "[REDACTED]"


def redact_credentials(text: str) -> str:
    """Return `text` with token query values and bearer tokens replaced by [REDACTED]."""
    return _CREDENTIALS.sub(lambda m: m.group(1) + REDACTED, text)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object; trace_id/span_id (hex) come from the span current at the call.

    Credentials in the message and the exception text are redacted (`redact_credentials`).

    `trace_id` and `span_id` are null outside a span. `time` is ISO-8601 UTC with microseconds.
    """

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a single line of JSON."""
        span = trace.get_current_span().get_span_context()
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": redact_credentials(record.getMessage()),
            "trace_id": format(span.trace_id, "032x") if span.is_valid else None,
            "span_id": format(span.span_id, "016x") if span.is_valid else None,
        }
        if record.exc_info:
            entry["exception"] = redact_credentials(self.formatException(record.exc_info))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(service: str, level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every logger's records to `stream` (default stderr) as JSON lines; replaces root handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
