"""A run stores only what it varies; composing with the sweep's fixed values gives back the
assignment expansion made, and rows stored whole before that read exactly as stored."""

from __future__ import annotations

import json
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from app.domain.assignments import full_assignment, plan_fixed
from app.domain.contracts import JsonValue
from app.domain.expansion import (
    Axis,
    Mode,
    SweepPlan,
    expand_own_values,
    expand_sweep,
    varied_params,
)

# Sweep-wide values, as resolution leaves them: never one the sweep varies.
FIXED: Mapping[str, JsonValue] = {
    "prompt": "a lighthouse at dusk, volumetric light, 35mm",
    "negative": "blurry, lowres",
    "checkpoint": "sd_xl_base_1.0.safetensors",
    "width": 1024,
    "height": 1024,
    "denoise": 1.0,
}


@st.composite
def plans(draw: st.DrawFn) -> SweepPlan:
    sizes = draw(st.lists(st.integers(min_value=1, max_value=4), max_size=3))
    axes = tuple(Axis(f"p{i}", tuple(range(size))) for i, size in enumerate(sizes))
    samples = tuple({"s": i, "t": None} for i in range(draw(st.integers(0, 3))))
    seeds = tuple(range(draw(st.integers(0, 3))))
    mode: Mode = draw(st.sampled_from(("cartesian", "zip")))
    return SweepPlan(FIXED, axes, mode, "seed" if seeds else None, seeds, samples)


@given(plans())
def test_fixed_values_and_a_runs_own_compose_to_what_expansion_assigns(plan: SweepPlan) -> None:
    composed = [full_assignment(plan.fixed, own) for own in expand_own_values(plan)]
    assert composed == [dict(run.assignment) for run in expand_sweep(plan)]


@given(plans())
def test_a_run_stores_exactly_the_parameters_the_sweep_varies(plan: SweepPlan) -> None:
    for own in expand_own_values(plan):
        assert set(own) == varied_params(plan)
        assert not set(own) & set(FIXED)


def test_a_run_stored_whole_reads_back_as_stored_key_order_included() -> None:
    # Rows written before runs were lean; Postgres's JSONB gave them its own key order.
    stored = {"cfg": 5.0, "seed": 7, "width": 1024, "height": 1024, **FIXED}
    composed = full_assignment(FIXED, stored)
    assert list(composed.items()) == list(stored.items())


def test_the_stored_value_wins_over_the_fixed_one() -> None:
    assert full_assignment({"cfg": 7.0, "steps": 20}, {"cfg": 5.0}) == {"cfg": 5.0, "steps": 20}
    assert full_assignment({"t": 1}, {"t": None}) == {"t": None}


def test_composing_never_changes_its_inputs() -> None:
    fixed, own = {"steps": 20}, {"cfg": 5.0}
    full_assignment(fixed, own)["steps"] = 99
    assert (fixed, own) == ({"steps": 20}, {"cfg": 5.0})


def test_a_plan_record_without_fixed_values_has_none() -> None:
    assert plan_fixed({"fixed": {"steps": 20}}) == {"steps": 20}
    assert plan_fixed({}) == {}
    assert plan_fixed({"fixed": None}) == {}


def test_a_run_of_a_10000_run_sweep_stores_a_few_dozen_bytes() -> None:
    plan = SweepPlan(
        FIXED,
        (
            Axis("cfg", tuple(1 + 0.375 * n for n in range(25))),
            Axis("steps", tuple(range(10, 50))),
            Axis("sampler", ("euler", "dpmpp_2m", "heun", "ddim", "lms")),
        ),
        seed_param="seed",
        seeds=(1, 2),
    )
    sizes = [len(json.dumps(own, separators=(",", ":"))) for own in expand_own_values(plan)]
    assert len(sizes) == 10_000
    assert max(sizes) < 70
