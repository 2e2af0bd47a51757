"""Response shapes of a run's outputs: the files it produced, each with where to fetch it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of
from app.api.schemas.sweeps import AttemptRead, RunRead


class OutputRead(BaseModel):
    model_config = example_of(ex.OUTPUT_READ)

    n: int = Field(ge=0, description="Position among the run's outputs, as ComfyUI listed them.")
    kind: str = Field(description="What the file is for display: image, video, audio, file.")
    mime: str = Field(examples=["image/png"])
    size: int = Field(ge=0, description="Bytes.")
    sha256: str = Field(description="Hex digest of the file; also its ETag.")
    url: str = Field(description="Where to download it; supports HTTP range requests.")


class RunDetail(RunRead):
    model_config = example_of(ex.RUN_DETAIL)

    outputs: list[OutputRead] = Field(description="The run's files, by `n`; empty until done.")
    past_attempts: list[AttemptRead] = Field(
        default_factory=list,
        description="Each earlier attempt, first first: its instance, timings and error.",
    )
