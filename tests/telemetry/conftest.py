"""Tracing fixtures: traces kept in memory, never sent anywhere (no collector).

- `spans`: this process traced the way `start_tracing` would (global provider, Celery and
  aiohttp and httpx instrumented), into an in-memory exporter read by the test; all undone after.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from app.telemetry.tracing import API_SERVICE, install_tracing, stop_tracing


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    install_tracing(API_SERVICE, [SimpleSpanProcessor(exporter)])
    try:
        yield exporter
    finally:
        stop_tracing()
        forget_tracer_provider()


def forget_tracer_provider() -> None:
    """The API lets a process set its tracer provider once; each test here sets its own. What
    opentelemetry-test-utils' `reset_trace_globals` does."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
