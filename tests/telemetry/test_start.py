"""`start_tracing` in a process: once, whatever the number of apps built in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace

from app.telemetry.tracing import API_SERVICE, WORKER_SERVICE, start_tracing, stop_tracing
from tests.telemetry.conftest import forget_tracer_provider


@pytest.fixture
def console_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    yield
    stop_tracing()
    forget_tracer_provider()


@pytest.mark.usefixtures("console_tracing")
def test_a_second_start_keeps_the_first_provider() -> None:
    first = start_tracing(API_SERVICE)
    assert first is not None
    assert trace.get_tracer_provider() is first
    assert start_tracing(WORKER_SERVICE) is first
    assert first.resource.attributes["service.name"] == API_SERVICE


def test_without_the_variables_nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert start_tracing(API_SERVICE) is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
