"""Every shipped workflow is one ComfyUI 0.3.64 would accept, and every parameter stays inside
the node input it drives, checked against the recorded `/object_info` fixture.

The checker here is deliberately small and written apart from `app.domain.graph_check`, the
check the service runs against each live instance's `/object_info` before queueing a sweep:
an independent oracle, so a mistake shared by both is less likely to hide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from app.domain.contracts import Binding, Parameter, build_contract, validate_value

ROOT = Path(__file__).resolve().parents[2]
OBJECT_INFO: dict[str, Any] = json.loads(
    (ROOT / "tests" / "fixtures" / "object_info.json").read_text(encoding="utf-8")
)
WORKFLOW_NAMES = sorted(
    path.name.removesuffix(".api.json") for path in (ROOT / "workflows").glob("*.api.json")
)

# COMBO inputs whose options are the model files on the server. The fixture was recorded on a
# server without models, so these lists are empty (VAELoader lists only its built-in
# "pixel_space"); here only the value's shape is checked.
MODEL_FILE_INPUTS = {
    ("CheckpointLoaderSimple", "ckpt_name"),
    ("LoraLoader", "lora_name"),
    ("UNETLoader", "unet_name"),
    ("DualCLIPLoader", "clip_name1"),
    ("DualCLIPLoader", "clip_name2"),
    ("VAELoader", "vae_name"),
}
MODEL_FILE_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".sft", ".gguf")
# The Python type a literal must have for each ComfyUI widget type; bool is not an INT.
LITERAL_TYPES: dict[str, tuple[type, ...]] = {
    "INT": (int,),
    "FLOAT": (int, float),
    "STRING": (str,),
    "BOOLEAN": (bool,),
}
PARAMETER_INPUT_TYPES = {
    "integer": {"INT"},
    "number": {"FLOAT"},
    "string": {"STRING", "COMBO"},
    "boolean": {"BOOLEAN"},
}


# --- the checker ---------------------------------------------------------------------------


def load(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    graph = json.loads((ROOT / "workflows" / f"{name}.api.json").read_text(encoding="utf-8"))
    schema = json.loads((ROOT / "params" / f"{name}.schema.json").read_text(encoding="utf-8"))
    return graph, schema


def input_specs(class_type: str) -> dict[str, list[Any]]:
    inputs = OBJECT_INFO[class_type]["input"]
    return {**inputs.get("required", {}), **inputs.get("optional", {})}


def kind_of(spec: list[Any]) -> str:
    """INT, FLOAT, STRING, BOOLEAN, COMBO, or a link type such as MODEL."""
    return "COMBO" if isinstance(spec[0], list) else str(spec[0])


def options_of(spec: list[Any]) -> list[Any]:
    """A COMBO's options: old-style nodes give the list itself, newer ones `options`."""
    return spec[0] if isinstance(spec[0], list) else list(spec[1].get("options", []))


def limits_of(spec: list[Any]) -> dict[str, Any]:
    return spec[1] if len(spec) > 1 else {}


