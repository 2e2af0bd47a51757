"""Drafting a contract from a graph and the recorded `/object_info`: the drafts of the shipped
workflows bind exactly what the hand-written contracts bind, and the rules hold on small graphs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from app.domain.contract_draft import FILE_PATTERN, SAFE_INT, draft_contract
from app.domain.contracts import build_contract, check_bindings
from app.domain.problems import SweepRejected

ROOT = Path(__file__).resolve().parents[2]
OBJECT_INFO: dict[str, Any] = json.loads(
    (ROOT / "tests" / "fixtures" / "object_info.json").read_text(encoding="utf-8")
)
WORKFLOW_NAMES = sorted(
    path.name.removesuffix(".api.json") for path in (ROOT / "workflows").glob("*.api.json")
)


def _graph(name: str) -> dict[str, Any]:
    text = (ROOT / "workflows" / f"{name}.api.json").read_text(encoding="utf-8")
    graph: dict[str, Any] = json.loads(text)
    return graph


def _bound(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {(b["node"], b["input"]) for p in schema["properties"].values() for b in p["x-comfy"]}


def _bindings(schema: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {
        name: [(b["node"], b["input"]) for b in prop["x-comfy"]]
        for name, prop in schema["properties"].items()
    }


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_draft_binds_what_the_hand_written_contract_binds(name: str) -> None:
    hand = json.loads((ROOT / "params" / f"{name}.schema.json").read_text(encoding="utf-8"))
    drafted = draft_contract(_graph(name), OBJECT_INFO)
    assert _bound(drafted) == _bound(hand)


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_draft_passes_the_registry_cross_check(name: str) -> None:
    graph = _graph(name)
    contract = build_contract(name, draft_contract(graph, OBJECT_INFO))
    assert check_bindings(contract, graph) == []


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_soft_ranges_lie_inside_the_hard_bounds(name: str) -> None:
    drafted = draft_contract(_graph(name), OBJECT_INFO)
    ranges = 0
    for prop in drafted["properties"].values():
        soft = prop.get("x-sweep-range")
        if soft is None:
            continue
        ranges += 1
        assert prop.get("minimum", -SAFE_INT) <= soft["minimum"] < soft["maximum"]
        assert soft["maximum"] <= prop.get("maximum", SAFE_INT)
    assert ranges > 0


def test_hires_fix_binds_one_seed_and_the_shared_sampler_settings() -> None:
    bindings = _bindings(draft_contract(_graph("sd15-hires-fix"), OBJECT_INFO))
    assert bindings["seed"] == [("5", "seed"), ("7", "seed")]
    assert bindings["cfg"] == [("5", "cfg"), ("7", "cfg")]
    assert bindings["sampler"] == [("5", "sampler_name"), ("7", "sampler_name")]
    # Different steps in the two passes: two parameters, named after the nodes' titles.
    assert bindings["first_pass.steps"] == [("5", "steps")]
    assert bindings["hires_pass.steps"] == [("7", "steps")]
    assert bindings["prompt"] == [("2", "text")]
    assert bindings["negative_prompt"] == [("3", "text")]


def test_base_refiner_hand_off_becomes_switch_step() -> None:
    bindings = _bindings(draft_contract(_graph("sdxl-base-refiner"), OBJECT_INFO))
    assert bindings["switch_step"] == [("8", "end_at_step"), ("9", "start_at_step")]
    assert bindings["prompt"] == [("3", "text"), ("5", "text")]
    assert bindings["negative_prompt"] == [("4", "text"), ("6", "text")]


def test_lora_strengths_with_one_value_are_one_parameter() -> None:
    drafted = draft_contract(_graph("sd15-txt2img"), OBJECT_INFO)
    strength = drafted["properties"]["lora_strength"]
    assert strength["x-comfy"] == [
        {"node": "2", "input": "strength_model"},
        {"node": "2", "input": "strength_clip"},
    ]
    assert strength["x-sweep-range"] == {"minimum": -1.0, "maximum": 2.0}


def test_lora_strengths_with_different_values_stay_apart() -> None:
    graph = _graph("sd15-txt2img")
    graph["2"]["inputs"]["strength_clip"] = 0.5
    bindings = _bindings(draft_contract(graph, OBJECT_INFO))
    assert bindings["strength_model"] == [("2", "strength_model")]
    assert bindings["strength_clip"] == [("2", "strength_clip")]


def test_types_and_bounds_come_from_the_specs() -> None:
    props = draft_contract(_graph("sd15-txt2img"), OBJECT_INFO)["properties"]
    assert props["steps"] == {
        "type": "integer",
        "default": 20,
        "minimum": 1,
        "maximum": 10000,
        "description": "The number of steps used in the denoising process.",
        "x-sweep-range": {"minimum": 10, "maximum": 60},
        "x-comfy": [{"node": "6", "input": "steps"}],
    }
    assert props["width"]["multipleOf"] == 8
    assert props["cfg"]["type"] == "number"
    assert "multipleOf" not in props["cfg"]
    assert props["seed"]["maximum"] == SAFE_INT
    assert (
        props["sampler"]["enum"] == OBJECT_INFO["KSampler"]["input"]["required"]["sampler_name"][0]
    )
    # The recorded server has no model files: the checkpoint is a file name, not an enum.
    assert props["checkpoint"]["pattern"] == FILE_PATTERN
    assert "enum" not in props["checkpoint"]
    assert props["prompt"]["maxLength"] == 10_000


def test_file_names_and_batch_sizes_are_left_out() -> None:
    bound = _bound(draft_contract(_graph("sd15-txt2img"), OBJECT_INFO))
    assert ("8", "filename_prefix") not in bound
    assert ("5", "batch_size") not in bound


def test_nodes_without_titles_are_named_by_class_and_numbered() -> None:
    graph = _graph("sd15-hires-fix")
    for node in graph.values():
        node.pop("_meta")
    graph["7"]["inputs"]["cfg"] = 5.0
    names = set(draft_contract(graph, OBJECT_INFO)["properties"])
    assert {"ksampler.cfg", "ksampler_2.cfg", "ksampler.steps", "ksampler_2.steps"} <= names


def test_every_seed_joins_the_seed_parameter_whatever_its_value() -> None:
    graph = _graph("sd15-hires-fix")
    graph["7"]["inputs"]["seed"] = 42
    seed = draft_contract(graph, OBJECT_INFO)["properties"]["seed"]
    assert seed["default"] == 0
    assert seed["x-comfy"] == [{"node": "5", "input": "seed"}, {"node": "7", "input": "seed"}]


def test_a_boolean_input_is_a_boolean_parameter() -> None:
    graph = {"1": {"class_type": "PrimitiveBoolean", "inputs": {"value": True}}}
    prop = draft_contract(graph, OBJECT_INFO)["properties"]["value"]
    assert prop["type"] == "boolean"
    assert prop["default"] is True


def test_an_unknown_node_class_is_named() -> None:
    graph = _graph("demo-noise")
    graph["3"]["class_type"] = "FancyBlur"
    with pytest.raises(SweepRejected) as caught:
        draft_contract(graph, OBJECT_INFO)
    (problem,) = caught.value.problems
    assert problem.loc == ("graph", "3", "class_type")
    assert problem.type == "unknown_node_class"
    assert "'3'" in problem.msg
    assert "FancyBlur" in problem.msg


def test_a_value_the_spec_refuses_is_reported_where_it_is() -> None:
    graph = copy.deepcopy(_graph("demo-noise"))
    graph["3"]["inputs"]["blur_radius"] = 99
    with pytest.raises(SweepRejected) as caught:
        draft_contract(graph, OBJECT_INFO)
    (problem,) = caught.value.problems
    assert problem.loc == ("graph", "3", "inputs", "blur_radius")
    assert problem.type == "value_bigger_than_max"


def test_a_graph_of_links_only_has_nothing_to_draft() -> None:
    graph = {"1": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["3", 0]}}}
    with pytest.raises(SweepRejected) as caught:
        draft_contract(graph, OBJECT_INFO)
    assert caught.value.problems[0].type == "no_parameters"
