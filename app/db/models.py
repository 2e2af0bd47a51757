"""The ORM tables: teams and their API keys, registered workflows and their versions, sweeps,
their runs, the files each run produced, and the teams' wildcard lists.

These classes are the stored shape only; API schemas are separate classes in `app.api.schemas`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, JSONType, StrEnumType, UtcDateTime, utc_now
from app.domain.fair_share import DEFAULT_PRIORITY
from app.domain.states import RunStatus, SweepStatus

# What a key may do beyond its team's own resources; only admins register global workflows.
KEY_ROLES = ("member", "admin")


_GLOBAL = sa.text("team_id IS NULL")


def _created_at() -> Mapped[datetime]:
    # Python default for ORM inserts (no read-back needed); server default for bulk/COPY paths.
    return mapped_column(UtcDateTime(), default=utc_now, server_default=sa.func.now())


def _status_check(enum: type[StrEnum]) -> sa.CheckConstraint:
    # A new state needs a migration of this constraint; tests store every value to catch that.
    values = ", ".join(f"'{member.value}'" for member in enum)
    return sa.CheckConstraint(f"status IN ({values})", name="status")


def _run_count() -> Mapped[int]:
    return mapped_column(sa.Integer(), default=0, server_default="0")


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(sa.String(), unique=True)
    created_at: Mapped[datetime] = _created_at()
    # Its share of the running slots against other teams' at the same priority.
    weight: Mapped[int] = mapped_column(sa.Integer(), default=1, server_default="1")
    # Caps set by an operator (`comfy-sweep teams set`); NULL means no cap of the team's own.
    max_running: Mapped[int | None] = mapped_column(sa.Integer())
    max_queued: Mapped[int | None] = mapped_column(sa.Integer())
    max_runs_per_sweep: Mapped[int | None] = mapped_column(sa.Integer())
    max_priority: Mapped[int | None] = mapped_column(sa.Integer())


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        sa.CheckConstraint(f"role IN ({', '.join(repr(r) for r in KEY_ROLES)})", name="role"),
    )

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    team_id: Mapped[UUID] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    # The key's first characters, stored in clear so listings and revocation can name a key.
    prefix: Mapped[str] = mapped_column(sa.String(12), index=True)
    # sha256 hex of the whole key; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    label: Mapped[str] = mapped_column(sa.String(), default="")
    role: Mapped[str] = mapped_column(sa.String(16), default="member", server_default="member")
    created_at: Mapped[datetime] = _created_at()
    # Set once; a revoked key is kept so listings show its history.
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    # lazy="raise": stores load the team explicitly, so a detached key never hides a query.
    team: Mapped[Team] = relationship(lazy="raise")


class Workflow(Base):
    """A named workflow, global (no team) or owned by one team; its content is in versions."""

    __tablename__ = "workflows"
    __table_args__ = (
        sa.UniqueConstraint("team_id", "name"),
        # NULLs never collide in a unique constraint, so global names get an index of their own.
        sa.Index(
            "ix_workflows_global_name",
            "name",
            unique=True,
            postgresql_where=_GLOBAL,
            sqlite_where=_GLOBAL,
        ),
    )

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(sa.String(64))
    # NULL for a global workflow, visible to every team.
    team_id: Mapped[UUID | None] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(sa.String(), default="", server_default="")
    created_at: Mapped[datetime] = _created_at()


class WorkflowVersion(Base):
    """One immutable content of a workflow; sweeps pin the version they ran."""

    __tablename__ = "workflow_versions"
    __table_args__ = (
        sa.UniqueConstraint("workflow_id", "version"),
        sa.UniqueConstraint("workflow_id", "content_hash"),
    )

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    workflow_id: Mapped[UUID] = mapped_column(
        sa.ForeignKey("workflows.id", ondelete="CASCADE"), index=True
    )
    # 1, 2, ... per workflow, in order of registration.
    version: Mapped[int] = mapped_column(sa.Integer())
    # sha256 hex of the canonical JSON of the content; equal content is never stored twice.
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    graph: Mapped[dict[str, Any]] = mapped_column(JSONType)
    contract: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The UI-format source ("Save" in ComfyUI), written into outputs as their `workflow` chunk.
    ui_graph: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = _created_at()
    # The API key that registered it; NULL for versions synced from the shipped files.
    created_by: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("api_keys.id", ondelete="SET NULL")
    )


class Sweep(Base):
    __tablename__ = "sweeps"
    __table_args__ = (_status_check(SweepStatus),)

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    # Indexed by ix_sweeps_team_id_created_at, whose leading column it is.
    team_id: Mapped[UUID] = mapped_column(sa.ForeignKey("teams.id"))
    # Name of the workflow in the registry (`workflows/<name>.json`).
    workflow: Mapped[str] = mapped_column(sa.String())
    # The request exactly as submitted, so a sweep can be shown or resubmitted verbatim.
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # What expansion used: resolved axes with their values, fixed values, seeds and mode.
    plan: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[SweepStatus] = mapped_column(
        StrEnumType(SweepStatus),
        default=SweepStatus.PENDING,
        server_default=SweepStatus.PENDING.value,
    )
    # Number of runs the plan expands to; fixed at submission.
    total: Mapped[int] = mapped_column(sa.Integer())
    created_at: Mapped[datetime] = _created_at()
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utc_now, onupdate=utc_now, server_default=sa.func.now()
    )
    # Last time work messages were sent for it; the reconciler re-sends after a stall.
    hinted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The exact workflow content its runs use; NULL only for sweeps stored before versions.
    workflow_version_id: Mapped[UUID | None] = mapped_column(sa.ForeignKey("workflow_versions.id"))
    # How many of its runs are in each status, moved in the transaction of every run
    # transition (`app.stores.runs`), so reading a sweep's progress never counts its runs.
    queued_count: Mapped[int] = _run_count()
    running_count: Mapped[int] = _run_count()
    succeeded_count: Mapped[int] = _run_count()
    failed_count: Mapped[int] = _run_count()
    cancelled_count: Mapped[int] = _run_count()
    # Instance tags its runs need (the contract's and the request's), sorted and `+`-joined,
    # "" for none (`app.domain.tags`); a run is claimed only for an instance that has them.
    required_tags: Mapped[str] = mapped_column(sa.String(), default="", server_default="")
    # 0-100; a free slot goes to the highest priority with queued work first.
    priority: Mapped[int] = mapped_column(
        sa.Integer(), default=DEFAULT_PRIORITY, server_default=str(DEFAULT_PRIORITY)
    )
    # What it was expected to cost when submitted (`app.domain.estimates`), shown beside its
    # actual elapsed time; NULL for sweeps stored before estimates.
    estimate: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # The sweep this one replays (`POST /v1/sweeps/{id}/replay`); NULL for a submission.
    source_sweep_id: Mapped[UUID | None] = mapped_column(
        sa.ForeignKey("sweeps.id", ondelete="SET NULL")
    )


class ActiveSweep(Base):
    """One row per sweep with queued runs: what a claim chooses from, so choosing reads as
    many rows as there are such sweeps, however many runs they queue. Written only by
    `app.stores.active_sweeps`, in the transactions that move the sweep's queued count."""

    __tablename__ = "active_sweeps"

    sweep_id: Mapped[UUID] = mapped_column(
        sa.ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[UUID] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    priority: Mapped[int] = mapped_column(sa.Integer())
    # The sweep's own submission time: the order of a team's sweeps.
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Claims take runs only from active rows: false until the sweep starts, and the hook a
    # pause would clear.
    active: Mapped[bool] = mapped_column(sa.Boolean(), default=False, server_default=sa.false())


# Paging a team's sweeps newest first (ties by id) reads this index in order, no sort.
sa.Index("ix_sweeps_team_id_created_at", Sweep.team_id, Sweep.created_at.desc(), Sweep.id.desc())
# An estimate reads a workflow's latest sweeps (`app.stores.estimates`), newest first.
sa.Index("ix_sweeps_workflow_created_at", Sweep.workflow, Sweep.created_at.desc())


# Predicates of partial indexes (both backends support them).
_RUNNING = sa.text("status = 'running'")
_CLAIMED = sa.text("claimed_by IS NOT NULL")
_QUEUED = sa.text("status = 'queued'")


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        sa.UniqueConstraint("sweep_id", "index"),
        # Claiming the next run of a sweep in execution order; its prefix also serves paging
        # a sweep's runs by status (a separate (sweep_id, status) index only slowed inserts).
        sa.Index("ix_runs_sweep_id_status_dispatch_order", "sweep_id", "status", "dispatch_order"),
        # Partial indexes for what every claim and reconciler pass looks up across all sweeps:
        # the few runs now running (slots per instance, lapsed leases) and the run a task
        # holds. They stay as small as the work in flight however long the history grows;
        # without them each lookup scanned every run ever made.
        sa.Index(
            "ix_runs_running_instance", "instance", postgresql_where=_RUNNING, sqlite_where=_RUNNING
        ),
        sa.Index(
            "ix_runs_claimed_by", "claimed_by", postgresql_where=_CLAIMED, sqlite_where=_CLAIMED
        ),
        # A claim's probes: a sweep's next queued run of one model, and its distinct models,
        # each an index lookup that stops at the first row (`app.stores.claims`).
        sa.Index(
            "ix_runs_queued_model",
            "sweep_id",
            "model_key",
            "dispatch_order",
            postgresql_where=_QUEUED,
            sqlite_where=_QUEUED,
        ),
        _status_check(RunStatus),
    )

    # Also sent to ComfyUI as the prompt_id, so a resubmission is recognisable there.
    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    sweep_id: Mapped[UUID] = mapped_column(sa.ForeignKey("sweeps.id", ondelete="CASCADE"))
    # Position in the sweep's expansion order (0-based); grids place cells by it.
    index: Mapped[int] = mapped_column(sa.Integer())
    # Parameter name -> value of what this run varies (axis values, sample point, seed); the
    # sweep's fixed values are stored once, in its plan. Read it only through
    # `app.domain.assignments.full_assignment(plan_fixed(sweep.plan), own_values)`: rows
    # stored before runs were lean hold the full assignment, which composes to itself.
    # JSON, not JSONB: stored as text, so storing a sweep's 10,000 rows parses no JSON; it
    # is never queried inside.
    own_values: Mapped[dict[str, Any]] = mapped_column(sa.JSON())
    status: Mapped[RunStatus] = mapped_column(
        StrEnumType(RunStatus), default=RunStatus.QUEUED, server_default=RunStatus.QUEUED.value
    )
    # Submissions so far; compare-and-set updates include it so a stale retry is a no-op.
    attempts: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    # The last failure as reported (kind, message, ...); null while there is none.
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    queued_at: Mapped[datetime] = _created_at()
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The prompt_id ComfyUI accepted; null until submitted.
    prompt_id: Mapped[str | None] = mapped_column(sa.String())
    # Base URL of the ComfyUI instance holding the run while it is submitted.
    instance: Mapped[str | None] = mapped_column(sa.String())
    # When the holding instance's claim lapses and the reconciler may look at the run.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Position in the cache-aware execution order (runs sharing models and prompts adjacent).
    dispatch_order: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    # Identifies the models the run loads; instances prefer runs of the models they hold.
    model_key: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    # Celery task id of the worker executing it; a redelivered message resumes its own run.
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    # When ComfyUI finished the prompt; from then on the run no longer occupies an instance
    # slot, so the next prompt is queued while this one's outputs are still downloading.
    prompt_done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class RunAttempt(Base):
    """An attempt a run has left behind: written when the run goes back to queued (a
    retryable failure, or `POST /retry` of a finished run), so the run's own columns show
    its latest attempt and this table every earlier one."""

    __tablename__ = "run_attempts"
    __table_args__ = (sa.UniqueConstraint("run_id", "attempt"),)

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    run_id: Mapped[UUID] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    # The run's `attempts` during it: 1 for the first submission.
    attempt: Mapped[int] = mapped_column(sa.Integer())
    # How it ended: failed, cancelled, or queued when the worker put it back for a retry.
    status: Mapped[str] = mapped_column(sa.String(16))
    instance: Mapped[str | None] = mapped_column(sa.String())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class Output(Base):
    __tablename__ = "outputs"
    __table_args__ = (sa.UniqueConstraint("run_id", "position"),)

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    run_id: Mapped[UUID] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    # Order among the run's outputs, as ComfyUI listed them.
    position: Mapped[int] = mapped_column(sa.Integer())
    # "image", "video", ...: what the file is for display, independent of its format.
    kind: Mapped[str] = mapped_column(sa.String(16))
    # Relative to DATA_DIR, so the data directory can move.
    path: Mapped[str] = mapped_column(sa.String())
    mime: Mapped[str] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.BigInteger())
    # sha256 hex of the file, computed while streaming it to disk.
    sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = _created_at()


