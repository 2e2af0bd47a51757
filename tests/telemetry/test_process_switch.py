"""The API process as the OTEL_* variables leave it: untouched by default (nothing installed,
nothing imported), traced to the console exporter when asked. Each case is a fresh Python,
since a process sets its tracer provider only once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.conftest import REDIS_URL
from tests.support.standin_process import REPO_ROOT

SERVE_TWO_REQUESTS = f"""
import json, sys
from fastapi.testclient import TestClient
from opentelemetry import trace
from app.main import create_app
from app.settings import Settings
from app.telemetry.tracing import stop_tracing

app = create_app(Settings(
    database_url="postgresql+psycopg://nobody@127.0.0.1:1/never_connected",
    redis_url={REDIS_URL!r},
))
with TestClient(app) as client:
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/healthz").status_code == 200
state = {{
    "provider": type(trace.get_tracer_provider()).__name__,
    "imported": sorted(
        name for name in sys.modules
        if name.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation"))
    ),
}}
stop_tracing()  # flushes the batch of spans to stdout
print("STATE " + json.dumps(state))
"""


def serve_two_requests(**otel: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The process's tracing state, and the spans it printed to the console exporter."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(otel, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", SERVE_TWO_REQUESTS],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    printed, _, state_line = done.stdout.rpartition("STATE ")
    return json.loads(state_line), console_spans(printed)


def console_spans(text: str) -> list[dict[str, Any]]:
    decoder, spans, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        span, at = decoder.raw_decode(text, at)
        spans.append(span)
    return spans


def test_by_default_nothing_is_installed_or_even_imported() -> None:
    state, spans = serve_two_requests()
    assert state == {"provider": "ProxyTracerProvider", "imported": []}
    assert spans == []


def test_the_console_exporter_prints_a_server_span_per_request_but_not_for_probes() -> None:
    state, spans = serve_two_requests(OTEL_TRACES_EXPORTER="console")
    assert state["provider"] == "TracerProvider"
    servers = [span for span in spans if span["kind"] == "SpanKind.SERVER"]
    assert [span["attributes"]["url.path"] for span in servers] == ["/openapi.json"]
    assert servers[0]["resource"]["attributes"]["service.name"] == "comfy-sweep-api"


def test_otel_service_name_names_the_service() -> None:
    _, spans = serve_two_requests(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="farm-api")
    assert {span["resource"]["attributes"]["service.name"] for span in spans} == {"farm-api"}
