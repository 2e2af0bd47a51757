"""`comfy-sweep` driving whole sweeps: the real API on loopback, a real worker process and
stand-in instances. `submit --wait` exits with the sweep's outcome, so a farm job can depend
on it, and its --json output is one parseable document.

The test marked `needs_events` follows over `GET /v1/sweeps/{id}/events`; it is skipped
while the API serves no such route (the CLI then polls, as the other tests here show)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from typer.testing import CliRunner, Result

from app.cli import cli
from app.client.api import SweepApi
from app.client.config import ClientConfig
from app.client.follow import SweepProgress, follow_sweep
from app.settings import PROJECT_ROOT
from tests.integration.conftest import System

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]
DEMO = PROJECT_ROOT / "examples" / "demo.json"
SMALL: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 64, "height": 64},
    "axes": [{"param": "blur_radius", "values": "1-2"}],
}


def env_for(api: httpx.Client, tmp_path: Path) -> dict[str, str]:
    return {
        "COMFY_SWEEP_URL": str(api.base_url).rstrip("/"),
        "COMFY_SWEEP_KEY": api.headers["Authorization"].removeprefix("Bearer "),
        "COMFY_SWEEP_CONFIG": str(tmp_path / "no-config.toml"),
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def test_the_demo_sweep_submitted_with_wait_exits_0_and_its_results_download(
    system_factory: SystemFactory, api_for: ApiFor, tmp_path: Path
) -> None:
    system = system_factory()
    env = env_for(api_for(system), tmp_path)
    waited = run(env, "submit", str(DEMO), "--wait", "--json")
    assert waited.exit_code == 0, waited.output + system.logs()
    sweep = json.loads(waited.stdout)
    assert (sweep["status"], sweep["counts"]["succeeded"]) == ("succeeded", 12)
    assert "succeeded" in waited.stderr  # the progress lines

    status = run(env, "status", sweep["id"], "--json")
    assert json.loads(status.stdout)["status"] == "succeeded"
    runs = json.loads(run(env, "runs", sweep["id"], "--json").stdout)
    assert [r["status"] for r in runs] == ["succeeded"] * 12

    grid = tmp_path / "grid.png"
    assert run(env, "grid", sweep["id"], "-o", str(grid)).exit_code == 0
    assert grid.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pages = json.loads(run(env, "grid", sweep["id"], "--list", "--json").stdout)
    assert pages["pages"]
    archive = tmp_path / "sweep.zip"
    assert run(env, "export", sweep["id"], "-o", str(archive)).exit_code == 0
    assert archive.read_bytes().startswith(b"PK")


def test_a_sweep_whose_runs_fail_exits_1_and_runs_lists_the_failures(
    system_factory: SystemFactory, api_for: ApiFor, tmp_path: Path
) -> None:
    system = system_factory("--faults", "fail:*", instances=1)
    env = env_for(api_for(system), tmp_path)
    body = tmp_path / "small.json"
    body.write_text(json.dumps(SMALL), "utf-8")
    waited = run(env, "submit", str(body), "--wait")
    assert waited.exit_code == 1, waited.output + system.logs()
    sweep_id = waited.stdout.split()[1]
    assert json.loads(run(env, "status", sweep_id, "--json").stdout)["status"] == "failed"
    failed = json.loads(run(env, "runs", sweep_id, "--status", "failed", "--json").stdout)
    assert [r["index"] for r in failed] == [0, 1]
    assert all("stand-in fault" in json.dumps(r["error"]) for r in failed)


def serves_events(api: httpx.Client) -> bool:
    answer = api.get(f"/v1/sweeps/{uuid4()}/events")
    return not (answer.status_code == 404 and answer.json().get("detail") == "Not Found")


def test_needs_events_a_sweep_is_followed_over_its_event_stream_to_its_end(
    system_factory: SystemFactory, api_for: ApiFor, tmp_path: Path
) -> None:
    system = system_factory()
    api = api_for(system)
    if not serves_events(api):
        pytest.skip("needs GET /v1/sweeps/{id}/events (issue 15 item 2), not served yet")
    sweep_id = api.post("/v1/sweeps", json=SMALL).json()["id"]
    key = api.headers["Authorization"].removeprefix("Bearer ")
    seen: list[str] = []
    with SweepApi(ClientConfig(str(api.base_url).rstrip("/"), key)) as client:
        final: SweepProgress = follow_sweep(client, sweep_id, lambda p: seen.append(p.status))
    assert (final.via, final.status, final.done) == ("events", "succeeded", 2)
    assert final.last_event_id is not None
    assert "running" in seen
    waited = run(env_for(api, tmp_path), "watch", sweep_id)
    assert waited.exit_code == 0, waited.output