class Instance(Base):
    """A ComfyUI instance of the pool, as last seen; the list itself comes from settings."""

    __tablename__ = "instances"

    # The base URL from COMFY_INSTANCES; never taken from a request.
    url: Mapped[str] = mapped_column(sa.String(), primary_key=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    healthy: Mapped[bool] = mapped_column(sa.Boolean(), default=True, server_default=sa.true())
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.String())
    # model_key of the last run routed here: what it probably has loaded (sticky routing).
    model_key: Mapped[str | None] = mapped_column(sa.String(32))
    # Set by an admin: prompts already there finish, no new run is claimed for it.
    drained: Mapped[bool] = mapped_column(sa.Boolean(), default=False, server_default=sa.false())
    # Runs failed here in a row with transport errors; a success resets it.
    failure_streak: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    # No new runs are claimed for it before this (INSTANCE_BENCH_AFTER, INSTANCE_BENCH_S).
    benched_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WildcardList(Base):
    """A team's named list of prompt fragments, referenced as `__name__` in sweeps.

    Sweeps copy the entries they use into their plan at submission, so replacing or deleting
    a list never changes a sweep already made.
    """

    __tablename__ = "wildcard_lists"
    __table_args__ = (sa.UniqueConstraint("team_id", "name"),)

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    team_id: Mapped[UUID] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(64))
    entries: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utc_now, onupdate=utc_now, server_default=sa.func.now()
    )


