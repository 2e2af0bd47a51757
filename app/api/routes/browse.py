"""HTTP routes for looking at a whole sweep: its contact sheet (an HTML page) and its zip export.

Two routers. `router` sits under /v1 with the API key like every other resource, and also
hands out signed links. `signed_router` serves the same page, the page's files and the export
to a browser holding such a link (`?token=`), since a browser cannot send `Authorization`;
it must be mounted outside the key-checking /v1 group. See `app.api.signed_links`.

Both bodies stream. Rows are read into plain data first, so nothing touches the session
while the body is produced; thumbnails are made one card at a time as the page goes out.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.api.deps import SessionDep, SettingsDep, TeamDep
from app.api.errors import NotFound, Unauthorized, responses
from app.api.routes import outputs as output_routes
from app.api.routes.outputs import FILE_RESPONSES, OutputNumber, RunIndex
from app.api.schemas.browse import ContactSheetLink
from app.api.signed_links import SignedLink, link_signer
from app.db.models import Output, Sweep
from app.grids.contact_sheet import (
    CONTENT_SECURITY_POLICY,
    SheetCard,
    SheetFile,
    SheetHeader,
    render_sheet,
)
from app.grids.thumbnails import thumbnail_jpeg
from app.media import export
from app.media.storage import Storage, UnsafePath
from app.settings import Settings
from app.stores import browse as browse_store
from app.stores import sweeps as sweep_store
from app.stores.browse import RunWithOutputs

log = logging.getLogger(__name__)

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
_THUMBNAIL_KINDS = ("image", "video")
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


# --- the contact sheet ---


def _sheet(request: Request, session: SessionDep, settings: Settings, sweep: Sweep) -> Response:
    link = link_signer(settings).sign(sweep.id)
    # Every signed path of this sweep hangs below the one its page has.
    base = request.url_for("signed_contact_sheet", sweep_id=sweep.id).path
    base = base.removesuffix("/contact-sheet")
    rows = browse_store.runs_with_outputs(session, sweep.id)
    header = _sheet_header(sweep, rows, f"{base}/export?token={link.token}", link)
    storage = Storage(settings.data_dir)
    pending = [_pending_card(storage, row, base, link.token) for row in rows]
    page = render_sheet(header, _with_thumbnails(pending))
    headers = {**_PRIVATE, "Content-Security-Policy": CONTENT_SECURITY_POLICY}
    headers["X-Content-Type-Options"] = "nosniff"
    return StreamingResponse(_utf8(page), media_type="text/html; charset=utf-8", headers=headers)


def _sheet_header(
    sweep: Sweep, rows: list[RunWithOutputs], export_url: str, link: SignedLink
) -> SheetHeader:
    params = export.parameter_names(sweep.plan, (row.run.assignment for row in rows))
    return SheetHeader(
        sweep_id=str(sweep.id),
        workflow=sweep.workflow,
        status=sweep.status.value,
        total=sweep.total,
        created_at=sweep.created_at.isoformat(timespec="seconds"),
        params=tuple(params),
        export_url=export_url,
        expires_at=link.expires_at.isoformat(timespec="seconds"),
    )


_Pending = tuple[SheetCard, Path | None, str]


def _pending_card(storage: Storage, row: RunWithOutputs, base: str, token: str) -> _Pending:
    """The card without its thumbnail, and which file to make the thumbnail of."""
    run = row.run
    files = tuple(
        SheetFile(
            o.position,
            o.kind,
            o.mime,
            f"{base}/runs/{run.index}/outputs/{o.position}?token={token}",
        )
        for o in row.outputs
    )
    card = SheetCard(
        run.index,
        run.status.value,
        run.attempts,
        dict(run.assignment),
        _error_text(run.error),
        files,
        None,
    )
    shown = next((o for o in row.outputs if o.kind in _THUMBNAIL_KINDS), None)
    return card, None if shown is None else _guarded(storage, shown), shown.kind if shown else ""


def _with_thumbnails(pending: Iterable[_Pending]) -> Iterator[SheetCard]:
    # One file decoded at a time, as the page is being sent.
    for card, path, kind in pending:
        yield card if path is None else replace(card, thumbnail=thumbnail_jpeg(path, kind))


def _error_text(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    return f"{error.get('kind', 'error')}: {error.get('message', '')}"


def _utf8(pieces: Iterable[str]) -> Iterator[bytes]:
    for piece in pieces:
        yield piece.encode()


# --- the export ---


def _export(session: SessionDep, settings: Settings, sweep: Sweep) -> Response:
    storage = Storage(settings.data_dir)
    runs = [_export_run(storage, row) for row in browse_store.runs_with_outputs(session, sweep.id)]
    entries = export.sweep_entries(_export_sweep(sweep), runs)
    headers = {
        "Content-Disposition": f'attachment; filename="{export.archive_name(sweep.id)}"',
        "X-Content-Type-Options": "nosniff",
        **_PRIVATE,
    }
    return StreamingResponse(
        export.stream_zip(entries), media_type="application/zip", headers=headers
    )


def _export_sweep(sweep: Sweep) -> export.ExportSweep:
    return export.ExportSweep(
        id=sweep.id,
        workflow=sweep.workflow,
        status=sweep.status.value,
        total=sweep.total,
        created_at=sweep.created_at,
        started_at=sweep.started_at,
        finished_at=sweep.finished_at,
        request=sweep.request,
        plan=sweep.plan,
    )


def _export_run(storage: Storage, row: RunWithOutputs) -> export.ExportRun:
    run = row.run
    files = []
    for output in row.outputs:
        path = _regular_file(storage, output)
        if path is not None:
            files.append(export.ExportFile(output.position, output.mime, path, output.created_at))
    return export.ExportRun(
        index=run.index,
        status=run.status.value,
        attempts=run.attempts,
        instance=run.instance,
        error=run.error,
        assignment=dict(run.assignment),
        files=tuple(files),
    )


def _guarded(storage: Storage, output: Output) -> Path | None:
    """The output's real path under DATA_DIR, or None (logged) when its row points outside."""
    try:
        return storage.resolve(output.path)
    except UnsafePath:
        log.warning("output_path_unsafe output=%s", output.id)
        return None


def _regular_file(storage: Storage, output: Output) -> Path | None:
    # Checked before the zip starts: once bytes are out, a missing file can only truncate it.
    path = _guarded(storage, output)
    if path is None:
        return None
    try:
        mode = path.stat().st_mode
    except OSError as error:
        log.warning("output_file_missing output=%s errno=%s", output.id, error.errno)
        return None
    if not stat.S_ISREG(mode):
        log.warning("output_not_a_file output=%s", output.id)
        return None
    return path
