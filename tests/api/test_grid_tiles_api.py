"""Tiles through the worker and the finalizer on the real database: ingesting a run's output
writes its fitted tile, `build_grids` draws the tiles into the same page it would draw from the
originals, falls back to the original when a tile is missing, and finalizing drops them."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from fastapi import FastAPI
from PIL import Image

from app.domain.grid_geometry import Size
from app.domain.states import RunStatus, SweepStatus
from app.grids.manifest import grids_directory
from app.grids.tiles import TileKey, tile_path, tiles_directory, write_tile
from app.media.storage import Storage
from app.stores.grids import runs_with_first_output, sweep_for_grids
from app.stores.outputs import NewOutput
from app.stores.runs import Claim
from tests.api.conftest import ClientFactory
from tests.api.test_grids_api import CFG, SAMPLER, store_sweep
from workers import tiling
from workers.comfy_session import ComfySession
from workers.finalization import finalize_cancelled
from workers.gridding import build_grids, plan_for
from workers.runtime import Runtime

BLUE = (20, 20, 220)


@pytest.fixture(scope="module")
def runtime(app: FastAPI) -> Runtime:
    return Runtime(
        settings=app.state.settings,
        sessions=app.state.session_factory,
        storage=Storage(app.state.settings.data_dir),
        celery=app.state.celery,
        comfy=ComfySession(),
    )


def ingest_all(rt: Runtime, sweep_id: UUID, *, from_memory: bool = False) -> None:
    """What the worker does after each succeeded run's download. `from_memory`: as after a
    download written from memory, which hands the tile its body, and the file is taken away
    so that only the body can make the tile."""
    with rt.sessions() as session:
        done = [run for run in runs_with_first_output(session, sweep_id) if run.path]
    for run in done:
        assert run.path is not None
        assert run.kind is not None
        assert run.sha256 is not None
        claim = Claim(uuid4(), sweep_id, run.index, run.assignment, 1, "gpu-0", "model")
        output = NewOutput(0, run.kind, run.path, "image/png", 1, run.sha256)
        bodies: dict[int, bytes] = {}
        if from_memory:
            stored = rt.storage.resolve(run.path)
            bodies[0] = stored.read_bytes()
            stored.rename(stored.with_name("away"))
        tiling.write_run_tile(rt, claim, [output], bodies)
        if from_memory:
            stored.with_name("away").rename(stored)


def page_one(rt: Runtime, sweep_id: UUID) -> bytes:
    build_grids(rt, sweep_id)
    return (grids_directory(rt.storage, sweep_id) / "page-1.png").read_bytes()


def test_ingested_tiles_make_the_same_page_and_a_missing_one_falls_back(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime
) -> None:
    failed = {4: RunStatus.FAILED}
    sweep_id = store_sweep(
        app, team_client, [CFG, SAMPLER], SweepStatus.FINALIZING, failed
    ).sweep_id
    from_originals = page_one(runtime, sweep_id)

    ingest_all(runtime, sweep_id)
    tiles = tiles_directory(runtime.storage, sweep_id)
    assert len(list(tiles.glob("*.tile"))) == 5  # the failed run has none
    assert page_one(runtime, sweep_id) == from_originals

    # The finalizer really draws the tile: a blue one shows blue.
    with runtime.sessions() as session:
        sweep = sweep_for_grids(session, sweep_id)
        (first, *_) = list(runs_with_first_output(session, sweep_id))
    assert sweep is not None
    assert first.sha256 is not None
    slot = plan_for(sweep, Size(96, 64)).pages[0].cells[0].slots[0]
    box = Size(slot.rect.width, slot.rect.height)
    path = tile_path(TileKey(tiles, 0, first.sha256), box)
    assert path.exists()
    write_tile(path, Image.new("RGB", (box.width, box.height), BLUE))
    build_grids(runtime, sweep_id)
    with Image.open(grids_directory(runtime.storage, sweep_id) / "page-1.png") as drawn:
        assert drawn.convert("RGB").getpixel((slot.rect.x + 5, slot.rect.y + 5)) == BLUE

    path.unlink()
    assert page_one(runtime, sweep_id) == from_originals

    finalize_cancelled(runtime, sweep_id)
    assert not tiles.exists()
    assert page_one(runtime, sweep_id) == from_originals


def test_a_sweeps_grid_is_planned_once_for_every_process_that_fits_its_tiles(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = store_sweep(app, team_client, [CFG, SAMPLER], SweepStatus.FINALIZING).sweep_id
    from_originals = page_one(runtime, sweep_id)
    ingest_all(runtime, sweep_id)  # the first process plans the grid, and shares its slots
    tiles = tiles_directory(runtime.storage, sweep_id)
    written = {path.name: path.read_bytes() for path in tiles.glob("*.tile")}
    assert len(list(tiles.glob("slots-*.json"))) == 1

    # Another process: nothing remembered, and planning is not an option.
    monkeypatch.setattr(tiling, "_slots", {})
    monkeypatch.setattr(tiling, "_sweeps", {})

    def no_planning(*_: object) -> None:
        raise AssertionError("the grid was planned again")

    monkeypatch.setattr(tiling, "plan_for", no_planning)
    for path in tiles.glob("*.tile"):
        path.unlink()
    ingest_all(runtime, sweep_id)
    assert {path.name: path.read_bytes() for path in tiles.glob("*.tile")} == written
    assert page_one(runtime, sweep_id) == from_originals


def test_a_tile_fitted_from_the_downloaded_body_is_the_one_fitted_from_its_file(
    app: FastAPI, team_client: ClientFactory, runtime: Runtime
) -> None:
    sweep_id = store_sweep(app, team_client, [CFG, SAMPLER], SweepStatus.FINALIZING).sweep_id
    ingest_all(runtime, sweep_id)
    tiles = tiles_directory(runtime.storage, sweep_id)
    from_files = {path.name: path.read_bytes() for path in tiles.glob("*.tile")}
    assert len(from_files) == 6
    for path in tiles.glob("*.tile"):
        path.unlink()

    ingest_all(runtime, sweep_id, from_memory=True)
    assert {path.name: path.read_bytes() for path in tiles.glob("*.tile")} == from_files
