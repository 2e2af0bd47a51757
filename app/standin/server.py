"""The Starlette application: ComfyUI's routes, the `/ws` endpoint and the process lifespan.

The executor runs on its own thread (started and stopped by the lifespan), so Pillow work and
simulated model loads never block the event loop that serves HTTP and WebSocket clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.standin import endpoints as e
from app.standin.config import StandinConfig
from app.standin.graph import JsonObject, JsonValue
from app.standin.services import Services, build_services

ROUTES: list[BaseRoute] = [
    Route("/prompt", e.post_prompt, methods=["POST"]),
    Route("/prompt", e.get_prompt, methods=["GET"]),
    Route("/queue", e.get_queue, methods=["GET"]),
    Route("/queue", e.post_queue, methods=["POST"]),
    Route("/interrupt", e.post_interrupt, methods=["POST"]),
    Route("/history", e.get_history, methods=["GET"]),
    Route("/history", e.post_history, methods=["POST"]),
    Route("/history/{prompt_id}", e.get_history_entry, methods=["GET"]),
    Route("/view", e.get_view, methods=["GET"]),
    Route("/object_info", e.get_object_info, methods=["GET"]),
    Route("/object_info/{node_class}", e.get_object_info_node, methods=["GET"]),
    Route("/system_stats", e.get_system_stats, methods=["GET"]),
    Route("/free", e.post_free, methods=["POST"]),
    Route("/features", e.get_features, methods=["GET"]),
    Route("/models", e.get_models, methods=["GET"]),
    Route("/models/{folder}", e.get_model_folder, methods=["GET"]),
    Route("/embeddings", e.get_embeddings, methods=["GET"]),
    Route("/standin/faults", e.get_faults, methods=["GET"]),
    Route("/standin/faults", e.post_faults, methods=["POST"]),
    Route("/standin/stats/window", e.post_stats_window, methods=["POST"]),
]
SERVER_FEATURES: JsonObject = {"supports_preview_metadata": True, "max_upload_size": 104857600}


async def websocket_endpoint(socket: WebSocket) -> None:
    """`/ws?clientId=`: `status` on connect, then whatever the hub sends to this client."""
    services: Services = socket.app.state.services
    hub = services.hub
    await socket.accept()
    services.stats.socket_opened()
    sid = socket.query_params.get("clientId", "") or uuid.uuid4().hex
    hub.attach(sid, socket)  # replaces an earlier socket with the same clientId
    status: JsonObject = {"status": {"exec_info": {"queue_remaining": services.queue.remaining()}}}
    hub.send("status", {**status, "sid": sid}, sid)
    if hub.client_id == sid and hub.last_node_id is not None:
        hub.send("executing", {"node": hub.last_node_id}, sid)  # ComfyUI sends no prompt_id here
    try:
        first = True
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if first and isinstance(text, str) and _is_feature_flags(text):
                hub.send("feature_flags", SERVER_FEATURES, sid)
            first = False
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.detach(sid)


def _is_feature_flags(text: str) -> bool:
    try:
        message: JsonValue = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "feature_flags"


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    services: Services = app.state.services
    services.hub.bind(asyncio.get_running_loop())
    publisher = asyncio.create_task(services.hub.publish_forever())
    services.worker.start()
    try:
        yield
    finally:
        await asyncio.to_thread(services.worker.stop)
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher


def create_app(config: StandinConfig) -> Starlette:
    services = build_services(config)
    info = {name: spec.info for name, spec in services.specs.items()}
    services.object_info = json.dumps(info).encode("utf-8")
    routes = [*ROUTES, WebSocketRoute("/ws", websocket_endpoint)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.services = services
    return app
