"""How a scrape puts the processes' metrics together: one family per name, equal series
added; requests labelled by route template and status class, never the raw path."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from prometheus_client.metrics_core import Metric
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.request_metrics import UNMATCHED, route_template, status_class
from app.metrics.exposition import merge_families


def counter(name: str, **series: float) -> Metric:
    family = Metric(name, "help", "counter")
    for instance, value in series.items():
        family.add_sample(f"{name}_total", {"instance": instance}, value)
    return family


def test_a_family_from_two_sources_is_listed_once_with_equal_series_added() -> None:
    merged = merge_families(
        [counter("runs", a=2, b=1), counter("runs", a=3), counter("loads", a=1)]
    )
    assert [family.name for family in merged] == ["runs", "loads"]
    runs = {s.labels["instance"]: s.value for s in merged[0].samples}
    assert runs == {"a": 5, "b": 1}


def test_a_family_without_samples_is_left_out() -> None:
    assert merge_families([Metric("empty", "help", "counter")]) == []


def test_a_request_is_labelled_by_its_route_template() -> None:
    async def endpoint() -> None: ...

    route = Route("/v1/sweeps/{sweep_id}", endpoint)
    assert route_template({"route": route}) == "/v1/sweeps/{sweep_id}"
    assert route_template({}) == UNMATCHED


def test_statuses_are_labelled_by_class() -> None:
    assert [status_class(s) for s in (200, 204, 404, 422, 503)] == [
        "2xx",
        "2xx",
        "4xx",
        "4xx",
        "5xx",
    ]


def test_a_route_of_an_included_router_is_labelled_with_its_prefixes() -> None:
    seen: list[str] = []

    class Spy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)
            if scope["type"] == "http":
                seen.append(route_template(scope))

    inner = APIRouter(prefix="/sweeps")

    @inner.get("/{sweep_id}/runs/{index}")
    def run(sweep_id: str, index: int) -> None: ...

    outer = APIRouter(prefix="/v1")
    outer.include_router(inner)
    app = FastAPI()
    app.include_router(outer)
    app.add_middleware(Spy)
    with TestClient(app) as client:
        client.get("/v1/sweeps/abc/runs/3")
        client.get("/nowhere/abc")
    assert seen == ["/v1/sweeps/{sweep_id}/runs/{index}", UNMATCHED]