class IdempotencyKey(Base):
    """A team's `Idempotency-Key` and the answer its request got, replayed for a repeat of
    the same request within a day (`app.services.idempotency`).

    The unique (team_id, key) is what makes two concurrent requests with one key do the
    work once: each inserts its claim first, and only one insert can win.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("team_id", "key"),)

    # Compare-and-set token of the claim: a request records its answer only on its own row.
    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    team_id: Mapped[UUID] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    # sha256 hex of method, path and canonical body: a reused key with another body is refused.
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    # Expired records (older than a day) are ignored and deleted by the reconciler.
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # NULL while the first request is still being served (the key is "in use").
    status_code: Mapped[int | None] = mapped_column(sa.Integer())
    # [name, value] pairs exactly as sent, Location included.
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSONType)
    response_body: Mapped[bytes | None] = mapped_column(sa.LargeBinary())


class Event(Base):
    """One state change of a sweep or a run (`app.domain.events`), in commit order.

    No foreign keys: an event outlives nothing it names by design (pruned by age, not with
    its sweep), and writing one takes no lock on the rows it names; see `app.stores.events`.
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_sweep_id_id", "sweep_id", "id"),
        sa.Index("ix_events_team_id_id", "team_id", "id"),
        sa.Index("ix_events_created_at", "created_at"),
    )

    # BIGINT on Postgres; SQLite's autoincrementing key must be declared INTEGER.
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    created_at: Mapped[datetime] = _created_at()
    type: Mapped[str] = mapped_column(sa.String(40))
    team_id: Mapped[UUID] = mapped_column(sa.Uuid())
    sweep_id: Mapped[UUID] = mapped_column(sa.Uuid())
    run_index: Mapped[int | None] = mapped_column(sa.Integer())
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class WebhookEndpoint(Base):
    """Where a team's events are POSTed: a team default (no sweep) or one sweep's own.

    Event-writing transactions read these rows (never lock them) to queue deliveries; see
    `app.stores.webhook_outbox`.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        # The outbox's one read per event-writing transaction: a team's defaults, one sweep's.
        sa.Index(
            "ix_webhook_endpoints_team_defaults",
            "team_id",
            postgresql_where=sa.text("sweep_id IS NULL"),
            sqlite_where=sa.text("sweep_id IS NULL"),
        ),
        sa.Index("ix_webhook_endpoints_sweep_id", "sweep_id"),
    )

    id: Mapped[UUID] = mapped_column(sa.Uuid(), primary_key=True, default=uuid4)
    team_id: Mapped[UUID] = mapped_column(sa.Uuid())
    # Set for an endpoint named in a sweep's submission: only that sweep's events go there.
    sweep_id: Mapped[UUID | None] = mapped_column(sa.Uuid())
    url: Mapped[str] = mapped_column(sa.String(2000))
    # Event types (`app.domain.events.EventType`) or ["*"] for all.
    events: Mapped[list[str]] = mapped_column(JSONType)
    description: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    # The Standard Webhooks signing key (`whsec_…`). Kept in clear because the sender signs
    # with it; shown to the caller once, at creation, and never logged.
    secret: Mapped[str] = mapped_column(sa.String(100))
    enabled: Mapped[bool] = mapped_column(sa.Boolean(), default=True, server_default=sa.true())
    created_at: Mapped[datetime] = _created_at()


class WebhookDelivery(Base):
    """One event owed to one endpoint: the outbox row the sender claims, posts and retries.

    No foreign keys to endpoints or events: a delivery is inserted while `app.stores.events`
    holds its advisory lock, and a key-share lock on a referenced row could deadlock with it.
    A delivery whose endpoint is gone is failed by the sender.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The sender's claim and the lag gauge: pending ones by when they are due.
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    endpoint_id: Mapped[UUID] = mapped_column(sa.Uuid())
    event_id: Mapped[int] = mapped_column(sa.BigInteger())
    event_type: Mapped[str] = mapped_column(sa.String(40))
    # The JSON body as first built: every attempt posts the same content.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    # When the next attempt is due; a claimed delivery's is pushed ahead by the claim's lease,
    # so a sender that dies mid-attempt leaves it due again. NULL once it has ended.
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime(), server_default=sa.func.now()
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status_code: Mapped[int | None] = mapped_column(sa.Integer())
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    # The first KiB of the last answer's body, for the team to see why its endpoint refused.
    last_response: Mapped[str | None] = mapped_column(sa.String(1024))
    created_at: Mapped[datetime] = _created_at()
