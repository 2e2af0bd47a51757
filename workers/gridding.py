"""Builds a finished sweep's comparison grids: its pages, an index page, and `grids.json`.

Reads the sweep and every run's first image or video in one short transaction, then renders
with no session open. Cells come from the tiles workers fit as each run is ingested
(`workers.tiling`), so this mostly pastes and encodes; a cell without its tile is fitted from
the original (1,000 of those take tens of seconds). Files go to
`DATA_DIR/sweeps/<sweep>/grids/`: `page-<n>.png`, `index.png` when there are several pages,
and `grids.json` written last, so its presence means every file it lists is whole. Building
again (a redelivered finalize) rewrites the same files atomically and drops stale pages.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from app.domain.extension import EXTENDED, CellLocator
from app.domain.grid_dimensions import sweep_plan_from_record
from app.domain.grid_geometry import GridPlan, PageLayout, SeedLayout, Size
from app.domain.grid_layout import cell_for, images_per_page, plan_grid
from app.grids.manifest import (
    INDEX_FILE,
    GridManifest,
    ManifestPage,
    grids_directory,
    page_file,
    write_manifest,
)
from app.grids.render import CellContent, CellSource, GridRecord, peek_size, render_page
from app.grids.tiles import tile_key, tiles_directory
from app.media.storage import Storage, UnsafePath
from app.stores.grids import GridRun, GridSweep, runs_with_first_output, sweep_for_grids
from workers.runtime import Runtime

log = logging.getLogger(__name__)

_ERROR_CHARS = 200  # a placeholder shows a few lines; the run's page has the whole error
# Under Pillow's own limit (89.5 Mpx), so anyone can reopen a page, and low enough that the
# canvas (4 bytes a pixel in memory, RGB too) keeps a worker's peak under 400 MB.
PAGE_PIXELS = 80_000_000


@dataclass(frozen=True)
class GridFile:
    page: int  # 1, 2, ... in run order; 0 for the index page
    kind: str  # "page" or "index"
    path: Path
    title: str
    fixed: Mapping[str, Any]


def build_grids(rt: Runtime, sweep_id: UUID) -> list[GridFile]:
    """Render every grid page of the sweep and list them in `grids.json`; [] for no sweep."""
    started = time.monotonic()
    with rt.sessions() as session:
        sweep = sweep_for_grids(session, sweep_id)
        runs = list(runs_with_first_output(session, sweep_id)) if sweep else []
    if sweep is None:
        log.warning("grids_skipped sweep=%s reason=unknown-sweep", sweep_id)
        return []
    cells = _cells(rt.storage, sweep, runs)
    grid = plan_for(sweep, _first_image_size(cells))
    directory = grids_directory(rt.storage, sweep.id)
    directory.mkdir(parents=True, exist_ok=True)
    record = GridRecord(sweep.request, _about(sweep, grid))
    files = _render_all(grid, cells, directory, record)
    _write_listing(directory, sweep.id, grid, files)
    _remove_stale(directory, files)
    log.info(
        "grids_built sweep=%s pages=%d seconds=%.1f",
        sweep.id,
        len(grid.pages),
        time.monotonic() - started,
    )
    return files


def plan_for(sweep: GridSweep, first_image: Size | None) -> GridPlan:
    """The sweep's grid when its first readable image has size `first_image` (None: no
    image), the same wherever it is computed: the worker fits tiles to its slots."""
    plan = sweep_plan_from_record(sweep.plan)
    layout = _seed_layout(sweep.request)
    cell = cell_for(first_image, images_per_page(plan, layout))
    title = f"{sweep.workflow} · sweep {str(sweep.id)[:8]}"
    return plan_grid(
        plan, sweep.total, seed_layout=layout, cell=cell, title=title, max_pixels=PAGE_PIXELS
    )


def _cells(storage: Storage, sweep: GridSweep, runs: list[GridRun]) -> dict[int, CellContent]:
    """Each run's cell content by its grid position: its index, unless the sweep was
    extended, whose runs keep their indices while the grid places them by assignment."""
    tiles = tiles_directory(storage, sweep.id)
    if not sweep.plan.get(EXTENDED):
        return {run.index: _content(storage, run, tiles) for run in runs}
    locator = CellLocator(sweep_plan_from_record(sweep.plan))
    cells: dict[int, CellContent] = {}
    for run in runs:
        position = locator.position(run.assignment)
        if position is None:
            log.warning("grid_cell_unplaced sweep=%s index=%d", sweep.id, run.index)
            continue
        cells[position] = _content(storage, run, tiles)
    return cells


def _seed_layout(request: Mapping[str, Any]) -> SeedLayout:
    seeds = request.get("seeds")
    return "axis" if isinstance(seeds, dict) and seeds.get("layout") == "axis" else "cell"


def _first_image_size(cells: Mapping[int, CellContent]) -> Size | None:
    # The cells take the shape of the first readable image: outputs of one workflow share it.
    for content in cells.values():
        if content.path is not None and content.status == "succeeded":
            size = peek_size(content.path)
            if size is not None:
                return size
    return None


def _content(storage: Storage, run: GridRun, tiles: Path) -> CellContent:
    error = _short_error(run.error)
    if run.path is None:
        return CellContent(None, run.status.value, error, run.assignment)
    try:
        path = storage.resolve(run.path)
    except UnsafePath:
        log.warning("grid_cell_path_unsafe index=%d", run.index)
        unsafe = "its file is outside the data directory"
        return CellContent(None, run.status.value, unsafe, run.assignment)
    tile = tile_key(tiles, run.index, run.sha256)
    return CellContent(path, run.status.value, error, run.assignment, tile)


def _short_error(error: Mapping[str, Any] | None) -> str | None:
    if not error:
        return None
    kind, message = error.get("kind"), str(error.get("message") or "")
    text = f"{kind}: {message}" if kind else message
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _about(sweep: GridSweep, grid: GridPlan) -> dict[str, Any]:
    return {
        "sweep_id": str(sweep.id),
        "workflow": sweep.workflow,
        "pages": len(grid.pages),
        "plan": dict(sweep.plan),
    }


def _render_all(
    grid: GridPlan, cells: Mapping[int, CellContent], directory: Path, record: GridRecord
) -> list[GridFile]:
    def source(index: int) -> CellContent:
        return cells.get(index) or CellContent(None, "missing", "no run has this index", {})

    # Previews of each page feed the index page, then go: only the index shows them.
    with tempfile.TemporaryDirectory(dir=directory, prefix=".previews-") as scratch:
        previews = Path(scratch) if grid.index_page is not None else None
        files = [_render(page, source, directory, record, previews) for page in grid.pages]
        if grid.index_page is not None and previews is not None:
            index = _index_source(grid.pages, previews)
            files.insert(0, _render(grid.index_page, index, directory, record, None))
    return files


def _render(
    page: PageLayout,
    source: CellSource,
    directory: Path,
    record: GridRecord,
    previews: Path | None,
) -> GridFile:
    path = directory / page_file(page.number)
    preview = previews / f"{page.number}.png" if previews is not None else None
    render_page(page, source, path, record, preview=preview)
    return GridFile(page.number, page.kind, path, page.title, dict(page.fixed))


def _index_source(pages: tuple[PageLayout, ...], previews: Path) -> CellSource:
    fixed = {page.number: page.fixed for page in pages}

    def source(number: int) -> CellContent:
        return CellContent(previews / f"{number}.png", "succeeded", None, fixed.get(number, {}))

    return source


def _write_listing(directory: Path, sweep_id: UUID, grid: GridPlan, files: list[GridFile]) -> None:
    layouts = {page.number: page for page in grid.pages}
    if grid.index_page is not None:
        layouts[0] = grid.index_page
    entries = [_entry(layouts[file.page], file) for file in files]
    write_manifest(directory, GridManifest(sweep_id=sweep_id, created_at=_now(), pages=entries))


def _entry(layout: PageLayout, file: GridFile) -> ManifestPage:
    return ManifestPage(
        page=file.page,
        kind=layout.kind,
        file=file.path.name,
        title=file.title,
        fixed=dict(file.fixed),
        width=layout.canvas.width,
        height=layout.canvas.height,
        cells=sum(len(cell.slots) for cell in layout.cells),
    )


def _remove_stale(directory: Path, files: list[GridFile]) -> None:
    """Pages a previous build wrote that this one did not (the listing no longer has them)."""
    current = {file.path.name for file in files}
    for path in [*directory.glob("page-*.png"), directory / INDEX_FILE]:
        if path.name not in current:
            path.unlink(missing_ok=True)


def _now() -> datetime:
    return datetime.now(UTC)
