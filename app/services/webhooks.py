"""Webhook endpoints as use cases: check a URL against the target rules (with DNS), create
one with its signing secret, list, delete, and read its deliveries. They own the commit.

A secret is returned once, by the call that creates its endpoint, and never logged.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import WebhookDelivery, WebhookEndpoint
from app.domain.problems import Loc, reject
from app.domain.webhook_targets import (
    IpAddress,
    TargetPolicy,
    target_refusal,
    url_host,
    url_problem,
)
from app.stores import webhook_endpoints, webhook_outbox

log = logging.getLogger(__name__)
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64
DISABLED = "the endpoint was disabled"


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    """A checked endpoint with its id and secret, ready to be stored."""

    id: UUID
    url: str
    events: tuple[str, ...]
    secret: str
    description: str = ""


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def prepare_endpoint(
    url: str,
    events: Sequence[str],
    policy: TargetPolicy,
    *,
    at: Loc = (),
    description: str = "",
) -> NewEndpoint:
    """Check `url` (a 422 at `at + ("url",)` naming the reason) and mint the endpoint's id
    and secret; nothing is stored yet."""
    why = url_refusal(url, policy)
    if why is not None:
        raise reject((*at, "url"), "url_not_allowed", why, url)
    return NewEndpoint(uuid4(), url, _kept_events(events), new_secret(), description)


def _kept_events(events: Sequence[str]) -> tuple[str, ...]:
    # "*" stands for all, so listing types besides it would mean nothing.
    return ("*",) if "*" in events else tuple(dict.fromkeys(events))


def url_refusal(url: str, policy: TargetPolicy) -> str | None:
    """Why a webhook may not be sent to `url` now, resolving its host; None if it may."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    host = url_host(url)
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"{host} does not resolve"
    return target_refusal(host, _addresses(infos), policy)


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """A URL that passed the rules, with the addresses it passed at. The sender connects to
    these rather than letting the HTTP client look the host up again: a second lookup could
    answer a private address (DNS rebinding) after the check saw a public one."""

    url: str
    addresses: tuple[IpAddress, ...]

    def pinned_to(self, address: IpAddress) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The URL with `address` for its host, the Host header the URL implies, and the
        TLS server name to present and verify (the host name, not the address)."""
        parts = urlsplit(self.url)
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        return urlunsplit(parts._replace(netloc=netloc)), {"host": parts.netloc}, extensions


async def resolve_target(url: str, policy: TargetPolicy) -> ResolvedTarget | str:
    """`url` resolved and checked for the sender's event loop, or why it may not be sent to."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    host = url_host(url)
    try:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"{host} does not resolve"
    addresses = _addresses(infos)
    refusal = target_refusal(host, addresses, policy)
    if refusal is not None:
        return refusal
    return ResolvedTarget(url, tuple(dict.fromkeys(addresses)))


def _addresses(infos: Sequence[tuple[object, ...]]) -> list[IpAddress]:
    found: list[IpAddress] = []
    for info in infos:
        sockaddr = info[4]
        if isinstance(sockaddr, tuple) and sockaddr:
            # An IPv6 scope ("fe80::1%eth0") is not part of the address.
            found.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    return found


def store_endpoint(
    session: Session, new: NewEndpoint, team_id: UUID, sweep_id: UUID | None = None
) -> WebhookEndpoint:
    """Add a prepared endpoint in the caller's transaction (a sweep's, at submission)."""
    endpoint = webhook_endpoints.add_endpoint(
        session,
        endpoint_id=new.id,
        team_id=team_id,
        url=new.url,
        events=new.events,
        secret=new.secret,
        description=new.description,
        sweep_id=sweep_id,
    )
    log.info("webhook_endpoint_added endpoint=%s team=%s sweep=%s", new.id, team_id, sweep_id)
    return endpoint


def create_endpoint(session: Session, team_id: UUID, new: NewEndpoint) -> WebhookEndpoint:
    endpoint = store_endpoint(session, new, team_id)
    session.commit()
    return endpoint


def page_endpoints(
    session: Session, team_id: UUID, offset: int, limit: int
) -> tuple[list[WebhookEndpoint], int]:
    return webhook_endpoints.page_endpoints(session, team_id, offset, limit)


def get_endpoint(session: Session, team_id: UUID, endpoint_id: UUID) -> WebhookEndpoint | None:
    return webhook_endpoints.get_endpoint(session, team_id, endpoint_id)


@dataclass(frozen=True)
class EndpointChanges:
    """What a PATCH changes; None leaves a field as it is."""

    enabled: bool | None = None
    events: Sequence[str] | None = None
    description: str | None = None


def update_endpoint(
    session: Session, team_id: UUID, endpoint_id: UUID, changes: EndpointChanges
) -> WebhookEndpoint | None:
    """Apply `changes` to the team's endpoint; None if it is not the team's. Disabling it
    fails its pending deliveries in the same transaction: nothing more is sent there, and
    re-enabling it later sends only the events recorded from then on."""
    endpoint = webhook_endpoints.get_endpoint(session, team_id, endpoint_id)
    if endpoint is None:
        return None
    if changes.events is not None:
        endpoint.events = list(_kept_events(changes.events))
    if changes.description is not None:
        endpoint.description = changes.description
    disabling = changes.enabled is False and endpoint.enabled
    if changes.enabled is not None:
        endpoint.enabled = changes.enabled
    dropped = 0
    if disabling:
        dropped = webhook_outbox.fail_pending(session, endpoint_id, reason=DISABLED, now=utc_now())
    session.commit()
    log.info(
        "webhook_endpoint_updated endpoint=%s team=%s enabled=%s pending_failed=%s",
        endpoint_id,
        team_id,
        endpoint.enabled,
        dropped,
    )
    return endpoint


def delete_endpoint(session: Session, team_id: UUID, endpoint_id: UUID) -> bool:
    """Delete it and its deliveries, pending ones included: nothing more is sent to it."""
    deleted = webhook_endpoints.delete_endpoint(session, team_id, endpoint_id)
    session.commit()
    if deleted:
        log.info("webhook_endpoint_deleted endpoint=%s team=%s", endpoint_id, team_id)
    return deleted


def page_deliveries(
    session: Session, team_id: UUID, endpoint_id: UUID, offset: int, limit: int
) -> tuple[list[WebhookDelivery], int] | None:
    """The endpoint's deliveries, newest first; None if it is not this team's."""
    if webhook_endpoints.get_endpoint(session, team_id, endpoint_id) is None:
        return None
    return webhook_outbox.page_deliveries(session, endpoint_id, offset, limit)
