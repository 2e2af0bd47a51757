"""One trace from a sweep's submission to ComfyUI: the API's server span, the Celery task it
sends (through the real Redis, run by an in-process worker), and the task's HTTP call to the
ComfyUI stand-in, each the parent of the next."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.comfy.client import ComfyClient
from app.main import create_app
from app.queue import START_SWEEP, make_celery
from app.settings import Settings
from tests.api.conftest import mint_key
from tests.api.test_sweeps_api import EXAMPLE
from tests.conftest import REDIS_URL, scratch_queue
from tests.support.standin_process import Standin

TASK_SECONDS = 30.0


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    # A queue of this test's own: its worker takes no other test's messages.
    with scratch_queue() as queue_name:
        yield Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            queue_name=queue_name,
            data_dir=tmp_path / "data",
        )


def test_a_submission_traces_through_its_task_to_comfyui(
    spans: InMemorySpanExporter, settings: Settings, standin: Standin
) -> None:
    worker_app = make_celery(settings)
    asked_comfyui = threading.Event()

    @worker_app.task(name=START_SWEEP)  # type: ignore[untyped-decorator]
    def start_sweep(sweep_id: str) -> None:
        asyncio.run(read_queue(standin.base_url))
        asked_comfyui.set()

    app = create_app(settings)
    try:
        # The threads pool: a solo pool would send worker_process_init to every handler
        # any other test module connected.
        with start_worker(worker_app, pool="threads", perform_ping_check=False):
            key = mint_key(app, "team-traced")
            with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
                assert client.post("/v1/sweeps", json=EXAMPLE).status_code == 201
            assert asked_comfyui.wait(TASK_SECONDS)
    finally:
        app.state.engine.dispose()

    finished = spans.get_finished_spans()
    server = one(finished, SpanKind.SERVER, "POST /v1/sweeps")
    producer = one(finished, SpanKind.PRODUCER, f"apply_async/{START_SWEEP}")
    consumer = one(finished, SpanKind.CONSUMER, f"run/{START_SWEEP}")
    comfyui = one(finished, SpanKind.CLIENT, "GET")
    assert server in ancestors(producer, finished)
    assert parent(consumer, finished) is producer
    assert parent(comfyui, finished) is consumer
    assert comfyui.attributes is not None
    # The instrumentation keeps the older HTTP names unless OTEL_SEMCONV_STABILITY_OPT_IN.
    assert comfyui.attributes["http.url"] == f"{standin.base_url}/queue"
    assert comfyui.attributes["http.status_code"] == 200
    trace_ids = {span.context.trace_id for span in (server, producer, consumer, comfyui)}
    assert trace_ids == {server.context.trace_id}


async def read_queue(base_url: str) -> None:
    async with ComfyClient(base_url) as client:
        await client.queue()


def one(spans: tuple[ReadableSpan, ...], kind: SpanKind, name: str) -> ReadableSpan:
    matching = [span for span in spans if span.kind is kind and span.name == name]
    assert len(matching) == 1, [(span.kind, span.name) for span in spans]
    return matching[0]


def parent(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next((s for s in spans if s.context.span_id == span.parent.span_id), None)


def ancestors(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    found: list[ReadableSpan] = []
    while (above := parent(span, spans)) is not None:
        found.append(above)
        span = above
    return found
