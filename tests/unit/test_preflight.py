"""Preflight: a graph or a whole sweep checked against an instance's `/object_info`, with
ComfyUI's validation names, before any GPU time is spent."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from app.domain.contracts import JsonValue, contract_defaults
from app.domain.expansion import Axis, Mode, SweepPlan, expand_sweep
from app.domain.graph_check import NodeProblem, check_graph
from app.domain.patching import patch_graph
from app.domain.preflight import preflight_sweep
from app.domain.problems import Problem
from app.domain.resolution import AxisRequest, SweepRequest, resolve_plan
from app.registry import Workflow, load_registry

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
REGISTRY = load_registry(ROOT / "workflows", ROOT / "params")
RECORDED: dict[str, Any] = json.loads((FIXTURES / "object_info.json").read_text(encoding="utf-8"))

# COMBO inputs listing the model files on the server. The fixture was recorded on a server
# without models, so these are empty (VAELoader lists only its built-in "pixel_space").
MODEL_FILE_INPUTS = (
    ("CheckpointLoaderSimple", "ckpt_name"),
    ("LoraLoader", "lora_name"),
    ("UNETLoader", "unet_name"),
    ("DualCLIPLoader", "clip_name1"),
    ("DualCLIPLoader", "clip_name2"),
    ("VAELoader", "vae_name"),
)


def workflow(name: str) -> Workflow:
    found = REGISTRY.get(name)
    assert found is not None
    return found


def shipped_model_files() -> dict[tuple[str, str], list[str]]:
    """Per model-file input, the files the shipped workflows load: the parameters' defaults,
    which are the graphs' literals (test_workflows_match_node_specs holds them equal), and the
    literals of loader inputs no parameter drives (Flux's text encoders and VAE)."""
    files: dict[tuple[str, str], list[str]] = {key: [] for key in MODEL_FILE_INPUTS}
    for flow in REGISTRY:
        for node in flow.graph.values():
            for input_name, value in node["inputs"].items():
                key = (node["class_type"], input_name)
                if key in files and value not in files[key]:
                    files[key].append(value)
    return files


def instance(files: Mapping[tuple[str, str], list[str]] | None = None) -> dict[str, Any]:
    """The recorded /object_info with model files installed (the shipped ones by default)."""
    info = copy.deepcopy(RECORDED)
    for (class_type, input_name), names in (files or shipped_model_files()).items():
        spec = info[class_type]["input"]["required"][input_name]
        spec[0] = [*spec[0], *names]
    return info


OBJECT_INFO = instance()


def fixed(flow: Workflow, *varied: str, **base: JsonValue) -> dict[str, JsonValue]:
    merged = {**contract_defaults(flow.contract), **base}
    return {name: value for name, value in merged.items() if name not in varied}


def sweep(
    flow: Workflow,
    *axes: Axis,
    seeds: tuple[int, ...] = (),
    mode: Mode = "cartesian",
    samples: tuple[Mapping[str, JsonValue], ...] = (),
    **base: JsonValue,
) -> SweepPlan:
    varied = [axis.param for axis in axes] + (["seed"] if seeds else [])
    varied += [name for point in samples[:1] for name in point]
    return SweepPlan(
        fixed=fixed(flow, *varied, **base),
        axes=axes,
        mode=mode,
        seed_param="seed" if seeds else None,
        seeds=seeds,
        samples=samples,
    )


def preflight(flow: Workflow, plan: SweepPlan, info: Mapping[str, Any] = OBJECT_INFO) -> list[Any]:
    return preflight_sweep(flow.graph, flow.contract, plan, info)


def without_option(class_type: str, input_name: str, option: str) -> dict[str, Any]:
    info = copy.deepcopy(OBJECT_INFO)
    spec = info[class_type]["input"]["required"][input_name]
    spec[0] = [value for value in spec[0] if value != option]
    return info


def with_limit(class_type: str, input_name: str, **limits: Any) -> dict[str, Any]:
    info = copy.deepcopy(OBJECT_INFO)
    info[class_type]["input"]["required"][input_name][1].update(limits)
    return info


def types(problems: list[NodeProblem]) -> list[tuple[str, str | None, str]]:
    return [(p.node_id, p.input_name, p.type) for p in problems]


# --- the shipped workflows pass --------------------------------------------------------------


@pytest.mark.parametrize("name", REGISTRY.names())
def test_a_shipped_workflow_passes_on_an_instance_with_its_models(name: str) -> None:
    flow = workflow(name)
    assert check_graph(flow.graph, OBJECT_INFO) == []
    assert preflight(flow, sweep(flow)) == []


@pytest.mark.parametrize("name", ["sd15-txt2img", "sd15-hires-fix", "sdxl-base-refiner"])
def test_a_sweep_over_every_sampler_and_scheduler_passes(name: str) -> None:
    flow = workflow(name)
    parameters = flow.contract.parameters
    plan = sweep(
        flow,
        Axis("sampler", tuple(parameters["sampler"].enum or ())),
        Axis("scheduler", tuple(parameters["scheduler"].enum or ())),
        Axis("cfg", (1.0, 7, 30.0)),  # an int is a fine FLOAT, as ComfyUI's float() has it
        seeds=(0, 2**53 - 1),
    )
    assert preflight(flow, plan) == []


# --- a sweep's values, each reported once with the first run that uses it -------------------


def test_a_sampler_the_instance_does_not_offer_names_its_first_run() -> None:
    flow = workflow("sd15-txt2img")
    info = without_option("KSampler", "sampler_name", "dpmpp_2m")
    plan = sweep(flow, Axis("sampler", ("euler", "dpmpp_2m", "heun")), seeds=(1, 2))
    assert preflight(flow, plan, info) == [
        Problem(
            ("axes", 0, "values"),
            "value_not_in_list",
            "run 2: node 6 (KSampler) input sampler_name: 'dpmpp_2m' is not one of "
            "the 41 samplers this instance offers; did you mean 'dpmpp_2m_sde', 'dpm_2', "
            "'dpmpp_sde'?",
            "dpmpp_2m",
        )
    ]


def test_the_first_run_of_a_value_follows_expansion_order() -> None:
    flow = workflow("sd15-txt2img")
    info = with_limit("KSampler", "steps", max=50)
    plan = sweep(flow, Axis("cfg", (5.0, 6.0, 7.0)), Axis("steps", (20, 60, 80, 60)), seeds=(1, 2))
    problems = preflight(flow, plan, info)
    runs = list(expand_sweep(plan))
    for problem in problems:
        first = int(problem.msg.split(":")[0].removeprefix("run "))
        assert runs[first].assignment["steps"] == problem.input
        assert all(run.assignment["steps"] != problem.input for run in runs[:first])
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("axes", 1, "values"), "value_bigger_than_max", 60),
    ]
    assert problems[0].msg == (
        "run 6: node 6 (KSampler) input steps: 60 is above this instance's max 50"
        " (and 1 more value of this axis)"
    )


