"""HTTP routes of a run and its outputs: the run with its file list, and each file's bytes.

Files are served only through `Storage.resolve`: a stored path is never trusted, so a row
pointing outside DATA_DIR (or at nothing) answers 404 like an output that does not exist,
and never leaks a file. Another team's sweep is a 404 too, never a 403.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from app.api.deps import SessionDep, SettingsDep, TeamDep
from app.api.errors import NotFound, responses
from app.api.presenters import attempt_read, run_read
from app.api.schemas.outputs import OutputRead, RunDetail
from app.db.models import Output, Run, Sweep
from app.domain.assignments import plan_fixed
from app.media.storage import Storage, UnsafePath, suffix_for_mime
from app.stores import attempts as attempt_store
from app.stores import outputs as output_store
from app.stores import runs as run_store
from app.stores import sweeps as sweep_store

log = logging.getLogger(__name__)

router = APIRouter(prefix="/sweeps", tags=["outputs"])

# Both columns are 32-bit integers: a larger number is a 404 to the client, not a DB error.
RunIndex = Annotated[int, PathParam(ge=0, le=2**31 - 1, description="The run's index.")]
OutputNumber = Annotated[int, PathParam(ge=0, le=2**31 - 1, description="The output's `n`.")]

# A stored MIME type goes into a header verbatim only if it looks like one.
_MIME = re.compile(r"[\w.+-]+/[\w.+-]+")
_FILE = {"schema": {"type": "string", "format": "binary"}}
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"*/*": _FILE}, "description": "The file, typed by its stored MIME type."},
    206: {"content": {"*/*": _FILE}, "description": "The byte range asked for with `Range`."},
    304: {"description": "Unchanged: `If-None-Match` holds the file's ETag."},
    400: {"content": {"text/plain": {}}, "description": "The `Range` header is malformed."},
    416: {"content": {"text/plain": {}}, "description": "The range starts past the end."},
    **responses(NotFound),
}


def _storage(settings: SettingsDep) -> Storage:
    return Storage(settings.data_dir)


StorageDep = Annotated[Storage, Depends(_storage)]


@router.get(
    "/{sweep_id}/runs/{index}",
    response_model=RunDetail,
    responses=responses(NotFound),
    summary="A run, with its outputs",
)
def read_run(
    sweep_id: UUID, index: RunIndex, request: Request, session: SessionDep, team_id: TeamDep
) -> RunDetail:
    sweep, run = _visible_run(session, team_id, sweep_id, index)
    outputs = output_store.list_outputs(session, run.id)
    items = [_output_read(request, sweep_id, index, output) for output in outputs]
    past = [attempt_read(a) for a in attempt_store.attempts_of(session, run.id)]
    read = run_read(run, plan_fixed(sweep.plan)).model_dump()
    return RunDetail(**read, outputs=items, past_attempts=past)


@router.get(
    "/{sweep_id}/runs/{index}/outputs/{n}",
    response_class=FileResponse,
    responses=FILE_RESPONSES,
    summary="Download an output file (range requests supported)",
)
def read_output(
    sweep_id: UUID,
    index: RunIndex,
    n: OutputNumber,
    request: Request,
    session: SessionDep,
    team_id: TeamDep,
    storage: StorageDep,
) -> Response:
    output = output_store.get_output(session, sweep_id, team_id, index, n)
    if output is None:
        raise NotFound(f"no output {n} of run {index} in sweep {sweep_id}")
    path, file_stat = _stored_file(storage, output)
    etag = f'"{output.sha256}"'
    headers = {
        "ETag": etag,
        # Outputs come from ComfyUI instances: never let a browser run one as a page.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    # Starlette's FileResponse answers Range (206, 416, multipart) and If-Range itself.
    return FileResponse(
        path,
        headers=headers,
        media_type=output.mime if _MIME.fullmatch(output.mime) else "application/octet-stream",
        filename=f"{str(sweep_id)[:8]}-{index}-{n}{suffix_for_mime(output.mime)}",
        content_disposition_type="inline",
        stat_result=file_stat,
    )


def _visible_run(
    session: SessionDep, team_id: UUID, sweep_id: UUID, index: int
) -> tuple[Sweep, Run]:
    sweep = sweep_store.get_sweep(session, sweep_id, team_id)
    run = None if sweep is None else run_store.get_run(session, sweep.id, index)
    if sweep is None or run is None:
        raise NotFound(f"no run {index} in sweep {sweep_id}")
    return sweep, run


def _output_read(request: Request, sweep_id: UUID, index: int, output: Output) -> OutputRead:
    url = request.url_for("read_output", sweep_id=sweep_id, index=index, n=output.position)
    return OutputRead(
        n=output.position,
        kind=output.kind,
        mime=output.mime,
        size=output.size,
        sha256=output.sha256,
        url=url.path,  # a path, not an absolute URL: the Host header is the client's to pick
    )


def _stored_file(storage: Storage, output: Output) -> tuple[Path, os.stat_result]:
    try:
        path = storage.resolve(output.path)
        file_stat = path.stat()
    except UnsafePath:
        log.warning("output_path_unsafe output=%s", output.id)
        raise NotFound(f"no file for output {output.position}") from None
    except OSError as error:
        log.warning("output_file_missing output=%s errno=%s", output.id, error.errno)
        raise NotFound(f"no file for output {output.position}") from None
    if not stat.S_ISREG(file_stat.st_mode):
        log.warning("output_not_a_file output=%s", output.id)
        raise NotFound(f"no file for output {output.position}")
    return path, file_stat


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    # Weak comparison, as RFC 9110 asks for If-None-Match.
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
