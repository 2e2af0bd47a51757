"""Ending a sweep exactly once when its last run ends.

No chord: the one UPDATE that moves the sweep from running to finalizing wins once, and
only its winner sends the finalize message; the reconciler re-sends it for a sweep stuck in
finalizing. Finalizing twice is harmless: it is a compare-and-set too.
"""

from __future__ import annotations

import logging
from uuid import UUID

from app.db.base import utc_now
from app.domain.states import FINISHABLE, SweepStatus, final_sweep_status
from app.grids.tiles import remove_tiles
from app.queue import FINALIZE_SWEEP
from app.stores import journal, sweeps
from workers.gridding import build_grids
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def finish_if_done(rt: Runtime, sweep_id: UUID) -> None:
    with rt.sessions() as session:
        moved = sweeps.start_finalizing_if_drained(session, sweep_id)
        session.commit()
    if moved:
        send_finalize(rt, sweep_id)


def send_finalize(rt: Runtime, sweep_id: UUID) -> None:
    """After the commit that moved the sweep to finalizing (`start_finalizing_if_drained`)."""
    rt.send(FINALIZE_SWEEP, str(sweep_id))


def finalize(rt: Runtime, sweep_id: UUID) -> None:
    """Build the grids, then finalizing → succeeded | partial | failed from the runs' final
    states. Grids come first so that a final status means the grids are there to fetch.
    A message arriving after the sweep was reopened (a retry, an extension) is stale: its
    grids would show the new runs as queued, and its next finalizing sends another."""
    if _reopened(rt, sweep_id):
        log.info("finalize_skipped sweep=%s reason=reopened", sweep_id)
        return
    pages = _build_grids(rt, sweep_id)
    with rt.sessions() as session:
        sweep = sweeps.find_sweep(session, sweep_id)
        if sweep is None:
            return
        status = final_sweep_status(sweeps.run_counts(sweep))
        # Before the move, whose `sweep.finished` must be the sweep's last event; taken back
        # with the rollback if another finalizer won.
        if pages:
            journal.grid_ready(session, sweep.team_id, sweep_id, pages)
        moved = sweeps.move_sweep(session, sweep_id, FINISHABLE, status, finished_at=utc_now())
        if moved:
            session.commit()
        else:
            session.rollback()
    if moved:
        log.info("sweep_finished sweep=%s status=%s", sweep_id, status)
    remove_tiles(rt.storage, sweep_id)


def finalize_cancelled(rt: Runtime, sweep_id: UUID) -> None:
    """A cancelled sweep keeps its status; its grids show what finished. No `grid.ready`:
    the sweep's `sweep.finished`, recorded when it was cancelled, stays its last event."""
    if _reopened(rt, sweep_id):
        return
    _build_grids(rt, sweep_id)
    remove_tiles(rt.storage, sweep_id)


def _reopened(rt: Runtime, sweep_id: UUID) -> bool:
    with rt.sessions() as session:
        status = sweeps.sweep_status(session, sweep_id)
    # Paused too: a sweep reopened and then paused has not ended either.
    return status in (SweepStatus.PENDING, SweepStatus.RUNNING, SweepStatus.PAUSED)


def _build_grids(rt: Runtime, sweep_id: UUID) -> int:
    """How many grid pages were drawn; 0 when none could be."""
    try:
        files = build_grids(rt, sweep_id)
    except Exception:
        # A grid that cannot be drawn must not leave the sweep stuck in finalizing.
        log.exception("grids_failed sweep=%s", sweep_id)
        return 0
    return sum(1 for grid in files if grid.kind == "page")
