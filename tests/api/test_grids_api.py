"""A sweep's grids over HTTP: 409 until the finalizer has built them, then the PNG pages and
their listing; 404 for pages that do not exist and for other teams' sweeps.

Sweeps, runs and outputs are written through the stores in committed sessions of the app's
own session factory, output files through `Storage`; `build_grids` then runs as the finalizer
would, on a runtime made of the app's own session factory and DATA_DIR.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin

from app.db.models import Run, Sweep
from app.domain.states import RunStatus, SweepStatus
from app.grids.manifest import grids_directory
from app.grids.render import CELLS_KEY, PAGE_KEY, REQUEST_KEY
from app.media.storage import Storage
from app.stores import outputs, teams
from tests.api.conftest import ClientFactory
from workers.comfy_session import ComfySession
from workers.gridding import build_grids
from workers.runtime import Runtime


@pytest.fixture(scope="module")
def runtime(app: FastAPI) -> Runtime:
    return Runtime(
        settings=app.state.settings,
        sessions=app.state.session_factory,
        storage=Storage(app.state.settings.data_dir),
        celery=app.state.celery,
        comfy=ComfySession(),
    )


@dataclass(frozen=True)
class StoredSweep:
    client: TestClient
    sweep_id: UUID

    def url(self, path: str = "grid", **query: int) -> str:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        return f"/v1/sweeps/{self.sweep_id}/{path}" + (f"?{params}" if params else "")


def store_sweep(
    app: FastAPI,
    team_client: ClientFactory,
    axes: list[dict[str, Any]],
    status: SweepStatus,
    run_status: dict[int, RunStatus] | None = None,
    *,
    lean: bool = False,
) -> StoredSweep:
    """A sweep over `axes` (cartesian, no seeds) whose runs each wrote a 96×64 PNG, unless
    `run_status` gives them another end. Runs store their whole assignment, as before runs
    were lean, or with `lean` only their axis values, as a submission stores them now."""
    team = f"team-{uuid4().hex[:8]}"
    client = team_client(team)
    sweep_id = uuid4()
    storage = Storage(app.state.settings.data_dir)
    plan = {"fixed": {"seed": 1}, "axes": axes, "mode": "cartesian", "seed_param": None}
    request = {"workflow": "demo-noise", "axes": axes}
    total = 1
    for axis in axes:
        total *= len(axis["values"])
    with app.state.session_factory() as session:
        team_id = teams.get_or_create_team(session, team).id
        sweep = Sweep(
            id=sweep_id,
            team_id=team_id,
            workflow="demo-noise",
            request=request,
            plan={**plan, "seeds": [], "samples": []},
            total=total,
            status=status,
        )
        session.add(sweep)
        session.flush()
        for index, assignment in enumerate(_assignments(axes)):
            end = (run_status or {}).get(index, RunStatus.SUCCEEDED)
            own = {k: v for k, v in assignment.items() if k != "seed"}  # the fixed one
            run = _add_run(session, sweep_id, index, own if lean else assignment, end)
            if end == RunStatus.SUCCEEDED:
                outputs.add_outputs(session, run.id, [_output(storage, sweep_id, index)])
        session.commit()
    return StoredSweep(client, sweep_id)


def _assignments(axes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{"seed": 1}]
    for axis in axes:  # the first axis varies fastest, as in expansion
        combos = [{**c, axis["param"]: v} for v in axis["values"] for c in combos]
    return combos


def _add_run(
    session: Any, sweep_id: UUID, index: int, assignment: dict[str, Any], status: RunStatus
) -> Run:
    error = {"kind": "execution", "message": "CUDA out of memory"}
    run = Run(
        sweep_id=sweep_id,
        index=index,
        own_values=assignment,
        status=status,
        error=error if status == RunStatus.FAILED else None,
    )
    session.add(run)
    session.flush()
    return run


def _output(storage: Storage, sweep_id: UUID, index: int) -> outputs.NewOutput:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (20 * index % 255, 90, 160)).save(buffer, format="PNG")
    path = storage.output_path(sweep_id, index, 0, ".png")
    digest = storage.write_stream(path, [buffer.getvalue()])
    return outputs.NewOutput(0, "image", storage.relative(path), "image/png", *digest)


def finish(app: FastAPI, sweep_id: UUID, status: SweepStatus = SweepStatus.SUCCEEDED) -> None:
    with app.state.session_factory() as session:
        sweep = session.get(Sweep, sweep_id)
        assert sweep is not None
        sweep.status = status
        session.commit()


def png_chunks(content: bytes) -> tuple[tuple[int, int], dict[str, str]]:
    with Image.open(io.BytesIO(content)) as image:
        assert isinstance(image, PngImagePlugin.PngImageFile)
        return image.size, dict(image.text)


CFG = {"param": "cfg", "values": [5.0, 7.0, 9.0]}
SAMPLER = {"param": "sampler_name", "values": ["euler", "dpmpp_2m"]}
STEPS = {"param": "steps", "values": [10, 20, 30]}


def test_grids_are_not_ready_while_the_sweep_runs(app: FastAPI, team_client: ClientFactory) -> None:
    stored = store_sweep(app, team_client, [CFG, SAMPLER], SweepStatus.RUNNING)
    for url in (stored.url(), stored.url("grids"), stored.url(page=1)):
        response = stored.client.get(url)
        assert response.status_code == 409, url
        assert "running" in response.json()["detail"]


def test_an_ended_sweep_whose_grids_are_not_written_yet_is_not_ready(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored = store_sweep(app, team_client, [CFG], SweepStatus.SUCCEEDED)
    response = stored.client.get(stored.url())
    assert response.status_code == 409
    assert "succeeded" in response.json()["detail"]


def test_a_built_grid_is_served_as_png_with_its_record(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime
) -> None:
    stored = store_sweep(
        app, team_client, [CFG, SAMPLER], SweepStatus.FINALIZING, {4: RunStatus.FAILED}
    )
    files = build_grids(runtime, stored.sweep_id)
    assert [(f.page, f.kind, f.path.name) for f in files] == [(1, "page", "page-1.png")]
    finish(app, stored.sweep_id, SweepStatus.PARTIAL)
    response = stored.client.get(stored.url())
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    size, chunks = png_chunks(response.content)
    listing = stored.client.get(stored.url("grids")).json()
    assert listing["default_page"] == 1
    assert [(p["page"], p["kind"]) for p in listing["pages"]] == [(1, "page")]
    assert size == (listing["pages"][0]["width"], listing["pages"][0]["height"])
    assert json.loads(chunks[REQUEST_KEY])["workflow"] == "demo-noise"
    cells = json.loads(chunks[CELLS_KEY])
    assert [c["index"] for c in cells] == list(range(6))
    assert cells[1]["assignment"] == {"seed": 1, "cfg": 7.0, "sampler_name": "euler"}
    assert cells[4]["status"] == "failed"
    assert cells[4]["error"] == "execution: CUDA out of memory"


def test_a_three_axis_sweep_lists_one_page_per_third_axis_value_and_an_index(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime
) -> None:
    stored = store_sweep(app, team_client, [CFG, SAMPLER, STEPS], SweepStatus.FINALIZING)
    build_grids(runtime, stored.sweep_id)
    finish(app, stored.sweep_id)
    listing = stored.client.get(stored.url("grids")).json()
    assert listing["default_page"] == 0
    pages = listing["pages"]
    assert [(p["page"], p["kind"]) for p in pages] == [
        (0, "index"),
        (1, "page"),
        (2, "page"),
        (3, "page"),
    ]
    assert [p["fixed"] for p in pages[1:]] == [{"steps": 10}, {"steps": 20}, {"steps": 30}]
    assert pages[2]["url"] == f"/v1/sweeps/{stored.sweep_id}/grid?page=2"
    _, chunks = png_chunks(stored.client.get(pages[2]["url"]).content)
    assert json.loads(chunks[PAGE_KEY])["fixed"] == {"steps": 20}
    index = stored.client.get(stored.url())
    assert index.status_code == 200
    _, index_chunks = png_chunks(index.content)
    assert json.loads(index_chunks[PAGE_KEY])["kind"] == "index"


def test_unknown_pages_and_other_teams_sweeps_are_not_found(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime
) -> None:
    stored = store_sweep(app, team_client, [CFG], SweepStatus.FINALIZING)
    build_grids(runtime, stored.sweep_id)
    finish(app, stored.sweep_id)
    assert stored.client.get(stored.url(page=1)).status_code == 200
    assert stored.client.get(stored.url(page=0)).status_code == 404  # one page: no index
    assert stored.client.get(stored.url(page=2)).status_code == 404
    stranger = team_client()
    for url in (stored.url(), stored.url("grids")):
        assert stranger.get(url).status_code == 404, url
    assert stored.client.get(f"/v1/sweeps/{uuid4()}/grids").status_code == 404


def test_a_negative_page_is_refused(app: FastAPI, team_client: ClientFactory) -> None:
    stored = store_sweep(app, team_client, [CFG], SweepStatus.SUCCEEDED)
    assert stored.client.get(stored.url(page=-1)).status_code == 422


def test_building_again_rewrites_the_pages_and_drops_stale_ones(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime
) -> None:
    stored = store_sweep(app, team_client, [CFG], SweepStatus.FINALIZING)
    build_grids(runtime, stored.sweep_id)
    directory = grids_directory(runtime.storage, stored.sweep_id)
    (directory / "page-7.png").write_bytes(b"stale")
    build_grids(runtime, stored.sweep_id)
    assert sorted(p.name for p in directory.iterdir()) == ["grids.json", "page-1.png"]


def test_cancelled_and_failed_runs_without_outputs_still_build(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime
) -> None:
    ends = {0: RunStatus.CANCELLED, 1: RunStatus.FAILED, 2: RunStatus.CANCELLED}
    stored = store_sweep(app, team_client, [CFG], SweepStatus.FINALIZING, ends)
    build_grids(runtime, stored.sweep_id)
    finish(app, stored.sweep_id, SweepStatus.CANCELLED)
    _, chunks = png_chunks(stored.client.get(stored.url()).content)
    statuses = [c["status"] for c in json.loads(chunks[CELLS_KEY])]
    assert statuses == ["cancelled", "failed", "cancelled"]


def test_an_unknown_sweep_builds_nothing(runtime: Runtime) -> None:
    assert build_grids(runtime, uuid4()) == []


def test_a_lean_sweep_draws_the_same_grid_as_one_stored_whole(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime
) -> None:
    records = []
    for lean in (False, True):
        stored = store_sweep(app, team_client, [CFG, SAMPLER], SweepStatus.FINALIZING, lean=lean)
        build_grids(runtime, stored.sweep_id)
        finish(app, stored.sweep_id)
        chunks = png_chunks(stored.client.get(stored.url()).content)[1]
        page = json.loads(chunks[PAGE_KEY])
        labels = [label for label in page["labels"] if label["role"] != "title"]  # names the id
        records.append((json.loads(chunks[CELLS_KEY]), labels, page["fixed"]))
    assert records[1] == records[0]
    assert records[1][0][1]["assignment"] == {"seed": 1, "cfg": 7.0, "sampler_name": "euler"}
