"""Response shape of the instance pool, as operators see it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of


class InstanceRead(BaseModel):
    model_config = example_of(ex.INSTANCE_READ)

    id: str = Field(description="Stable id derived from the URL, for the drain routes.")
    url: str = Field(description="The base URL from COMFY_INSTANCES (never carries userinfo).")
    tags: list[str]
    healthy: bool | None = Field(description="None until the reconciler has checked it.")
    drained: bool = Field(description="Takes no new runs; prompts already there finish.")
    benched_until: datetime | None = Field(
        description="Takes no new runs before this, after transport failures in a row."
    )
    benched: bool = Field(description="Benched now: `benched_until` is still ahead.")
    failure_streak: int = Field(description="Runs failed there in a row with transport errors.")
    running_prompts: int = Field(
        description="Slots in use: prompts of ours queued or executing on it now."
    )
    slots: int = Field(description="Prompts of ours it may hold at once (INSTANCE_SLOTS).")
    loaded_model_key: str | None = Field(
        description="Model key (a digest of the model loader values) of the last run routed "
        "there: what it probably has loaded; None when nothing is known (e.g. after a restart).",
        examples=["9c1e5b7a03d24f68"],
    )
    runs_succeeded: int | None = Field(
        description="Runs that succeeded there, as counted by the workers whose metrics this "
        "API reads (PROMETHEUS_MULTIPROC_DIR) since that directory was emptied; None when "
        "the API reads no metrics directory."
    )
    runs_failed: int | None = Field(
        description="Run attempts that failed there (finally or retried), counted likewise."
    )
    checked_at: datetime | None
    last_error: str | None = Field(description="Why the last health check failed, if it did.")
