"""A workflow's parameter contract: which parameters a caller may set, their rules, and the
node inputs each one drives.

The contract is built from a JSON Schema (2020-12) document whose properties each carry an
`x-comfy` list of bindings. Validation of values uses the `jsonschema` library on the
property's own sub-schema, so the rules a caller reads in `params/*.schema.json` are exactly
the rules applied. Pure: no file access here (the registry reads the files).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ParamType = Literal["integer", "number", "string", "boolean"]
JsonValue = Any  # a value decoded from JSON: str | int | float | bool | None | list | dict


@dataclass(frozen=True)
class Binding:
    """One node input driven by a parameter: `graph[node_id]["inputs"][input_name]`."""

    node_id: str
    input_name: str


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    bindings: tuple[Binding, ...]
    default: JsonValue = None
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: float | None = None
    enum: tuple[JsonValue, ...] | None = None
    description: str = ""
    schema: Mapping[str, JsonValue] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Contract:
    workflow: str
    parameters: Mapping[str, Parameter]
    schema: Mapping[str, JsonValue] = field(compare=False, repr=False)
