"""Cache-aware dispatch order: which parameters are expensive to change, which runs share that
expensive upstream work, and the order and instance split that keep such runs together.

ComfyUI caches only the previous prompt's node outputs, keyed by each node's inputs and
everything upstream (comfy_execution/caching.py), and frees a model once no cached output
holds it. So a checkpoint switch reloads the model (seconds; more than a whole SDXL image on
an H100), a new prompt re-runs the text encoder, and a new seed or cfg re-runs only the
sampler and what follows. Runs are therefore grouped by the expensive values, most upstream
slowest, and keep expansion's order (seeds fastest) inside a group. Pure, no I/O.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from app.domain.contracts import Contract, JsonValue

# Cost tiers by node class, cheapest last. Class names rather than a fixed list so custom
# loaders ("CheckpointLoader|pysssss", "UnetLoaderGGUF") and encoders ("CLIPTextEncodeSDXL")
# are covered: a loader reads a model from disk, an encoder runs CLIP or T5, an empty latent
# sets the size every later node works at.
_LOADER, _TEXT_ENCODER, _LATENT = 0, 1, 2


def _tier(class_type: str) -> int | None:
    if "Loader" in class_type:
        return _LOADER
    if "TextEncode" in class_type:
        return _TEXT_ENCODER
    if class_type.startswith("Empty") and "Latent" in class_type:
        return _LATENT
    return None


def _is_link(value: object) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], str)


def upstream_depths(graph: Mapping[str, Any]) -> dict[str, int]:
    """Each node's longest link distance to a node nothing consumes (an output); the larger,
    the more work a change to it invalidates."""
    consumers: dict[str, list[str]] = {str(node_id): [] for node_id in graph}
    for node_id, node in graph.items():
        for value in (node.get("inputs") or {}).values():
            if _is_link(value) and value[0] in consumers:
                consumers[value[0]].append(str(node_id))
    depths: dict[str, int] = {}
    for node_id in consumers:
        _depth(node_id, consumers, depths, set())
    return depths


def _depth(
    node_id: str, consumers: Mapping[str, list[str]], depths: dict[str, int], path: set[str]
) -> int:
    if node_id in depths:
        return depths[node_id]
    if node_id in path:
        return 0  # ComfyUI refuses cycles at execution; do not recurse forever here
    path.add(node_id)
    below = [_depth(consumer, consumers, depths, path) for consumer in consumers[node_id]]
    path.discard(node_id)
    depths[node_id] = 1 + max(below) if below else 0
    return depths[node_id]


def _ranked(contract: Contract, graph: Mapping[str, Any]) -> list[tuple[int, int, int, str]]:
    """(tier, -depth, declaration order, name) for every parameter with an expensive binding."""
    depths = upstream_depths(graph)
    ranked: list[tuple[int, int, int, str]] = []
    for order, (name, parameter) in enumerate(contract.parameters.items()):
        tiers, deepest = [], 0
        for binding in parameter.bindings:
            node = graph.get(binding.node_id)
            tier = _tier(str(node.get("class_type", ""))) if isinstance(node, Mapping) else None
            tiers += [tier] if tier is not None else []
            deepest = max(deepest, depths.get(binding.node_id, 0))
        if tiers:
            ranked.append((min(tiers), -deepest, order, name))
    return sorted(ranked)


def expensive_params(contract: Contract, graph: Mapping[str, Any]) -> tuple[str, ...]:
    """Parameters whose change costs upstream work, most expensive first: loaders, then text
    encoders, then latent size; within a tier the most upstream first. The tier decides
    before depth because depth alone misranks Flux: its T5/CLIP chain into the guider is
    longer than UNETLoader's, yet a diffusion model reload costs far more than an encode."""
    return tuple(name for *_, name in _ranked(contract, graph))


def loader_params(contract: Contract, graph: Mapping[str, Any]) -> tuple[str, ...]:
    """The expensive parameters that drive a loader node: what decides which models an
    instance must hold, hence the "sticky" key."""
    return tuple(name for tier, *_, name in _ranked(contract, graph) if tier == _LOADER)


