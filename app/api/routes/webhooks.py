"""HTTP routes of webhook endpoints: register, list, inspect, change, delete, and their
deliveries."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from app.api.deps import SessionDep, SettingsDep, TeamDep
from app.api.errors import REJECTED_RESPONSE, NotFound, responses
from app.api.schemas.common import Page
from app.api.schemas.webhooks import (
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from app.db.models import WebhookEndpoint
from app.services import webhooks

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=REJECTED_RESPONSE,
    summary="Register a webhook endpoint for the team's events",
)
def create_webhook(
    body: WebhookCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    team_id: TeamDep,
) -> WebhookCreated:
    """Every sweep's events of the listed types are POSTed there, signed with the returned
    secret (Standard Webhooks). The secret is shown only in this answer."""
    new = webhooks.prepare_endpoint(
        body.url, body.events, settings.webhook_policy, description=body.description
    )
    endpoint = webhooks.create_endpoint(session, team_id, new)
    response.headers["Location"] = f"/v1/webhooks/{endpoint.id}"
    return webhook_created(endpoint)


@router.get("", response_model=Page[WebhookRead], summary="The team's webhook endpoints")
def list_webhooks(
    session: SessionDep, team_id: TeamDep, offset: Offset = 0, limit: Limit = 50
) -> Page[WebhookRead]:
    """Team defaults and sweeps' own endpoints, newest first, without their secrets."""
    endpoints, total = webhooks.page_endpoints(session, team_id, offset, limit)
    items = [webhook_read(e) for e in endpoints]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.get(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses=responses(NotFound),
    summary="A webhook endpoint",
)
def read_webhook(webhook_id: UUID, session: SessionDep, team_id: TeamDep) -> WebhookRead:
    return webhook_read(_visible(session, team_id, webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses={**responses(NotFound), **REJECTED_RESPONSE},
    summary="Enable, disable or change the events of a webhook endpoint",
)
def update_webhook(
    webhook_id: UUID, body: WebhookUpdate, session: SessionDep, team_id: TeamDep
) -> WebhookRead:
    """Disabling fails the endpoint's pending deliveries (`the endpoint was disabled`) and
    queues nothing more for it; enabling it again sends the events recorded from then on."""
    changes = webhooks.EndpointChanges(
        enabled=body.enabled, events=body.events, description=body.description
    )
    endpoint = webhooks.update_endpoint(session, team_id, webhook_id, changes)
    if endpoint is None:
        raise NotFound(f"no webhook {webhook_id}")
    return webhook_read(endpoint)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(NotFound),
    summary="Delete a webhook endpoint",
)
def delete_webhook(webhook_id: UUID, session: SessionDep, team_id: TeamDep) -> Response:
    """Its pending deliveries are dropped with it."""
    if not webhooks.delete_endpoint(session, team_id, webhook_id):
        raise NotFound(f"no webhook {webhook_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    responses=responses(NotFound),
    summary="A webhook endpoint's deliveries, newest first",
)
def list_deliveries(
    webhook_id: UUID, session: SessionDep, team_id: TeamDep, offset: Offset = 0, limit: Limit = 50
) -> Page[DeliveryRead]:
    found = webhooks.page_deliveries(session, team_id, webhook_id, offset, limit)
    if found is None:
        raise NotFound(f"no webhook {webhook_id}")
    deliveries, total = found
    items = [DeliveryRead.model_validate(d, from_attributes=True) for d in deliveries]
    return Page(items=items, total=total, offset=offset, limit=limit)


def _visible(session: SessionDep, team_id: UUID, webhook_id: UUID) -> WebhookEndpoint:
    endpoint = webhooks.get_endpoint(session, team_id, webhook_id)
    if endpoint is None:
        raise NotFound(f"no webhook {webhook_id}")
    return endpoint


def webhook_read(endpoint: WebhookEndpoint) -> WebhookRead:
    return WebhookRead.model_validate(endpoint, from_attributes=True)


def webhook_created(endpoint: WebhookEndpoint) -> WebhookCreated:
    return WebhookCreated.model_validate(endpoint, from_attributes=True)
