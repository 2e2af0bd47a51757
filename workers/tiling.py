"""Fitting a succeeded run's first image or video into its grid slot as the run is ingested,
so finalizing a sweep pastes tiles (`app.grids.tiles`) instead of decoding every output.

The slot comes from the same pure plan the finalizer computes (`gridding.plan_for`), taking
this output's size for the first image's: the outputs of one workflow share a size, and when
they do not, the finalizer asks for another slot size, finds no tile and fits the original.
A tile is an optimisation only: any failure here is logged and the run is recorded as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from uuid import UUID

from app.domain.extension import EXTENDED, CellLocator
from app.domain.grid_dimensions import sweep_plan_from_record
from app.domain.grid_geometry import Size
from app.domain.grid_layout import slots_by_index
from app.grids.render import CellUnreadable, ImageSource, load_thumbnail, peek_size
from app.grids.slot_sizes import read_slot_sizes, slot_sizes_name, write_slot_sizes
from app.grids.tiles import tile_key, tile_path, tiles_directory, write_tile
from app.stores.grids import SHOWN_KINDS, GridSweep, sweep_for_grids
from app.stores.outputs import NewOutput
from app.stores.runs import Claim
from workers.gridding import plan_for
from workers.runtime import Runtime

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")

# A sweep's request and plan change only when it is extended, and planning 1,000 cells takes
# milliseconds that every run would otherwise repeat: remembered per process, by sweep and
# image size (and total, which an extension grows), as each grid position's slot size; and
# shared between processes (`app.grids.slot_sizes`), so a sweep is planned once.
_CACHE_LIMIT = 64
_sweeps: dict[UUID, _TiledSweep | None] = {}
_slots: dict[tuple[UUID, int, Size | None], dict[int, Size]] = {}


def write_run_tile(
    rt: Runtime,
    claim: Claim,
    outputs: Sequence[NewOutput],
    bodies: Mapping[int, bytes] | None = None,
) -> None:
    """Write the fitted tile of the run's first image or video, if it has one. `bodies`:
    outputs still in memory by position (`collecting.Collected`), decoded from there rather
    than read back from their files."""
    shown = next((output for output in outputs if output.kind in SHOWN_KINDS), None)
    if shown is None:
        return
    try:
        _write(rt, claim, shown, (bodies or {}).get(shown.position))
    except CellUnreadable as problem:
        # The finalizer draws the same placeholder from the original.
        log.info("tile_skipped run=%s reason=%s", claim.run_id, problem)
    except Exception:
        log.warning("tile_failed run=%s", claim.run_id, exc_info=True)


def _write(rt: Runtime, claim: Claim, shown: NewOutput, body: bytes | None) -> None:
    sweep = _sweep(rt, claim.sweep_id, claim.index)
    if sweep is None:
        return
    key = tile_key(sweep.tiles, claim.index, shown.sha256)
    if key is None:
        return
    source: ImageSource = rt.storage.resolve(shown.path) if body is None else body
    box = _slot_sizes(sweep.grid, peek_size(source), sweep.tiles).get(_position(sweep.grid, claim))
    if box is None:
        return
    with load_thumbnail(source, box) as fitted:
        write_tile(tile_path(key, box), fitted)


def _position(sweep: GridSweep, claim: Claim) -> int:
    """Where the grid places the run: its index, or by assignment once the sweep was
    extended (`workers.gridding`); -1, which has no slot, if it is not in the plan."""
    if not sweep.plan.get(EXTENDED):
        return claim.index
    position = CellLocator(sweep_plan_from_record(sweep.plan)).position(claim.assignment)
    return -1 if position is None else position


@dataclass(frozen=True)
class _TiledSweep:
    grid: GridSweep
    tiles: Path  # its tiles directory, through the storage guard once rather than per run


def _sweep(rt: Runtime, sweep_id: UUID, index: int) -> _TiledSweep | None:
    # An index past the remembered total is a run an extension added: the plan changed.
    remembered = _sweeps.get(sweep_id)
    if remembered is not None and index >= remembered.grid.total:
        del _sweeps[sweep_id]
    if sweep_id not in _sweeps:
        with rt.sessions() as session:
            found = sweep_for_grids(session, sweep_id)
        tiled = None if found is None else _TiledSweep(found, tiles_directory(rt.storage, sweep_id))
        _remember(_sweeps, sweep_id, tiled)
    return _sweeps[sweep_id]


def _slot_sizes(sweep: GridSweep, first_image: Size | None, tiles: Path) -> dict[int, Size]:
    key = (sweep.id, sweep.total, first_image)
    if key not in _slots:
        _remember(_slots, key, _shared_slot_sizes(sweep, first_image, tiles))
    return _slots[key]


def _shared_slot_sizes(sweep: GridSweep, first_image: Size | None, tiles: Path) -> dict[int, Size]:
    """Read from the sweep's file if another process planned it already, else planned here
    and written for the others."""
    image = None if first_image is None else [first_image.width, first_image.height]
    inputs = [str(sweep.id), sweep.workflow, sweep.total, sweep.plan, sweep.request, image]
    path = tiles / slot_sizes_name(*inputs)
    shared = read_slot_sizes(path, sweep.total)
    if shared is not None:
        return shared
    slots = slots_by_index(plan_for(sweep, first_image))
    sizes = {index: Size(slot.rect.width, slot.rect.height) for index, slot in slots.items()}
    try:
        write_slot_sizes(path, sizes)
    except OSError as error:  # the others plan for themselves; this tile is still written
        log.info("slot_sizes_not_shared sweep=%s error=%s", sweep.id, error)
    return sizes


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