def loads_models(graph: Mapping[str, Any]) -> bool:
    """Whether any node of the graph is a loader, i.e. its runs have models to load."""
    return any(
        isinstance(node, Mapping) and _tier(str(node.get("class_type", ""))) == _LOADER
        for node in graph.values()
    )


def group_key(assignment: Mapping[str, JsonValue], expensive: Sequence[str]) -> str:
    """A short stable id shared by runs with the same values of `expensive` (hence the same
    cached upstream work); stable across processes and releases, so it may be stored."""
    values = [assignment.get(name) for name in expensive]
    text = json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def checkpoint_key(assignment: Mapping[str, JsonValue], loaders: Sequence[str]) -> str:
    """group_key over the loader parameters only (`loader_params`): runs an instance can
    serve without loading another model."""
    return group_key(assignment, loaders)


def dispatch_order(
    runs: Sequence[tuple[int, Mapping[str, JsonValue]]], expensive: Sequence[str]
) -> list[int]:
    """Run indexes in execution order: grouped by `expensive` in its order (first slowest),
    each value's group placed where that value first appears in index order, and index order
    (seeds fastest) inside a group. O(n log n)."""
    listed = sorted(runs, key=_run_index)
    assignments = [assignment for _, assignment in listed]
    # One integer sort key per run, the ranks in mixed radix, rather than a tuple per run:
    # ints are not tracked by the garbage collector, and 10,000 new tuples set off
    # collections that scan every live assignment, which doubled the time.
    keys = [0] * len(listed)
    for name in expensive:
        ranks, radix = _ranks(_column(assignments, name))
        if radix > 1:  # a parameter with one value in the whole sweep cannot split it
            keys = [key * radix + rank for key, rank in zip(keys, ranks, strict=True)]
    positions = sorted(range(len(listed)), key=keys.__getitem__)  # stable: index order kept
    return [listed[position][0] for position in positions]


def _run_index(run: tuple[int, Mapping[str, JsonValue]]) -> int:
    return run[0]


def _column(assignments: Sequence[Mapping[str, JsonValue]], name: str) -> list[JsonValue]:
    # map() with itemgetter runs in C; this is called once per run and parameter.
    try:
        return list(map(itemgetter(name), assignments))
    except KeyError:
        return [assignment.get(name) for assignment in assignments]


def _ranks(values: list[JsonValue]) -> tuple[list[int], int]:
    """Each value's rank by first appearance (equal values share one), and how many ranks.
    Built from C-level dict and map calls, for the same reason as _column."""
    keys: list[Any] = values
    try:
        if len(set(map(type, values))) > 1:
            # 1, 1.0 and True are equal in Python but are different graphs to send.
            keys = list(zip(map(type, values), values, strict=True))
        distinct = dict.fromkeys(keys)
    except TypeError:  # an unhashable value (a list, an object): key it by its JSON text
        keys = [json.dumps(value, sort_keys=True, default=repr) for value in values]
        distinct = dict.fromkeys(keys)
    if len(distinct) < 2:
        return [], len(distinct)
    rank = {key: position for position, key in enumerate(distinct)}
    return list(map(rank.__getitem__, keys)), len(distinct)


def plan_assignment(groups: Mapping[str, int], instances: int) -> dict[str, int]:
    """Checkpoint group (key → run count) to instance number in [0, instances): whole groups,
    largest first onto the least loaded instance (longest-processing-time first, within 4/3
    of the best finish time), ties to the lower instance number, so the result is stable.

    A group is never split here; an instance that runs out of its own groups should take runs
    from the group with the most left, paying one model load to shorten the finish time."""
    if instances < 1:
        raise ValueError(f"need at least one instance, got {instances}")
    loads = [(0, number) for number in range(instances)]
    assignment: dict[str, int] = {}
    for key, count in sorted(groups.items(), key=lambda item: (-item[1], item[0])):
        load, number = heapq.heappop(loads)
        assignment[key] = number
        heapq.heappush(loads, (load + count, number))
    return assignment
