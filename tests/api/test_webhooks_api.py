"""Registering webhook endpoints over HTTP, for the team or within a sweep's submission:
the secret shown once, team scoping, and the target rules' 422s (this app's settings are the
defaults, which refuse private addresses)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.domain.webhook_targets import parse_policy
from app.services.webhooks import url_refusal
from tests.api.conftest import ClientFactory
from tests.api.test_sweeps_api import EXAMPLE

# A public address literal: no DNS needed, and nothing is ever sent in these tests.
PUBLIC = "https://93.184.215.14/comfy-hook"


def register(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/webhooks", json={"url": PUBLIC, "events": ["*"], **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_registered_endpoint_shows_its_secret_only_once(client: TestClient) -> None:
    created = register(client, events=["sweep.finished", "run.failed"], description="ci")
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["sweep.finished", "run.failed"]
    assert created["sweep_id"] is None

    read = client.get(f"/v1/webhooks/{created['id']}")
    assert read.status_code == 200
    assert "secret" not in read.json()
    assert read.json()["description"] == "ci"
    listed = client.get("/v1/webhooks").json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert created["secret"] not in str(listed)


def test_deleting_an_endpoint_forgets_it(client: TestClient) -> None:
    created = register(client)
    assert client.delete(f"/v1/webhooks/{created['id']}").status_code == 204
    assert client.get(f"/v1/webhooks/{created['id']}").status_code == 404
    assert client.delete(f"/v1/webhooks/{created['id']}").status_code == 404


def test_another_teams_endpoint_is_not_found(team_client: ClientFactory) -> None:
    mine, theirs = team_client(), team_client()
    created = register(mine)
    for path in ("", "/deliveries"):
        assert theirs.get(f"/v1/webhooks/{created['id']}{path}").status_code == 404
    assert theirs.delete(f"/v1/webhooks/{created['id']}").status_code == 404
    assert theirs.get("/v1/webhooks").json()["items"] == []
    assert mine.get(f"/v1/webhooks/{created['id']}/deliveries").json()["items"] == []


def test_an_unknown_event_type_is_named(client: TestClient) -> None:
    response = client.post(
        "/v1/webhooks", json={"url": PUBLIC, "events": ["sweep.finished", "sweep.exploded"]}
    )
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "events", 1]
    assert "sweep.exploded" in problem["msg"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://10.0.0.1/hook", "private"),
        ("http://localhost:8188/hook", "loopback"),
        ("http://[::1]:9000/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::ffff:192.168.1.5]/hook", "private"),
        ("ftp://93.184.215.14/hook", "only http and https"),
        ("http://user:pass@93.184.215.14/hook", "credentials"),
        ("http:///hook", "no host"),
    ],
)
def test_urls_reaching_private_addresses_are_refused(
    client: TestClient, url: str, reason: str
) -> None:
    response = client.post("/v1/webhooks", json={"url": url, "events": ["*"]})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "url"]
    assert problem["type"] == "url_not_allowed"
    assert reason in problem["msg"]
    assert client.get("/v1/webhooks").json()["total"] == 0


def test_a_sweep_may_name_an_endpoint_of_its_own(client: TestClient) -> None:
    body = {**EXAMPLE, "webhook": {"url": PUBLIC, "events": ["sweep.finished"]}}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["webhook"]["secret"].startswith("whsec_")

    endpoint = client.get(f"/v1/webhooks/{sweep['webhook']['id']}").json()
    assert endpoint["sweep_id"] == sweep["id"]
    assert endpoint["events"] == ["sweep.finished"]
    assert "webhook" not in client.get(f"/v1/sweeps/{sweep['id']}").json()


@pytest.mark.parametrize(
    ("webhook", "loc"),
    [
        ({"url": "http://127.0.0.1:8000/hook", "events": ["*"]}, ["body", "webhook", "url"]),
        ({"url": PUBLIC, "events": ["run.exploded"]}, ["body", "webhook", "events", 0]),
        ({"url": PUBLIC, "events": []}, ["body", "webhook", "events"]),
    ],
)
def test_a_sweeps_bad_webhook_is_refused_and_nothing_is_stored(
    client: TestClient, webhook: dict[str, Any], loc: list[object]
) -> None:
    response = client.post("/v1/sweeps", json={**EXAMPLE, "webhook": webhook})
    assert response.status_code == 422, response.text
    assert [problem["loc"] for problem in response.json()["detail"]] == [loc]
    assert client.get("/v1/sweeps").json()["total"] == 0
    assert client.get("/v1/webhooks").json()["total"] == 0


def test_the_operators_allow_list_lets_chosen_private_targets_through() -> None:
    listed = parse_policy("localhost, 10.20.0.0/16")
    assert url_refusal("http://localhost:8188/hook", listed) is None
    assert url_refusal("http://10.20.3.4/hook", listed) is None
    assert "private" in (url_refusal("http://10.21.3.4/hook", listed) or "")
    everything = parse_policy("", allow_private=True)
    assert url_refusal("http://10.21.3.4/hook", everything) is None
    assert url_refusal("ftp://10.21.3.4/hook", everything) is not None


def test_an_endpoint_can_be_disabled_and_its_events_changed(client: TestClient) -> None:
    created = register(client, events=["sweep.finished"])
    path = f"/v1/webhooks/{created['id']}"

    changed = client.patch(path, json={"enabled": False, "events": ["run.failed", "*"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False
    assert changed.json()["events"] == ["*"]
    assert "secret" not in changed.json()
    read = client.get(path).json()
    assert (read["enabled"], read["events"], read["description"]) == (False, ["*"], "")

    enabled = client.patch(path, json={"enabled": True, "description": "back"}).json()
    assert (enabled["enabled"], enabled["description"]) == (True, "back")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body"]),
        ({"events": []}, ["body", "events"]),
        ({"events": ["run.exploded"]}, ["body", "events", 0]),
        ({"url": PUBLIC}, ["body", "url"]),
        ({"enabled": "maybe"}, ["body", "enabled"]),
    ],
)
def test_a_bad_change_is_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], loc: list[Any]
) -> None:
    created = register(client)
    response = client.patch(f"/v1/webhooks/{created['id']}", json=body)
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["detail"]]
    assert client.get(f"/v1/webhooks/{created['id']}").json()["enabled"] is True


def test_another_teams_endpoint_cannot_be_changed(team_client: ClientFactory) -> None:
    mine, theirs = team_client(), team_client()
    created = register(mine)
    answer = theirs.patch(f"/v1/webhooks/{created['id']}", json={"enabled": False})
    assert answer.status_code == 404
    assert mine.get(f"/v1/webhooks/{created['id']}").json()["enabled"] is True