def is_link(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2


def node_spec_problems(graph: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for node_id, node in graph.items():
        problems += node_problems(graph, node_id, node)
    return problems


def node_problems(graph: Mapping[str, Any], node_id: str, node: Mapping[str, Any]) -> list[str]:
    class_type = node["class_type"]
    if class_type not in OBJECT_INFO:
        return [f"node {node_id}: unknown class_type {class_type}"]
    specs = input_specs(class_type)
    required = OBJECT_INFO[class_type]["input"].get("required", {})
    inputs = node["inputs"]
    problems = [
        f"node {node_id}: required input {name} missing" for name in required.keys() - inputs.keys()
    ]
    problems += [f"node {node_id}: unknown input {name}" for name in inputs.keys() - specs.keys()]
    for name in inputs.keys() & specs.keys():
        where = f"node {node_id} ({class_type}).{name}"
        problems += input_problems(graph, where, (class_type, name), specs[name], inputs[name])
    return problems


def input_problems(
    graph: Mapping[str, Any], where: str, key: tuple[str, str], spec: list[Any], value: Any
) -> list[str]:
    kind = kind_of(spec)
    if is_link(value):
        return link_problems(graph, where, kind, value)
    if kind == "COMBO":
        return combo_problems(where, key, options_of(spec), value)
    if kind not in LITERAL_TYPES:
        return [f"{where}: a {kind} input needs a link, got {value!r}"]
    if not isinstance(value, LITERAL_TYPES[kind]) or (
        kind != "BOOLEAN" and isinstance(value, bool)
    ):
        return [f"{where}: {value!r} is not a {kind}"]
    return range_problems(where, limits_of(spec), value)


def link_problems(
    graph: Mapping[str, Any], where: str, expected: str, link: list[Any]
) -> list[str]:
    source_id, index = link
    if source_id not in graph:
        return [f"{where}: links to missing node {source_id}"]
    outputs = OBJECT_INFO[graph[source_id]["class_type"]]["output"]
    if not isinstance(index, int) or not 0 <= index < len(outputs):
        return [f"{where}: node {source_id} has no output {index}"]
    if outputs[index] != expected:
        return [f"{where}: expects {expected}, node {source_id} output {index} is {outputs[index]}"]
    return []


def combo_problems(where: str, key: tuple[str, str], options: list[Any], value: Any) -> list[str]:
    if key in MODEL_FILE_INPUTS:
        if not isinstance(value, str) or not value.endswith(MODEL_FILE_EXTENSIONS):
            return [f"{where}: {value!r} is not a model file name"]
        return []
    if value not in options:
        return [f"{where}: {value!r} is not one of {options}"]
    return []


def range_problems(where: str, limits: Mapping[str, Any], value: Any) -> list[str]:
    if "min" in limits and value < limits["min"]:
        return [f"{where}: {value} is below the node's min {limits['min']}"]
    if "max" in limits and value > limits["max"]:
        return [f"{where}: {value} is above the node's max {limits['max']}"]
    return []


def bound_spec(graph: Mapping[str, Any], binding: Binding) -> tuple[tuple[str, str], list[Any]]:
    class_type = graph[binding.node_id]["class_type"]
    return (class_type, binding.input_name), input_specs(class_type)[binding.input_name]


def parameter_problems(graph: Mapping[str, Any], parameter: Parameter) -> list[str]:
    problems: list[str] = []
    for binding in parameter.bindings:
        key, spec = bound_spec(graph, binding)
        where = f"{parameter.name} -> node {binding.node_id}.{binding.input_name}"
        if kind_of(spec) not in PARAMETER_INPUT_TYPES[parameter.type]:
            problems.append(f"{where}: a {parameter.type} cannot drive a {kind_of(spec)} input")
            continue
        problems += default_problems(
            where, parameter, graph[binding.node_id]["inputs"][binding.input_name]
        )
        problems += numeric_bound_problems(where, parameter, kind_of(spec), limits_of(spec))
        problems += choice_problems(where, parameter, key, spec)
    return problems


def default_problems(where: str, parameter: Parameter, literal: Any) -> list[str]:
    # A run that does not vary a parameter must look the same whether or not defaults are
    # patched in, so the graph's literal and the schema's default agree, type included.
    if json.dumps(parameter.default) != json.dumps(literal):
        return [f"{where}: default {parameter.default!r} but the graph holds {literal!r}"]
    return []


def numeric_bound_problems(
    where: str, parameter: Parameter, kind: str, limits: Mapping[str, Any]
) -> list[str]:
    if kind not in ("INT", "FLOAT"):
        return []
    if parameter.minimum is None or parameter.maximum is None:
        return [f"{where}: a numeric parameter needs minimum and maximum"]
    problems = range_problems(f"{where} minimum", limits, parameter.minimum)
    problems += range_problems(f"{where} maximum", limits, parameter.maximum)
    problems += range_problems(f"{where} default", limits, parameter.default)
    step = limits.get("step", 1)
    # ComfyUI does not enforce step, but an EmptyLatentImage width of 513 silently becomes 512.
    if kind == "INT" and step > 1 and (parameter.multiple_of or 1) % step != 0:
        problems.append(f"{where}: needs multipleOf a multiple of the node's step {step}")
    return problems


def choice_problems(
    where: str, parameter: Parameter, key: tuple[str, str], spec: list[Any]
) -> list[str]:
    if kind_of(spec) != "COMBO":
        return []
    if key in MODEL_FILE_INPUTS:
        return [] if "pattern" in parameter.schema else [f"{where}: a model file needs a pattern"]
    if parameter.enum is None:
        return [f"{where}: a COMBO input needs an enum"]
    outside = [option for option in parameter.enum if option not in options_of(spec)]
    return [f"{where}: {outside} are not node options"] if outside else []


# --- the shipped workflows -----------------------------------------------------------------


def parameters() -> Iterator[tuple[str, str]]:
    for name in WORKFLOW_NAMES:
        yield from ((name, parameter) for parameter in load(name)[1]["properties"])


def test_the_five_workflows_ship() -> None:
    assert WORKFLOW_NAMES == [
        "demo-noise",
        "flux-txt2img",
        "sd15-hires-fix",
        "sd15-txt2img",
        "sdxl-base-refiner",
    ]


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_every_node_matches_its_spec(name: str) -> None:
    graph, _ = load(name)
    assert node_spec_problems(graph) == []


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_the_image_is_saved_under_the_workflow_name(name: str) -> None:
    graph, _ = load(name)
    savers = [node for node in graph.values() if node["class_type"] == "SaveImage"]
    assert [node["inputs"]["filename_prefix"] for node in savers] == [f"comfy-sweep/{name}"]


@pytest.mark.parametrize(("name", "parameter"), list(parameters()))
def test_every_parameter_stays_inside_the_input_it_drives(name: str, parameter: str) -> None:
    graph, schema = load(name)
    contract = build_contract(name, schema)
    assert parameter_problems(graph, contract.parameters[parameter]) == []


def model_file_parameters() -> Iterator[tuple[str, str]]:
    for name in WORKFLOW_NAMES:
        graph, schema = load(name)
        for parameter in build_contract(name, schema).parameters.values():
            if any(bound_spec(graph, b)[0] in MODEL_FILE_INPUTS for b in parameter.bindings):
                yield name, parameter.name


@pytest.mark.parametrize(("name", "parameter"), list(model_file_parameters()))
@pytest.mark.parametrize(
    "value",
    [
        "../x.safetensors",
        "sd/../../x.safetensors",
        "/etc/passwd",
        "\\\\host\\x",
        "C:x.ckpt",
        "a\nb",
    ],
)
def test_a_model_file_parameter_refuses_paths_outside_the_model_folder(
    name: str, parameter: str, value: str
) -> None:
    contract = build_contract(name, load(name)[1])
    problem = validate_value(contract.parameters[parameter], value, ())
    assert problem is not None
    assert problem.type == "invalid_value"


@pytest.mark.parametrize(("name", "parameter"), list(model_file_parameters()))
def test_a_model_file_parameter_takes_a_subfolder(name: str, parameter: str) -> None:
    contract = build_contract(name, load(name)[1])
    for value in ("sdxl/juggernaut XL (v9).safetensors", "sdxl\\base_1.0-fp16.safetensors"):
        assert validate_value(contract.parameters[parameter], value, ()) is None


def test_hires_fix_uses_one_seed_for_both_passes() -> None:
    graph, schema = load("sd15-hires-fix")
    seed = build_contract("sd15-hires-fix", schema).parameters["seed"]
    assert sorted(graph[b.node_id]["class_type"] for b in seed.bindings) == ["KSampler"] * 2
    assert len({b.node_id for b in seed.bindings}) == 2


# --- the checker itself catches what it claims to ------------------------------------------


def broken_demo(node_id: str, input_name: str, value: Any) -> dict[str, Any]:
    graph, _ = load("demo-noise")
    graph[node_id]["inputs"][input_name] = value
    return graph


def broken_quantize(dither: str) -> dict[str, Any]:
    graph, _ = load("demo-noise")
    graph["5"] = {
        "class_type": "ImageQuantize",
        "inputs": {"image": ["3", 0], "colors": 8, "dither": dither},
    }
    return graph


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        (broken_demo("1", "width", 0), "below the node's min 1"),
        (broken_demo("3", "blur_radius", 32), "above the node's max 31"),
        (broken_demo("2", "strength", "0.5"), "is not a FLOAT"),
        (broken_demo("1", "color", True), "is not a INT"),
        (broken_demo("2", "image", ["4", 0]), "node 4 has no output 0"),
        (broken_demo("3", "image", ["9", 0]), "links to missing node 9"),
        (broken_demo("3", "image", ["2", 3]), "node 2 has no output 3"),
        (broken_demo("3", "typo", 1), "unknown input typo"),
        ({"1": {"class_type": "NoSuchNode", "inputs": {}}}, "unknown class_type"),
        ({"1": {"class_type": "EmptyImage", "inputs": {}}}, "required input width missing"),
        (
            {"1": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "fast"}}},
            "is not one of",
        ),
        # The newer COMBO shape, which ComfyUI 0.3.64 accepted and then failed at execution.
        (broken_quantize("sparkle"), "'sparkle' is not one of"),
    ],
)
def test_the_checker_reports_a_broken_graph(graph: dict[str, Any], expected: str) -> None:
    problems = node_spec_problems(graph)
    assert any(expected in problem for problem in problems), problems


