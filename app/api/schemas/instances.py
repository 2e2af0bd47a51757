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
    failure_streak: int = Field(description="Runs failed there in a row with transport errors.")
    running_prompts: int = Field(description="Prompts of ours queued or executing on it now.")
    checked_at: datetime | None
    last_error: str | None
