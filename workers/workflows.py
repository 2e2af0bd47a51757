"""The workflow version a sweep pinned, as a worker process needs it: read from the database
on first use and cached in-process by content hash, so a version registered after the worker
started runs without a restart, and a version already seen is never read or compiled again.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.orm import Session

from app.db.models import Workflow as WorkflowRow
from app.services import workflows as workflow_service
from app.services.workflows import PinnedWorkflow
from app.stores import sweeps, workflows
from workers.runtime import Runtime

# A pool runs few workflows at a time; a full cache is dropped, not managed.
_MAX_CACHED = 10_000
# A sweep's pin never changes: its version's hash, remembered per sweep.
_hash_of_sweep: dict[UUID, str] = {}
_by_hash: dict[str, PinnedWorkflow] = {}


def pinned_workflow(rt: Runtime, sweep_id: UUID) -> PinnedWorkflow:
    """The version `sweep_id` runs; LookupError if the sweep or its workflow is gone."""
    digest = _hash_of_sweep.get(sweep_id)
    if digest is not None and digest in _by_hash:
        return _by_hash[digest]
    with rt.sessions() as session:
        found = workflows.pinned_hash(session, sweep_id)
        if found is not None and found[1] in _by_hash:
            pinned = _by_hash[found[1]]
        elif found is not None:
            version = workflows.get_version(session, found[0])
            row = None if version is None else session.get(WorkflowRow, version.workflow_id)
            if version is None or row is None:
                raise LookupError(f"sweep {sweep_id} pins a missing workflow version")
            pinned = workflow_service.pin(row, version)
        else:
            pinned = _unpinned(session, sweep_id)
    if len(_by_hash) > _MAX_CACHED or len(_hash_of_sweep) > _MAX_CACHED:
        _by_hash.clear()
        _hash_of_sweep.clear()
    _by_hash[pinned.content_hash] = pinned
    _hash_of_sweep[sweep_id] = pinned.content_hash
    return pinned


def _unpinned(session: Session, sweep_id: UUID) -> PinnedWorkflow:
    # Sweeps stored before versions existed name only their workflow: the global one of that
    # name, at its latest version, is what they would have run.
    sweep = sweeps.find_sweep(session, sweep_id)
    if sweep is None:
        raise LookupError(f"sweep {sweep_id} does not exist")
    row = workflows.find_global(session, sweep.workflow)
    version = None if row is None else workflows.latest_version(session, row.id)
    if row is None or version is None:
        raise LookupError(f"sweep {sweep_id} uses unknown workflow {sweep.workflow!r}")
    return workflow_service.pin(row, version)
