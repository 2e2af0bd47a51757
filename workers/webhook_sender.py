"""The webhook sender: claims due deliveries from the outbox, POSTs them signed (Standard
Webhooks), records each attempt and schedules the next after a failure.

It runs on a thread of its own in the reconciler process (`start_sender`), with its own
event loop, so a slow receiver never delays reconciling and a reconciler pass never delays
a webhook. Several senders (reconcilers) are safe: claims skip rows another holds, and an
attempt is recorded by compare-and-set. Delivery is at least once: a sender that dies after
posting and before recording posts again after the claim's lease, with the same
`webhook-id`, which receivers use to drop the duplicate.

Never logged: secrets, signatures, URLs (a query string may carry a receiver's token).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from math import floor
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from app.db.base import utc_now
from app.domain.webhook_schedule import wait_before_retry
from app.domain.webhook_targets import TargetPolicy
from app.services.webhooks import ResolvedTarget, resolve_target
from app.settings import Settings
from app.stores import webhook_endpoints, webhook_outbox
from app.stores.webhook_outbox import AttemptResult, ClaimedDelivery

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
TOTAL_TIMEOUT_S = 10.0
# Beyond an attempt's total timeout, with room for a busy machine: a claim older than this
# belongs to a sender that died, and the delivery is due again.
CLAIM_LEASE_S = 60.0
KEPT_RESPONSE_BYTES = 1024
USER_AGENT = "comfy-sweep-webhooks/1"


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    secret: str


def make_client(settings: Settings) -> httpx.AsyncClient:
    # No redirects: a 3xx is a failure, never a second request to wherever it points (which
    # the target rules have not checked). No proxies from the environment: the address
    # checked must be the address connected to. No kept-alive connections: they are pooled
    # by address, and two teams' hosts on one address must not share a TLS session.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(TOTAL_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=settings.webhook_batch, max_keepalive_connections=0),
        headers={"user-agent": USER_AGENT},
    )


async def send_due(
    sessions: sessionmaker[Session], settings: Settings, client: httpx.AsyncClient
) -> int:
    """Claim one batch of due deliveries, post them at once, record the results; how many
    were claimed."""
    with sessions() as session:
        claimed = webhook_outbox.claim_due(
            session, now=utc_now(), limit=settings.webhook_batch, lease_s=CLAIM_LEASE_S
        )
        found = webhook_endpoints.endpoints_by_id(session, [c.endpoint_id for c in claimed])
        # A disabled endpoint is sent nothing more, like a deleted one.
        targets = {id_: _Target(e.url, e.secret) for id_, e in found.items() if e.enabled}
        session.commit()
    if not claimed:
        return 0
    policy = settings.webhook_policy
    results = await asyncio.gather(
        *(_attempt(client, c, targets.get(c.endpoint_id), policy) for c in claimed)
    )
    _record(sessions, settings.webhook_retry_waits, claimed, results, targets)
    return len(claimed)


async def _attempt(
    client: httpx.AsyncClient,
    claimed: ClaimedDelivery,
    target: _Target | None,
    policy: TargetPolicy,
) -> AttemptResult:
    if target is None:
        return AttemptResult(error="the endpoint was deleted or disabled")
    # Again at every attempt: what the host resolves to may have changed since it was added.
    resolved = await resolve_target(target.url, policy)
    if isinstance(resolved, str):
        return AttemptResult(error=f"refused: {resolved}")
    body = json.dumps(claimed.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signed_headers(target.secret, claimed.id, body)
    try:
        return await asyncio.wait_for(
            _post_to_any(client, resolved, body, headers), TOTAL_TIMEOUT_S
        )
    except TimeoutError:
        return AttemptResult(error=f"no answer within {TOTAL_TIMEOUT_S:g} s")
    except httpx.HTTPError as failure:
        return AttemptResult(error=f"{type(failure).__name__}: {failure}"[:1000])


async def _post_to_any(
    client: httpx.AsyncClient, resolved: ResolvedTarget, body: bytes, headers: dict[str, str]
) -> AttemptResult:
    """POST to the first of the checked addresses that accepts a connection."""
    for n, address in enumerate(resolved.addresses, start=1):
        url, host, extensions = resolved.pinned_to(address)
        try:
            return await _post(client, url, body, {**headers, **host}, extensions)
        except httpx.ConnectError:
            if n == len(resolved.addresses):
                raise
    raise AssertionError("a resolved target has at least one address")


def signed_headers(secret: str, delivery_id: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers; the id is the delivery's, the same on every attempt."""
    message_id = f"msg_{delivery_id}"
    now = utc_now()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(floor(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
        "content-type": "application/json",
    }


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    extensions: dict[str, Any],
) -> AttemptResult:
    request = client.build_request("POST", url, content=body, headers=headers)
    request.extensions.update(extensions)
    response = await client.send(request, stream=True)
    try:
        kept = await _first_bytes(response, KEPT_RESPONSE_BYTES)
    finally:
        await response.aclose()
    code = response.status_code
    if 200 <= code < 300:
        return AttemptResult(status_code=code, response=kept)
    why = f"answered {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
    return AttemptResult(status_code=code, error=why, response=kept)


async def _first_bytes(response: httpx.Response, limit: int) -> str:
    kept = b""
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= limit:
            break
    # Postgres text refuses NUL; a receiver's body is shown, never trusted.
    return kept[:limit].decode("utf-8", errors="replace").replace("\x00", "")


def _record(
    sessions: sessionmaker[Session],
    waits: Sequence[float],
    claimed: Sequence[ClaimedDelivery],
    results: Sequence[AttemptResult],
    targets: dict[UUID, _Target],
) -> None:
    now = utc_now()
    with sessions() as session:
        for delivery, result in zip(claimed, results, strict=True):
            retry_in = None
            if not result.succeeded and delivery.endpoint_id in targets:
                retry_in = wait_before_retry(delivery.attempts + 1, waits)
            webhook_outbox.record_attempt(session, delivery, result, now=now, retry_in_s=retry_in)
            if not result.succeeded:
                log.info(
                    "webhook_attempt_failed delivery=%s endpoint=%s attempt=%s status=%s "
                    "retry_in_s=%s",
                    delivery.id,
                    delivery.endpoint_id,
                    delivery.attempts + 1,
                    result.status_code,
                    retry_in,
                )
        session.commit()


async def run_sender(
    sessions: sessionmaker[Session], settings: Settings, stop: threading.Event
) -> None:
    """Send due deliveries until `stop` is set: a full batch is followed at once by the
    next, otherwise the sender waits WEBHOOK_POLL_S."""
    async with make_client(settings) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                sent = await send_due(sessions, settings, client)
            except Exception:
                # One bad batch (database restarting, say) must not end the sender.
                log.exception("webhook_batch_failed")
                sent = 0
            if sent:
                took_ms = (time.monotonic() - started) * 1000
                log.info("webhook_batch deliveries=%s took_ms=%.0f", sent, took_ms)
            if sent < settings.webhook_batch:
                await asyncio.sleep(settings.webhook_poll_s)


def start_sender(
    sessions: sessionmaker[Session], settings: Settings
) -> tuple[threading.Thread, threading.Event]:
    """The sender on a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(run_sender(sessions, settings, stop)),
        name="webhook-sender",
        daemon=True,
    )
    thread.start()
    log.info(
        "webhook_sender_started batch=%s poll_s=%s", settings.webhook_batch, settings.webhook_poll_s
    )
    return thread, stop
