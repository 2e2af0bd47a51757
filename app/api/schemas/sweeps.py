"""Request and response shapes of the sweeps resource.

The request is what a person types (`"1-9 (+4)"`); the stored plan is what expansion used.
They are separate classes on purpose: the same sweep has two honest shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of
from app.api.schemas.webhooks import WebhookCreated, WebhookSpec
from app.domain.estimates import WorkUnit
from app.domain.fair_share import DEFAULT_PRIORITY, MAX_PRIORITY
from app.domain.states import RunStatus, SweepStatus
from app.domain.tags import MAX_INSTANCE_TAGS, TAG_PATTERN

ParamName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# Strings end up in JSON columns and ComfyUI graphs; NUL is refused by Postgres JSONB and is
# never meaningful in a prompt, so it is rejected at the edge rather than failing the insert.
Text = Annotated[str, StringConstraints(max_length=20_000, pattern=r"^[^\x00]*$")]
Scalar = bool | int | float | Text
Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]


class AxisIn(BaseModel):
    model_config = example_of(ex.AXIS_IN, extra="forbid")

    param: ParamName = Field(description="A parameter of the workflow's contract.")
    values: Text | Annotated[list[Scalar], Field(max_length=10_000)] = Field(
        description=(
            "A JSON list, or AUTOMATIC1111 X/Y/Z syntax: `euler, dpmpp_2m`, `1-5`, "
            "`1-9 (+4)`, `10-4 (-3)`, `1-3 [5]`, `0.5-2.5 (+0.5)`."
        ),
        examples=["1-9 (+4)", [0.2, 0.8]],
    )


class SeedsIn(BaseModel):
    model_config = example_of(ex.SEEDS_IN, extra="forbid")

    count: int = Field(ge=1, le=1000, description="Seeds per combination of axis values.")
    start: int | None = Field(default=None, ge=0, description="First seed; seeds count up.")
    random: bool = Field(default=False, description="Draw seeds at submission; they are stored.")
    layout: Literal["cell", "axis"] = Field(
        default="cell", description="In grids: seeds as sub-cells of a cell, or as an axis."
    )

    @model_validator(mode="after")
    def _one_source(self) -> SeedsIn:
        if self.random == (self.start is not None):
            raise ValueError("give exactly one of `start` or `random: true`")
        return self


class RangeIn(BaseModel):
    model_config = example_of(ex.RANGE_IN, extra="forbid")

    min: float
    max: float
    step: float | None = Field(default=None, gt=0)


class SamplingIn(BaseModel):
    model_config = example_of(ex.SAMPLING_IN, extra="forbid")

    strategy: Literal["sobol", "lhs", "random"]
    samples: int = Field(ge=1, description="Points drawn in the space of `ranges`.")
    seed: int | None = Field(
        default=None, ge=0, le=2**32 - 1, description="Drawn at submission when absent."
    )
    ranges: dict[ParamName, RangeIn] = Field(min_length=1, max_length=16)


SWEEP_EXAMPLE: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 256, "height": 256},
    "axes": [
        {"param": "blur_radius", "values": "1-9 (+4)"},
        {"param": "strength", "values": [0.2, 0.8]},
    ],
    "mode": "cartesian",
    "seeds": {"count": 2, "start": 100},
}


class SweepCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SWEEP_EXAMPLE]})

    workflow: ParamName = Field(description="A registered workflow, see GET /v1/workflows.")
    base: dict[ParamName, Scalar] = Field(default_factory=dict, max_length=256)
    axes: list[AxisIn] = Field(
        default_factory=list,
        max_length=8,
        description="First is X, second Y, the rest pages of grids.",
    )
    mode: Literal["cartesian", "zip"] = "cartesian"
    seeds: SeedsIn | None = None
    sampling: SamplingIn | None = None
    requires: list[Tag] = Field(
        default_factory=list,
        max_length=MAX_INSTANCE_TAGS,
        description="Instance tags its runs need besides the workflow's own "
        "(`x-comfy-requires`); only instances configured with all of them take its runs.",
        examples=[["48gb"]],
    )
    priority: int = Field(
        default=DEFAULT_PRIORITY,
        ge=0,
        le=MAX_PRIORITY,
        description=(
            "Free slots go to the highest priority first; at most the team's `max_priority`."
        ),
    )
    paused: bool = Field(
        default=False,
        description=(
            "Store it paused: none of its runs starts until `POST /v1/sweeps/{id}/resume`."
        ),
    )
    webhook: WebhookSpec | None = Field(
        default=None,
        description="An endpoint of this sweep's own for its events, besides the team's "
        "(`POST /v1/webhooks`); its id and signing secret are in the answer, once.",
    )


class AxisRead(BaseModel):
    model_config = example_of(ex.AXES_READ[0])

    param: str
    values: list[Any]


class SweepSummary(BaseModel):
    model_config = example_of(ex.SWEEP_SUMMARY)

    id: UUID
    workflow: str
    status: SweepStatus
    total: int
    created_at: datetime


class SpreadRead(BaseModel):
    model_config = example_of(ex.SPREAD)

    median: float
    p90: float


class SweepEstimate(BaseModel):
    """What a sweep is expected to cost, from its runs and the workflow's history here."""

    model_config = example_of(ex.ESTIMATE)

    runs: int
    steps: int | None = Field(
        description="Sampler steps of all runs; null when no sampler's steps can be read."
    )
    megapixels: float | None = Field(
        description="Width × height × batch of all runs' latents or images; null when the "
        "size is set by another node."
    )
    work_unit: WorkUnit = Field(
        description="What the rates are per: steps × megapixels where both are known."
    )
    model_loads: int = Field(
        description="Model loads of the planned order on the instances as they are now."
    )
    history_runs: int = Field(description="Finished runs of this workflow the rates are from.")
    seconds_per_unit: SpreadRead | None = Field(
        description="Instance-busy seconds per unit of work in that history."
    )
    gpu_seconds: SpreadRead | None = Field(description="Those rates times this sweep's work.")
    instances: int = Field(description="Instances that may run it (tags, not drained).")
    makespan_s: float | None = Field(
        description="Median GPU time spread over those instances: the sweep's own duration."
    )
    queue_ahead_runs: int = Field(description="Queued runs at its priority or higher.")
    queue_wait_s: float | None = Field(description="Their time at this sweep's run time.")
    finish_at: datetime | None = Field(description="When it would end if submitted then.")
    reason: str | None = Field(description='Why times are null, e.g. "no history yet".')