def test_the_checker_reports_a_link_of_the_wrong_type() -> None:
    graph, _ = load("sd15-txt2img")
    graph["6"]["inputs"]["positive"] = ["5", 0]
    assert node_spec_problems(graph) == [
        "node 6 (KSampler).positive: expects CONDITIONING, node 5 output 0 is LATENT"
    ]


def test_the_checker_reports_a_parameter_wider_than_its_input() -> None:
    graph, schema = load("demo-noise")
    schema["properties"]["blur_radius"]["maximum"] = 64
    parameter = build_contract("demo-noise", schema).parameters["blur_radius"]
    assert parameter_problems(graph, parameter) == [
        "blur_radius -> node 3.blur_radius maximum: 64 is above the node's max 31"
    ]


def test_the_checker_reports_a_latent_size_off_the_node_step() -> None:
    graph, schema = load("sd15-txt2img")
    del schema["properties"]["width"]["multipleOf"]
    parameter = build_contract("sd15-txt2img", schema).parameters["width"]
    assert parameter_problems(graph, parameter) == [
        "width -> node 5.width: needs multipleOf a multiple of the node's step 8"
    ]


def test_the_checker_reports_a_default_that_differs_from_the_graph() -> None:
    graph, schema = load("sd15-txt2img")
    graph["6"]["inputs"]["steps"] = 30
    parameter = build_contract("sd15-txt2img", schema).parameters["steps"]
    assert parameter_problems(graph, parameter) == [
        "steps -> node 6.steps: default 20 but the graph holds 30"
    ]
