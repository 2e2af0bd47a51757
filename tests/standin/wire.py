"""Test helpers over the raw protocol: graphs, submitting, reading WebSocket events, captures."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"
Message = dict[str, Any]


def capture(name: str) -> Any:
    return json.loads((CAPTURES / f"{name}.json").read_text())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def demo_graph(
    prefix: str, *, seed: int = 0, sigma: float = 1.0, width: int = 64
) -> dict[str, Any]:
    """EmptyImage -> ImageAddNoise -> ImageBlur -> SaveImage, as in workflows/demo-noise."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": 48, "batch_size": 1, "color": 0x336699},
        },
        "2": {
            "class_type": "ImageAddNoise",
            "inputs": {"image": ["1", 0], "seed": seed, "strength": 0.5},
        },
        "3": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["2", 0], "blur_radius": 3, "sigma": sigma},
        },
        "4": {
            "class_type": "SaveImage",
            "inputs": {"images": ["3", 0], "filename_prefix": prefix},
        },
    }


def txt2img_graph(
    prefix: str, *, seed: int = 0, ckpt: str = "v1-5-pruned-emaonly.safetensors", steps: int = 6
) -> dict[str, Any]:
    """The SD 1.5 text-to-image graph with simulated model nodes."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 128, "height": 96, "batch_size": 1},
        },
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["2", 0],
                "negative": ["3", 0],
                "latent_image": ["4", 0],
                "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": prefix}},
    }


def submit(http: httpx.Client, graph: dict[str, Any], client_id: str, **extra: Any) -> str:
    response = http.post("/prompt", json={"prompt": graph, "client_id": client_id, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["node_errors"] == {}
    return str(body["prompt_id"])


def read_until_done(ws: ClientConnection, prompt_id: str, timeout: float = 20.0) -> list[Message]:
    """Every message up to and including `executing` with node null for this prompt."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        messages.append(message)
        data = message["data"]
        done = message["type"] == "executing" and data.get("node") is None
        if done and data.get("prompt_id") == prompt_id:
            return messages


def drain(ws: ClientConnection, quiet: float = 0.3) -> list[Message]:
    """Messages that arrive until the socket has been quiet for `quiet` seconds."""
    messages: list[Message] = []
    while True:
        try:
            messages.append(json.loads(ws.recv(timeout=quiet)))
        except TimeoutError:
            return messages


def wait_history(http: httpx.Client, prompt_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(f"/history/{prompt_id}").json()
        if body:
            return dict(body[prompt_id])
        time.sleep(0.02)
    raise AssertionError(f"no history for {prompt_id} after {timeout}s")


def types(messages: list[Message]) -> list[str]:
    return [str(m["type"]) for m in messages]


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively; lists by their first element."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def output_image(history: dict[str, Any], node_id: str) -> dict[str, Any]:
    return dict(history["outputs"][node_id]["images"][0])
