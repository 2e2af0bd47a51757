"""The example of each request and response shape, as the OpenAPI document shows it.

One sweep told throughout: a `demo-noise` sweep over `blur_radius` and `strength` with two
seeds, so a reader can follow ids and values from the submission to its runs and outputs.
Kept apart from the shapes so each class carries one line for it; `tests/api/
test_openapi_document.py` checks every example against its schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict

SWEEP_ID = "4c1e8f0a-3b7d-4e2a-9f6c-1d2e3f4a5b6c"
SOURCE_SWEEP_ID = "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
INSTANCE_ID = "3f2a9c41d0b7"
WORKFLOW_HASH = "5d41402abc4b2a76b9719d911017c592ae2f5d41402abc4b2a76b9719d911017"
OUTPUT_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
CREATED_AT = "2026-12-07T10:15:00Z"
STARTED_AT = "2026-12-07T10:15:02Z"
FINISHED_AT = "2026-12-07T10:16:40Z"

AXES_READ: list[dict[str, Any]] = [
    {"param": "blur_radius", "values": [1, 5, 9]},
    {"param": "strength", "values": [0.2, 0.8]},
]
COUNTS = {"queued": 4, "running": 2, "succeeded": 5, "failed": 1, "cancelled": 0}

AXIS_IN = {"param": "blur_radius", "values": "1-9 (+4)"}
SEEDS_IN = {"count": 2, "start": 100}
RANGE_IN = {"min": 0.2, "max": 0.8}
SAMPLING_IN = {"strategy": "sobol", "samples": 16, "seed": 7, "ranges": {"strength": RANGE_IN}}
SWEEP_RETRY = {"status": ["failed"], "error_type": "transport"}
SEEDS_MORE = {"count": 2}

SPREAD = {"median": 0.41, "p90": 0.66}
ESTIMATE: dict[str, Any] = {
    "runs": 12,
    "steps": None,
    "megapixels": 0.79,
    "work_unit": "megapixel",
    "model_loads": 0,
    "history_runs": 240,
    "seconds_per_unit": SPREAD,
    "gpu_seconds": {"median": 0.32, "p90": 0.52},
    "instances": 2,
    "makespan_s": 0.16,
    "queue_ahead_runs": 0,
    "queue_wait_s": 0.0,
    "finish_at": STARTED_AT,
    "reason": None,
}
QUOTA_EXCEEDED = {"quota": "max_runs_per_sweep", "limit": 10, "value": 12}
DRY_RUN = {**ESTIMATE, "dry_run": True, "workflow": "demo-noise", "exceeds": [QUOTA_EXCEEDED]}

SWEEP_SUMMARY: dict[str, Any] = {
    "id": SWEEP_ID,
    "workflow": "demo-noise",
    "status": "running",
    "total": 12,
    "created_at": CREATED_AT,
}
SWEEP_READ: dict[str, Any] = {
    **SWEEP_SUMMARY,
    "counts": COUNTS,
    "progress": 0.5,
    "mode": "cartesian",
    "axes": AXES_READ,
    "seeds": [100, 101],
    "fixed": {"width": 256, "height": 256, "color": 0, "sigma": 1.0},
    "started_at": STARTED_AT,
    "finished_at": None,
    "workflow_version": 1,
    "workflow_hash": WORKFLOW_HASH,
    "requires": [],
    "estimate": ESTIMATE,
    "elapsed_s": None,
    "source_sweep_id": None,
}
SWEEP_REOPENED = {**SWEEP_READ, "queued": 1}

RUN_ERROR = {
    "kind": "execution",
    "message": "ImageBlur: radius must be odd",
    "node_id": "3",
    "class_type": "ImageBlur",
    "input_name": "blur_radius",
    "details": None,
}
RUN_READ: dict[str, Any] = {
    "index": 7,
    "status": "succeeded",
    "assignment": {"blur_radius": 5, "strength": 0.8, "seed": 101},
    "attempts": 2,
    "error": None,
    "instance": "http://gpu1:8188",
    "started_at": STARTED_AT,
    "finished_at": FINISHED_AT,
}
ATTEMPT_READ = {
    "attempt": 1,
    "status": "queued",
    "instance": "http://gpu2:8188",
    "started_at": STARTED_AT,
    "finished_at": "2026-12-07T10:15:30Z",
    "error": {"kind": "transport", "message": "connection refused", "instance": "gpu2"},
}
OUTPUT_READ = {
    "n": 0,
    "kind": "image",
    "mime": "image/png",
    "size": 184_233,
    "sha256": OUTPUT_SHA256,
    "url": f"/v1/sweeps/{SWEEP_ID}/runs/7/outputs/0",
}
RUN_DETAIL = {**RUN_READ, "outputs": [OUTPUT_READ], "past_attempts": [ATTEMPT_READ]}

GRID_PAGE = {
    "page": 1,
    "kind": "page",
    "title": "seed 100",
    "fixed": {},
    "width": 832,
    "height": 600,
    "cells": 6,
    "url": f"/v1/sweeps/{SWEEP_ID}/grid?page=1",
}
GRID_LIST = {"pages": [GRID_PAGE], "default_page": 1}
CONTACT_SHEET_LINK = {
    "url": f"/browse/sweeps/{SWEEP_ID}/contact-sheet?token=1767225600.Zm9vYmFy",
    "expires_at": "2026-12-08T10:15:00Z",
}

INSTANCE_READ = {
    "id": INSTANCE_ID,
    "url": "http://gpu1:8188",
    "tags": ["sdxl", "48gb"],
    "healthy": True,
    "drained": False,
    "benched_until": None,
    "benched": False,
    "failure_streak": 0,
    "running_prompts": 3,
    "slots": 3,
    "loaded_model_key": "9c1e5b7a03d24f68",
    "runs_succeeded": 412,
    "runs_failed": 3,
    "checked_at": STARTED_AT,
    "last_error": None,
}
TEAM_READ = {
    "name": "lookdev",
    "weight": 2,
    "max_running": 8,
    "max_queued": 5000,
    "max_runs_per_sweep": 2000,
    "max_priority": 80,
    "running": 3,
    "queued": 120,
}

WILDCARD_SUMMARY = {"name": "animals", "count": 3, "updated_at": CREATED_AT}
WILDCARD_READ = {**WILDCARD_SUMMARY, "entries": ["cat", "dog", "red fox"]}

# A one-node graph keeps the example readable; real graphs are ComfyUI's "Export (API)".
GRAPH = {"1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512}}}
CONTRACT = {
    "title": "Blank canvas",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "width": {
            "type": "integer",
            "default": 512,
            "minimum": 1,
            "maximum": 4096,
            "x-comfy": [{"node": "1", "input": "width"}],
        }
    },
}
DRAFT_REQUEST = {"graph": GRAPH}
DRAFT_READ = {"contract": CONTRACT, "graph": GRAPH}
WORKFLOW_VERSION_IN = {
    "graph": GRAPH,
    "contract": CONTRACT,
    "description": "Wider default canvas.",
}
WORKFLOW_CREATE = {"name": "blank-canvas", **WORKFLOW_VERSION_IN}
PARAMETER_READ = {
    "name": "blur_radius",
    "type": "integer",
    "default": 1,
    "minimum": 1,
    "maximum": 31,
    "multiple_of": None,
    "enum": None,
    "description": "Blur kernel radius in pixels.",
}
WORKFLOW_SUMMARY = {
    "name": "demo-noise",
    "title": "Demo: noise and blur",
    "description": "A model-free workflow that runs on any ComfyUI, CPU included.",
    "scope": "global",
    "version": 1,
    "hash": WORKFLOW_HASH,
}
WORKFLOW_READ = {
    **WORKFLOW_SUMMARY,
    "parameters": [PARAMETER_READ],
    "json_schema": {
        "type": "object",
        "properties": {"blur_radius": {"type": "integer", "minimum": 1, "maximum": 31}},
    },
}
WORKFLOW_VERSION_READ = {
    "version": 1,
    "hash": WORKFLOW_HASH,
    "created_at": CREATED_AT,
    "created_by": "cs_live_8Hq2",
    "has_ui_graph": False,
}

PROBLEM = {
    "loc": ["body", "axes", 0, "values"],
    "type": "value_bigger_than_max",
    "msg": "blur_radius 32 is above the maximum 31",
    "input": 32,
}
VALIDATION_PROBLEMS = {"detail": [PROBLEM]}
MESSAGE = {"detail": f"sweep {SWEEP_ID} not found"}

WEBHOOK_ID = "7d3b2a10-5c4e-4f6a-8b9c-0d1e2f3a4b5c"
WEBHOOK_SPEC = {"url": "https://hooks.example.com/comfy", "events": ["sweep.finished"]}
WEBHOOK_CREATE = {
    "url": "https://hooks.example.com/comfy",
    "events": ["sweep.finished", "run.failed"],
    "description": "team dashboard",
}
WEBHOOK_UPDATE = {"enabled": False}
WEBHOOK_READ: dict[str, Any] = {
    "id": WEBHOOK_ID,
    "url": "https://hooks.example.com/comfy",
    "events": ["sweep.finished", "run.failed"],
    "description": "team dashboard",
    "sweep_id": None,
    "enabled": True,
    "created_at": CREATED_AT,
}
WEBHOOK_CREATED = {**WEBHOOK_READ, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
SWEEP_WEBHOOK = {
    **WEBHOOK_CREATED,
    "events": ["sweep.finished"],
    "description": "",
    "sweep_id": SWEEP_ID,
}
SWEEP_SUBMITTED = {**SWEEP_READ, "webhook": SWEEP_WEBHOOK}
DELIVERY_READ = {
    "id": 42,
    "event_id": 1234,
    "event_type": "sweep.finished",
    "status": "succeeded",
    "attempts": 2,
    "next_attempt_at": None,
    "last_attempt_at": FINISHED_AT,
    "last_status_code": 200,
    "last_error": None,
    "last_response": "ok",
    "created_at": FINISHED_AT,
}

HEALTH = {"status": "ok", "workflows": 5}
READINESS = {
    "status": "ok",
    "database": "ok",
    "broker": "ok",
    "instances": "ok",
    "healthy_instances": 2,
    "detail": None,
}
NOT_READY = {
    "status": "unavailable",
    "database": "ok",
    "broker": "ok",
    "instances": "unavailable",
    "healthy_instances": 0,
    "detail": "not ready: instances",
}


def example_of(*examples: Any, extra: Literal["forbid"] | None = None) -> ConfigDict:
    """A `model_config` that gives a shape its examples in the OpenAPI document."""
    config = ConfigDict(json_schema_extra={"examples": list(examples)})
    if extra is not None:
        config["extra"] = extra
    return config
