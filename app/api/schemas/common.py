"""Shapes shared by every resource: the paged answer and the problem detail."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Items matching the query, across all pages.")
    offset: int
    limit: int


class ProblemDetail(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'axes', 1].")
    type: str = Field(description="Machine-readable rule, e.g. value_bigger_than_max.")
    msg: str = Field(description="What is wrong and how to fix it.")
    input: object = Field(default=None, description="The offending value as received.")


class ValidationProblems(BaseModel):
    detail: list[ProblemDetail]


class Message(BaseModel):
    detail: str
