"""Every shipped workflow (`workflows/*.api.json`) validates and runs on the stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.standin.wire import submit, wait_history
from tests.support.standin_process import REPO_ROOT

pytestmark = pytest.mark.timeout(60)
WORKFLOWS = sorted((REPO_ROOT / "workflows").glob("*.api.json"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_runs(http: httpx.Client, path: Path) -> None:
    graph = json.loads(path.read_text())
    history = wait_history(http, submit(http, graph, "workflows"))
    assert history["status"]["status_str"] == "success", history["status"]["messages"][-1]
    assert history["outputs"]
