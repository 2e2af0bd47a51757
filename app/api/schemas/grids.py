"""Response shapes of a sweep's grids: the pages there are, each with what sets it apart."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of


class GridPageRead(BaseModel):
    model_config = example_of(ex.GRID_PAGE)

    page: int = Field(ge=0, description="1, 2, ... in run order; 0 is the index page.")
    kind: Literal["page", "index"] = Field(description="A grid page, or the index of pages.")
    title: str = Field(description="What sets the page apart: fixed values, which part.")
    fixed: dict[str, Any] = Field(
        description="Values of the axes beyond the second (X, Y) on this page."
    )
    width: int = Field(ge=1, description="Pixels.")
    height: int = Field(ge=1, description="Pixels.")
    cells: int = Field(ge=0, description="Images (or page previews) the page shows.")
    url: str = Field(description="Where to download the PNG.")


class GridList(BaseModel):
    model_config = example_of(ex.GRID_LIST)

    pages: list[GridPageRead] = Field(description="The index page first when there is one.")
    default_page: int = Field(
        ge=0, description="What `/grid` without `page` serves: the index if any, else page 1."
    )
