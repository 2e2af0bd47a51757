"""Proof that the baseline driver sends the graphs comfy-sweep sends: for each run of a
finished sweep, the service's own graph (as `workers.execution` builds it) is compared with the
driver's, save prefixes aside, since each names its own output folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.domain.patching import patch_graph, set_output_prefix
from app.registry import load_registry
from app.settings import PROJECT_ROOT

_PREFIX = "same-prefix"


def mismatches(
    workflow: str, assignments: Sequence[Mapping[str, Any]], driver_graphs: Sequence[Any]
) -> int:
    """How many runs' graphs differ; raises if the counts differ."""
    if len(assignments) != len(driver_graphs):
        raise SystemExit(f"{len(assignments)} runs against {len(driver_graphs)} driver prompts")
    found = load_registry(PROJECT_ROOT / "workflows", PROJECT_ROOT / "params").get(workflow)
    if found is None:
        raise SystemExit(f"unknown workflow {workflow!r}")
    differ = 0
    for assignment, driver_graph in zip(assignments, driver_graphs, strict=True):
        ours = set_output_prefix(patch_graph(found.graph, found.contract, assignment), _PREFIX)
        if ours != set_output_prefix(driver_graph, _PREFIX):
            differ += 1
    return differ
