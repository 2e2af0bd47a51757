"""A workflow saved from ComfyUI's menu (UI format), converted with the real `/object_info`
and queued on a real ComfyUI at COMFYUI_URL (skipped when it is not set).

Run: COMFYUI_URL=http://127.0.0.1:8188 .venv/bin/pytest tests/live -m live
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.comfy.client import ComfyClient
from app.domain.contract_draft import draft_contract
from app.domain.ui_format import ui_to_api

COMFYUI_URL = os.environ.get("COMFYUI_URL", "")
REPO_ROOT = Path(__file__).resolve().parents[2]
UI_WORKFLOW = REPO_ROOT / "tests" / "fixtures" / "ui" / "demo-noise.json"
API_WORKFLOW = REPO_ROOT / "workflows" / "demo-noise.api.json"
CONTRACT = REPO_ROOT / "params" / "demo-noise.schema.json"

pytestmark = [
    pytest.mark.live,
    pytest.mark.anyio,
    pytest.mark.skipif(not COMFYUI_URL, reason="set COMFYUI_URL to run against a real ComfyUI"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def object_info() -> dict[str, Any]:
    async with ComfyClient(COMFYUI_URL) as client:
        return await client.object_info()


async def test_the_ui_demo_converts_to_a_graph_real_comfyui_queues_unchanged(
    object_info: dict[str, Any], tmp_path: Path
) -> None:
    graph = ui_to_api(json.loads(UI_WORKFLOW.read_text()), object_info)
    # The real specs put every widget value where the shipped API export has it.
    assert graph == json.loads(API_WORKFLOW.read_text())

    graph["1"]["inputs"].update(width=48, height=40)
    graph["2"]["inputs"]["seed"] = uuid.uuid4().int % 2**32  # never served from the cache
    graph["4"]["inputs"]["filename_prefix"] = f"comfy-sweep-live/{uuid.uuid4().hex[:12]}/ui"
    prompt_id, client_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with ComfyClient(COMFYUI_URL) as client:
        accepted = await client.submit(graph, prompt_id=prompt_id, client_id=client_id)
        entry = await client.wait(prompt_id, client_id=client_id, timeout=60.0)
        [output] = entry.outputs
        downloaded = await client.download(output, tmp_path / "ui.png")
        await client.delete_history([prompt_id])

    assert accepted.node_errors == {}  # no output dropped by validation
    assert (entry.status_str, entry.error) == ("success", None)
    assert downloaded.mime == "image/png"
    with Image.open(tmp_path / "ui.png") as image:
        assert image.size == (48, 40)
        ran = json.loads(dict(image.text)["prompt"])  # type: ignore[attr-defined]
    assert ran == graph  # ComfyUI ran exactly what we converted


async def test_the_contract_drafted_from_real_specs_binds_the_shipped_contracts_inputs(
    object_info: dict[str, Any],
) -> None:
    graph = ui_to_api(json.loads(UI_WORKFLOW.read_text()), object_info)
    drafted = draft_contract(graph, object_info, title="demo-noise")
    shipped = json.loads(CONTRACT.read_text())

    def bindings(contract: dict[str, Any]) -> dict[str, tuple[str, list[Any]]]:
        return {name: (p["type"], p["x-comfy"]) for name, p in contract["properties"].items()}

    # Bounds may differ (the shipped contract narrows width to 4096); what is bound may not.
    assert bindings(drafted) == bindings(shipped)