class QuotaExceeded(BaseModel):
    model_config = example_of(ex.QUOTA_EXCEEDED)

    quota: Literal["max_priority", "max_runs_per_sweep", "max_queued"]
    limit: int
    value: int = Field(description="What the submission would reach.")


class SweepDryRun(SweepEstimate):
    """`POST /v1/sweeps?dry_run=true`: validated like a submission, nothing stored or sent."""

    model_config = example_of(ex.DRY_RUN)

    dry_run: Literal[True] = True
    workflow: str
    exceeds: list[QuotaExceeded] = Field(
        description="The team's caps a submission would be refused for now."
    )


class SweepRead(SweepSummary):
    model_config = example_of(ex.SWEEP_READ)

    counts: dict[RunStatus, int] = Field(description="Runs in each state.")
    progress: float = Field(
        ge=0,
        le=1,
        description=(
            "Share of the sweep's runs that were executed to an outcome (succeeded or failed). "
            "Cancelled runs never ran and do not count, so a cancelled sweep stays below 1."
        ),
    )
    mode: Literal["cartesian", "zip"]
    axes: list[AxisRead] = Field(description="Each axis with its resolved values.")
    seeds: list[int] = Field(description="The seeds every combination runs with.")
    fixed: dict[str, Any] = Field(description="Values every run shares (defaults ⊕ base).")
    started_at: datetime | None
    finished_at: datetime | None
    workflow_version: int | None = Field(
        default=None, description="The workflow version its runs use, fixed at submission."
    )
    workflow_hash: str | None = Field(default=None, description="That version's content hash.")
    requires: list[str] = Field(
        default_factory=list,
        description="Instance tags its runs need: the workflow's and the request's.",
    )
    estimate: SweepEstimate | None = Field(
        default=None, description="Its estimate at submission; null for older sweeps."
    )
    elapsed_s: float | None = Field(
        default=None, description="finished_at - started_at, once it has ended."
    )
    source_sweep_id: UUID | None = Field(
        default=None,
        description="The sweep this one replays (`POST /v1/sweeps/{id}/replay`); null otherwise.",
    )


class SweepSubmitted(SweepRead):
    model_config = example_of(ex.SWEEP_SUBMITTED)

    webhook: WebhookCreated | None = Field(
        default=None,
        description="The endpoint the submission's `webhook` created, with its secret: "
        "shown only here.",
    )


class RunRead(BaseModel):
    model_config = example_of(ex.RUN_READ)

    index: int
    status: RunStatus
    assignment: dict[str, Any]
    attempts: int
    error: dict[str, Any] | None
    instance: str | None
    started_at: datetime | None
    finished_at: datetime | None


RetriedStatus = Literal["failed", "cancelled"]
# The kinds of `app.comfy.errors.RunError`: the `kind` of a run's stored error.
ErrorType = Literal["validation", "execution", "interrupted", "transport", "timeout", "protocol"]


def _failed_only() -> list[RetriedStatus]:
    return ["failed"]


class SweepRetry(BaseModel):
    model_config = example_of(ex.SWEEP_RETRY, extra="forbid")

    status: list[RetriedStatus] = Field(
        default_factory=_failed_only,
        min_length=1,
        description="Which ended runs to queue again; a succeeded run never runs again.",
    )
    error_type: ErrorType | None = Field(
        default=None,
        description="Only runs whose stored error is of this kind (its `kind`).",
        examples=["execution"],
    )


class SeedsMore(BaseModel):
    model_config = example_of(ex.SEEDS_MORE, extra="forbid")

    count: int = Field(ge=1, le=1000, description="Seeds to add to every combination.")
    start: int | None = Field(
        default=None, ge=0, description="First new seed; by default just above the highest."
    )


class SweepExtend(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"axes": [{"param": "blur_radius", "values": [9]}]}]},
    )

    axes: list[AxisIn] = Field(
        default_factory=list,
        max_length=8,
        description="Values to add to an axis, or a new axis (its first value is the one "
        "the existing runs have).",
    )
    seeds: SeedsMore | None = None


class SweepReopened(SweepRead):
    model_config = example_of(ex.SWEEP_REOPENED)

    queued: int = Field(ge=0, description="Runs this request queued.")


class AttemptRead(BaseModel):
    model_config = example_of(ex.ATTEMPT_READ)

    attempt: int
    status: str = Field(description="How it ended: failed, cancelled, or queued (retried).")
    instance: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: dict[str, Any] | None
