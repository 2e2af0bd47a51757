"""`make run` follows its demo patiently: slow answers are retried, never fatal."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app import demo
from app.demo import ApiUnavailable, request_patiently
from app.supervisor import ChildExited


def flaky(failures: list[Exception | int]) -> httpx.Client:
    """A client whose first answers are the given errors or status codes, then 200."""

    def answer(request: httpx.Request) -> httpx.Response:
        if failures:
            failure = failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(failure, request=request)
        return httpx.Response(200, json={"ok": True}, request=request)

    return httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer))


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "RETRY_PAUSE_S", 0.0)


def test_a_read_timeout_and_a_503_are_retried_until_the_api_answers() -> None:
    client = flaky([httpx.ReadTimeout("slow"), 503, httpx.ConnectError("refused")])
    response = request_patiently(client, "GET", "/v1/sweeps/x", lambda: None)
    assert response.status_code == 200


def test_a_client_error_is_returned_not_retried() -> None:
    client = flaky([404])
    assert request_patiently(client, "GET", "/v1/sweeps/x", lambda: None).status_code == 404


def test_a_post_that_may_have_arrived_is_not_sent_twice() -> None:
    client = flaky([httpx.ReadTimeout("slow")])
    with pytest.raises(httpx.ReadTimeout):
        request_patiently(client, "POST", "/v1/sweeps", lambda: None)


def test_a_post_refused_before_it_arrived_is_sent_again() -> None:
    client = flaky([httpx.ConnectError("refused")])
    assert request_patiently(client, "POST", "/v1/sweeps", lambda: None).status_code == 200


def test_an_api_that_never_answers_is_reported_after_the_deadline() -> None:
    client = flaky([503] * 1000)
    with pytest.raises(ApiUnavailable, match="HTTP 503"):
        request_patiently(client, "GET", "/v1/sweeps/x", lambda: None, give_up_after_s=0.05)


def test_a_dead_child_stops_the_waiting() -> None:
    client = flaky([503] * 1000)

    def worker_died() -> None:
        raise ChildExited("worker", 1, Path("/nonexistent"))

    with pytest.raises(ChildExited):
        request_patiently(client, "GET", "/v1/sweeps/x", worker_died)
