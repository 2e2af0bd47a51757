"""Writes one run's parameter values into a copy of a workflow's API-format graph.

Owns the only place node inputs are set from parameters, through the contract's bindings.
It must never mutate the template: one template serves every run of a sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.contracts import Contract, JsonValue

_ATOMS = (str, int, float, type(None))  # bool is an int


def patch_graph(
    graph: Mapping[str, Any], contract: Contract, assignment: Mapping[str, JsonValue]
) -> dict[str, Any]:
    """A new graph with every binding of every assigned parameter set to its value.

    Raises KeyError for a parameter the contract lacks, or a binding whose node or input the
    graph lacks; the registry cross-checks bindings at startup, so either is a bug.
    """
    for name in assignment:
        if name not in contract.parameters:
            raise KeyError(f"{name!r} is not a parameter of workflow {contract.workflow!r}")
    patched: dict[str, Any] = _copy_json(graph)
    for name, value in assignment.items():
        for binding in contract.parameters[name].bindings:
            inputs = patched.get(binding.node_id, {}).get("inputs", {})
            if binding.input_name not in inputs:
                raise KeyError(
                    f"parameter {name!r} binds node {binding.node_id!r} input "
                    f"{binding.input_name!r}, which workflow {contract.workflow!r} lacks"
                )
            inputs[binding.input_name] = _copy_json(value)
    return patched


def bound_values(contract: Contract, assignment: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """The assignment without its template variables (`animal` in "a {animal}"): a run
    records them beside the text they made, but they bind to no node."""
    return {name: value for name, value in assignment.items() if name in contract.parameters}


def _copy_json(value: Any) -> Any:
    # A graph is decoded JSON, so containers are the only parts a caller could mutate;
    # rebuilding just those takes half the time of copy.deepcopy, which memoises every object.
    # Read-only mappings and tuples (a frozen template) come back as dict and list so the
    # copy can be patched and serialised alike.
    if isinstance(value, _ATOMS):  # first: most of a graph is scalars, and this check is cheap
        return value
    if isinstance(value, Mapping):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy_json(item) for item in value]
    return value


def set_output_prefix(graph: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Point every saver (any node with a `filename_prefix` input) at `prefix`.

    ComfyUI keeps files written before a crash but forgets the prompt; a prefix naming the
    sweep and run lets such a file still be found, and keeps each save folder small, since
    every save lists its folder to pick the next counter.
    """
    patched = dict(graph)
    for node_id, node in graph.items():
        inputs = node.get("inputs", {})
        if isinstance(inputs.get("filename_prefix"), str):
            patched[node_id] = {**node, "inputs": {**inputs, "filename_prefix": prefix}}
    return patched
