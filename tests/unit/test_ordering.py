"""Cache-aware dispatch order: runs that share a checkpoint, then a prompt, run back to back;
seeds and sampler settings vary fastest; checkpoint groups stay whole on one instance."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from itertools import pairwise, product
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.contracts import JsonValue, contract_defaults
from app.domain.expansion import Axis, SweepPlan, expand_sweep
from app.domain.ordering import (
    checkpoint_key,
    dispatch_order,
    expensive_params,
    group_key,
    loader_params,
    plan_assignment,
    upstream_depths,
)
from app.registry import Workflow, load_registry

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "workflows", ROOT / "params")
CHECKPOINTS = ("v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors")
PROMPTS = tuple(f"a lighthouse, style {i}" for i in range(5))
Run = tuple[int, Mapping[str, JsonValue]]


def workflow(name: str) -> Workflow:
    found = REGISTRY.get(name)
    assert found is not None
    return found


SD15 = workflow("sd15-txt2img")


def runs_of(flow: Workflow, *axes: Axis, seeds: tuple[int, ...] = ()) -> list[Run]:
    varied = {axis.param for axis in axes} | ({"seed"} if seeds else set())
    defaults = contract_defaults(flow.contract)
    plan = SweepPlan(
        fixed={name: value for name, value in defaults.items() if name not in varied},
        axes=axes,
        seed_param="seed" if seeds else None,
        seeds=seeds,
    )
    return [(run.index, run.assignment) for run in expand_sweep(plan)]


def in_order(runs: Sequence[Run], order: Sequence[int]) -> list[Mapping[str, JsonValue]]:
    by_index = dict(runs)
    return [by_index[index] for index in order]


def changes(assignments: Sequence[Mapping[str, JsonValue]], name: str) -> int:
    return sum(1 for a, b in pairwise(assignments) if a[name] != b[name])


def sd15_sweep() -> list[Run]:
    """2 checkpoints × 50, checkpoint on the fastest axis: the worst case for naive order."""
    return runs_of(
        SD15,
        Axis("checkpoint", CHECKPOINTS),
        Axis("prompt", PROMPTS),
        Axis("cfg", (4.0, 5.0, 6.0, 7.0, 8.0)),
        seeds=(11, 22),
    )


# --- what is expensive -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expensive", "loaders"),
    [
        ("demo-noise", (), ()),
        (
            "sd15-txt2img",
            ("checkpoint", "lora", "lora_strength", "prompt", "negative", "width", "height"),
            ("checkpoint", "lora", "lora_strength"),
        ),
        (
            "sd15-hires-fix",
            ("checkpoint", "prompt", "negative", "width", "height"),
            ("checkpoint",),
        ),
        (
            "sdxl-base-refiner",
            ("checkpoint", "refiner_checkpoint", "prompt", "negative", "width", "height"),
            ("checkpoint", "refiner_checkpoint"),
        ),
        # Depth alone would put the prompt first: Flux's encoder chain into the guider is
        # longer than UNETLoader's. A model reload costs more than an encode, so loaders lead.
        ("flux-txt2img", ("checkpoint", "prompt", "width", "height"), ("checkpoint",)),
    ],
)
def test_loaders_then_text_encoders_then_latent_size_are_expensive(
    name: str, expensive: tuple[str, ...], loaders: tuple[str, ...]
) -> None:
    flow = workflow(name)
    assert expensive_params(flow.contract, flow.graph) == expensive
    assert loader_params(flow.contract, flow.graph) == loaders


def test_sampler_and_saver_parameters_are_cheap() -> None:
    expensive = set(expensive_params(SD15.contract, SD15.graph))
    assert expensive.isdisjoint({"seed", "steps", "cfg", "sampler", "scheduler", "denoise"})


def test_within_a_tier_the_more_upstream_parameter_ranks_first() -> None:
    depths = upstream_depths(SD15.graph)
    assert depths == {"1": 5, "2": 4, "3": 3, "4": 3, "5": 3, "6": 2, "7": 1, "8": 0}
    flow = workflow("sdxl-base-refiner")
    depths = upstream_depths(flow.graph)
    assert depths["1"] > depths["2"]  # the base feeds the refiner's latent: more upstream
    ranked = expensive_params(flow.contract, flow.graph)
    assert ranked.index("checkpoint") < ranked.index("refiner_checkpoint")


# --- keys --------------------------------------------------------------------------------------


def test_group_key_is_short_stable_and_sees_only_the_expensive_values() -> None:
    expensive = ("checkpoint", "prompt")
    a = {"checkpoint": "a.safetensors", "prompt": "a cat", "seed": 1, "cfg": 7.0}
    assert re.fullmatch(r"[0-9a-f]{16}", group_key(a, expensive))
    assert group_key(a, expensive) == group_key({**a, "seed": 2, "cfg": 5.0}, expensive)
    assert group_key(a, expensive) != group_key({**a, "prompt": "a dog"}, expensive)
    # Stored beside runs, so it must not change between processes or releases.
    assert group_key(a, expensive) == "6250a678dc1f2f24"


def test_checkpoint_key_ignores_prompts() -> None:
    loaders = loader_params(SD15.contract, SD15.graph)
    a = dict(contract_defaults(SD15.contract))
    assert checkpoint_key(a, loaders) == checkpoint_key({**a, "prompt": "a dog"}, loaders)
    assert checkpoint_key(a, loaders) != checkpoint_key({**a, "checkpoint": "b.ckpt"}, loaders)


# --- dispatch order ----------------------------------------------------------------------------


def test_naive_order_switches_checkpoint_every_run_and_dispatch_order_once() -> None:
    runs = runs_of(SD15, Axis("checkpoint", CHECKPOINTS), Axis("prompt", PROMPTS * 10))
    assert len(runs) == 100
    expensive = expensive_params(SD15.contract, SD15.graph)
    naive = in_order(runs, [index for index, _ in runs])
    assert changes(naive, "checkpoint") == 99
    assert changes(in_order(runs, dispatch_order(runs, expensive)), "checkpoint") == 1


def test_a_checkpoint_is_loaded_once_and_each_prompt_encoded_once_per_checkpoint() -> None:
    runs = sd15_sweep()
    assert len(runs) == 2 * 50
    ordered = in_order(runs, dispatch_order(runs, expensive_params(SD15.contract, SD15.graph)))
    assert changes(ordered, "checkpoint") == 1
    assert [a["checkpoint"] for a in ordered] == [CHECKPOINTS[0]] * 50 + [CHECKPOINTS[1]] * 50
    for block in (ordered[:50], ordered[50:]):
        # Each prompt is one contiguous stretch inside its checkpoint's block.
        assert changes(block, "prompt") == len(PROMPTS) - 1
        assert [a["prompt"] for a in block[::10]] == list(PROMPTS)


def test_seeds_then_cfg_vary_fastest_inside_a_group() -> None:
    runs = sd15_sweep()
    ordered = in_order(runs, dispatch_order(runs, expensive_params(SD15.contract, SD15.graph)))
    group = ordered[:10]  # one checkpoint, one prompt
    assert [a["seed"] for a in group] == [11, 22] * 5
    assert [a["cfg"] for a in group] == [4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0]
    assert changes(ordered, "seed") == len(ordered) - 1


def test_groups_come_in_the_order_their_values_first_appear() -> None:
    runs: list[Run] = [(0, {"ckpt": "z"}), (1, {"ckpt": "a"}), (2, {"ckpt": "z"})]
    assert dispatch_order(runs, ("ckpt",)) == [0, 2, 1]


def test_the_order_does_not_depend_on_how_runs_are_listed() -> None:
    runs = sd15_sweep()
    expensive = expensive_params(SD15.contract, SD15.graph)
    shuffled = list(runs)
    random.Random(7).shuffle(shuffled)
    assert dispatch_order(shuffled, expensive) == dispatch_order(runs, expensive)


def test_with_nothing_expensive_the_order_is_the_index_order() -> None:
    runs = runs_of(workflow("demo-noise"), Axis("sigma", (1.0, 2.0)), seeds=(1, 2, 3))
    assert dispatch_order(runs, ()) == list(range(6))


assignments = st.fixed_dictionaries(
    {
        "ckpt": st.sampled_from(["a", "b", "c"]),
        "prompt": st.sampled_from(["x", "y"]),
        "cfg": st.sampled_from([1, 1.0, 2.5, True]),
        "seed": st.integers(0, 5),
    }
)


@given(
    st.lists(assignments, max_size=60),
    st.permutations(["ckpt", "prompt", "cfg", "seed"]),
    st.integers(0, 4),
    st.randoms(use_true_random=False),
)
def test_dispatch_order_is_a_permutation_grouped_by_the_expensive_values(
    listed: list[dict[str, JsonValue]], names: list[str], count: int, rng: random.Random
) -> None:
    indexes = rng.sample(range(10 * len(listed) + 1), len(listed))
    runs: list[Run] = list(zip(indexes, listed, strict=True))
    expensive = names[:count]
    order = dispatch_order(runs, expensive)
    assert sorted(order) == sorted(indexes)
    keys = [group_key(a, expensive) for a in in_order(runs, order)]
    # Every group is one contiguous stretch, and index order holds inside it.
    stretches = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    assert len(stretches) == len(set(keys))
    by_key: dict[str, list[int]] = {}
    for key, index in zip(keys, order, strict=True):
        by_key.setdefault(key, []).append(index)
    assert all(group == sorted(group) for group in by_key.values())


def test_ten_thousand_runs_change_checkpoint_once() -> None:
    # Its speed is measured by bench/preflight.py, not asserted here.
    runs = runs_of(
        SD15,
        Axis("sampler", ("euler", "heun", "dpmpp_2m", "ddim", "lms")),
        Axis("cfg", tuple(float(c) for c in range(1, 11))),
        Axis("prompt", PROMPTS),
        Axis("checkpoint", CHECKPOINTS),
        seeds=tuple(range(20)),
    )
    assert len(runs) == 10_000
    expensive = expensive_params(SD15.contract, SD15.graph)
    order = dispatch_order(runs, expensive)
    assert sorted(order) == list(range(10_000))
    assert changes(in_order(runs, order), "checkpoint") == 1


# --- spreading checkpoint groups over instances ------------------------------------------------


def test_groups_stay_whole_and_the_largest_go_first_to_the_least_loaded() -> None:
    groups = {"a": 50, "b": 40, "c": 30, "d": 20, "e": 10}
    assignment = plan_assignment(groups, 2)
    assert assignment == {"a": 0, "b": 1, "c": 1, "d": 0, "e": 0}
    loads = [sum(n for key, n in groups.items() if assignment[key] == i) for i in (0, 1)]
    assert loads == [80, 70]


def test_more_instances_than_groups_leaves_some_idle_for_stealing() -> None:
    assert plan_assignment({"a": 5, "b": 5}, 4) == {"a": 0, "b": 1}


def test_assignment_is_deterministic_for_equal_sizes() -> None:
    groups = {"b": 10, "a": 10, "c": 10}
    assert plan_assignment(groups, 2) == {"a": 0, "b": 1, "c": 0}


def test_an_empty_pool_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one instance"):
        plan_assignment({"a": 1}, 0)


def best_finish(sizes: list[int], instances: int) -> int:
    """The optimal makespan, by trying every assignment (small inputs only)."""
    best = sum(sizes)
    for choice in product(range(instances), repeat=len(sizes)):
        loads = [0] * instances
        for size, number in zip(sizes, choice, strict=True):
            loads[number] += size
        best = min(best, max(loads))
    return best


@given(st.dictionaries(st.text(max_size=4), st.integers(1, 1000), max_size=30), st.integers(1, 8))
def test_every_group_goes_whole_to_one_instance_of_the_pool(
    groups: dict[str, int], instances: int
) -> None:
    assignment = plan_assignment(groups, instances)
    assert set(assignment) == set(groups)
    assert all(0 <= number < instances for number in assignment.values())


@given(st.dictionaries(st.text(max_size=4), st.integers(1, 1000), max_size=7), st.integers(1, 3))
def test_lpt_finishes_within_four_thirds_of_the_best_possible(
    groups: dict[str, int], instances: int
) -> None:
    # Graham's bound for longest-processing-time first: 4/3 - 1/(3m) of the optimum, which
    # is found here by brute force, not of a lower bound (that can be 5/4 of the optimum).
    assignment = plan_assignment(groups, instances)
    loads = [0] * instances
    for key, count in groups.items():
        loads[assignment[key]] += count
    optimum = best_finish(list(groups.values()), instances)
    assert max(loads) <= optimum * (4 / 3 - 1 / (3 * instances)) + 1e-9
