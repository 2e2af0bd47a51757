"""SQL for registered workflows and their versions: visibility (global or the team's own),
the next version number, paging the history. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import ApiKey, Sweep, Workflow, WorkflowVersion
from app.domain.workflow_check import is_workflow_name


@dataclass(frozen=True)
class VersionEntry:
    """A version as listed in a history: the row and the prefix of the key that made it."""

    version: WorkflowVersion
    key_prefix: str | None


def _visible(team_id: UUID) -> sa.ColumnElement[bool]:
    return sa.or_(Workflow.team_id.is_(None), Workflow.team_id == team_id)


def find_visible(session: Session, team_id: UUID, name: str) -> Workflow | None:
    """The team's own workflow of that name, else the global one."""
    if not is_workflow_name(name):
        # Never a stored name; and a NUL in it would be refused by Postgres, not just unmatched.
        return None
    query = (
        sa.select(Workflow)
        .where(Workflow.name == name, _visible(team_id))
        .order_by(Workflow.team_id.is_(None))  # False (the team's own) sorts first
        .limit(1)
    )
    return session.scalars(query).first()


def find_clash(session: Session, team_id: UUID | None, name: str) -> Workflow | None:
    """A workflow a new one of this name would be confused with: for a team, a global one or
    its own; for a global one, any team's (each team would otherwise see two)."""
    query = sa.select(Workflow).where(Workflow.name == name)
    if team_id is not None:
        query = query.where(_visible(team_id))
    return session.scalars(query.limit(1)).first()


def find_global(session: Session, name: str) -> Workflow | None:
    query = sa.select(Workflow).where(Workflow.name == name, Workflow.team_id.is_(None))
    return session.scalars(query).one_or_none()


def add_workflow(session: Session, name: str, team_id: UUID | None, description: str) -> Workflow:
    workflow = Workflow(name=name, team_id=team_id, description=description)
    session.add(workflow)
    session.flush()
    return workflow


def latest_version(session: Session, workflow_id: UUID) -> WorkflowVersion | None:
    query = (
        sa.select(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == workflow_id)
        .order_by(WorkflowVersion.version.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def version_with_hash(
    session: Session, workflow_id: UUID, content_hash: str
) -> WorkflowVersion | None:
    query = sa.select(WorkflowVersion).where(
        WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.content_hash == content_hash
    )
    return session.scalars(query).one_or_none()


def add_version(
    session: Session,
    workflow_id: UUID,
    *,
    content_hash: str,
    graph: Mapping[str, Any],
    contract: Mapping[str, Any],
    ui_graph: Mapping[str, Any] | None,
    created_by: UUID | None,
) -> WorkflowVersion:
    """Insert the next version. Two concurrent writers may pick the same number; the unique
    constraint refuses the second, which the caller retries."""
    latest = session.scalar(
        sa.select(sa.func.max(WorkflowVersion.version)).where(
            WorkflowVersion.workflow_id == workflow_id
        )
    )
    row = WorkflowVersion(
        workflow_id=workflow_id,
        version=(latest or 0) + 1,
        content_hash=content_hash,
        graph=dict(graph),
        contract=dict(contract),
        ui_graph=None if ui_graph is None else dict(ui_graph),
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    return row


def list_visible_latest(session: Session, team_id: UUID) -> list[tuple[Workflow, WorkflowVersion]]:
    """Every workflow the team sees with its latest version, by name."""
    newest = (
        sa.select(
            WorkflowVersion.workflow_id, sa.func.max(WorkflowVersion.version).label("version")
        )
        .group_by(WorkflowVersion.workflow_id)
        .subquery()
    )
    query = (
        sa.select(Workflow, WorkflowVersion)
        .join(newest, newest.c.workflow_id == Workflow.id)
        .join(
            WorkflowVersion,
            sa.and_(
                WorkflowVersion.workflow_id == Workflow.id,
                WorkflowVersion.version == newest.c.version,
            ),
        )
        .where(_visible(team_id))
        .order_by(Workflow.name, Workflow.team_id.is_(None))
    )
    return [(w, v) for w, v in session.execute(query)]


def page_versions(
    session: Session, workflow_id: UUID, offset: int, limit: int
) -> tuple[list[VersionEntry], int]:
    """One page of a workflow's versions, newest first, and how many there are."""
    query = (
        sa.select(WorkflowVersion, ApiKey.prefix)
        .outerjoin(ApiKey, ApiKey.id == WorkflowVersion.created_by)
        .where(WorkflowVersion.workflow_id == workflow_id)
        .order_by(WorkflowVersion.version.desc())
        .offset(offset)
        .limit(limit)
    )
    count = sa.select(sa.func.count()).where(WorkflowVersion.workflow_id == workflow_id)
    entries = [VersionEntry(v, prefix) for v, prefix in session.execute(query)]
    return entries, session.scalar(count) or 0


def get_version(session: Session, version_id: UUID) -> WorkflowVersion | None:
    return session.get(WorkflowVersion, version_id)


def version_numbers(session: Session, version_ids: list[UUID]) -> dict[UUID, tuple[int, str]]:
    """Version number and content hash of each id, for showing what sweeps pinned."""
    if not version_ids:
        return {}
    query = sa.select(
        WorkflowVersion.id, WorkflowVersion.version, WorkflowVersion.content_hash
    ).where(WorkflowVersion.id.in_(version_ids))
    return {row.id: (row.version, row.content_hash) for row in session.execute(query)}


def pinned_numbers(session: Session, sweep: Sweep) -> tuple[int, str] | None:
    """Number and content hash of the version the sweep runs; None for one without."""
    if sweep.workflow_version_id is None:
        return None
    return version_numbers(session, [sweep.workflow_version_id]).get(sweep.workflow_version_id)


def pinned_hash(session: Session, sweep_id: UUID) -> tuple[UUID, str] | None:
    """The version a sweep pinned and its content hash; None for a sweep without one."""
    query = (
        sa.select(WorkflowVersion.id, WorkflowVersion.content_hash)
        .join(Sweep, Sweep.workflow_version_id == WorkflowVersion.id)
        .where(Sweep.id == sweep_id)
    )
    row = session.execute(query).first()
    return None if row is None else (row.id, row.content_hash)
