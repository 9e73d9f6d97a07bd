"""W3C trace context (`traceparent`, `tracestate`) in NATS message headers."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"

_PROPAGATOR = TraceContextTextMapPropagator()


def inject_headers(
    headers: Mapping[str, str] | None = None, context: Context | None = None
) -> dict[str, str]:
    """Return a copy of `headers` plus the trace context of `context` (default: the current one).

    Without a valid current span the headers come back unchanged (no `traceparent`).
    """
    carrier = dict(headers or {})
    _PROPAGATOR.inject(carrier, context=context)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> Context:
    """Return the context carried by NATS headers (an empty context when there is none or it is malformed)."""
    return _PROPAGATOR.extract(dict(headers or {}))
