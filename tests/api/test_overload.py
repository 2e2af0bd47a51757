"""Under overload and without a database the API keeps answering: `/healthz` at once, the
excess with a quick 503 and `Retry-After`, and everything again once the cause is gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.api.conftest import mint_key
from tests.conftest import scratch_database
from tests.support.serving import free_port, serve


@pytest.fixture
def small_app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(
        settings.model_copy(
            update={"api_concurrency": 2, "api_queue_timeout_s": 0.5, "db_pool_timeout_s": 1.0}
        )
    )
    yield app
    app.state.engine.dispose()


def test_slow_requests_never_lock_the_api_up(small_app: FastAPI, database_url: str) -> None:
    key = mint_key(small_app, "slow")
    headers = {"Authorization": f"Bearer {key}"}
    blocker = sa.create_engine(database_url, poolclass=sa.NullPool)
    with serve(small_app) as base, httpx.Client(base_url=base, headers=headers) as client:
        created = client.post("/v1/sweeps", json={"workflow": "demo-noise"})
        path = f"/v1/sweeps/{created.json()['id']}"
        client.get(path).raise_for_status()  # warm: the key's last use is recorded
        with blocker.connect() as lock, ThreadPoolExecutor(12) as pool:
            # Every status read now blocks reading its sweep, holding its connection.
            lock.exec_driver_sql("LOCK TABLE sweeps IN ACCESS EXCLUSIVE MODE")
            began = time.monotonic()
            reads = [pool.submit(client.get, path, timeout=30) for _ in range(12)]
            time.sleep(0.3)
            probe = httpx.get(f"{base}/healthz", timeout=1)
            assert probe.status_code == 200
            # Two are admitted and wait for the lock; the rest are refused within the
            # queue timeout instead of waiting 30 s for a connection.
            settled, waiting = wait(reads, timeout=3)
            assert time.monotonic() - began < 4
            refused = [f.result() for f in settled]
            assert len(refused) >= 10, len(waiting)
            assert {r.status_code for r in refused} == {503}
            assert all(r.headers["Retry-After"] == "1" for r in refused)
            assert all(r.json()["detail"] for r in refused)
            lock.rollback()
        answered = [f.result() for f in reads]
        assert all(r.status_code in (200, 503) for r in answered)
        assert client.get(path, timeout=5).status_code == 200


def test_a_request_whose_client_gave_up_in_line_is_not_served(
    settings: Settings, database_url: str
) -> None:
    app = create_app(settings.model_copy(update={"api_concurrency": 1, "api_queue_timeout_s": 5}))
    key = mint_key(app, "gave-up")
    blocker = sa.create_engine(database_url, poolclass=sa.NullPool)
    statements: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    with serve(app) as base, httpx.Client(base_url=base, headers=headers) as client:
        path = (
            f"/v1/sweeps/{client.post('/v1/sweeps', json={'workflow': 'demo-noise'}).json()['id']}"
        )
        client.get(path).raise_for_status()  # warm: the key's last use is recorded
        with blocker.connect() as lock, ThreadPoolExecutor(1) as pool:
            lock.exec_driver_sql("LOCK TABLE sweeps IN ACCESS EXCLUSIVE MODE")
            held = pool.submit(client.get, path, timeout=30)  # admitted; waits for the lock
            time.sleep(0.3)
            with pytest.raises(httpx.TimeoutException):  # in line behind it, then gone
                httpx.get(f"{base}{path}", headers=headers, timeout=0.3)
            time.sleep(0.3)
            sa.event.listen(
                app.state.engine, "before_cursor_execute", lambda *a: statements.append(a[2])
            )
            lock.rollback()
            assert held.result().status_code == 200
        time.sleep(0.3)  # the abandoned request has been admitted and dropped by now
        assert statements == []
        assert client.get(path).status_code == 200
    app.state.engine.dispose()
    blocker.dispose()


def test_a_request_checks_out_one_connection(small_app: FastAPI) -> None:
    key = mint_key(small_app, "one-connection")
    checkouts: list[object] = []
    sa.event.listen(small_app.state.engine, "checkout", lambda *args: checkouts.append(args))
    with TestClient(small_app, headers={"Authorization": f"Bearer {key}"}) as client:
        client.get("/v1/sweeps").raise_for_status()  # records the key's use: a commit
        checkouts.clear()
        client.get("/v1/sweeps").raise_for_status()
    assert len(checkouts) == 1


def test_an_unreachable_database_is_a_503_with_retry_after(settings: Settings) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(settings.model_copy(update={"database_url": url}))
    with TestClient(app, headers={"Authorization": "Bearer csk_whatever"}) as client:
        for path in ("/v1/sweeps", "/readyz"):
            response = client.get(path)
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "5"
            assert "database" in response.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_the_api_recovers_when_the_database_returns(settings: Settings) -> None:
    with scratch_database("down") as url:
        name = sa.make_url(url).database
        app = create_app(settings.model_copy(update={"database_url": url}))
        key = mint_key(app, "returns")
        admin = sa.create_engine(
            sa.make_url(url).set(database="postgres"),
            isolation_level="AUTOCOMMIT",
            poolclass=sa.NullPool,
        )
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            assert client.get("/v1/sweeps").status_code == 200
            with admin.connect() as connection:
                connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                connection.exec_driver_sql(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608
                    f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            down = client.get("/v1/sweeps")
            assert down.status_code == 503, down.text
            assert down.headers["Retry-After"] == "5"
            assert client.get("/readyz").status_code == 503
            with admin.connect() as connection:
                connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            assert client.get("/v1/sweeps").status_code == 200
            ready = client.get("/readyz").json()
            assert (ready["database"], ready["broker"]) == ("ok", "ok")
        app.state.engine.dispose()
        admin.dispose()


def test_an_unreachable_broker_is_a_503_at_submission_and_nothing_is_stored(
    settings: Settings,
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(settings.model_copy(update={"redis_url": nowhere, "broker_url": nowhere}))
    key = mint_key(app, "no-broker")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        submitted = client.post("/v1/sweeps", json={"workflow": "demo-noise"})
        ready = client.get("/readyz")
        listed = client.get("/v1/sweeps").json()
    app.state.engine.dispose()
    assert submitted.status_code == 503, submitted.text
    assert submitted.headers["Retry-After"] == "5"
    assert "broker" in submitted.json()["detail"]
    assert ready.status_code == 503
    assert "broker" in ready.json()["detail"]
    assert listed["items"] == []


def test_a_submission_is_accepted_once_the_broker_answers(settings: Settings) -> None:
    app = create_app(settings)
    key = mint_key(app, "broker-back")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/v1/sweeps", json={"workflow": "demo-noise"}).status_code == 201
        assert client.get("/readyz").json()["broker"] == "ok"
    app.state.engine.dispose()
