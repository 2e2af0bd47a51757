"""Fixtures for the ComfyUI client tests.

- `anyio_backend`: async tests run on asyncio (the anyio pytest plugin drives them).
- `standin`: the ComfyUI stand-in (`python -m app.standin`) as a real subprocess on a free
  port, shared by a test module; tests keep apart with unique prompt ids and filename prefixes.
- `start_standin`: a factory for tests that need their own process, or a restart on one port.
- `demo_graph`: workflows/demo-noise.api.json with a unique `filename_prefix`.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.support.standin_process import REPO_ROOT, Standin, launch

DEMO_WORKFLOW = REPO_ROOT / "workflows" / "demo-noise.api.json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def start_standin(tmp_path: Path) -> Iterator[Callable[..., Standin]]:
    with ExitStack() as stack:

        def start(*args: str, port: int | None = None) -> Standin:
            instance = launch(tmp_path / "standin", *args, port=port)
            stack.callback(instance.stop)
            return instance

        yield start


@pytest.fixture
def demo_graph() -> dict[str, Any]:
    """The demo workflow saving under a prefix no other test uses."""
    graph: dict[str, Any] = json.loads(DEMO_WORKFLOW.read_text())
    graph = copy.deepcopy(graph)
    graph["4"]["inputs"]["filename_prefix"] = f"comfy-tests/{uuid.uuid4().hex[:12]}/demo"
    return graph