def test_in_zip_mode_position_j_is_first_used_by_run_j_times_the_seeds() -> None:
    flow = workflow("sd15-txt2img")
    info = with_limit("KSampler", "steps", max=50)
    plan = sweep(
        flow, Axis("cfg", (5.0, 6.0)), Axis("steps", (20, 30, 99)), mode="zip", seeds=(1, 2, 3)
    )
    [problem] = preflight(flow, plan, info)
    assert problem.msg.startswith("run 6: node 6 (KSampler) input steps: 99")
    assert list(expand_sweep(plan))[6].assignment["steps"] == 99


def test_a_value_bound_to_two_nodes_is_reported_once() -> None:
    flow = workflow("sd15-hires-fix")  # cfg drives both KSamplers
    info = with_limit("KSampler", "cfg", max=10.0)
    problems = preflight(flow, sweep(flow, Axis("cfg", (7.0, 12.5))), info)
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("axes", 0, "values"), "value_bigger_than_max", 12.5)
    ]
    assert problems[0].msg.startswith("run 1: node 5 (KSampler) input cfg")


def test_a_seed_above_the_instance_max_points_at_the_seeds() -> None:
    flow = workflow("demo-noise")
    info = copy.deepcopy(OBJECT_INFO)
    info["ImageAddNoise"]["input"]["required"]["seed"][1]["max"] = 1000
    problems = preflight(flow, sweep(flow, Axis("sigma", (1.0, 2.0)), seeds=(5, 999, 1000, 1001)))
    assert problems == []
    problems = preflight(
        flow, sweep(flow, Axis("sigma", (1.0, 2.0)), seeds=(5, 999, 1000, 1001)), info
    )
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("seeds",), "value_bigger_than_max", 1001)
    ]
    assert problems[0].msg.startswith("run 3: node 2 (ImageAddNoise) input seed: 1001")


