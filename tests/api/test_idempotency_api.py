"""`Idempotency-Key` on state-changing requests: a repeat gets the first answer and does
nothing again; a different request under the key, a bad key, a key in use are refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.migrate import alembic_config
from app.db.models import IdempotencyKey
from app.domain.idempotency import request_fingerprint
from app.main import create_app
from app.services import idempotency
from app.services.idempotency import Claimed
from app.settings import Settings
from tests.api.conftest import ClientFactory, mint_key

BODY: dict[str, Any] = {
    "workflow": "demo-noise",
    "axes": [{"param": "blur_radius", "values": [1, 3]}],
}


def fresh_key() -> str:
    return f"key-{uuid4()}"


def post(client: TestClient, key: str, body: dict[str, Any] | None = None) -> Any:
    return client.post("/v1/sweeps", json=body or BODY, headers={"Idempotency-Key": key})


def sweep_count(client: TestClient) -> int:
    listed = client.get("/v1/sweeps").json()
    return int(listed["total"])


def record_of(app: FastAPI, key: str) -> IdempotencyKey | None:
    session: Session
    with app.state.session_factory() as session:
        query = sa.select(IdempotencyKey).where(IdempotencyKey.key == key)
        return session.scalars(query).one_or_none()


def problem_of(response: Any) -> dict[str, Any]:
    detail: list[dict[str, Any]] = response.json()["detail"]
    assert len(detail) == 1, detail
    return detail[0]


def test_a_repeat_gets_the_first_answer_with_its_location_and_makes_no_sweep(
    client: TestClient,
) -> None:
    key = fresh_key()
    first = post(client, key)
    again = post(client, key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Location"] == f"/v1/sweeps/{first.json()['id']}"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert sweep_count(client) == 1


def test_the_same_json_differently_spelt_is_a_repeat(client: TestClient) -> None:
    key = fresh_key()
    first = post(client, key)
    respelt = '{"axes":[{"values":[1,3],"param":"blur_radius"}],  "workflow":"demo-noise"}'
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    again = client.post("/v1/sweeps", content=respelt, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]


def test_a_different_body_under_the_same_key_is_a_422_naming_the_header(
    client: TestClient,
) -> None:
    key = fresh_key()
    assert post(client, key).status_code == 201
    other = post(client, key, {**BODY, "axes": [{"param": "blur_radius", "values": [5]}]})
    assert other.status_code == 422
    problem = problem_of(other)
    assert problem["loc"] == ["header", "Idempotency-Key"]
    assert problem["type"] == "idempotency_key_reused"
    assert sweep_count(client) == 1


def test_the_same_key_on_another_route_is_a_different_request(client: TestClient) -> None:
    key = fresh_key()
    sweep_id = post(client, key).json()["id"]
    cancel = client.post(f"/v1/sweeps/{sweep_id}/cancel", headers={"Idempotency-Key": key})
    assert cancel.status_code == 422
    assert problem_of(cancel)["type"] == "idempotency_key_reused"


def test_keys_belong_to_a_team(team_client: ClientFactory) -> None:
    alice, bob = team_client(), team_client()
    key = fresh_key()
    mine, theirs = post(alice, key), post(bob, key)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert sweep_count(alice) == sweep_count(bob) == 1


def test_a_key_older_than_a_day_is_forgotten_and_the_request_runs_again(
    app: FastAPI, client: TestClient
) -> None:
    key = fresh_key()
    first = post(client, key)
    with app.state.session_factory() as session:
        session.execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .values(created_at=utc_now() - idempotency.KEY_TTL - timedelta(seconds=1))
        )
        session.commit()
    again = post(client, key)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in again.headers
    assert sweep_count(client) == 2


def test_expired_records_are_deleted_and_fresh_ones_kept(app: FastAPI, client: TestClient) -> None:
    old, new = fresh_key(), fresh_key()
    post(client, old)
    post(client, new, {**BODY, "mode": "zip"})
    later = utc_now() + idempotency.KEY_TTL - timedelta(seconds=5)
    with app.state.session_factory() as session:
        session.execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == old)
            .values(created_at=utc_now() - timedelta(seconds=10))
        )
        session.commit()
        assert idempotency.forget_expired(session, later) >= 1
    assert record_of(app, old) is None
    assert record_of(app, new) is not None


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (b"", "empty"),
        (b"k" * 256, "too long"),
        (b"caf\xc3\xa9", "not ASCII"),
        (b"tab\there", "a control character"),
    ],
)
def test_a_bad_key_is_a_422_and_nothing_runs(client: TestClient, key: bytes, why: str) -> None:
    refused = client.post("/v1/sweeps", json=BODY, headers=[(b"Idempotency-Key", key)])
    assert refused.status_code == 422, why
    problem = problem_of(refused)
    assert problem["loc"] == ["header", "Idempotency-Key"]
    assert problem["type"] == "idempotency_key_invalid"
    assert sweep_count(client) == 0


def test_the_longest_key_and_inner_spaces_are_fine(client: TestClient) -> None:
    assert post(client, "k" * 255).status_code == 201
    assert post(client, "a key with spaces", {**BODY, "mode": "zip"}).status_code == 201


def test_a_refusal_is_recorded_and_replayed_like_a_success(client: TestClient) -> None:
    key = fresh_key()
    unknown = {"workflow": "no-such-workflow"}
    first = post(client, key, unknown)
    again = post(client, key, unknown)
    assert first.status_code == again.status_code == 422
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


class SilentBroker:
    def answers(self) -> bool:
        return False


def test_a_server_error_lets_the_key_go_so_a_retry_runs(app: FastAPI, client: TestClient) -> None:
    key = fresh_key()
    broker = app.state.broker_probe
    app.state.broker_probe = SilentBroker()
    try:
        assert post(client, key).status_code == 503
    finally:
        app.state.broker_probe = broker
    assert record_of(app, key) is None
    retried = post(client, key)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert sweep_count(client) == 1


def test_a_key_whose_first_request_is_still_served_is_a_409_with_retry_after(
    app: FastAPI, client: TestClient
) -> None:
    key = fresh_key()
    first = post(client, key)
    team_id = UUID(str(_team_of(app, key)))
    pending = fresh_key()
    fingerprint = request_fingerprint("POST", "/v1/sweeps", first.request.content)
    with app.state.session_factory() as session:
        claim = idempotency.claim_key(session, team_id, pending, fingerprint)
    assert isinstance(claim, Claimed)
    busy = post(client, pending)
    assert busy.status_code == 409
    assert busy.headers["Retry-After"] == "1"
    assert problem_of(busy)["type"] == "idempotency_key_in_use"
    assert sweep_count(client) == 1


def test_an_abandoned_claim_is_taken_over(app: FastAPI, client: TestClient) -> None:
    key = fresh_key()
    post(client, key)
    team_id = _team_of(app, key)
    pending = fresh_key()
    long_ago = utc_now() - idempotency.ABANDONED_AFTER - timedelta(seconds=1)
    with app.state.session_factory() as session:
        idempotency.claim_key(session, team_id, pending, "0" * 64, now=long_ago)
    assert post(client, pending, {**BODY, "mode": "zip"}).status_code == 201


def _team_of(app: FastAPI, key: str) -> UUID:
    found = record_of(app, key)
    assert found is not None
    return found.team_id


def test_cancel_is_covered_without_code_of_its_own(client: TestClient) -> None:
    sweep_id = post(client, fresh_key()).json()["id"]
    key = fresh_key()
    first = client.post(f"/v1/sweeps/{sweep_id}/cancel", headers={"Idempotency-Key": key})
    again = client.post(f"/v1/sweeps/{sweep_id}/cancel", headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"


def test_reads_never_look_at_the_key(client: TestClient) -> None:
    read = client.get("/v1/sweeps", headers=[(b"Idempotency-Key", b"")])
    assert read.status_code == 200


def test_an_unknown_caller_hears_about_auth_not_about_the_key(app: FastAPI) -> None:
    with TestClient(app) as anonymous:
        refused = anonymous.post("/v1/sweeps", json=BODY, headers=[(b"Idempotency-Key", b"")])
    assert refused.status_code == 401


def test_keys_and_replays_work_on_sqlite_as_make_run_serves(
    settings: Settings, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    config = alembic_config(url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    app = create_app(settings.model_copy(update={"database_url": url}))
    key = mint_key(app, "sqlite-team")
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            first, again = post(client, "on-sqlite"), post(client, "on-sqlite")
            assert (first.status_code, again.status_code) == (201, 201)
            assert again.json()["id"] == first.json()["id"]
            assert again.headers["Idempotent-Replayed"] == "true"
            assert post(client, "on-sqlite", {**BODY, "mode": "zip"}).status_code == 422
            replayed = client.post(f"/v1/sweeps/{first.json()['id']}/replay")
            assert replayed.status_code == 201, replayed.text
            assert replayed.json()["source_sweep_id"] == first.json()["id"]
            assert sweep_count(client) == 2
            with app.state.session_factory() as session:
                later = utc_now() + idempotency.KEY_TTL + timedelta(seconds=1)
                assert idempotency.forget_expired(session, later) == 1
    finally:
        app.state.engine.dispose()


def test_an_oversized_streamed_body_is_a_413_as_without_a_key(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_request_bytes": 1024}))
    key = mint_key(app, f"small-{uuid4().hex[:8]}")

    def chunks() -> Iterator[bytes]:
        yield b'{"workflow": "demo-noise", "base": {"x": "'
        yield b"y" * 4096
        yield b'"}}'

    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": fresh_key()}
    try:
        with TestClient(app, headers=headers) as client:
            refused = client.post("/v1/sweeps", content=chunks())
    finally:
        app.state.engine.dispose()
    assert refused.status_code == 413, refused.text


def test_the_openapi_document_lists_the_header_where_it_works(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    def takes_key(path: str, method: str) -> bool:
        parameters = paths[path][method].get("parameters", [])
        return any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in parameters)

    assert takes_key("/v1/sweeps", "post")
    assert takes_key("/v1/sweeps/{sweep_id}/replay", "post")
    assert takes_key("/v1/wildcards/{name}", "put")
    assert not takes_key("/v1/sweeps", "get")
    assert not takes_key("/v1/sweeps/{sweep_id}", "get")
