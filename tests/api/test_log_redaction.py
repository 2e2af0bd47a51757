"""Signed-link tokens never reach the access log, under a real uvicorn."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.api.log_redaction import ACCESS_LOGGER, redact_tokens
from tests.support.serving import free_port


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "/browse/sweeps/1/contact-sheet?token=17.abc",
            "/browse/sweeps/1/contact-sheet?token=[redacted]",
        ),
        ("/x?page=2&token=17.abc&n=1", "/x?page=2&token=[redacted]&n=1"),
        ("/x?TOKEN=abc", "/x?TOKEN=[redacted]"),
        ('"GET /x?token=abc HTTP/1.1" 403', '"GET /x?token=[redacted] HTTP/1.1" 403'),
        ("/x?mytoken=abc&notatoken=1", "/x?mytoken=abc&notatoken=1"),
    ],
)
def test_the_value_of_a_token_parameter_is_replaced(line: str, expected: str) -> None:
    assert redact_tokens(line) == expected


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def served_with_access_log(app: FastAPI) -> Iterator[tuple[str, Captured]]:
    port = free_port()
    # Like `uvicorn app.main:create_app`: uvicorn configures its loggers after the app exists.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.05)
    captured = Captured()
    logging.getLogger(ACCESS_LOGGER).addHandler(captured)
    try:
        yield f"http://127.0.0.1:{port}", captured
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(captured)
        server.should_exit = True
        thread.join(10)


def test_a_contact_sheet_request_is_logged_without_its_token(
    served_with_access_log: tuple[str, Captured],
) -> None:
    base_url, captured = served_with_access_log
    secret = "4102444800.c2VjcmV0LXNpZ25hdHVyZQ"
    url = f"{base_url}/browse/sweeps/{uuid4()}/contact-sheet?token={secret}"

    status = httpx.get(url).status_code

    assert status == 401  # a token this API never minted
    logged = [line for line in captured.lines if "contact-sheet" in line]
    assert len(logged) == 1
    assert "token=[redacted]" in logged[0]
    assert secret not in logged[0]
