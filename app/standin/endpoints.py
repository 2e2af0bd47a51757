"""HTTP handlers with ComfyUI's paths, bodies and status codes (server.py in ComfyUI 0.3.64).

Handlers are plain functions over the request and the process's `Services`. Any exception,
a body that is not JSON included, becomes aiohttp's bare 500 page, which is what ComfyUI
answers in those cases (capture post_prompt_not_json).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import cast

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from app.standin.faults import parse_faults, spec_from_json
from app.standin.graph import JsonObject, JsonValue
from app.standin.services import Services
from app.standin.stats import system_stats
from app.standin.validation import Validation, reject_out_of_range, validate_prompt
from app.standin.view import find_view_file

log = logging.getLogger(__name__)

SERVER_ERROR_TEXT = "500 Internal Server Error\n\nServer got itself in trouble"
Handler = Callable[[Request], Awaitable[Response]]


def json_response(data: JsonValue, status: int = 200) -> Response:
    # json.dumps defaults (NaN allowed, ", " separators) like aiohttp's json_response.
    return Response(json.dumps(data), status_code=status, media_type="application/json")


def comfy_route(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception:
            log.exception("handler failed path=%s", request.url.path)
            return PlainTextResponse(SERVER_ERROR_TEXT, status_code=500)

    return wrapped


def services_of(request: Request) -> Services:
    return cast(Services, request.app.state.services)


async def json_body(request: Request) -> JsonValue:
    """The JSON body; raises (-> 500) when it is not JSON, as ComfyUI's `request.json()`."""
    return cast(JsonValue, json.loads(await request.body()))


async def object_body(request: Request) -> JsonObject:
    body = await json_body(request)
    return body if isinstance(body, dict) else {}


def _no_prompt() -> Response:
    error: JsonObject = {
        "type": "no_prompt",
        "message": "No prompt provided",
        "details": "No prompt provided",
        "extra_info": {},
    }
    return json_response({"error": error, "node_errors": {}}, status=400)


def _take_number(services: Services, body: JsonObject) -> int | float:
    if "number" in body:
        return float(cast(float, body["number"]))
    number = services.next_number
    services.next_number += 1
    return -number if body.get("front") else number


def _rejected(
    services: Services,
    prompt: JsonObject,
    target_ids: list[str] | None,
    validation: Validation,
    submission: int,
) -> Validation:
    """The `reject` fault: ComfyUI's answer to an out-of-range value, in place of acceptance."""
    rejection = reject_out_of_range(prompt, services.specs, target_ids, validation.outputs)
    if rejection is None:
        log.warning("fault reject submission=%d: no literal INT/FLOAT input, accepted", submission)
        return validation
    log.warning("fault reject submission=%d", submission)
    return rejection


@comfy_route
async def post_prompt(request: Request) -> Response:
    services = services_of(request)
    submission = services.stats.prompt_submitted()
    if services.faults.plan.unavailable.matches(submission):
        log.warning("fault unavailable submission=%d", submission)
        return json_response({"error": "fault: unavailable"}, 503)
    body = await object_body(request)
    number = _take_number(services, body)
    if "prompt" not in body:
        return _no_prompt()
    prompt = body["prompt"]
    if not isinstance(prompt, dict):
        raise TypeError("prompt must be an object")  # ComfyUI fails the same way: 500
    prompt_id = str(body.get("prompt_id", uuid.uuid4()))
    targets = body.get("partial_execution_targets")
    target_ids = [str(t) for t in targets] if isinstance(targets, list) else None
    validation = validate_prompt(prompt, services.specs, target_ids)
    extra_data = body.get("extra_data", {})
    if not isinstance(extra_data, dict):
        raise TypeError("extra_data must be an object")
    if "client_id" in body:
        extra_data["client_id"] = body["client_id"]
    if validation.ok and services.faults.plan.reject.matches(submission):
        validation = _rejected(services, prompt, target_ids, validation, submission)
    if not validation.ok:
        return json_response(
            {"error": validation.error, "node_errors": validation.node_errors}, 400
        )
    services.queue.put(number, prompt_id, prompt, extra_data, validation.outputs)
    answer: JsonObject = {
        "prompt_id": prompt_id,
        "number": number,
        "node_errors": validation.node_errors,
    }
    return json_response(answer)


@comfy_route
async def get_prompt(request: Request) -> Response:
    return json_response(cast(JsonValue, services_of(request).queue_info()))


@comfy_route
async def get_queue(request: Request) -> Response:
    queue = services_of(request).queue
    running: list[JsonValue] = [item.wire() for item in queue.running()]
    pending: list[JsonValue] = [item.wire() for item in queue.pending()]
    return json_response({"queue_running": running, "queue_pending": pending})


