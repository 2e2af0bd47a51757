"""Webhooks end to end over real HTTP: an endpoint registered through the API (served by
uvicorn), an event recorded in a committed transaction on Postgres, the sender thread
posting it signed to a receiver on loopback (allowed by this test's settings), retrying on
the fast schedule, and the deliveries listing telling what happened."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.db.engine import make_engine, make_session_factory
from app.domain.events import EventType, NewEvent
from app.main import create_app
from app.services import keys
from app.services.webhooks import new_secret
from app.settings import Settings
from app.stores import events
from tests.conftest import REDIS_URL, scratch_database
from tests.support.serving import serve
from tests.support.webhook_receiver import Receiver, receiving
from workers.webhook_sender import make_client, send_due, start_sender

pytestmark = pytest.mark.integration

WAIT_S = 0.3
RETRIES = 4  # five attempts in all


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    # A database of its own: the sender claims every due delivery it finds.
    with scratch_database("webhooks") as url:
        yield Settings(
            database_url=url,
            redis_url=REDIS_URL,
            data_dir=tmp_path_factory.mktemp("data"),
            webhook_allow_private_networks=True,
            webhook_retry_schedule_s=",".join([str(WAIT_S)] * RETRIES),
            webhook_poll_s=0.05,
        )


@pytest.fixture(scope="module")
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def api_base(settings: Settings) -> Iterator[str]:
    app = create_app(settings)
    with serve(app) as base_url:
        yield base_url
    app.state.engine.dispose()


@pytest.fixture
def team_api(
    api_base: str, sessions: sessionmaker[Session]
) -> Iterator[Callable[[], tuple[httpx.Client, UUID]]]:
    """Makes an HTTP client holding a new team's key, with that team's id."""
    with ExitStack() as stack:

        def make() -> tuple[httpx.Client, UUID]:
            with sessions() as session:
                key = keys.create_key(session, f"team-{uuid4().hex[:8]}").plaintext
                team_id = keys.team_for_key(session, key)
                session.commit()
            assert team_id is not None
            headers = {"Authorization": f"Bearer {key}"}
            client = httpx.Client(base_url=api_base, headers=headers, timeout=30)
            return stack.enter_context(client), team_id

        yield make


@pytest.fixture
def sender(sessions: sessionmaker[Session], settings: Settings) -> Iterator[None]:
    thread, stop = start_sender(sessions, settings)
    yield
    stop.set()
    thread.join(15)


def register(api: httpx.Client, url: str, *types: str) -> dict[str, Any]:
    response = api.post("/v1/webhooks", json={"url": url, "events": list(types)})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def record(sessions: sessionmaker[Session], *new: NewEvent, commit: bool = True) -> None:
    with sessions() as session:
        events.record(session, *new)
        if commit:
            session.commit()
        else:
            session.rollback()


def finished(team_id: UUID, sweep_id: UUID | None = None) -> NewEvent:
    data = {"status": "succeeded", "counts": {"succeeded": 4}}
    return NewEvent(EventType.SWEEP_FINISHED, team_id, sweep_id or uuid4(), data=data)


def deliveries_when(
    api: httpx.Client, webhook_id: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        page = api.get(f"/v1/webhooks/{webhook_id}/deliveries")
        assert page.status_code == 200, page.text
        items: list[dict[str, Any]] = page.json()["items"]
        if done(items) or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def verified(secret: str, receiver: Receiver, count: int) -> list[dict[str, Any]]:
    """The first `count` bodies received, each checked against its signature."""
    hook = Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in receiver.wait_for(count)]


@pytest.mark.usefixtures("sender")
def test_a_recorded_event_arrives_signed_with_the_endpoints_secret(
    team_api: Callable[[], tuple[httpx.Client, UUID]], sessions: sessionmaker[Session]
) -> None:
    api, team_id = team_api()
    with receiving([200]) as receiver:
        endpoint = register(api, f"{receiver.url}/hook", "sweep.finished")
        sweep_id = uuid4()
        started = NewEvent(EventType.SWEEP_STARTED, team_id, sweep_id)  # not subscribed
        record(sessions, started, finished(team_id, sweep_id))
        (payload,) = verified(endpoint["secret"], receiver, 1)
        (request,) = receiver.received
        items = deliveries_when(api, endpoint["id"], lambda d: d[0]["status"] == "succeeded")

    assert payload["type"] == "sweep.finished"
    assert payload["data"]["sweep_id"] == str(sweep_id)
    assert payload["data"]["data"] == {"status": "succeeded", "counts": {"succeeded": 4}}
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    (delivery,) = items
    assert request.headers["webhook-id"] == f"msg_{delivery['id']}"
    assert delivery["event_id"] == payload["data"]["event_id"]
    assert delivery["event_type"] == "sweep.finished"
    assert (delivery["attempts"], delivery["last_status_code"]) == (1, 200)
    assert delivery["next_attempt_at"] is None
    assert 0 < len(delivery["last_response"]) <= 1024
    with pytest.raises(WebhookVerificationError):  # another secret does not verify it
        Webhook(new_secret()).verify(request.body, request.headers)


@pytest.mark.usefixtures("sender")
def test_the_sender_connects_to_the_address_it_checked_and_names_the_host(
    team_api: Callable[[], tuple[httpx.Client, UUID]], sessions: sessionmaker[Session]
) -> None:
    # localhost may resolve to ::1 first, where nothing listens: the next checked address
    # is tried. The receiver still sees the host name the URL gave.
    api, team_id = team_api()
    with receiving([200]) as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        endpoint = register(api, f"http://localhost:{port}/hook", "sweep.finished")
        record(sessions, finished(team_id))
        (payload,) = verified(endpoint["secret"], receiver, 1)

    assert payload["type"] == "sweep.finished"
    assert receiver.received[0].headers["host"] == f"localhost:{port}"


@pytest.mark.usefixtures("sender")
def test_a_failing_receiver_gets_the_same_event_again_after_backoff(
    team_api: Callable[[], tuple[httpx.Client, UUID]], sessions: sessionmaker[Session]
) -> None:
    api, team_id = team_api()
    with receiving([500, 500, 500, 200]) as receiver:
        endpoint = register(api, f"{receiver.url}/hook", "*")
        record(sessions, finished(team_id))
        payloads = verified(endpoint["secret"], receiver, 4)
        items = deliveries_when(api, endpoint["id"], lambda d: d[0]["status"] != "pending")
        time.sleep(2 * WAIT_S)
        assert len(receiver.received) == 4  # nothing after the success

    arrivals = [r.at for r in receiver.received]
    assert all(later - earlier >= WAIT_S for earlier, later in itertools.pairwise(arrivals))

    assert all(payload == payloads[0] for payload in payloads)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    (delivery,) = items
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 4)
    assert delivery["last_status_code"] == 200
    assert delivery["last_error"] is None


@pytest.mark.usefixtures("sender")
def test_a_delivery_fails_for_good_when_the_schedule_is_spent(
    team_api: Callable[[], tuple[httpx.Client, UUID]], sessions: sessionmaker[Session]
) -> None:
    api, team_id = team_api()
    with receiving([503]) as receiver:
        endpoint = register(api, f"{receiver.url}/hook", "sweep.finished")
        started = time.monotonic()
        record(sessions, finished(team_id))
        items = deliveries_when(api, endpoint["id"], lambda d: d[0]["status"] == "failed")
        took = time.monotonic() - started

    (delivery,) = items
    assert (delivery["status"], delivery["attempts"]) == ("failed", RETRIES + 1)
    assert delivery["next_attempt_at"] is None
    assert delivery["last_error"] == "answered 503"
    assert len(receiver.received) == RETRIES + 1
    assert took >= RETRIES * WAIT_S  # it waited between attempts


@pytest.mark.usefixtures("sender")
def test_a_redirect_is_a_failure_and_is_not_followed(
    team_api: Callable[[], tuple[httpx.Client, UUID]], sessions: sessionmaker[Session]
) -> None:
    api, team_id = team_api()
    with receiving([302, 200]) as receiver:
        endpoint = register(api, f"{receiver.url}/hook", "sweep.finished")
        record(sessions, finished(team_id))
        items = deliveries_when(api, endpoint["id"], lambda d: d[0]["status"] == "succeeded")

    assert [r.path for r in receiver.received] == ["/hook", "/hook"]  # never /landing
    (delivery,) = items
    assert delivery["attempts"] == 2


@pytest.mark.usefixtures("sender")
def test_a_rolled_back_event_is_never_delivered(
    team_api: Callable[[], tuple[httpx.Client, UUID]], sessions: sessionmaker[Session]
) -> None:
    api, team_id = team_api()
    with receiving([200]) as receiver:
        endpoint = register(api, f"{receiver.url}/hook", "sweep.finished")
        rolled_back, committed = finished(team_id), finished(team_id)
        record(sessions, rolled_back, commit=False)
        record(sessions, committed)
        (payload,) = verified(endpoint["secret"], receiver, 1)
        time.sleep(0.5)  # several sender polls: nothing else comes
        items = deliveries_when(api, endpoint["id"], lambda d: True)

    assert payload["data"]["sweep_id"] == str(committed.sweep_id)
    assert len(receiver.received) == 1
    assert len(items) == 1


def test_an_address_refused_at_send_time_fails_the_attempt(
    team_api: Callable[[], tuple[httpx.Client, UUID]],
    sessions: sessionmaker[Session],
    settings: Settings,
) -> None:
    # Registered while loopback was allowed; by the attempt the rules say otherwise, as when
    # a public name is re-pointed at a private address after registration.
    strict = settings.model_copy(update={"webhook_allow_private_networks": False})
    api, team_id = team_api()
    with receiving([200]) as receiver:
        endpoint = register(api, f"{receiver.url}/hook", "sweep.finished")
        record(sessions, finished(team_id))

        async def one_batch() -> int:
            async with make_client(strict) as client:
                return await send_due(sessions, strict, client)

        assert asyncio.run(one_batch()) == 1
        (delivery,) = deliveries_when(api, endpoint["id"], lambda d: True)

    assert receiver.received == []
    assert delivery["status"] == "pending"  # retried on the schedule, checked again then
    assert delivery["attempts"] == 1
    assert "refused" in delivery["last_error"]
    assert "loopback" in delivery["last_error"]
    assert json.dumps(delivery).count(endpoint["secret"]) == 0
