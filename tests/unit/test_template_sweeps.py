"""Sweeps whose prompts are templates: which axes are variables, how many runs they make,
what each run's prompt becomes, and every dangling reference reported where it was typed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from app.domain.contracts import JsonValue
from app.domain.expansion import SweepPlan, count_runs, expand_sweep
from app.domain.grid_dimensions import sweep_plan_from_record
from app.domain.problems import Problem, SweepRejected
from app.domain.resolution import AxisRequest, SweepRequest, resolve_plan
from app.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]
SD15 = load_registry(ROOT / "workflows", ROOT / "params").get("sd15-txt2img")
LISTS = {"animals": ("cat", "dog", "red fox"), "styles": ("oil", "ink")}


def resolve(
    base: Mapping[str, JsonValue],
    *axes: AxisRequest,
    wildcards: Mapping[str, tuple[str, ...]] = LISTS,
    mode: str = "cartesian",
) -> SweepPlan:
    assert SD15 is not None
    request = SweepRequest(
        base=base,
        axes=axes,
        mode="zip" if mode == "zip" else "cartesian",
        wildcards=wildcards,
    )
    return resolve_plan(SD15.contract, request, max_runs=10_000)


def rejection(base: Mapping[str, JsonValue], *axes: AxisRequest) -> Sequence[Problem]:
    with pytest.raises(SweepRejected) as rejected:
        resolve(base, *axes)
    return rejected.value.problems


def prompts(plan: SweepPlan) -> list[JsonValue]:
    return [run.assignment["prompt"] for run in expand_sweep(plan)]


def test_two_variable_axes_cross_into_every_prompt() -> None:
    plan = resolve(
        {"prompt": "a {animal} in {style}"},
        AxisRequest("animal", "cat, dog, bird"),
        AxisRequest("style", ["oil", "ink"]),
    )
    assert count_runs(plan) == 6
    assert prompts(plan) == [
        "a cat in oil",
        "a dog in oil",
        "a bird in oil",
        "a cat in ink",
        "a dog in ink",
        "a bird in ink",
    ]
    first = next(expand_sweep(plan)).assignment
    assert (first["animal"], first["style"]) == ("cat", "oil")  # the words put in, kept
    assert plan.templates == ("prompt",)


def test_an_inline_wildcard_is_an_implicit_axis_after_the_given_ones() -> None:
    plan = resolve({"prompt": "a photo of __animals__"}, AxisRequest("steps", [10, 20]))
    assert [(a.param, a.values) for a in plan.axes] == [
        ("steps", (10, 20)),
        ("animals", ("cat", "dog", "red fox")),
    ]
    assert count_runs(plan) == 6
    assert prompts(plan)[::2] == ["a photo of cat", "a photo of dog", "a photo of red fox"]


def test_an_axis_named_like_an_inline_wildcard_supplies_its_values_and_place() -> None:
    plan = resolve(
        {"prompt": "__animals__ at night"},
        AxisRequest("animals", "__animals__"),
        AxisRequest("steps", [10, 20]),
    )
    assert [a.param for a in plan.axes] == ["animals", "steps"]
    assert prompts(plan)[:3] == ["cat at night", "dog at night", "red fox at night"]


def test_a_whole_value_wildcard_on_a_parameter_axis_is_its_entries_as_plain_text() -> None:
    plan = resolve({}, AxisRequest("prompt", "__animals__"))
    assert plan.axes[0].values == ("cat", "dog", "red fox")
    assert plan.templates == ()


def test_template_values_on_a_prompt_axis_and_escapes_in_the_literal_ones() -> None:
    plan = resolve(
        {},
        AxisRequest("prompt", ["a {animal}", "{{literal}} {animal}", "no variable {{}}"]),
        AxisRequest("animal", ["cat", "dog"]),
    )
    assert count_runs(plan) == 6
    assert prompts(plan)[:3] == ["a cat", "{literal} cat", "no variable {}"]


def test_a_prompt_without_placeholders_is_stored_with_its_escapes_undone() -> None:
    plan = resolve({"prompt": "{{not a placeholder}} {a|b}", "negative": "blurry"})
    assert plan.fixed["prompt"] == "{not a placeholder} {a|b}"
    assert plan.templates == ()


def test_zip_mode_fills_templates_position_by_position() -> None:
    plan = resolve(
        {"prompt": "{animal}/{style}"},
        AxisRequest("animal", ["cat", "dog"]),
        AxisRequest("style", ["oil", "ink"]),
        mode="zip",
    )
    assert prompts(plan) == ["cat/oil", "dog/ink"]


def test_the_stored_plan_replays_the_same_prompts() -> None:
    plan = resolve({"prompt": "a {animal} by __styles__"}, AxisRequest("animal", "cat, dog"))
    record = {
        "fixed": dict(plan.fixed),
        "axes": [{"param": a.param, "values": list(a.values)} for a in plan.axes],
        "mode": plan.mode,
        "templates": list(plan.templates),
    }
    assert prompts(sweep_plan_from_record(record)) == prompts(plan)
    assert plan.fixed["prompt"] == "a {animal} by {styles}"  # canonical: no list lookups


def test_a_placeholder_without_an_axis_names_the_field_and_the_placeholder() -> None:
    [problem] = rejection({"prompt": "a {animal} in {style}"}, AxisRequest("animal", "cat"))
    assert (problem.loc, problem.type, problem.input) == (
        ("base", "prompt"),
        "unknown_placeholder",
        "{style}",
    )
    assert '"param": "style"' in problem.msg


def test_an_unknown_wildcard_names_where_it_was_written() -> None:
    problems = rejection(
        {"prompt": "a __birds__"}, AxisRequest("negative", ["ugly", "x __colours__"])
    )
    assert [(p.loc, p.type, p.input) for p in problems] == [
        (("base", "prompt"), "unknown_wildcard", "__birds__"),
        (("axes", 0, "values", 1), "unknown_wildcard", "__colours__"),
    ]
    assert "PUT /v1/wildcards/birds" in problems[0].msg


def test_an_unknown_whole_value_wildcard_points_at_the_axis() -> None:
    [problem] = rejection({"prompt": "a {animal}"}, AxisRequest("animal", "__birds__"))
    assert (problem.loc, problem.type, problem.input) == (
        ("axes", 0, "values"),
        "unknown_wildcard",
        "__birds__",
    )


def test_an_axis_no_template_references_is_still_an_unknown_parameter() -> None:
    [problem] = rejection(
        {"prompt": "a {animal}"}, *[AxisRequest("animal", "cat"), AxisRequest("mood", "calm")]
    )
    assert (problem.loc, problem.type, problem.input) == (
        ("axes", 1, "param"),
        "unknown_parameter",
        "mood",
    )
    assert "nor a template variable" in problem.msg


def test_a_placeholder_naming_a_parameter_is_refused() -> None:
    [problem] = rejection({"prompt": "{steps} steps"})
    assert (problem.loc, problem.type) == (("base", "prompt"), "invalid_placeholder")


def test_templates_only_live_in_free_text_parameters() -> None:
    # `sampler` has an enum: braces there are part of a name, never placeholders.
    problems = rejection({"sampler": "{animal}"}, AxisRequest("animal", "cat"))
    assert [(p.loc, p.type) for p in problems] == [
        (("base", "sampler"), "value_not_in_list"),
        (("axes", 0, "param"), "unknown_parameter"),
    ]


def test_a_variable_swept_twice_is_a_duplicate_axis() -> None:
    problems = rejection(
        {"prompt": "{animal}"}, AxisRequest("animal", "cat"), AxisRequest("animal", "dog")
    )
    assert [(p.loc, p.type) for p in problems] == [(("axes", 1, "param"), "duplicate_axis")]


def test_a_template_too_long_once_filled_is_refused_at_the_template() -> None:
    # sd15's prompt allows 10,000 characters: 9,000 typed plus a 2,000-character word is over.
    long_word = "w" * 2_000
    [problem] = rejection(
        {"prompt": "x" * 9_000 + " {animal}"}, AxisRequest("animal", ["cat", long_word])
    )
    assert problem.loc == ("base", "prompt")
    assert problem.msg.startswith("filled with its longest words, ")
