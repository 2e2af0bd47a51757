"""Which failures a retry can fix, decided in one place, and RunError's JSON form."""

from __future__ import annotations

import pytest

from app.comfy.errors import ComfyError, ErrorKind, RunError, is_retryable


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        ("validation", False),
        ("execution", False),
        ("interrupted", False),
        ("transport", True),
        ("timeout", True),
        ("protocol", False),
    ],
)
def test_only_transport_and_timeout_are_worth_another_attempt(
    kind: ErrorKind, retryable: bool
) -> None:
    assert is_retryable(RunError(kind=kind, message="x")) is retryable


def test_a_run_error_round_trips_through_json() -> None:
    error = RunError(
        kind="validation",
        message="Value 99 bigger than max of 31",
        node_id="2",
        class_type="ImageBlur",
        input_name="blur_radius",
        details="received 99",
    )
    assert error.to_json() == {
        "kind": "validation",
        "message": "Value 99 bigger than max of 31",
        "node_id": "2",
        "class_type": "ImageBlur",
        "input_name": "blur_radius",
        "details": "received 99",
    }
    assert RunError.from_json(error.to_json()) == error


def test_an_unknown_kind_read_back_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown error kind"):
        RunError.from_json({"kind": "gremlins", "message": "x"})


def test_comfy_error_carries_the_run_error() -> None:
    error = RunError(kind="timeout", message="too slow")
    raised = ComfyError(error)
    assert raised.error is error
    assert str(raised) == "timeout: too slow"
