"""Response shapes of the wildcards resource; uploads are plain text, one entry per line."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class WildcardSummary(BaseModel):
    name: str = Field(description="Referenced as `__name__` in a sweep's text values.")
    count: int = Field(description="Entries in the list.")
    updated_at: datetime


class WildcardRead(WildcardSummary):
    entries: list[str]
