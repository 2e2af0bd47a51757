"""Log lines as the service writes them: one JSON object per line (or text with key=value
context), the request's or the run's context on every line, and no secret in any of them."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from app.logs import context
from app.logs.formatting import JsonFormatter, TextFormatter
from app.logs.setup import log_format, logging_config
from app.serve import parse_args, uvicorn_kwargs
from app.settings import Settings

KEY = "csk_" + "k3Y" * 14 + "x"  # the shape of a minted key: prefix and 43 characters


class Lines:
    """A logger whose records are formatted, as a stream handler would, into lines."""

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)
        self.logger = logging.getLogger(f"tests.log_lines.{id(self)}")
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    def text(self) -> str:
        return self.stream.getvalue()

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]

    def close(self) -> None:
        self.logger.removeHandler(self.handler)


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    lines = Lines(JsonFormatter())
    yield lines
    lines.close()


@pytest.fixture
def text_lines() -> Iterator[Lines]:
    lines = Lines(TextFormatter())
    yield lines
    lines.close()


def test_a_json_line_names_time_level_logger_and_message(json_lines: Lines) -> None:
    json_lines.logger.warning("sweep_started sweep=%s", "s1")

    [line] = json_lines.objects()
    assert line["level"] == "WARNING"
    assert line["logger"] == json_lines.logger.name
    assert line["message"] == "sweep_started sweep=s1"
    assert line["ts"].endswith("Z")  # ISO 8601, UTC, milliseconds
    assert len(line["ts"]) == len("2026-12-07T10:00:00.123Z")


def test_a_message_with_line_breaks_stays_one_line(json_lines: Lines) -> None:
    message = "first\nsecond\r\nthird\u2028fourth\u2029fifth\x85sixth\x0bseventh"
    json_lines.logger.info(message)
    json_lines.logger.info("next")

    assert len(json_lines.text().splitlines()) == 2
    assert [line["message"] for line in json_lines.objects()] == [message, "next"]


def test_non_ascii_is_kept_as_written(json_lines: Lines) -> None:
    json_lines.logger.info("prompt=%s", "ein Hund im Schnee, 雪の中の犬 🐕")

    assert "雪の中の犬 🐕" in json_lines.text()
    assert json_lines.objects()[0]["message"] == "prompt=ein Hund im Schnee, 雪の中の犬 🐕"


def test_an_exception_is_one_string_field_on_the_same_line(json_lines: Lines) -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        json_lines.logger.exception("run_failed")

    [line] = json_lines.objects()
    assert line["message"] == "run_failed"
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert line["exc_info"].endswith("ValueError: bad\nvalue")


def test_the_bound_context_and_extra_fields_are_on_the_line(json_lines: Lines) -> None:
    with context.scope(request_id="r-1"):
        context.bind(team="t-1")
        with context.bound(sweep_id="s-1", run_index=3):
            json_lines.logger.info("inside", extra={"outputs": 2, "team": "t-extra"})
        json_lines.logger.info("after the block")
    json_lines.logger.info("outside")

    inside, after, outside = json_lines.objects()
    assert inside["request_id"] == "r-1"
    assert inside["sweep_id"] == "s-1"
    assert inside["run_index"] == 3
    assert inside["outputs"] == 2
    assert inside["team"] == "t-extra"  # what the call passed wins over the context
    assert (after["team"], "sweep_id" in after) == ("t-1", False)
    assert "request_id" not in outside


def test_a_field_bound_in_a_copied_context_reaches_the_scope() -> None:
    """FastAPI runs sync dependencies in a thread, on a copy of the request's context."""
    with context.scope(request_id="r-2"):
        contextvars.copy_context().run(context.bind, team="t-2")
        assert context.current() == {"request_id": "r-2", "team": "t-2"}
    assert context.current() == {}


def test_a_field_bound_outside_any_scope_stays_in_its_own_context() -> None:
    def bind_alone() -> None:
        context.bind(task_id="x")

    contextvars.copy_context().run(bind_alone)
    assert context.current() == {}


