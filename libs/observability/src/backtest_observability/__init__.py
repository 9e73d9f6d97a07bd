"""Observability shared by the services: tracer providers, trace context in NATS headers, JSON logs.

Only services import this package; `backtest_core` never does (the engine stays pure).
"""

from backtest_observability.headers import TRACEPARENT, extract_context, inject_headers
from backtest_observability.json_logs import JsonFormatter, configure_logging
from backtest_observability.telemetry import TelemetrySettings, configure_telemetry, spans_endpoint

__all__ = [
    "TRACEPARENT",
    "JsonFormatter",
    "TelemetrySettings",
    "configure_logging",
    "configure_telemetry",
    "extract_context",
    "inject_headers",
    "spans_endpoint",
]
