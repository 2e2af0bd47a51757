"""Webhook endpoints: a team's defaults and sweeps' own, added, listed and deleted."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import WebhookDelivery, WebhookEndpoint


def add_endpoint(
    session: Session,
    *,
    endpoint_id: UUID,
    team_id: UUID,
    url: str,
    events: Sequence[str],
    secret: str,
    description: str = "",
    sweep_id: UUID | None = None,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        team_id=team_id,
        sweep_id=sweep_id,
        url=url,
        events=list(events),
        description=description,
        secret=secret,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def page_endpoints(
    session: Session, team_id: UUID, offset: int, limit: int
) -> tuple[list[WebhookEndpoint], int]:
    """The team's endpoints, newest first, and how many it has."""
    mine = WebhookEndpoint.team_id == team_id
    total = session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint).where(mine))
    total = total or 0
    query = (
        sa.select(WebhookEndpoint)
        .where(mine)
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id)
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query)), total


def get_endpoint(session: Session, team_id: UUID, endpoint_id: UUID) -> WebhookEndpoint | None:
    """The endpoint if it is this team's; another team's is None, like a missing one."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    return endpoint if endpoint is not None and endpoint.team_id == team_id else None


def endpoints_by_id(session: Session, ids: Sequence[UUID]) -> dict[UUID, WebhookEndpoint]:
    rows = session.scalars(sa.select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))
    return {endpoint.id: endpoint for endpoint in rows}


def delete_endpoint(session: Session, team_id: UUID, endpoint_id: UUID) -> bool:
    """Delete the team's endpoint and its deliveries; whether there was one."""
    result = session.execute(
        sa.delete(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.team_id == team_id
        )
    )
    if not getattr(result, "rowcount", 0):
        return False
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    return True
