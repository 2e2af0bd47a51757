"""Response shape of a team's standing: its fair-share weight, its caps and its usage."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of


class TeamRead(BaseModel):
    model_config = example_of(ex.TEAM_READ)

    name: str
    weight: int = Field(description="Share of running slots against teams at the same priority.")
    max_running: int | None = Field(description="Most runs running at once; null: no cap.")
    max_queued: int | None = Field(description="Most runs queued at once; null: no cap.")
    max_runs_per_sweep: int | None = Field(description="Most runs in one sweep; null: no cap.")
    max_priority: int = Field(description="Highest `priority` a sweep of the team may ask for.")
    running: int = Field(description="Runs running now.")
    queued: int = Field(description="Runs queued now, of started sweeps or not.")
