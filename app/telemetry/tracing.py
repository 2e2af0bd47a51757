"""One process's tracing: a tracer provider with the exporters `switch` names, FastAPI's own
server spans (they appear once a provider is set), and the official Celery and httpx
instrumentations. Celery's puts the trace context in each task message's headers and takes
it out in the worker, so a task's span is a child of the request that sent it; httpx's makes
a client span of every HTTP call to ComfyUI. Only the API and the worker processes trace.

The SDK is imported only when tracing is on: off, the process pays nothing for it."""

from __future__ import annotations

import os
import threading
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from fastapi.telemetry import TelemetryConfig

from app.telemetry.switch import CONSOLE, TracingSettingError, trace_exporters

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

API_SERVICE = "comfy-sweep-api"
WORKER_SERVICE = "comfy-sweep-worker"
# Probes and scrapes come every few seconds; their traces would bury the ones worth reading.
UNTRACED_API_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_lock = threading.Lock()
_installed: list[TracerProvider] = []

__all__ = [
    "API_SERVICE",
    "UNTRACED_API_PATHS",
    "WORKER_SERVICE",
    "TracingSettingError",
    "api_telemetry",
    "check_tracing_settings",
    "install_tracing",
    "start_tracing",
    "stop_tracing",
]


def check_tracing_settings() -> None:
    """Raise `TracingSettingError` now for an `OTEL_*` value this build cannot honour (in a
    worker's main process, rather than in each pool process it forks)."""
    trace_exporters(os.environ)


def start_tracing(service_name: str) -> TracerProvider | None:
    """Trace this process if the `OTEL_*` variables ask for it; None when they do not.
    `service_name` is the default for `OTEL_SERVICE_NAME`. Once per process: later calls
    return the provider already installed."""
    exporters = trace_exporters(os.environ)
    if not exporters:
        return None
    with _lock:
        if _installed:  # before building processors: each starts an export thread
            return _installed[0]
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return install_tracing(service_name, [BatchSpanProcessor(_exporter(n)) for n in exporters])


def install_tracing(service_name: str, processors: Sequence[SpanProcessor]) -> TracerProvider:
    """Set the global tracer provider with these span processors and instrument Celery and
    httpx; what `start_tracing` does once it has decided, and what tests call with an
    in-memory exporter."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    with _lock:
        if _installed:
            return _installed[0]
        provider = TracerProvider(resource=_resource(service_name))
        for processor in processors:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        for instrumentor in _instrumentors():
            instrumentor.instrument(tracer_provider=provider)
        _installed.append(provider)
        return provider


def stop_tracing() -> None:
    """Export what is buffered and take the instrumentation off. A Celery pool process
    leaves through `os._exit`, which skips the SDK's own flush at exit."""
    with _lock:
        if not _installed:
            return
        provider = _installed.pop()
    for instrumentor in _instrumentors():
        instrumentor.uninstrument()
    provider.shutdown()


class _Instrumentor(Protocol):
    def instrument(self, **kwargs: Any) -> None: ...
    def uninstrument(self, **kwargs: Any) -> None: ...


def _instrumentors() -> tuple[_Instrumentor, ...]:
    """Each a process-wide singleton: instrument() patches Celery's signals, aiohttp's client
    sessions (ComfyUI) and httpx's transport classes (webhooks), uninstrument() undoes it."""
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    # The Celery instrumentation ships no type hints.
    return (
        CeleryInstrumentor(),  # type: ignore[no-untyped-call]
        AioHttpClientInstrumentor(),
        HTTPXClientInstrumentor(),
    )


def api_telemetry() -> TelemetryConfig:
    """FastAPI's own telemetry settings: spans from the provider `start_tracing` set, none for
    probes and scrapes, and no second exporter of FastAPI's (`FASTAPI_OTEL_AUTO_CONFIGURE`)."""
    return {"exclude": _untraced, "auto_configure": False}


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_API_PATHS


def _resource(service_name: str) -> Resource:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    # Reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without either, the SDK's
    # placeholder name gives way to ours.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    return resource


def _exporter(name: str) -> SpanExporter:
    if name == CONSOLE:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Endpoint, headers, timeout, compression and certificates from OTEL_EXPORTER_OTLP_*.
    return OTLPSpanExporter()
