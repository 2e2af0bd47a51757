"""Request shape of replaying a sweep."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas.sweeps import ParamName, Scalar


class SweepReplay(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"base": {"width": 512}}]}
    )

    base: dict[ParamName, Scalar] = Field(
        default_factory=dict,
        max_length=256,
        description=(
            "Fixed values to change; checked as a submission's `base`. A value the source "
            "varies (an axis, its seeds, its sampling) cannot be overridden."
        ),
    )