def test_a_sampled_value_points_at_its_range_and_counts_the_axes_before_it() -> None:
    flow = workflow("demo-noise")
    info = with_limit("ImageBlur", "sigma", max=5.0)
    samples = ({"sigma": 1.0}, {"sigma": 4.0}, {"sigma": 7.5})
    problems = preflight(flow, sweep(flow, Axis("strength", (0.1, 0.2)), samples=samples), info)
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("sampling", "ranges", "sigma"), "value_bigger_than_max", 7.5)
    ]
    assert problems[0].msg.startswith("run 4: node 3 (ImageBlur) input sigma: 7.5")


def test_a_range_past_the_instance_max_is_one_problem_not_one_per_value() -> None:
    flow = workflow("sd15-txt2img")
    info = with_limit("KSampler", "steps", max=31)
    problems = preflight(flow, sweep(flow, Axis("steps", tuple(range(1, 101)))), info)
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("axes", 0, "values"), "value_bigger_than_max", 32)
    ]
    assert problems[0].msg == (
        "run 31: node 6 (KSampler) input steps: 32 is above this instance's max 31"
        " (and 68 more values of this axis)"
    )


def test_seeds_past_the_instance_max_are_one_problem_counting_the_rest() -> None:
    flow = workflow("demo-noise")
    info = with_limit("ImageAddNoise", "seed", max=1000)
    problems = preflight(flow, sweep(flow, seeds=tuple(range(995, 1010))), info)
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("seeds",), "value_bigger_than_max", 1001)
    ]
    assert problems[0].msg.endswith("1001 is above this instance's max 1000 (and 8 more seeds)")


def test_each_fault_of_an_axis_is_reported_once() -> None:
    flow = workflow("sd15-txt2img")
    info = with_limit("KSampler", "steps", min=5, max=50)
    plan = sweep(flow, Axis("steps", (1, 60, 2, 70, 80, 20)))
    problems = preflight(flow, plan, info)
    assert [(p.type, p.input) for p in problems] == [
        ("value_smaller_than_min", 1),
        ("value_bigger_than_max", 60),
    ]
    assert problems[0].msg.endswith("(and 1 more value of this axis)")
    assert problems[1].msg.endswith("(and 2 more values of this axis)")


def test_a_checkpoint_the_instance_lacks_is_reported_with_its_value() -> None:
    flow = workflow("sd15-txt2img")
    files = shipped_model_files()
    files[("CheckpointLoaderSimple", "ckpt_name")] = ["a.safetensors"]
    plan = sweep(flow, Axis("checkpoint", ("a.safetensors", "b.safetensors")))
    problems = preflight(flow, plan, instance(files))
    # The default checkpoint is missing too, but no run sends it: not a problem.
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("axes", 0, "values"), "value_not_in_list", "b.safetensors")
    ]


def test_a_misspelt_sampler_gets_the_instance_s_closest_samplers() -> None:
    flow = workflow("sd15-txt2img")
    [problem] = preflight(flow, sweep(flow, Axis("sampler", ("euler", "dpmpp_2m_sd"))))
    assert problem.msg == (
        "run 1: node 6 (KSampler) input sampler_name: 'dpmpp_2m_sd' is not one of the 42 "
        "samplers this instance offers; did you mean 'dpmpp_2m_sde', 'dpmpp_3m_sde', 'dpmpp_2m'?"
    )


def test_a_misspelt_checkpoint_gets_suggestions_before_the_list() -> None:
    flow = workflow("sd15-txt2img")
    files = shipped_model_files()
    files[("CheckpointLoaderSimple", "ckpt_name")] = ["v1-5-pruned-emaonly.safetensors", "b.ckpt"]
    plan = sweep(flow, Axis("checkpoint", ("v1-5-pruned-emaonly.safetensor",)))
    [problem] = preflight(flow, plan, instance(files))
    assert problem.type == "value_not_in_list"
    assert problem.msg == (
        "run 0: node 1 (CheckpointLoaderSimple) input ckpt_name: "
        "'v1-5-pruned-emaonly.safetensor' is not one of the 2 checkpoints this instance "
        "offers; did you mean 'v1-5-pruned-emaonly.safetensors'? "
        "They are: v1-5-pruned-emaonly.safetensors, b.ckpt"
    )


def test_an_input_the_instance_lacks_makes_the_axis_vary_nothing() -> None:
    flow = workflow("demo-noise")
    info = copy.deepcopy(OBJECT_INFO)
    del info["ImageBlur"]["input"]["required"]["sigma"]
    problems = preflight(flow, sweep(flow, Axis("sigma", (1.0, 2.0))), info)
    assert [(p.loc, p.type) for p in problems] == [(("axes", 0, "param"), "unknown_input")]
    assert "changes nothing" in problems[0].msg


