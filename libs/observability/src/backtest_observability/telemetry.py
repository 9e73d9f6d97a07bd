"""Build a service's TracerProvider: OTLP/HTTP export when an endpoint is set, an optional test exporter."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

TRACES_PATH = "/v1/traces"


class TelemetrySettings(Protocol):
    """What `configure_telemetry` reads from a service's settings (e.g. `GATEWAY_OTLP_ENDPOINT`)."""

    @property
    def otlp_endpoint(self) -> str | None:
        """OTLP/HTTP base URL of the collector, e.g. `http://otel-collector:4318`; None = no export."""
        ...


def spans_endpoint(base_url: str) -> str:
    """Return the OTLP/HTTP traces URL for a collector URL: `<base>/v1/traces` unless a path is given."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"otlp_endpoint must be an http(s) URL like http://otel-collector:4318, was {base_url!r}"
        )
    if parts.path.strip("/"):
        return base_url
    return base_url.rstrip("/") + TRACES_PATH


def configure_telemetry(
    service_name: str, settings: TelemetrySettings, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Return a new TracerProvider whose spans carry `service.name` = `service_name`.

    Spans are batched to `settings.otlp_endpoint` over OTLP/HTTP when it is set, and none are
    exported when it is None. `exporter` (tests: an `InMemorySpanExporter`) receives every span
    synchronously as it ends. The provider is not made global: the composition root hands it to the
    service's adapters, so several services can share one process with distinct service names.
    Call `shutdown()` on it when the service stops, to flush the batch.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if settings.otlp_endpoint is not None:
        otlp = OTLPSpanExporter(endpoint=spans_endpoint(settings.otlp_endpoint))
        provider.add_span_processor(BatchSpanProcessor(otlp))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider
