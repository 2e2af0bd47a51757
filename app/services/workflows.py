"""Registered workflows as use cases: register, add a version, find the latest a team sees,
compile a stored version, and bring the shipped files into the database. They own the commit.

A stored version is immutable, so its compiled contract is cached in-process by content hash:
the API and every worker see a new version at once (it is a new row) and never re-compile an
old one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Sweep, WorkflowVersion
from app.db.models import Workflow as WorkflowRow
from app.domain.contract_draft import draft_contract
from app.domain.contracts import Contract, contract_defaults
from app.domain.graph_check import NodeProblem, check_graph
from app.domain.patching import patch_graph
from app.domain.problems import Problem, SweepRejected, reject
from app.domain.ui_format import is_ui_format, ui_to_api
from app.domain.workflow_check import compile_workflow, content_hash, pointer_parts
from app.registry import Registry, Workflow
from app.services.keys import Caller
from app.stores import workflows as store

log = logging.getLogger(__name__)

# Compiled versions kept per process; far more than the workflows any pool runs at once.
_CACHE_SIZE = 256
_WRITE_ATTEMPTS = 3


class Forbidden(Exception):
    """The caller's key may not do this (a member asking for a global workflow)."""


class NameTaken(Exception):
    """A workflow of that name is already visible to the team (or, for a global one, any)."""


class UnknownWorkflow(Exception):
    pass


@dataclass(frozen=True)
class WorkflowContent:
    """One version's content as submitted; `contract` None means "draft one from the pool's
    node specs"; a UI-format `graph` is converted to the API format (and kept as `ui_graph`)."""

    graph: Mapping[str, Any]
    contract: Mapping[str, Any] | None
    ui_graph: Mapping[str, Any] | None = None
    description: str | None = None


@dataclass(frozen=True)
class PinnedWorkflow:
    """One stored version, compiled: what a sweep is submitted against and a worker runs."""

    version_id: UUID
    version: int
    content_hash: str
    workflow: Workflow
    ui_graph: Mapping[str, Any] | None
    is_global: bool = True


@dataclass(frozen=True)
class Stored:
    row: WorkflowRow
    version: WorkflowVersion
    created: bool  # False when identical content already was a version


# Contracts by (workflow name, content hash): the name appears in the contract's messages.
_compiled: dict[tuple[str, str], Contract] = {}


def pin(row: WorkflowRow, version: WorkflowVersion) -> PinnedWorkflow:
    """The compiled form of a stored version; its contract from the cache when seen before."""
    key = (row.name, version.content_hash)
    contract = _compiled.get(key)
    if contract is None:
        compiled = compile_workflow(row.name, version.graph, version.contract)
        if not isinstance(compiled, Contract):
            # Stored only after the same check passed; a failure here is corruption.
            raise ValueError(f"stored workflow {row.name} v{version.version}: {compiled[0]}")
        if len(_compiled) >= _CACHE_SIZE:
            _compiled.clear()
        _compiled[key] = contract = compiled
    workflow = Workflow(
        name=row.name,
        graph=version.graph,
        contract=contract,
        title=str(version.contract.get("title", row.name)),
        description=row.description,
    )
    return PinnedWorkflow(
        version_id=version.id,
        version=version.version,
        content_hash=version.content_hash,
        workflow=workflow,
        ui_graph=version.ui_graph,
        is_global=row.team_id is None,
    )


def latest_visible(session: Session, team_id: UUID, name: str) -> PinnedWorkflow | None:
    row = store.find_visible(session, team_id, name)
    if row is None:
        return None
    version = store.latest_version(session, row.id)
    return None if version is None else pin(row, version)


def visible_names(session: Session, team_id: UUID) -> list[str]:
    return [row.name for row, _ in store.list_visible_latest(session, team_id)]


def register_workflow(
    session: Session,
    caller: Caller,
    name: str,
    content: WorkflowContent,
    *,
    make_global: bool,
    object_info: Mapping[str, Any] | None,
) -> Stored:
    """A new workflow with its first version, owned by the caller's team or global."""
    if make_global and not caller.is_admin:
        raise Forbidden("only an admin key may register a global workflow")
    team_id = None if make_global else caller.team_id
    content = _prepared(name, content, object_info)
    contract = _checked(name, content, object_info)
    _refuse_clash(session, team_id, name)
    description = content.description
    if description is None:
        description = str(contract.get("description", ""))
    try:
        with session.begin_nested():
            row = store.add_workflow(session, name, team_id, description)
            version = _add_content(session, row, content, contract, caller.key_id)
    except IntegrityError:
        # Lost a race with a concurrent registration of the same name.
        raise NameTaken(f"a workflow named {name!r} already exists") from None
    session.commit()
    log.info("workflow_registered name=%s version=1 global=%s", name, make_global)
    return Stored(row, version, created=True)


def add_version(
    session: Session,
    caller: Caller,
    name: str,
    content: WorkflowContent,
    *,
    object_info: Mapping[str, Any] | None,
) -> Stored:
    """The next immutable version of a visible workflow; identical content returns the
    version that already holds it."""
    row = store.find_visible(session, caller.team_id, name)
    if row is None:
        raise UnknownWorkflow(f"no workflow named {name!r}")
    if row.team_id is None and not caller.is_admin:
        raise Forbidden(f"{name!r} is a global workflow; only an admin key may change it")
    content = _prepared(name, content, object_info)
    contract = _checked(name, content, object_info)
    digest = content_hash(content.graph, contract, content.ui_graph)
    for _ in range(_WRITE_ATTEMPTS):
        existing = store.version_with_hash(session, row.id, digest)
        if existing is not None:
            return Stored(row, existing, created=False)
        try:
            with session.begin_nested():
                version = _add_content(session, row, content, contract, caller.key_id)
        except IntegrityError:
            continue  # a concurrent writer took the number (or stored this very content)
        if content.description is not None:
            row.description = content.description
        session.commit()
        log.info("workflow_version_added name=%s version=%d", name, version.version)
        return Stored(row, version, created=True)
    raise RuntimeError(f"could not store a version of {name!r} after {_WRITE_ATTEMPTS} tries")


