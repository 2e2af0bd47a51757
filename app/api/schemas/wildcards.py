"""Response shapes of the wildcards resource; uploads are plain text, one entry per line."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of


class WildcardSummary(BaseModel):
    model_config = example_of(ex.WILDCARD_SUMMARY)

    name: str = Field(description="Referenced as `__name__` in a sweep's text values.")
    count: int = Field(description="Entries in the list.")
    updated_at: datetime


class WildcardRead(WildcardSummary):
    model_config = example_of(ex.WILDCARD_READ)

    entries: list[str]