def test_no_key_or_token_reaches_a_line(json_lines: Lines) -> None:
    json_lines.logger.info("auth header=%s", f"Bearer {KEY}")
    json_lines.logger.info("GET /browse/sweeps/1/contact-sheet?token=1.sig&x=1")
    json_lines.logger.info("called", extra={"url": f"/v1/sweeps?api_key={KEY}"})
    try:
        raise RuntimeError(f"refused {KEY}")
    except RuntimeError:
        json_lines.logger.exception("failed")

    assert KEY not in json_lines.text()
    assert "1.sig" not in json_lines.text()
    header, link, called, failed = json_lines.objects()
    assert header["message"] == "auth header=Bearer [redacted]"
    assert link["message"] == "GET /browse/sweeps/1/contact-sheet?token=[redacted]&x=1"
    assert called["url"] == "/v1/sweeps?api_key=csk_[redacted]"
    assert failed["exc_info"].endswith("RuntimeError: refused csk_[redacted]")


def test_a_key_prefix_as_key_listings_show_it_stays_readable(json_lines: Lines) -> None:
    json_lines.logger.info("key_revoked prefix=%s", KEY[:12])

    assert json_lines.objects()[0]["message"] == f"key_revoked prefix={KEY[:12]}"


def test_uvicorns_access_line_becomes_fields(json_lines: Lines) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/x?token=abc", "1.1", 404),
        None,
    )
    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == '127.0.0.1:5000 - "GET /x?token=[redacted] HTTP/1.1" 404'
    assert (line["method"], line["path"], line["status"]) == ("GET", "/x?token=[redacted]", 404)


def test_a_text_line_carries_the_context_as_key_value(text_lines: Lines) -> None:
    with context.scope(sweep_id="s-1", run_index=4):
        text_lines.logger.info("run_succeeded outputs=%d", 1, extra={"note": "two words"})

    line = text_lines.text().rstrip("\n")
    assert line.endswith(
        f"INFO {text_lines.logger.name} run_succeeded outputs=1 sweep_id=s-1 run_index=4 "
        'note="two words"'
    )


def test_a_text_line_shows_the_traceback_below_it(text_lines: Lines) -> None:
    try:
        raise ValueError(KEY)
    except ValueError:
        text_lines.logger.exception("failed")

    first, *trace = text_lines.text().splitlines()
    assert first.endswith("failed")
    assert trace[-1] == "ValueError: csk_[redacted]"


@pytest.mark.parametrize(
    ("configured", "fallback", "tty", "expected"),
    [
        (None, None, False, "json"),  # a file, a pipe, a container's log
        (None, None, True, "text"),  # a terminal
        (None, "text", False, "text"),  # make run
        ("json", "text", True, "json"),  # LOG_FORMAT decides
    ],
)
def test_the_format_is_chosen_by_setting_then_entry_point_then_terminal(
    monkeypatch: pytest.MonkeyPatch,
    configured: str | None,
    fallback: Any,
    tty: bool,
    expected: str,
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert log_format(Settings(log_format=configured), fallback) == expected


def test_the_config_given_to_uvicorn_sends_its_loggers_through_ours() -> None:
    config = logging_config(Settings(log_format="json", log_level="warning"))

    assert config["disable_existing_loggers"] is False
    assert config["root"]["level"] == "WARNING"
    assert config["formatters"]["default"]["()"] == "app.logs.formatting.JsonFormatter"
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name] == {"handlers": [], "propagate": True}
    assert config["loggers"]["httpx"] == {"level": "WARNING"}


def test_log_settings_take_any_case_and_refuse_unknown_words() -> None:
    assert Settings(log_format="JSON", log_level="debug").log_level == "DEBUG"
    assert Settings(log_format="").log_format is None
    with pytest.raises(ValidationError, match="log_format"):
        Settings(log_format="xml")
    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="chatty")


def test_the_served_api_hands_uvicorn_our_config_and_level() -> None:
    settings = Settings(log_format="json", log_level="ERROR")
    options = uvicorn_kwargs(settings, parse_args([]))

    assert options["log_config"] == logging_config(settings)
    assert options["log_level"] is None  # uvicorn's loggers follow LOG_LEVEL
    assert uvicorn_kwargs(settings, parse_args(["--log-level", "debug"]))["log_level"] == "debug"
