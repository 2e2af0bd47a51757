"""HTTP routes of a sweep's comparison grids: the page listing and each page's PNG.

Grids exist once the sweep has ended and the finalizer has listed them in `grids.json`;
before that both routes answer 409 with the sweep's status. Only pages the listing names are
served, through the storage path guard. Another team's sweep is a 404, never a 403.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse

from app.api.deps import SessionDep, SettingsDep, TeamDep
from app.api.errors import NotFound, NotReady, responses
from app.api.schemas.grids import GridList, GridPageRead
from app.domain.states import FINAL_SWEEP_STATUSES
from app.grids.manifest import GridManifest, ManifestPage, grids_directory, read_manifest
from app.media.storage import Storage, UnsafePath
from app.stores import sweeps as sweep_store

log = logging.getLogger(__name__)

router = APIRouter(prefix="/sweeps", tags=["grids"])

PageNumber = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**31 - 1,
        description="1, 2, ...; 0 is the index page. Default: the index "
        "page when there are several pages, else page 1.",
    ),
]
PNG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The page as PNG; its text chunks record the request and every cell.",
    },
    **responses(NotFound, NotReady),
}


@router.get(
    "/{sweep_id}/grids",
    response_model=GridList,
    responses=responses(NotFound, NotReady),
    summary="The sweep's grid pages, with what each page holds fixed",
)
def list_grids(
    sweep_id: UUID, request: Request, session: SessionDep, team_id: TeamDep, settings: SettingsDep
) -> GridList:
    manifest = _ready_manifest(session, team_id, sweep_id, Storage(settings.data_dir))
    pages = [_page_read(request, sweep_id, page) for page in manifest.pages]
    return GridList(pages=pages, default_page=_default_page(manifest))


@router.get(
    "/{sweep_id}/grid",
    response_class=FileResponse,
    responses=PNG_RESPONSES,
    summary="Download one grid page as PNG",
)
def read_grid(
    sweep_id: UUID,
    session: SessionDep,
    team_id: TeamDep,
    settings: SettingsDep,
    page: PageNumber = None,
) -> Response:
    storage = Storage(settings.data_dir)
    manifest = _ready_manifest(session, team_id, sweep_id, storage)
    number = _default_page(manifest) if page is None else page
    entry = next((p for p in manifest.pages if p.page == number), None)
    if entry is None:
        raise NotFound(f"sweep {sweep_id} has no grid page {number}")
    return FileResponse(
        _page_path(storage, sweep_id, entry),
        media_type="image/png",
        filename=f"{str(sweep_id)[:8]}-{entry.file}",
        content_disposition_type="inline",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _ready_manifest(
    session: SessionDep, team_id: UUID, sweep_id: UUID, storage: Storage
) -> GridManifest:
    sweep = sweep_store.get_sweep(session, sweep_id, team_id)
    if sweep is None:
        raise NotFound(f"no sweep {sweep_id}")
    if sweep.status not in FINAL_SWEEP_STATUSES:
        raise NotReady(f"sweep is {sweep.status}; its grids are built when its last run ends")
    try:
        manifest = read_manifest(grids_directory(storage, sweep_id))
    except UnsafePath:
        log.warning("grid_directory_unsafe sweep=%s", sweep_id)
        raise NotFound(f"no grids for sweep {sweep_id}") from None
    if manifest is None:
        raise NotReady(f"sweep is {sweep.status}; its grids are not written yet")
    return manifest


def _default_page(manifest: GridManifest) -> int:
    numbers = {page.page for page in manifest.pages}
    return 0 if 0 in numbers else min(numbers, default=1)


def _page_read(request: Request, sweep_id: UUID, page: ManifestPage) -> GridPageRead:
    url = request.url_for("read_grid", sweep_id=sweep_id).include_query_params(page=page.page)
    return GridPageRead(
        page=page.page,
        kind=page.kind,
        title=page.title,
        fixed=page.fixed,
        width=page.width,
        height=page.height,
        cells=page.cells,
        # A path, not an absolute URL: the Host header is the client's to pick.
        url=f"{url.path}?{url.query}",
    )


def _page_path(storage: Storage, sweep_id: UUID, entry: ManifestPage) -> Path:
    try:
        path = storage.resolve(f"sweeps/{sweep_id}/grids/{entry.file}")
    except UnsafePath:
        log.warning("grid_path_unsafe sweep=%s page=%d", sweep_id, entry.page)
        raise NotFound(f"no file for grid page {entry.page}") from None
    if not path.is_file():
        log.warning("grid_file_missing sweep=%s page=%d", sweep_id, entry.page)
        raise NotFound(f"no file for grid page {entry.page}")
    return path
