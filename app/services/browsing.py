"""Looking at a whole sweep: its contact sheet page and its zip export, as streams.

Each function reads everything it needs from the database before it returns, and returns a
lazy stream that touches only files: the request's session may be closed while the body is
still being sent. Stored paths go through `Storage.resolve`; a row pointing outside DATA_DIR
or at no regular file gets no thumbnail and no place in the zip, and is logged.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Output, Sweep
from app.domain.assignments import full_assignment, plan_fixed
from app.domain.contracts import JsonValue
from app.grids.contact_sheet import SheetCard, SheetFile, SheetHeader, render_sheet
from app.grids.thumbnails import cached_thumbnail
from app.media import export
from app.media.storage import Storage, UnsafePath
from app.stores import browse as browse_store
from app.stores.browse import RunWithOutputs

log = logging.getLogger(__name__)

_THUMBNAIL_KINDS = ("image", "video")
# Under DATA_DIR, beside `sweeps/`: thumbnails by content hash, made on first view.
THUMBNAIL_DIR = "thumbnails"


@dataclass(frozen=True, slots=True)
class SheetLinks:
    """Where the page's links point: `base` is the sweep's signed path prefix
    (`/browse/sweeps/<id>`), each link carries `token`."""

    base: str
    token: str
    expires_at: datetime

    def signed(self, path: str) -> str:
        return f"{self.base}/{path}?token={self.token}"


def contact_sheet(
    session: Session, storage: Storage, sweep: Sweep, links: SheetLinks
) -> Iterator[str]:
    """The sweep's contact sheet as HTML pieces; thumbnails are made as the pieces are taken."""
    rows = browse_store.runs_with_outputs(session, sweep.id)
    fixed = plan_fixed(sweep.plan)
    pending = [_pending_card(storage, row, fixed, links) for row in rows]
    cards = _with_thumbnails(pending, storage.root / THUMBNAIL_DIR)
    header = _sheet_header(sweep, [card.card.assignment for card in pending], links)
    return render_sheet(header, cards)


def export_archive(session: Session, storage: Storage, sweep: Sweep) -> Iterator[bytes]:
    """The sweep's zip (see `app.media.export`), in chunks of about 1 MiB."""
    rows = browse_store.runs_with_outputs(session, sweep.id)
    # Files are checked now: once the zip has started, a missing one could only truncate it.
    fixed = plan_fixed(sweep.plan)
    runs = [_export_run(storage, row, fixed) for row in rows]
    return export.stream_zip(export.sweep_entries(_export_sweep(sweep), runs))


# --- the contact sheet ---


@dataclass(frozen=True, slots=True)
class _PendingCard:
    """A card still without its thumbnail, and the file to make it from (if any)."""

    card: SheetCard
    source: Path | None = None
    kind: str = ""
    sha256: str = ""


def _sheet_header(
    sweep: Sweep, assignments: Iterable[Mapping[str, Any]], links: SheetLinks
) -> SheetHeader:
    params = export.parameter_names(sweep.plan, assignments)
    return SheetHeader(
        sweep_id=str(sweep.id),
        workflow=sweep.workflow,
        status=sweep.status.value,
        total=sweep.total,
        created_at=sweep.created_at.isoformat(timespec="seconds"),
        params=tuple(params),
        export_url=links.signed("export"),
        expires_at=links.expires_at.isoformat(timespec="seconds"),
    )


def _pending_card(
    storage: Storage, row: RunWithOutputs, fixed: Mapping[str, JsonValue], links: SheetLinks
) -> _PendingCard:
    run = row.run
    files = tuple(
        SheetFile(
            o.position, o.kind, o.mime, links.signed(f"runs/{run.index}/outputs/{o.position}")
        )
        for o in row.outputs
    )
    card = SheetCard(
        index=run.index,
        status=run.status.value,
        attempts=run.attempts,
        assignment=full_assignment(fixed, run.own_values),
        error=_error_text(run.error),
        files=files,
        thumbnail=None,
    )
    shown = next((o for o in row.outputs if o.kind in _THUMBNAIL_KINDS), None)
    if shown is None:
        return _PendingCard(card)
    return _PendingCard(card, _guarded(storage, shown), shown.kind, shown.sha256)


def _with_thumbnails(pending: Iterable[_PendingCard], cache_dir: Path) -> Iterator[SheetCard]:
    # One file decoded at a time, as the page is being sent.
    for item in pending:
        if item.source is None:
            yield item.card
            continue
        thumbnail = cached_thumbnail(cache_dir, item.sha256, item.source, item.kind)
        yield replace(item.card, thumbnail=thumbnail)


def _error_text(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    return f"{error.get('kind', 'error')}: {error.get('message', '')}"


# --- the export ---


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


def _export_run(
    storage: Storage, row: RunWithOutputs, fixed: Mapping[str, JsonValue]
) -> export.ExportRun:
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
        assignment=full_assignment(fixed, run.own_values),
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