# --- fixed values and the template ------------------------------------------------------------


def test_an_empty_checkpoint_list_fails_every_run() -> None:
    flow = workflow("sd15-txt2img")
    info = instance({("LoraLoader", "lora_name"): ["add_detail.safetensors"]})
    assert preflight(flow, sweep(flow, seeds=(1, 2)), info) == [
        Problem(
            ("base", "checkpoint"),
            "value_not_in_list",
            "every run: node 1 (CheckpointLoaderSimple) input ckpt_name: "
            "'v1-5-pruned-emaonly.safetensors' cannot load: "
            "no ckpt_name files on this instance",
            "v1-5-pruned-emaonly.safetensors",
        )
    ]


def test_an_unknown_node_class_points_at_the_workflow() -> None:
    flow = workflow("sd15-txt2img")
    info = copy.deepcopy(OBJECT_INFO)
    del info["LoraLoader"]
    problems = preflight(flow, sweep(flow, Axis("lora", ("add_detail.safetensors",))), info)
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("workflow",), "missing_node_type", "LoraLoader")
    ]
    assert problems[0].msg == "every run: node 2: this instance has no node type 'LoraLoader'"


def test_a_base_value_above_the_instance_max_points_at_base() -> None:
    flow = workflow("demo-noise")
    info = with_limit("ImageBlur", "blur_radius", max=8)
    problems = preflight(flow, sweep(flow, blur_radius=9), info)
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("base", "blur_radius"), "value_bigger_than_max", 9)
    ]


# --- check_graph: ComfyUI's rules ------------------------------------------------------------


def demo_graph(**changes: tuple[str, Any]) -> dict[str, Any]:
    graph = copy.deepcopy(dict(workflow("demo-noise").graph))
    for input_name, (node_id, value) in changes.items():
        graph[node_id]["inputs"][input_name] = value
    return graph


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        (demo_graph(width=("1", 0)), ("1", "width", "value_smaller_than_min")),
        (demo_graph(blur_radius=("3", 32)), ("3", "blur_radius", "value_bigger_than_max")),
        (demo_graph(strength=("2", "0.5")), ("2", "strength", "invalid_input_type")),
        (demo_graph(color=("1", True)), ("1", "color", "invalid_input_type")),
        (demo_graph(width=("1", 512.0)), ("1", "width", "invalid_input_type")),
        (demo_graph(sigma=("3", float("nan"))), ("3", "sigma", "invalid_input_type")),
        (demo_graph(filename_prefix=("4", 7)), ("4", "filename_prefix", "invalid_input_type")),
        (demo_graph(image=("3", ["9", 0])), ("3", "image", "bad_linked_input")),
        (demo_graph(image=("3", ["2", 3])), ("3", "image", "bad_linked_input")),
        (demo_graph(image=("3", ["2", 0, 1])), ("3", "image", "bad_linked_input")),
        (
            {"1": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "fast"}}},
            ("1", "sampler_name", "value_not_in_list"),
        ),
        (
            {"1": {"class_type": "EmptyImage", "inputs": {"height": 8, "batch_size": 1}}},
            ("1", "width", "required_input_missing"),
        ),
        ({"1": {"class_type": "NoSuchNode", "inputs": {}}}, ("1", None, "missing_node_type")),
    ],
)
def test_check_graph_reports_what_comfyui_would(
    graph: dict[str, Any], expected: tuple[str, str | None, str]
) -> None:
    assert expected in types(check_graph(graph, OBJECT_INFO))


def test_a_dangling_link_names_the_missing_node() -> None:
    [problem] = check_graph(demo_graph(image=("3", ["9", 0])), OBJECT_INFO)
    assert problem.message == (
        "node 3 (ImageBlur) input image: links to node '9', which is not in the workflow"
    )
    assert problem.received == ["9", 0]


def test_a_link_of_the_wrong_type_is_a_return_type_mismatch() -> None:
    graph = patch_graph(workflow("sd15-txt2img").graph, workflow("sd15-txt2img").contract, {})
    graph["6"]["inputs"]["positive"] = ["5", 0]
    [problem] = check_graph(graph, OBJECT_INFO)
    assert (problem.node_id, problem.input_name, problem.type) == (
        "6",
        "positive",
        "return_type_mismatch",
    )
    assert problem.message == (
        "node 6 (KSampler) input positive: expects CONDITIONING, "
        "but node 5 (EmptyLatentImage) output 0 is LATENT"
    )


