"""Request and response shapes of the workflows resource: registering a workflow or a new
version of it, and what a caller may set on each one."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of

WorkflowName = Annotated[
    # Names appear in URLs and in ComfyUI's filename_prefix, so keep them plain.
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$"),
]
MAX_DEPTH = 64


def _storable(document: dict[str, Any]) -> dict[str, Any]:
    """Refuse what a JSON column cannot store, so it is a 422 here and not a failed insert:
    NUL and lone surrogates in strings (Postgres JSONB refuses both), NaN and infinities
    (Python's JSON parser accepts them, JSON does not) and absurd nesting."""
    stack: list[tuple[object, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return document


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("strings must not contain NUL (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("strings must be valid Unicode (no lone surrogates)") from None


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


class WorkflowVersionIn(BaseModel):
    """One version's content. `graph` is ComfyUI's API format ("Export (API)")."""

    model_config = example_of(ex.WORKFLOW_VERSION_IN, extra="forbid")

    graph: JsonObject = Field(description="The workflow in ComfyUI's API format.")
    contract: JsonObject | None = Field(
        default=None,
        description="JSON Schema of the parameters, each bound to node inputs by `x-comfy`.",
    )
    ui_graph: JsonObject | None = Field(
        default=None,
        description=(
            "The same workflow in ComfyUI's UI format (\"Save\"): written into each output's "
            "`workflow` PNG chunk with the run's values, so dropping it on ComfyUI reloads it."
        ),
    )
    description: (
        Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")] | None
    ) = None


class WorkflowCreate(WorkflowVersionIn):
    model_config = example_of(ex.WORKFLOW_CREATE)

    name: WorkflowName
    global_: bool = Field(
        default=False,
        alias="global",
        description="Visible to every team; admin keys only.",
    )


class ParameterRead(BaseModel):
    model_config = example_of(ex.PARAMETER_READ)

    name: str
    type: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: float | None = None
    enum: list[Any] | None = None
    description: str = ""


class WorkflowSummary(BaseModel):
    model_config = example_of(ex.WORKFLOW_SUMMARY)

    name: str
    title: str
    description: str
    scope: Literal["global", "team"] = Field(description="Global, or your team's own.")
    version: int = Field(description="The latest version; sweeps run it.")
    hash: str = Field(description="sha256 of the version's canonical content.")


class WorkflowRead(WorkflowSummary):
    model_config = example_of(ex.WORKFLOW_READ)

    parameters: list[ParameterRead]
    json_schema: dict[str, Any]


class WorkflowVersionRead(BaseModel):
    model_config = example_of(ex.WORKFLOW_VERSION_READ)

    version: int
    hash: str
    created_at: datetime
    created_by: str | None = Field(description="Prefix of the key that registered it.")
    has_ui_graph: bool
