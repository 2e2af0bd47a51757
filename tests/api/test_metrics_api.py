"""`/metrics` in Prometheus text format, its database gauges equal to a recount, requests
labelled by route template; `/readyz` naming the part that is not ready; the pool view's
fields."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import uuid4

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.db.base import utc_now
from app.db.models import Instance, WebhookDelivery
from app.main import create_app
from app.services import keys
from app.services.pool import instance_id
from app.settings import Settings
from tests.api.conftest import mint_key
from tests.conftest import scratch_database
from tests.support.serving import free_port

GPU = f"http://127.0.0.3:{free_port()}"  # nothing listens: only its recorded health counts


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, through prometheus-client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def farm_app(settings: Settings) -> Iterator[FastAPI]:
    # Its own database: the recount must see only runs made through the service, not rows
    # other tests write directly.
    with scratch_database("metrics") as url:
        application = create_app(
            settings.model_copy(update={"comfy_instances": GPU, "database_url": url})
        )
        yield application
        application.state.engine.dispose()


@pytest.fixture
def farm_client(farm_app: FastAPI) -> Iterator[TestClient]:
    key = mint_key(farm_app, f"team-{uuid4().hex[:8]}")
    with TestClient(farm_app, headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


def set_health(app: FastAPI, healthy: bool, checked_ago_s: float = 0.0) -> None:
    with app.state.session_factory() as session:
        session.merge(
            Instance(
                url=GPU,
                tags=[],
                healthy=healthy,
                checked_at=utc_now() - timedelta(seconds=checked_ago_s),
            )
        )
        session.commit()


def test_metrics_answer_without_a_key_and_match_a_recount(
    farm_app: FastAPI, farm_client: TestClient
) -> None:
    assert farm_client.post("/v1/sweeps", json={"workflow": "demo-noise"}).status_code == 201
    set_health(farm_app, True)
    with TestClient(farm_app) as anonymous:
        scraped = anonymous.get("/metrics")
    assert scraped.status_code == 200, scraped.text
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    with farm_app.state.session_factory() as session:
        recount = dict(
            session.execute(sa.text("SELECT status, count(*) FROM runs GROUP BY 1")).all()
        )
        queued_active = session.scalar(
            sa.text(
                "SELECT coalesce(sum(s.queued_count), 0) FROM active_sweeps a "
                "JOIN sweeps s ON s.id = a.sweep_id WHERE a.active"
            )
        )
    got = samples(scraped.text)
    for status in ("queued", "running", "succeeded", "failed", "cancelled"):
        assert got[("comfy_sweep_runs", (("status", status),))] == recount.get(status, 0)
    depth = sum(v for (name, _), v in got.items() if name == "comfy_sweep_queue_depth")
    assert depth == queued_active
    assert got[("comfy_sweep_database_up", ())] == 1
    gpu = (("instance", instance_id(GPU)),)
    assert got[("comfy_sweep_instance_healthy", gpu)] == 1
    assert got[("comfy_sweep_instance_slots", gpu)] == farm_app.state.settings.instance_slots
    assert GPU not in scraped.text, "instance URLs stay out of an unauthenticated scrape"


def test_requests_are_labelled_by_route_template_never_by_raw_path(
    farm_app: FastAPI, farm_client: TestClient
) -> None:
    missing = uuid4()
    assert farm_client.get(f"/v1/sweeps/{missing}").status_code == 404
    with TestClient(farm_app) as anonymous:
        scraped = anonymous.get("/metrics").text
    labels = (("method", "GET"), ("route", "/v1/sweeps/{sweep_id}"), ("status", "4xx"))
    assert samples(scraped)[("comfy_sweep_http_request_duration_seconds_count", labels)] >= 1
    assert str(missing) not in scraped


def test_a_database_that_does_not_answer_leaves_the_scrape_up_and_says_so(
    settings: Settings,
) -> None:
    broken = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(settings.model_copy(update={"database_url": broken}))
    with TestClient(app) as anonymous:
        scraped = anonymous.get("/metrics")
    app.state.engine.dispose()
    assert scraped.status_code == 200
    got = samples(scraped.text)
    assert got[("comfy_sweep_database_up", ())] == 0
    assert not [name for name, _ in got if name == "comfy_sweep_runs"]


def test_metrics_may_require_an_admin_key(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"metrics_require_admin": True}))
    with app.state.session_factory() as session:
        member = keys.create_key(session, f"m-{uuid4().hex[:6]}").plaintext
        admin = keys.create_key(session, f"a-{uuid4().hex[:6]}", role="admin").plaintext
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        bearer = {"Authorization": f"Bearer {member}"}
        assert client.get("/metrics", headers=bearer).status_code == 403
        bearer = {"Authorization": f"Bearer {admin}"}
        assert client.get("/metrics", headers=bearer).status_code == 200
    app.state.engine.dispose()


def test_readyz_needs_an_instance_the_reconciler_recently_found_answering(
    farm_app: FastAPI,
) -> None:
    with TestClient(farm_app) as anonymous:
        set_health(farm_app, False)
        down = anonymous.get("/readyz")
        set_health(farm_app, True, checked_ago_s=3600)  # a reconciler that stopped long ago
        stale = anonymous.get("/readyz")
        set_health(farm_app, True)
        ready = anonymous.get("/readyz")
    assert down.status_code == 503
    assert down.headers["Retry-After"] == "5"
    assert down.json() | {"detail": None} == {
        "status": "unavailable",
        "database": "ok",
        "broker": "ok",
        "instances": "unavailable",
        "healthy_instances": 0,
        "detail": None,
    }
    assert "instances" in down.json()["detail"]
    assert stale.status_code == 503
    assert ready.status_code == 200, ready.text
    assert ready.json()["healthy_instances"] == 1


def test_the_pool_view_shows_slots_bench_and_loaded_model(farm_app: FastAPI) -> None:
    with farm_app.state.session_factory() as session:
        admin = keys.create_key(session, f"a-{uuid4().hex[:6]}", role="admin").plaintext
        session.execute(
            sa.update(Instance)
            .where(Instance.url == GPU)
            .values(model_key="k1", benched_until=utc_now() + timedelta(minutes=1))
        )
        session.commit()
    with TestClient(farm_app, headers={"Authorization": f"Bearer {admin}"}) as client:
        (shown,) = client.get("/v1/instances").json()
    assert shown["id"] == instance_id(GPU)
    assert (shown["slots"], shown["running_prompts"]) == (3, 0)
    assert (shown["benched"], shown["loaded_model_key"]) == (True, "k1")
    # This app reads no metrics directory: runs done are unknown, not zero.
    assert (shown["runs_succeeded"], shown["runs_failed"]) == (None, None)


def test_webhook_delivery_lag_is_the_age_of_the_oldest_due_delivery(
    farm_app: FastAPI, farm_client: TestClient
) -> None:
    due_since = utc_now() - timedelta(seconds=90)
    with farm_app.state.session_factory() as session:
        delivery = WebhookDelivery(
            endpoint_id=uuid4(),
            event_id=1,
            event_type="sweep.finished",
            payload={},
            next_attempt_at=due_since,
        )
        session.add(delivery)
        session.commit()
        try:
            lag = samples(farm_client.get("/metrics").text)[
                ("comfy_sweep_webhook_delivery_lag_seconds", ())
            ]
        finally:
            session.delete(delivery)
            session.commit()
    assert 90 <= lag < 90 + 30
