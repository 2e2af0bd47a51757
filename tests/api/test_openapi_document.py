"""The OpenAPI document is a product clients are generated from: checked in, complete in
its errors, an example on every shape, each example valid, operation ids fit for code.

A new route that forgets one of these fails here, naming the operation or the shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.openapi_export import DOCUMENT, openapi_document, render

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def _takes_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters")) or "requestBody" in operation


def test_the_checked_in_document_is_the_one_the_app_serves(document: dict[str, Any]) -> None:
    checked_in = DOCUMENT.read_text("utf-8") if DOCUMENT.exists() else ""
    assert checked_in == render(document), (
        "openapi.json differs from the app's OpenAPI document: run `make openapi` and commit it"
    )


def test_every_v1_operation_documents_401_and_its_validation_errors(
    document: dict[str, Any],
) -> None:
    missing = []
    for label, operation in _operations(document):
        if " /v1/" not in label:
            continue
        responses = operation["responses"]
        if "401" not in responses:
            missing.append(f"{label}: 401")
        if _takes_input(operation) and "422" not in responses:
            missing.append(f"{label}: 422")
        if "requestBody" in operation and "413" not in responses:
            missing.append(f"{label}: 413")
    assert not missing, f"operations without their error responses: {missing}"


def test_every_error_response_has_a_documented_body(document: dict[str, Any]) -> None:
    bare = [
        f"{label}: {status}"
        for label, operation in _operations(document)
        for status, response in operation["responses"].items()
        if status.startswith(("4", "5")) and not _declares_body(response.get("content", {}))
    ]
    assert not bare, f"error responses without a documented body: {bare}"


def _declares_body(content: dict[str, Any]) -> bool:
    # JSON with its schema; Starlette's own range refusals (400, 416) are plain text.
    if "application/json" in content:
        return "schema" in content["application/json"]
    return "text/plain" in content


def test_validation_errors_use_the_problem_shape(document: dict[str, Any]) -> None:
    schemas = {
        label: operation["responses"]["422"]["content"]["application/json"]["schema"]
        for label, operation in _operations(document)
        if "422" in operation["responses"]
    }
    assert schemas
    assert all(s == {"$ref": "#/components/schemas/ValidationProblems"} for s in schemas.values())
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_schema_has_an_example(document: dict[str, Any]) -> None:
    # An enumeration is its own list of examples.
    lacking = [
        name
        for name, schema in document["components"]["schemas"].items()
        if not schema.get("examples") and "enum" not in schema
    ]
    assert not lacking, f"schemas without `examples` (see app/api/schemas/examples.py): {lacking}"


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    invalid = []
    for name, schema in document["components"]["schemas"].items():
        # Resolved against the whole document, so `#/components/schemas/...` refs work.
        validator = Draft202012Validator({**document, **schema})
        for example in schema.get("examples", []):
            invalid += [f"{name}: {error.message}" for error in validator.iter_errors(example)]
    assert not invalid, invalid


def test_operation_ids_are_unique_identifiers(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, operation in _operations(document)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(i.isidentifier() and i.islower() for i in ids), ids
    assert {"create_sweep", "read_sweep", "list_runs"} <= set(ids)


def test_the_document_does_not_depend_on_the_environment(
    document: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_REQUEST_BYTES", "1234")
    monkeypatch.setenv("AUTH_ENABLED", "false")
    assert openapi_document() == document
    assert "servers" not in document
