"""Dependency aliases, so a route's signature reads as the list of what it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import anyio
import anyio.to_thread
from celery import Celery
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.api.broker_probe import BrokerProbe
from app.api.callers import CallerCache
from app.api.errors import Forbidden, Unauthorized
from app.comfy.node_specs import NodeSpecs
from app.logs import context as log_context
from app.registry import Registry
from app.services import keys
from app.services.keys import Caller
from app.services.workflows import ShippedWorkflows
from app.settings import Settings


# The plain lookups below are async on purpose: a sync dependency costs a trip through the
# worker threads, and under load that trip is a wait (see app.api.admission).
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


async def _session(request: Request) -> AsyncIterator[Session]:
    # One session per request, shared by the auth dependency and the route (FastAPI caches
    # a dependency per request), so a request checks out one connection. Services own the
    # commit; anything uncommitted is rolled back here when the request ends, error or not.
    # Making the session does no I/O; closing it does, so it goes to a thread of its own
    # rather than waiting in line for a worker thread while holding the connection.
    # A session that holds no transaction holds no connection (a read route released it,
    # see app.api.prebuilt): closing it is bookkeeping, done here without a thread.
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        if session.get_transaction() is None:
            session.close()
        else:
            with anyio.CancelScope(shield=True):  # a client gone away must not leak it
                await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))


async def _celery(request: Request) -> Celery:
    celery: Celery = request.app.state.celery
    return celery


async def _node_specs(request: Request) -> NodeSpecs:
    specs: NodeSpecs = request.app.state.node_specs
    return specs


async def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]
CeleryDep = Annotated[Celery, Depends(_celery)]


async def _broker_probe(request: Request) -> BrokerProbe:
    probe: BrokerProbe = request.app.state.broker_probe
    return probe


BrokerProbeDep = Annotated[BrokerProbe, Depends(_broker_probe)]
NodeSpecsDep = Annotated[NodeSpecs, Depends(_node_specs)]
RegistryDep = Annotated[Registry, Depends(_registry)]
SessionDep = Annotated[Session, Depends(_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer csk_…`")


async def require_caller(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller's team and role: remembered for a moment (app.api.callers), else looked up
    on a worker thread in the request's own session."""
    settings: Settings = request.app.state.settings
    if not settings.auth_enabled:
        token = None
    elif credentials is None:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
    else:
        token = credentials.credentials
    callers: CallerCache = request.app.state.callers
    caller = callers.get(token)
    if caller is not None:
        return caller
    revocations = keys.revocations()
    caller = await anyio.to_thread.run_sync(_look_up_caller, session, token)
    if caller is None:
        raise Unauthorized("unknown or revoked API key")
    callers.remember(token, caller, revocations)
    return caller


def _look_up_caller(session: Session, token: str | None) -> Caller | None:
    if token is None:
        # Auth off means one local operator, who is also the admin.
        return Caller(team_id=keys.local_team(session), key_id=None, role="admin")
    return keys.caller_for_key(session, token)


CallerDep = Annotated[Caller, Depends(require_caller)]


# Async, as the dependencies above: pure functions of the caller, no thread needed.
async def require_team(caller: CallerDep) -> UUID:
    """The caller's team; every /v1 route depends on this through its router."""
    log_context.bind(team=str(caller.team_id))
    return caller.team_id


TeamDep = Annotated[UUID, Depends(require_team)]


async def require_admin(caller: CallerDep) -> Caller:
    """The caller, if its key is an admin's; a member's key gets 403, so routes that act on
    the whole farm (instances, other teams) add this to their dependencies."""
    if not caller.is_admin:
        raise Forbidden("this needs an admin key; this key's role is member")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]


async def sync_shipped_workflows(request: Request) -> None:
    """Brings the shipped workflow files into the database before the first route that
    reads workflows; once per process, so later requests pay nothing, not even a thread."""
    shipped: ShippedWorkflows = request.app.state.shipped
    if not shipped.synced:
        await anyio.to_thread.run_sync(shipped.ensure_synced, request.app.state.session_factory)
