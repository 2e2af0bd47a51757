"""The execution bench's yardsticks: the direct driver's prompts are the service's prompts,
and the round-robin checkpoint count is what dealing runs alternately really costs."""

from __future__ import annotations

import pytest

from app.domain.patching import patch_graph, set_output_prefix
from app.registry import load_registry
from app.settings import PROJECT_ROOT
from bench.checkpoints import round_robin_loads
from bench.direct_driver import build_prompt
from bench.prompt_check import mismatches


@pytest.mark.parametrize(
    ("workflow", "values"),
    [
        ("sd15-txt2img", {"steps": 10, "width": 64, "height": 64, "seed": 7}),
        ("sd15-txt2img", {"checkpoint": "dreamshaper_8.safetensors", "seed": 3}),
        ("demo-noise", {"width": 8, "height": 8, "seed": 123}),
    ],
)
def test_driver_prompt_is_the_service_graph(workflow: str, values: dict[str, object]) -> None:
    found = load_registry(PROJECT_ROOT / "workflows", PROJECT_ROOT / "params").get(workflow)
    assert found is not None
    ours = set_output_prefix(patch_graph(found.graph, found.contract, values), "p/000001")

    assert build_prompt(workflow, values, "p/000001") == ours


def test_prompt_check_counts_a_differing_graph() -> None:
    good = build_prompt("demo-noise", {"seed": 1}, "direct/1")
    other = build_prompt("demo-noise", {"seed": 2}, "direct/2")

    assert mismatches("demo-noise", [{"seed": 1}, {"seed": 1}], [good, other]) == 1


@pytest.mark.parametrize(
    ("order", "instances", "loads"),
    [
        (["a", "b"] * 50, 2, 2),  # alternating runs: each instance only ever sees one
        (["a"] * 50 + ["b"] * 50, 2, 4),  # blocks: both instances switch once
        (["a", "b", "b", "a"], 2, 4),  # instance 0: a, b; instance 1: b, a
        (["a", "a", "b"], 1, 2),
    ],
)
def test_round_robin_loads(order: list[str], instances: int, loads: int) -> None:
    assert round_robin_loads(order, instances) == loads