def _ids(body: JsonObject) -> list[str]:
    ids = body.get("delete", [])
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


@comfy_route
async def post_queue(request: Request) -> Response:
    queue, body = services_of(request).queue, await object_body(request)
    if body.get("clear"):
        queue.wipe()
    for prompt_id in _ids(body):
        queue.delete(prompt_id)
    return Response(status_code=200)


@comfy_route
async def post_interrupt(request: Request) -> Response:
    services = services_of(request)
    try:
        body = await object_body(request)
    except json.JSONDecodeError:
        body = {}
    prompt_id = body.get("prompt_id")
    running = services.queue.running()
    # Targeted: only if that prompt is the one running; a race with its completion is lost.
    if not prompt_id or any(item.prompt_id == prompt_id for item in running):
        services.executor.interrupt.set()
    return Response(status_code=200)


def _optional_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return None if value is None else int(value)


@comfy_route
async def get_history(request: Request) -> Response:
    history = services_of(request).history
    entries = history.recent(_optional_int(request, "max_items"), _optional_int(request, "offset"))
    return json_response(entries)


@comfy_route
async def get_history_entry(request: Request) -> Response:
    prompt_id = request.path_params["prompt_id"]
    return json_response(services_of(request).history.get(prompt_id))


@comfy_route
async def post_history(request: Request) -> Response:
    history, body = services_of(request).history, await object_body(request)
    if body.get("clear"):
        history.clear()
    for prompt_id in _ids(body):
        history.delete(prompt_id)
    return Response(status_code=200)


@comfy_route
async def get_view(request: Request) -> Response:
    services = services_of(request)
    delay_ms = services.faults.plan.slow_view_ms
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    config = services.config
    directories = {"output": config.output_dir, "temp": config.temp_dir, "input": config.input_dir}
    found = find_view_file(request.query_params, directories)
    if isinstance(found, int):
        return Response(status_code=found)
    headers = {"Content-Disposition": f'filename="{found.filename}"'}
    return FileResponse(found.path, headers=headers, media_type=found.content_type)


@comfy_route
async def get_object_info(request: Request) -> Response:
    return Response(services_of(request).object_info, media_type="application/json")


@comfy_route
async def get_object_info_node(request: Request) -> Response:
    specs = services_of(request).specs
    node_class = request.path_params["node_class"]
    spec = specs.get(node_class)
    return json_response({} if spec is None else {node_class: spec.info})


@comfy_route
async def get_system_stats(request: Request) -> Response:
    services = services_of(request)
    extra: JsonObject = {
        "faults": services.faults.plan.as_json(),
        "sockets_open": services.hub.socket_count(),
    }
    return json_response(system_stats(services.stats, extra))


@comfy_route
async def post_free(request: Request) -> Response:
    services, body = services_of(request), await object_body(request)
    for flag in ("unload_models", "free_memory"):
        if body.get(flag):
            services.queue.set_flag(flag)
    return Response(status_code=200)


@comfy_route
async def post_stats_window(request: Request) -> Response:
    """Not ComfyUI: start a new timing window for `busy_s` and `idle_between_s`."""
    services = services_of(request)
    services.stats.new_timing_window()
    return json_response(services.stats.as_json())


@comfy_route
async def get_features(request: Request) -> Response:
    return json_response({"supports_preview_metadata": True, "max_upload_size": 104857600})


@comfy_route
async def get_models(request: Request) -> Response:
    return json_response(list[JsonValue](services_of(request).config.model_files.folders))


@comfy_route
async def get_model_folder(request: Request) -> Response:
    files = services_of(request).config.model_files
    folder = request.path_params["folder"]
    if folder not in files.folders:
        return Response(status_code=404)
    return json_response(list[JsonValue](files.names(folder)))


@comfy_route
async def get_embeddings(request: Request) -> Response:
    return json_response([])


def _faults_answer(services: Services) -> Response:
    body = services.faults.plan.as_json()
    body["prompts_submitted"] = services.stats.prompts_submitted
    body["prompts_executed"] = services.stats.prompts_executed
    return json_response(body)


@comfy_route
async def get_faults(request: Request) -> Response:
    return _faults_answer(services_of(request))


@comfy_route
async def post_faults(request: Request) -> Response:
    """Not ComfyUI: replace the fault plan at runtime (`{"spec": "fail:+1"}`)."""
    services = services_of(request)
    try:
        spec = spec_from_json(await json_body(request))
        stats = services.stats
        plan = parse_faults(spec, started=stats.prompts_executed, submitted=stats.prompts_submitted)
    except ValueError as ex:
        return json_response({"error": str(ex)}, status=400)
    services.faults.replace(plan)
    return _faults_answer(services)
