"""The OpenAPI document as a product: readable operation ids, the error answers every
operation can really get, and each shape's examples as written.

The errors added here are the ones the middleware and handlers give whatever the route:
admission and the database (503), the body size limit (413), the idempotency key (409 while
the first request is served), validation (422, in the problem shape of `app.api.errors`).
What only some routes raise (404, 403, 429...) each route declares itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter

from app.api.admission import Admission
from app.api.schemas.common import Message, ValidationProblems

STATE_CHANGING = frozenset({"post", "put", "patch", "delete"})
SCHEMAS = "#/components/schemas/"
# FastAPI's own 422 shape, replaced by ours (same fields, our examples and descriptions).
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def operation_id(route: APIRoute) -> str:
    """The handler's name (`create_sweep`, `read_sweep`): what a generated client calls."""
    return route.name


def document_standard_responses(app: FastAPI) -> None:
    """Completes the document when it is first built: install after the routes and the
    other document hooks (the idempotency header makes an operation one that takes input)."""
    build = app.openapi
    unqueued = _admission_exempt_paths(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _add_problem_shapes(schema)
            for path, method, operation in _operations(schema):
                _add_standard_errors(path, method, operation, queued=path not in unqueued)
            _drop_unused_fastapi_shapes(schema)
            _restore_examples(schema, app)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _admission_exempt_paths(app: FastAPI) -> frozenset[str]:
    # Read from the middleware itself, so the document follows what it exempts.
    for middleware in app.user_middleware:
        if cast(object, middleware.cls) is Admission:
            return cast(frozenset[str], middleware.kwargs["exempt"])
    return frozenset()


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            yield path, method, operation


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": SCHEMAS + name}}}


def _add_problem_shapes(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for shape in (Message, ValidationProblems):
        shape_schema = shape.model_json_schema(ref_template=SCHEMAS + "{model}")
        components.update(shape_schema.pop("$defs", {}))
        components[shape.__name__] = shape_schema
    schema["components"]["schemas"] = dict(sorted(components.items()))


def _add_standard_errors(
    path: str, method: str, operation: dict[str, Any], *, queued: bool
) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    takes_input = bool(operation.get("parameters")) or "requestBody" in operation
    if takes_input:
        responses["422"] = {
            "description": responses.get("422", {}).get("description")
            or "The request breaks a rule; `loc` says where.",
            "content": _ref("ValidationProblems"),
        }
    if "requestBody" in operation:
        responses.setdefault(
            "413",
            {"description": "The body is above MAX_REQUEST_BYTES.", "content": _ref("Message")},
        )
    if path.startswith("/v1/") and method in STATE_CHANGING:
        _add_idempotency_conflict(responses)
    if queued:
        _add_unavailable(responses)
    operation["responses"] = dict(sorted(responses.items()))


def _add_unavailable(responses: dict[str, Any]) -> None:
    at_capacity = "the API is at capacity (too many requests in flight)"
    own = responses.get("503")
    if own is not None:
        own["description"] = f"{own['description']} Or: {at_capacity}."
        return
    responses["503"] = {
        "description": f"The database is unreachable or busy, or {at_capacity}; retry after "
        "`Retry-After` seconds.",
        "content": _ref("Message"),
    }


def _add_idempotency_conflict(responses: dict[str, Any]) -> None:
    in_flight = "An earlier request under the same `Idempotency-Key` is still being served."
    own = responses.get("409")
    if own is None:
        responses["409"] = {"description": in_flight, "content": _ref("ValidationProblems")}
        return
    # The route's own conflict is a `Message`; the idempotency one is a problem list.
    own_schema = own["content"]["application/json"]["schema"]
    both = {"anyOf": [own_schema, {"$ref": SCHEMAS + "ValidationProblems"}]}
    responses["409"] = {
        "description": f"{own['description']} Or: {in_flight}",
        "content": {"application/json": {"schema": both}},
    }


def _drop_unused_fastapi_shapes(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    for name in FASTAPI_VALIDATION:
        components.pop(name, None)


def _restore_examples(schema: dict[str, Any], app: FastAPI) -> None:
    """FastAPI writes the document with `exclude_none`, which also strips the `null`s inside
    examples (fastapi#3270): a run's `"error": null` would vanish and the example would no
    longer match its own schema. Each shape's examples are put back as pydantic wrote them."""
    examples = _examples_by_shape(app)
    for name, component in schema["components"]["schemas"].items():
        written = examples.get(name.removesuffix("-Input").removesuffix("-Output"))
        if written is not None:
            component["examples"] = written


def _examples_by_shape(app: FastAPI) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for annotation in _route_annotations(app):
        for mode in ("validation", "serialization"):
            # In a list, the shape itself is one of the `$defs` too, named as FastAPI names
            # components (`Page_RunRead_`).
            adapter: TypeAdapter[Any] = TypeAdapter(list[annotation])  # type: ignore[valid-type]
            shapes = adapter.json_schema(mode=mode).get("$defs", {})
            for name, shape in shapes.items():
                if "examples" in shape:
                    found.setdefault(name, shape["examples"])
    return found


def _route_annotations(app: FastAPI) -> Iterator[Any]:
    # Included routers stay nested in `app.routes`; this walks them as the document does.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        if route.response_model is not None:
            yield route.response_model
        for param in route.dependant.body_params:
            yield param.field_info.annotation
        for response in route.responses.values():
            if "model" in response:
                yield response["model"]
    yield from (Message, ValidationProblems)
