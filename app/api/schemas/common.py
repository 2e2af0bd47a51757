"""Shapes shared by every resource: the paged answer and the problem detail."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of

T = TypeVar("T")


def _page_example(schema: dict[str, Any], page: type[BaseModel]) -> None:
    """A page of one item, the item being its own shape's example (`Page[RunRead]` shows a
    run), so every page's example follows its items'."""
    item = page.model_fields["items"].annotation
    item_shape = get_args(item)[0] if get_args(item) else None
    if isinstance(item_shape, type) and issubclass(item_shape, BaseModel):
        item_examples = item_shape.model_json_schema().get("examples", [])
        if item_examples:
            schema["examples"] = [
                {"items": item_examples[:1], "total": 1, "offset": 0, "limit": 50}
            ]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_example)

    items: list[T]
    total: int = Field(description="Items matching the query, across all pages.")
    offset: int
    limit: int


class ProblemDetail(BaseModel):
    model_config = example_of(ex.PROBLEM)

    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'axes', 1].")
    type: str = Field(description="Machine-readable rule, e.g. value_bigger_than_max.")
    msg: str = Field(description="What is wrong and how to fix it.")
    input: object = Field(default=None, description="The offending value as received.")


class ValidationProblems(BaseModel):
    model_config = example_of(ex.VALIDATION_PROBLEMS)

    detail: list[ProblemDetail]


class Message(BaseModel):
    model_config = example_of(ex.MESSAGE)

    detail: str
