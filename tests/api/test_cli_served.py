"""Every client command of `comfy-sweep` against the real API served by uvicorn on loopback
(Postgres, Redis; no worker, so sweeps stay queued unless a test moves them): what each prints
with --json, the exit codes, the API's errors on stderr, and following a sweep by polling."""

from __future__ import annotations

import json
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from app.cli import cli
from tests.api.conftest import mint_key
from tests.support.serving import serve

BODY: dict[str, Any] = {
    "workflow": "demo-noise",
    "axes": [{"param": "blur_radius", "values": "1-3"}],
    "paused": True,
}


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    with serve(app) as base:
        yield base


@pytest.fixture
def env(app: FastAPI, base_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "COMFY_SWEEP_URL": base_url,
        "COMFY_SWEEP_KEY": mint_key(app, f"cli-{uuid4().hex[:8]}"),
        "COMFY_SWEEP_CONFIG": str(tmp_path / "no-config.toml"),
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def read_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sweep_file(tmp_path: Path, body: dict[str, Any], name: str = "sweep.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body), "utf-8")
    return str(path)


def submitted(env: dict[str, str], tmp_path: Path, body: dict[str, Any] = BODY) -> str:
    sweep_id: str = read_json(run(env, "submit", sweep_file(tmp_path, body), "--json"))["id"]
    return sweep_id


def test_submit_prints_the_created_sweep_and_status_and_runs_read_it_back(
    env: dict[str, str], tmp_path: Path
) -> None:
    created = read_json(
        run(env, "submit", sweep_file(tmp_path, BODY), "--json", "--priority", "70")
    )
    assert (created["status"], created["total"]) == ("paused", 3)
    status = read_json(run(env, "status", created["id"], "--json"))
    assert (status["id"], status["status"]) == (created["id"], "paused")
    runs = read_json(run(env, "runs", created["id"], "--json"))
    assert [r["index"] for r in runs] == [0, 1, 2]
    assert [r["assignment"]["blur_radius"] for r in runs] == [1, 2, 3]
    assert read_json(run(env, "runs", created["id"], "--status", "failed", "--json")) == []


def test_a_yaml_sweep_is_submitted_like_its_json(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "workflow: demo-noise\npaused: true\naxes:\n  - param: blur_radius\n    values: 1-4\n",
        "utf-8",
    )
    assert read_json(run(env, "submit", str(path), "--json"))["total"] == 4


def test_a_repeated_submit_with_one_idempotency_key_makes_one_sweep(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = sweep_file(tmp_path, BODY)
    first = read_json(run(env, "submit", path, "--json", "--idempotency-key", "job-42"))
    again = read_json(run(env, "submit", path, "--json", "--idempotency-key", "job-42"))
    assert again["id"] == first["id"]
    assert read_json(run(env, "submit", path, "--json"))["id"] != first["id"]


def test_pause_resume_and_cancel_answer_the_sweep_as_it_is_after(
    env: dict[str, str], tmp_path: Path
) -> None:
    sweep_id = submitted(env, tmp_path)
    assert read_json(run(env, "resume", sweep_id, "--json"))["status"] == "pending"
    assert read_json(run(env, "pause", sweep_id, "--json"))["status"] == "paused"
    cancelled = read_json(run(env, "cancel", sweep_id, "--json"))
    assert (cancelled["status"], cancelled["counts"]["cancelled"]) == ("cancelled", 3)
    text = run(env, "status", sweep_id)
    assert text.exit_code == 0
    assert "cancelled" in text.stdout


def test_watching_an_ended_sweep_exits_with_its_outcome(
    env: dict[str, str], tmp_path: Path
) -> None:
    sweep_id = submitted(env, tmp_path)
    run(env, "cancel", sweep_id)
    watched = run(env, "watch", sweep_id, "--json")
    assert watched.exit_code == 2, watched.output
    assert json.loads(watched.stdout)["status"] == "cancelled"


def test_watch_follows_a_running_sweep_by_polling_until_it_is_cancelled(
    env: dict[str, str], tmp_path: Path
) -> None:
    sweep_id = submitted(env, tmp_path)
    headers = {"Authorization": f"Bearer {env['COMFY_SWEEP_KEY']}"}

    def cancel_soon() -> None:
        time.sleep(2.5)
        httpx.post(f"{env['COMFY_SWEEP_URL']}/v1/sweeps/{sweep_id}/cancel", headers=headers)

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    started = time.monotonic()
    watched = run(env, "watch", sweep_id)
    canceller.join()
    assert watched.exit_code == 2, watched.output
    assert time.monotonic() - started >= 2.5
    assert f"sweep {sweep_id[:8]} paused: 0/3" in watched.stderr  # the progress, on stderr
    assert f"sweep {sweep_id} cancelled" in watched.stdout


def test_export_saves_the_sweep_as_a_zip(env: dict[str, str], tmp_path: Path) -> None:
    sweep_id = submitted(env, tmp_path)
    run(env, "cancel", sweep_id)
    target = tmp_path / "sweep.zip"
    saved = read_json(run(env, "export", sweep_id, "-o", str(target), "--json"))
    assert saved == {"path": str(target), "bytes": target.stat().st_size}
    with zipfile.ZipFile(target) as archive:
        assert "sweep.json" in {Path(name).name for name in archive.namelist()}


def test_a_grid_of_a_sweep_still_running_is_the_apis_409_on_stderr(
    env: dict[str, str], tmp_path: Path
) -> None:
    sweep_id = submitted(env, tmp_path)
    target = tmp_path / "grid.png"
    refused = run(env, "grid", sweep_id, "-o", str(target))
    assert refused.exit_code == 3
    assert refused.stdout == ""
    error = json.loads(refused.stderr.splitlines()[0])
    assert (error["status"], error["path"]) == (409, f"/v1/sweeps/{sweep_id}/grid")
    assert "paused" in error["detail"]
    assert not target.exists()
    assert not list(tmp_path.glob(".grid.png*"))


def test_a_rejected_sweep_exits_3_naming_the_field(env: dict[str, str], tmp_path: Path) -> None:
    body = {**BODY, "axes": [{"param": "blur_radius", "values": "1-3"}, {"param": "nope"}]}
    refused = run(env, "submit", sweep_file(tmp_path, body), "--wait")
    assert refused.exit_code == 3
    error = json.loads(refused.stderr.splitlines()[0])
    assert error["status"] == 422
    assert ["body", "axes", 1, "values"] in [problem["loc"] for problem in error["detail"]]
    assert "  body.axes.1.values: Field required" in refused.stderr


def test_a_wrong_key_is_the_apis_401_and_is_never_printed(
    env: dict[str, str], tmp_path: Path
) -> None:
    refused = run({**env, "COMFY_SWEEP_KEY": "csk_not-a-real-key"}, "status", str(uuid4()))
    assert refused.exit_code == 3
    assert json.loads(refused.stderr.splitlines()[0])["status"] == 401
    assert "csk_not-a-real-key" not in refused.output


def test_options_win_over_the_environment(env: dict[str, str], tmp_path: Path) -> None:
    sweep_id = submitted(env, tmp_path)
    options = ["--url", env["COMFY_SWEEP_URL"], "--key", env["COMFY_SWEEP_KEY"]]
    elsewhere = {**env, "COMFY_SWEEP_URL": "http://127.0.0.1:9", "COMFY_SWEEP_KEY": "csk_x"}
    assert read_json(run(elsewhere, "status", sweep_id, "--json", *options))["id"] == sweep_id


def test_the_config_file_is_read_when_nothing_else_is_set(
    env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{env["COMFY_SWEEP_URL"]}"\nkey = "{env["COMFY_SWEEP_KEY"]}"\n')
    only_file = {"COMFY_SWEEP_CONFIG": str(config), "COMFY_SWEEP_URL": "", "COMFY_SWEEP_KEY": ""}
    names = [w["name"] for w in read_json(run(only_file, "workflows", "--json"))]
    assert "demo-noise" in names
    listed = [w["name"] for w in read_json(run(only_file, "workflows", "list", "--json"))]
    assert listed == names


def test_an_unreadable_sweep_file_or_a_bad_option_exits_3(
    env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("workflow: [unclosed\n", "utf-8")
    assert run(env, "submit", str(broken)).exit_code == 3
    assert run(env, "submit", str(tmp_path / "absent.json")).exit_code == 3
    assert run(env, "runs", str(uuid4()), "--status", "bogus").exit_code == 3
    assert run(env, "status").exit_code == 3
