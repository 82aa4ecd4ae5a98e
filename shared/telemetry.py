"""OpenTelemetry and logs.

One trace follows a case across services: the HTTP request that wrote an event, the relay that published
it, and each consumer that folded it. The W3C `traceparent` travels in the NATS headers (and in the
envelope, CloudEvents' distributed-tracing extension).
Spans and metrics are recorded and exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; logs are one line per event,
`key=value` ids at the end so `grep case_id=...` finds a case's whole story.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

tracer = trace.get_tracer("suivi")
meter = metrics.get_meter("suivi")

_IDS = (
    "case_id",
    "event_id",
    "stream_seq",
    "procedure",
    "consumer",
    "request_id",
    "subscription_id",
    "notification_id",
    "message_id",
)


class _IdsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in _IDS if getattr(record, k, None) is not None)
        return f"{line} {ids}" if ids else line


def setup_logging(*, service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_IdsFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h.formatter, _IdsFormatter)]
    root.addHandler(handler)
    root.setLevel(level)


def _exports(signal: str) -> bool:
    """Whether spans or metrics (`signal`: TRACES, METRICS) have somewhere to go (an OTLP endpoint)."""
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def setup_telemetry(*, service: str) -> None:
    """Install tracer and meter providers for `service`, unless the process already has SDK ones.

    Only where they are exported (OTEL_EXPORTER_OTLP_ENDPOINT): without an exporter, recording spans and
    adding up metrics would cost every request for nothing, and the API's no-op providers stay (trace
    context still travels: a request that brings a `traceparent` passes it on). Sampling follows the
    SDK's standard OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default: every trace, parent-based).
    """
    resource = Resource.create({"service.name": f"suivi-{service}", "service.namespace": "suivi"})
    if _exports("TRACES") and not isinstance(trace.get_tracer_provider(), TracerProvider):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    if _exports("METRICS") and not isinstance(metrics.get_meter_provider(), MeterProvider):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))


def tracing() -> bool:
    """Whether spans are recorded (an SDK tracer provider: exported, or a test's in-memory one)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def producer_span(
    name: str, *, traceparent: str | None, attributes: Mapping[str, Any]
) -> Iterator[str | None]:
    """A PRODUCER span, child of the request that wrote the event; yields the traceparent to send."""
    parent = propagate.extract({"traceparent": traceparent} if traceparent else {})
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.PRODUCER, attributes=attributes):
        yield current_traceparent()


@contextmanager
def consumer_span(
    headers: Mapping[str, str] | None, *, name: str, attributes: Mapping[str, Any]
) -> Iterator[None]:
    """A CONSUMER span continuing the trace the message's `traceparent` header names."""
    parent = propagate.extract(dict(headers or {}))
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes):
        yield
