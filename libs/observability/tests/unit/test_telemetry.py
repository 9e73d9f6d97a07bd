"""Tracer providers per service, OTLP endpoint handling, and trace context carried in NATS headers."""

from __future__ import annotations

import pytest
from backtest_observability import TRACEPARENT, configure_telemetry, extract_context, inject_headers
from backtest_observability.telemetry import spans_endpoint
from opentelemetry import trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class Settings:
    def __init__(self, otlp_endpoint: str | None) -> None:
        self.otlp_endpoint = otlp_endpoint


def processors(provider: object) -> list[object]:
    return list(provider._active_span_processor._span_processors)  # type: ignore[attr-defined]


def test_spans_carry_the_service_name_and_reach_the_test_exporter() -> None:
    exporter = InMemorySpanExporter()
    provider = configure_telemetry("backtest-runner", Settings(None), exporter=exporter)

    with provider.get_tracer("t").start_as_current_span("container run"):
        pass

    [span] = exporter.get_finished_spans()
    assert span.name == "container run"
    assert span.resource.attributes["service.name"] == "backtest-runner"


def test_no_endpoint_means_no_exporting_processor() -> None:
    assert processors(configure_telemetry("backtest-results", Settings(None))) == []


def test_endpoint_adds_a_batching_otlp_processor() -> None:
    provider = configure_telemetry("backtest-results", Settings("http://otel-collector:4318"))
    try:
        [processor] = processors(provider)
        assert isinstance(processor, BatchSpanProcessor)
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://otel-collector:4318", "http://otel-collector:4318/v1/traces"),
        ("http://otel-collector:4318/", "http://otel-collector:4318/v1/traces"),
        ("https://collector.example:443/custom/traces", "https://collector.example:443/custom/traces"),
    ],
)
def test_spans_endpoint_appends_the_traces_path_only_to_a_bare_url(base: str, url: str) -> None:
    assert spans_endpoint(base) == url


def test_endpoint_that_is_not_an_http_url_is_rejected_with_what_it_was() -> None:
    with pytest.raises(ValueError, match=r"http\(s\) URL .* was 'otel-collector:4317'"):
        spans_endpoint("otel-collector:4317")


def test_trace_context_round_trips_through_headers_and_keeps_other_headers() -> None:
    tracer = configure_telemetry("backtest-gateway", Settings(None)).get_tracer("t")
    with tracer.start_as_current_span("submit") as span:
        headers = inject_headers({"Nats-Msg-Id": "m1"})
    sent = span.get_span_context()

    received = trace.get_current_span(extract_context(headers)).get_span_context()

    assert headers["Nats-Msg-Id"] == "m1"
    assert headers[TRACEPARENT].startswith(f"00-{sent.trace_id:032x}-{sent.span_id:016x}-")
    assert received.trace_id == sent.trace_id and received.span_id == sent.span_id
    assert received.is_remote


def test_no_current_span_injects_nothing_and_missing_headers_extract_to_no_span() -> None:
    assert inject_headers({"Nats-Msg-Id": "m1"}) == {"Nats-Msg-Id": "m1"}
    assert not trace.get_current_span(extract_context(None)).get_span_context().is_valid
    assert not trace.get_current_span(extract_context({TRACEPARENT: "garbage"})).get_span_context().is_valid
