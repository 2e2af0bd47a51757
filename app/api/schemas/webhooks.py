"""Request and response shapes of webhook endpoints and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of
from app.domain.events import EventType

ALL_EVENTS = "*"


def _known_event(name: str) -> str:
    if name != ALL_EVENTS and name not in EventType.__members__.values():
        known = ", ".join(event.value for event in EventType)
        raise ValueError(f"unknown event type {name!r}; known: {ALL_EVENTS}, {known}")
    return name


EventName = Annotated[str, AfterValidator(_known_event)]
WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class WebhookSpec(BaseModel):
    """Where to POST a sweep's events (the `webhook` of a sweep submission)."""

    model_config = example_of(ex.WEBHOOK_SPEC, extra="forbid")

    url: WebhookUrl = Field(
        description="An http(s) URL without credentials, resolving to public addresses "
        "(unless the operator allows private ones)."
    )
    events: list[EventName] = Field(
        min_length=1,
        max_length=len(EventType) + 1,
        description='Event types to send, or ["*"] for all of them.',
        examples=[["sweep.finished", "run.failed"]],
    )


class WebhookCreate(WebhookSpec):
    """A team's default endpoint: every sweep's matching events go there."""

    model_config = example_of(ex.WEBHOOK_CREATE, extra="forbid")

    description: str = Field(default="", max_length=500)


class WebhookUpdate(BaseModel):
    """What may change on an endpoint; its URL and secret may not (register a new one)."""

    model_config = example_of(ex.WEBHOOK_UPDATE, extra="forbid")

    enabled: bool | None = Field(
        default=None,
        description="false: no more events are queued for it and its pending deliveries fail "
        "with `the endpoint was disabled`; true: it gets the events recorded from then on.",
    )
    events: list[EventName] | None = Field(
        default=None,
        min_length=1,
        max_length=len(EventType) + 1,
        description='Event types to send from now on, or ["*"] for all of them.',
    )
    description: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _changes_something(self) -> WebhookUpdate:
        if self.enabled is None and self.events is None and self.description is None:
            raise ValueError("name at least one of enabled, events, description")
        return self


class WebhookRead(BaseModel):
    model_config = example_of(ex.WEBHOOK_READ)

    id: UUID
    url: str
    events: list[str]
    description: str
    sweep_id: UUID | None = Field(
        description="Set for a sweep's own endpoint (named in its submission); null for a "
        "team default."
    )
    enabled: bool
    created_at: datetime


class WebhookCreated(WebhookRead):
    model_config = example_of(ex.WEBHOOK_CREATED)

    secret: str = Field(
        description="The Standard Webhooks signing secret (`whsec_…`). Shown only in this "
        "answer: store it to verify the `webhook-signature` header."
    )


DeliveryStatus = Literal["pending", "succeeded", "failed"]


class DeliveryRead(BaseModel):
    model_config = example_of(ex.DELIVERY_READ)

    id: int = Field(description="Sent as `webhook-id: msg_<id>`, the same on every attempt.")
    event_id: int
    event_type: str
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made so far.")
    next_attempt_at: datetime | None = Field(description="Null once it succeeded or failed.")
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None = Field(description="The first KiB of the last answer's body.")
    created_at: datetime
