"""A replayed sweep executed end to end: real Postgres, Redis, a Celery worker process, the
reconciler and two stand-in ComfyUI instances."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.integration.conftest import System, all_runs, wait_for_sweep

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]

RANDOM_SEEDS: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 64, "height": 64},
    "axes": [{"param": "blur_radius", "values": [1, 5]}],
    "seeds": {"count": 2, "random": True},
}


def created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


def pixels_of(api: httpx.Client, sweep_id: str) -> list[bytes]:
    """The decoded pixels of each run's image, by index (the files differ in their
    metadata, which names the run)."""
    pixels = []
    for run in all_runs(api, sweep_id):
        outputs = api.get(f"/v1/sweeps/{sweep_id}/runs/{run['index']}").json()["outputs"]
        assert len(outputs) == 1, outputs
        image = Image.open(io.BytesIO(api.get(outputs[0]["url"]).content))
        pixels.append(image.tobytes())
    return pixels


def test_a_replayed_sweep_runs_its_sources_runs_to_succeeded(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory()
    api = api_for(system)
    source_id = created(api.post("/v1/sweeps", json=RANDOM_SEEDS))
    assert wait_for_sweep(api, source_id, system)["status"] == "succeeded", system.logs()

    replay_id = created(api.post(f"/v1/sweeps/{source_id}/replay"))
    replayed = wait_for_sweep(api, replay_id, system)
    assert replayed["status"] == "succeeded", system.logs()
    assert replayed["counts"]["succeeded"] == 4
    assert replayed["source_sweep_id"] == source_id
    source_runs, replay_runs = all_runs(api, source_id), all_runs(api, replay_id)
    assert [r["assignment"] for r in replay_runs] == [r["assignment"] for r in source_runs]
    assert {r["status"] for r in replay_runs} == {"succeeded"}
    # Same values and seeds, so the same images: the seeds drawn for the source were reused.
    assert pixels_of(api, replay_id) == pixels_of(api, source_id)

    wider_id = created(api.post(f"/v1/sweeps/{source_id}/replay", json={"base": {"width": 96}}))
    wider = wait_for_sweep(api, wider_id, system)
    assert wider["status"] == "succeeded", system.logs()
    assert {r["assignment"]["width"] for r in all_runs(api, wider_id)} == {96}
