"""The grid of an extended sweep: its runs keep their indices, so the finalizer places them by
assignment, and the worker fits each new run's tile to the slot it will really have."""

from __future__ import annotations

import json
from uuid import UUID

from fastapi import FastAPI

from app.db.models import Sweep
from app.domain.extension import EXTENDED
from app.domain.states import RunStatus, SweepStatus
from app.grids.render import CELLS_KEY
from app.grids.tiles import tiles_directory
from app.media.storage import Storage
from app.stores import outputs
from tests.api.conftest import ClientFactory
from tests.api.test_grid_tiles_api import ingest_all, page_one, runtime  # noqa: F401
from tests.api.test_grids_api import CFG, SAMPLER, _add_run, _output, png_chunks, store_sweep
from workers.runtime import Runtime

WIDER_CFG = {"param": "cfg", "values": [5.0, 7.0, 9.0, 11.0]}


def extend_stored(app: FastAPI, sweep_id: UUID) -> None:
    """What an extension by `cfg: [11.0]` stores: the plan, and runs 6 and 7 after the rest."""
    storage = Storage(app.state.settings.data_dir)
    with app.state.session_factory() as session:
        sweep = session.get(Sweep, sweep_id)
        assert sweep is not None
        sweep.plan = {**sweep.plan, "axes": [WIDER_CFG, SAMPLER], EXTENDED: True}
        sweep.total = 8
        for index, sampler in ((6, "euler"), (7, "dpmpp_2m")):
            own = {"cfg": 11.0, "sampler_name": sampler}
            run = _add_run(session, sweep_id, index, own, RunStatus.SUCCEEDED)
            outputs.add_outputs(session, run.id, [_output(storage, sweep_id, index)])
        session.commit()


def test_an_extended_sweeps_grid_places_runs_by_assignment_and_tiles_fit_their_slots(
    app: FastAPI,
    team_client: ClientFactory,
    runtime: Runtime,  # noqa: F811
) -> None:
    stored = store_sweep(app, team_client, [CFG, SAMPLER], SweepStatus.FINALIZING, lean=True)
    extend_stored(app, stored.sweep_id)
    from_originals = page_one(runtime, stored.sweep_id)
    _, chunks = png_chunks(from_originals)
    cells = json.loads(chunks[CELLS_KEY])
    placed = [(c["assignment"]["cfg"], c["assignment"]["sampler_name"]) for c in cells]
    assert placed == [(cfg, s) for s in ("euler", "dpmpp_2m") for cfg in (5.0, 7.0, 9.0, 11.0)]
    assert {c["status"] for c in cells} == {"succeeded"}

    ingest_all(runtime, stored.sweep_id)
    assert len(list(tiles_directory(runtime.storage, stored.sweep_id).glob("*.tile"))) == 8
    # Every tile was fitted to the slot its run has: the page drawn from them is the same.
    assert page_one(runtime, stored.sweep_id) == from_originals