def test_link_types_match_like_comfyui_wildcard_and_unions() -> None:
    info = copy.deepcopy(OBJECT_INFO)
    blur = info["ImageBlur"]["input"]["required"]
    graph = demo_graph()
    blur["image"][0] = "*"
    assert check_graph(graph, info) == []
    blur["image"][0] = "MASK,IMAGE"
    assert check_graph(graph, info) == []
    blur["image"][0] = "MASK,LATENT"
    assert types(check_graph(graph, info)) == [("3", "image", "return_type_mismatch")]


def test_an_input_the_node_does_not_declare_is_ignored_like_comfyui() -> None:
    assert check_graph(demo_graph(typo=("3", 1)), OBJECT_INFO) == []


def test_a_value_wrapped_in___value___is_checked_unwrapped() -> None:
    graph = demo_graph(blur_radius=("3", {"__value__": 99}))
    assert types(check_graph(graph, OBJECT_INFO)) == [("3", "blur_radius", "value_bigger_than_max")]


def test_a_boolean_input_takes_only_a_boolean() -> None:
    graph = {
        "1": {"class_type": "PrimitiveBoolean", "inputs": {"value": 1}},
        "2": {"class_type": "PrimitiveBoolean", "inputs": {"value": False}},
    }
    assert types(check_graph(graph, OBJECT_INFO)) == [("1", "value", "invalid_input_type")]


def runtime_candidate_graph() -> dict[str, Any]:
    """The prompt of captures/post_prompt_bad_combo, rebuilt from the execution_error event
    it led to (ws_runtime_candidate): ComfyUI 0.3.64 accepted it with 200."""
    events = json.loads((FIXTURES / "comfyui" / "ws_runtime_candidate.json").read_text("utf-8"))
    error = next(event["data"] for event in events if event["type"] == "execution_error")
    literals = {
        name: values[0]
        for name, values in error["current_inputs"].items()
        if not isinstance(values[0], str) or not values[0].startswith("tensor(")
    }
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0},
        },
        error["node_id"]: {
            "class_type": error["node_type"],
            "inputs": {"image": ["1", 0], **literals},
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    }


def test_the_combo_comfyui_accepts_and_then_fails_on_is_caught() -> None:
    graph = runtime_candidate_graph()
    assert graph["2"]["inputs"]["dither"] == "sparkle"
    assert RECORDED["ImageQuantize"]["input"]["required"]["dither"][0] == "COMBO"
    assert check_graph(graph, RECORDED) == [
        NodeProblem(
            "2",
            "ImageQuantize",
            "dither",
            "value_not_in_list",
            "node 2 (ImageQuantize) input dither: 'sparkle' is not one of the 6 dither options "
            "this instance offers: none, floyd-steinberg, bayer-2, bayer-4, bayer-8, bayer-16",
            "sparkle",
        )
    ]
    graph["2"]["inputs"]["dither"] = "bayer-4"
    assert check_graph(graph, RECORDED) == []


# --- cost ------------------------------------------------------------------------------------


def ten_thousand_runs() -> tuple[Workflow, SweepPlan]:
    flow = workflow("sd15-txt2img")
    plan = sweep(
        flow,
        Axis("checkpoint", ("v1-5-pruned-emaonly.safetensors",) * 2),
        Axis("prompt", tuple(f"a lighthouse, style {i}" for i in range(5))),
        Axis("cfg", tuple(float(c) for c in range(1, 11))),
        Axis("sampler", ("euler", "heun", "dpmpp_2m", "ddim", "lms")),
        seeds=tuple(range(20)),
    )
    return flow, plan


def test_a_valid_ten_thousand_run_sweep_passes() -> None:
    # Its speed is measured by bench/preflight.py, not asserted here.
    flow, plan = ten_thousand_runs()
    assert sum(1 for _ in expand_sweep(plan)) == 10_000
    assert preflight(flow, plan) == []


def test_template_variables_pass_preflight_as_they_bind_no_input() -> None:
    flow = workflow("sd15-txt2img")
    request = SweepRequest(
        base={"prompt": "a {animal} by __styles__"},
        axes=(AxisRequest("animal", "cat, dog"),),
        mode="cartesian",
        wildcards={"styles": ("oil", "ink")},
    )
    plan = resolve_plan(flow.contract, request, max_runs=100)
    assert preflight_sweep(flow.graph, flow.contract, plan, instance()) == []
