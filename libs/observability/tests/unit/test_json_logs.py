"""A log line is one JSON object carrying the trace and span id of the span current when it was logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from backtest_observability import JsonFormatter, configure_logging, configure_telemetry
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class NoExport:
    otlp_endpoint: str | None = None


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("backtest-test"))
    logger = logging.getLogger("backtest_observability.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_log_line_inside_a_span_is_json_with_that_spans_trace_and_span_id(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    exporter = InMemorySpanExporter()
    tracer = configure_telemetry("backtest-test", NoExport(), exporter=exporter).get_tracer("test")

    with tracer.start_as_current_span("work") as span:
        logger.info("queued task %s after %d ms", "t1", 42, extra={"task_id": "t1"})
    context = span.get_span_context()

    [entry] = lines(stream)
    assert entry["message"] == "queued task t1 after 42 ms"
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")
    assert len(str(entry["trace_id"])) == 32 and len(str(entry["span_id"])) == 16
    assert entry["level"] == "INFO" and entry["service"] == "backtest-test"
    assert entry["logger"] == "backtest_observability.test" and entry["task_id"] == "t1"
    assert str(entry["time"]).endswith("+00:00")
    [finished] = exporter.get_finished_spans()
    assert finished.context is not None and finished.context.trace_id == context.trace_id


def test_log_line_outside_any_span_has_null_trace_id(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured

    logger.warning("no span here")

    [entry] = lines(stream)
    assert entry["trace_id"] is None and entry["span_id"] is None
    assert entry["level"] == "WARNING"


def test_exception_is_logged_inside_the_one_json_line(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured

    try:
        raise ValueError("fast must be < slow, was fast=30, slow=10")
    except ValueError:
        logger.exception("validation failed")

    assert len(stream.getvalue().splitlines()) == 1
    [entry] = lines(stream)
    assert "ValueError: fast must be < slow, was fast=30, slow=10" in str(entry["exception"])


def test_configure_logging_replaces_root_handlers_with_one_json_handler() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        configure_logging("backtest-scheduler", logging.DEBUG, stream)
        logging.getLogger("backtest_scheduler.service").debug("resumed %d tasks", 3)
        handlers = list(root.handlers)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)

    assert len(handlers) == 1
    [entry] = lines(stream)
    assert entry["service"] == "backtest-scheduler" and entry["message"] == "resumed 3 tasks"
    assert entry["level"] == "DEBUG"


def test_access_log_line_has_its_token_query_value_and_bearer_header_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

    path = f"/backtest/stream/ab?x=1&token={jwt}"

    # uvicorn's access-log call: client, method, path with query, HTTP version, status
    logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", path, "1.1", 101)
    logger.info("sent Authorization: Bearer %s", jwt)
    logger.info("retry with access_token=%s&keep=1", jwt)

    messages = [entry["message"] for entry in lines(stream)]
    assert messages == [
        '127.0.0.1:5 - "GET /backtest/stream/ab?x=1&token=[REDACTED] HTTP/1.1" 101',
        "sent Authorization: Bearer [REDACTED]",
        "retry with access_token=[REDACTED]&keep=1",
    ]
    assert all(jwt not in line for line in stream.getvalue().splitlines())