def _add_content(
    session: Session,
    row: WorkflowRow,
    content: WorkflowContent,
    contract: Mapping[str, Any],
    created_by: UUID | None,
) -> WorkflowVersion:
    return store.add_version(
        session,
        row.id,
        content_hash=content_hash(content.graph, contract, content.ui_graph),
        graph=content.graph,
        contract=contract,
        ui_graph=content.ui_graph,
        created_by=created_by,
    )


def _refuse_clash(session: Session, team_id: UUID | None, name: str) -> None:
    clash = store.find_clash(session, team_id, name)
    if clash is None:
        return
    if clash.team_id is None:
        raise NameTaken(f"a global workflow named {name!r} already exists")
    if team_id is None:
        raise NameTaken(f"a team already has a workflow named {name!r}")
    raise NameTaken(f"your team already has a workflow named {name!r}; PUT adds a version")


def _prepared(
    name: str, content: WorkflowContent, object_info: Mapping[str, Any] | None
) -> WorkflowContent:
    """Convert a UI-format graph and draft a missing contract, both from the pool's specs."""
    ui_source = is_ui_format(content.graph)
    if not ui_source and content.contract is not None:
        return content
    if object_info is None:
        if ui_source:
            msg = (
                "converting a UI-format graph needs /object_info, and no ComfyUI instance answered"
            )
            raise reject(("graph",), "pool_unavailable", msg)
        msg = "a contract is required while no ComfyUI instance answers /object_info to draft one"
        raise reject(("contract",), "missing", msg)
    graph = (
        dict(ui_to_api(content.graph, object_info, loc=("graph",))) if ui_source else content.graph
    )
    contract = content.contract
    if contract is None:
        contract = draft_contract(graph, object_info, title=name)
    ui_graph = content.ui_graph if content.ui_graph is not None or not ui_source else content.graph
    return replace(content, graph=graph, contract=contract, ui_graph=ui_graph)


def _checked(
    name: str, content: WorkflowContent, object_info: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    """The contract, once graph, contract and UI source pass every check; else 422."""
    if content.contract is None:
        raise reject(("contract",), "missing", "a contract (JSON Schema with x-comfy) is required")
    compiled = compile_workflow(name, content.graph, content.contract)
    if not isinstance(compiled, Contract):
        raise SweepRejected(
            [
                Problem(
                    (
                        fault.document,
                        *pointer_parts(fault.pointer, indices=fault.document != "graph"),
                    ),
                    "workflow_invalid",
                    fault.message,
                )
                for fault in compiled
            ]
        )
    if content.ui_graph is not None and not isinstance(content.ui_graph.get("nodes"), list):
        msg = "ui_graph must be ComfyUI's UI format (an object with a nodes list)"
        raise reject(("ui_graph",), "ui_graph_invalid", msg)
    if object_info is not None:
        template = patch_graph(content.graph, compiled, contract_defaults(compiled))
        problems = [_node_problem(found) for found in check_graph(template, object_info)]
        if problems:
            raise SweepRejected(problems)
    return content.contract


def _node_problem(found: NodeProblem) -> Problem:
    where = ("class_type",) if found.input_name is None else ("inputs", found.input_name)
    return Problem(("graph", found.node_id, *where), found.type, found.message, found.received)


class ShippedWorkflows:
    """The files under `workflows/` and `params/`, brought into the database as global
    workflows once per process, on first use: a new file content becomes a new version."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._synced = False

    @property
    def synced(self) -> bool:
        return self._synced

    def ensure_synced(self, sessions: Callable[[], Session]) -> None:
        if self._synced:
            return
        with self._lock:
            if self._synced:
                return
            with sessions() as session:
                added = sync_shipped(session, self.registry)
            self._synced = True
        log.info("shipped_workflows_synced workflows=%d new_versions=%d", len(self.registry), added)


def sync_shipped(session: Session, registry: Registry) -> int:
    """Upsert each shipped workflow as a global one; returns how many versions were added."""
    added = 0
    for shipped in registry:
        schema = dict(shipped.contract.schema)
        digest = content_hash(shipped.graph, schema)
        try:
            with session.begin_nested():
                row = store.find_global(session, shipped.name) or store.add_workflow(
                    session, shipped.name, None, shipped.description
                )
                if store.version_with_hash(session, row.id, digest) is None:
                    store.add_version(
                        session,
                        row.id,
                        content_hash=digest,
                        graph=shipped.graph,
                        contract=schema,
                        ui_graph=None,
                        created_by=None,
                    )
                    added += 1
        except IntegrityError:
            # Another process synced it at the same moment; its row is as good as ours.
            log.info("shipped_workflow_sync_raced name=%s", shipped.name)
    session.commit()
    return added


def pinned_by(session: Session, sweep: Sweep) -> PinnedWorkflow | None:
    """The stored version a sweep pinned, compiled; None for a sweep stored before versions
    (or whose version is gone)."""
    if sweep.workflow_version_id is None:
        return None
    version = store.get_version(session, sweep.workflow_version_id)
    row = None if version is None else session.get(WorkflowRow, version.workflow_id)
    return None if version is None or row is None else pin(row, version)
