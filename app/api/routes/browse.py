"""HTTP routes for looking at a whole sweep: its contact sheet (an HTML page) and its zip export.

Two routers. `router` sits under /v1 with the API key like every other resource, and also
hands out signed links. `signed_router` serves the same page, the page's files and the export
to a browser holding such a link (`?token=`), since a browser cannot send `Authorization`;
it must be mounted outside the key-checking /v1 group. See `app.api.signed_links`.

Both bodies stream (see `app.services.browsing`): rows are read before the response starts,
thumbnails are made one card at a time as the page goes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.api.deps import SessionDep, SettingsDep, TeamDep
from app.api.errors import NotFound, Unauthorized, responses
from app.api.routes import outputs as output_routes
from app.api.routes.outputs import FILE_RESPONSES, OutputNumber, RunIndex
from app.api.schemas.browse import ContactSheetLink
from app.api.signed_links import link_signer
from app.db.models import Sweep
from app.grids.contact_sheet import CONTENT_SECURITY_POLICY
from app.media.export import archive_name
from app.media.storage import Storage
from app.services import browsing
from app.services.browsing import SheetLinks
from app.settings import Settings
from app.stores import browse as browse_store
from app.stores import sweeps as sweep_store

router = APIRouter(prefix="/sweeps", tags=["browse"])
signed_router = APIRouter(prefix="/browse/sweeps", tags=["browse"])

Token = Annotated[
    str, Query(min_length=1, max_length=64, description="The token of a signed link.")
]
# Declared with StreamingResponse, whose media type is None, so FastAPI documents the JSON
# errors as JSON and only the 200 as HTML.
_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "The page."}
}
_ZIP: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        "description": "`sweep.json`, `metadata.csv` and `outputs/`, streamed.",
    }
}
# The page and the links in it carry a token: keep it out of caches and Referer headers.
_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@router.get(
    "/{sweep_id}/contact-sheet",
    response_class=StreamingResponse,
    responses={**_HTML, **responses(NotFound)},
    summary="The contact sheet: every run as a thumbnail, sortable and filterable",
)
def contact_sheet(
    sweep_id: UUID, request: Request, session: SessionDep, settings: SettingsDep, team_id: TeamDep
) -> Response:
    """For API clients; a browser opens the link from `contact-sheet-link` instead."""
    return _sheet(request, session, settings, _visible_sweep(session, team_id, sweep_id))


@router.get(
    "/{sweep_id}/contact-sheet-link",
    response_model=ContactSheetLink,
    responses=responses(NotFound),
    summary="A short-lived link that opens the contact sheet in a browser",
)
def contact_sheet_link(
    sweep_id: UUID, request: Request, session: SessionDep, settings: SettingsDep, team_id: TeamDep
) -> ContactSheetLink:
    sweep = _visible_sweep(session, team_id, sweep_id)
    link = link_signer(settings).sign(sweep.id)
    path = request.url_for("signed_contact_sheet", sweep_id=sweep.id).path
    return ContactSheetLink(url=f"{path}?token={link.token}", expires_at=link.expires_at)


@router.get(
    "/{sweep_id}/export",
    response_class=StreamingResponse,
    responses={**_ZIP, **responses(NotFound)},
    summary="Download the sweep as a zip: outputs, metadata.csv, sweep.json",
)
def export_sweep(
    sweep_id: UUID, session: SessionDep, settings: SettingsDep, team_id: TeamDep
) -> Response:
    return _export(session, settings, _visible_sweep(session, team_id, sweep_id))


@signed_router.get(
    "/{sweep_id}/contact-sheet",
    response_class=StreamingResponse,
    responses={**_HTML, **responses(Unauthorized, NotFound)},
    summary="The contact sheet, opened with a signed link",
)
def signed_contact_sheet(
    sweep_id: UUID, token: Token, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    team_id = _team_for_link(session, settings, sweep_id, token)
    return _sheet(request, session, settings, _visible_sweep(session, team_id, sweep_id))


@signed_router.get(
    "/{sweep_id}/runs/{index}/outputs/{n}",
    response_class=Response,
    responses={**FILE_RESPONSES, **responses(Unauthorized)},
    summary="An output file, with a signed link (range requests supported)",
)
def signed_output(
    sweep_id: UUID,
    index: RunIndex,
    n: OutputNumber,
    token: Token,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    team_id = _team_for_link(session, settings, sweep_id, token)
    # The /v1 handler itself, so both doors share one path guard, ETag, ranges and headers.
    storage = Storage(settings.data_dir)
    return output_routes.read_output(sweep_id, index, n, request, session, team_id, storage)


@signed_router.get(
    "/{sweep_id}/export",
    response_class=StreamingResponse,
    responses={**_ZIP, **responses(Unauthorized, NotFound)},
    summary="The zip export, with a signed link",
)
def signed_export(
    sweep_id: UUID, token: Token, session: SessionDep, settings: SettingsDep
) -> Response:
    team_id = _team_for_link(session, settings, sweep_id, token)
    return _export(session, settings, _visible_sweep(session, team_id, sweep_id))


def _team_for_link(session: SessionDep, settings: Settings, sweep_id: UUID, token: str) -> UUID:
    if not link_signer(settings).verify(sweep_id, token):
        raise Unauthorized("the link is invalid or has expired; ask the API for a new one")
    team_id = browse_store.sweep_owner(session, sweep_id)
    if team_id is None:
        raise NotFound(f"no sweep {sweep_id}")
    return team_id


def _visible_sweep(session: SessionDep, team_id: UUID, sweep_id: UUID) -> Sweep:
    sweep = sweep_store.get_sweep(session, sweep_id, team_id)
    if sweep is None:
        raise NotFound(f"no sweep {sweep_id}")
    return sweep


def _sheet(request: Request, session: SessionDep, settings: Settings, sweep: Sweep) -> Response:
    link = link_signer(settings).sign(sweep.id)
    # Every signed path of this sweep hangs below the page's own.
    page_path = request.url_for("signed_contact_sheet", sweep_id=sweep.id).path
    links = SheetLinks(page_path.removesuffix("/contact-sheet"), link.token, link.expires_at)
    page = browsing.contact_sheet(session, Storage(settings.data_dir), sweep, links)
    headers = {
        **_PRIVATE,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(_utf8(page), media_type="text/html; charset=utf-8", headers=headers)


def _utf8(pieces: Iterable[str], at_least: int = 64 * 1024) -> Iterator[bytes]:
    # Each chunk crosses a thread hop in Starlette; one per card (~13 KB) doubles the time.
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        buffer.append(piece.encode())
        size += len(buffer[-1])
        if size >= at_least:
            yield b"".join(buffer)
            buffer.clear()
            size = 0
    if buffer:
        yield b"".join(buffer)


def _export(session: SessionDep, settings: Settings, sweep: Sweep) -> Response:
    chunks = browsing.export_archive(session, Storage(settings.data_dir), sweep)
    headers = {
        "Content-Disposition": f'attachment; filename="{archive_name(sweep.id)}"',
        "X-Content-Type-Options": "nosniff",
        **_PRIVATE,
    }
    return StreamingResponse(chunks, media_type="application/zip", headers=headers)
