"""Run order, coordinates and counts of an expanded sweep."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.contracts import JsonValue
from app.domain.expansion import Axis, Mode, RunSpec, SweepPlan, count_runs, expand_sweep

FIXED: Mapping[str, JsonValue] = {"steps": 20, "cfg": 7.0, "seed": 0}


def plan(
    *axes: Axis,
    mode: Mode = "cartesian",
    seeds: tuple[int, ...] = (),
    samples: tuple[Mapping[str, JsonValue], ...] = (),
) -> SweepPlan:
    return SweepPlan(FIXED, axes, mode, "seed" if seeds else None, seeds, samples)


def runs(sweep: SweepPlan) -> list[RunSpec]:
    return list(expand_sweep(sweep))


def picked(sweep: SweepPlan, *names: str) -> list[tuple[JsonValue, ...]]:
    return [tuple(run.assignment[name] for name in names) for run in runs(sweep)]


X = Axis("cfg", (5.0, 7.0))
Y = Axis("sampler_name", ("euler", "dpmpp_2m"))


def test_seeds_vary_fastest_then_x_then_y() -> None:
    sweep = plan(X, Y, seeds=(10, 20))
    assert picked(sweep, "sampler_name", "cfg", "seed") == [
        ("euler", 5.0, 10),
        ("euler", 5.0, 20),
        ("euler", 7.0, 10),
        ("euler", 7.0, 20),
        ("dpmpp_2m", 5.0, 10),
        ("dpmpp_2m", 5.0, 20),
        ("dpmpp_2m", 7.0, 10),
        ("dpmpp_2m", 7.0, 20),
    ]


def test_coords_index_each_dimension_then_the_seed() -> None:
    sweep = plan(X, Y, seeds=(10, 20))
    assert [run.coords for run in runs(sweep)][:4] == [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 1)]
    assert runs(sweep)[-1].coords == (1, 1, 1)


def test_cartesian_index_is_seed_plus_seeds_times_the_position_x_fastest() -> None:
    z = Axis("steps", (10, 20, 30))
    for run in runs(plan(X, Y, z, seeds=(1, 2, 3))):
        x, y, page, seed = run.coords
        assert run.index == seed + 3 * (x + 2 * (y + 2 * page))


def test_unseeded_coords_have_no_seed_index() -> None:
    assert [run.coords for run in runs(plan(X))] == [(0,), (1,)]


def test_zip_mode_pairs_values_index_by_index() -> None:
    sweep = plan(X, Y, mode="zip")
    assert picked(sweep, "cfg", "sampler_name") == [(5.0, "euler"), (7.0, "dpmpp_2m")]


def test_zip_mode_cycles_the_shorter_axis() -> None:
    sweep = plan(Axis("steps", (10, 20, 30)), Y, mode="zip")
    assert picked(sweep, "steps", "sampler_name") == [
        (10, "euler"),
        (20, "dpmpp_2m"),
        (30, "euler"),
    ]
    assert [run.coords for run in runs(sweep)] == [(0, 0), (1, 1), (2, 0)]


def test_zip_mode_still_multiplies_by_every_seed() -> None:
    sweep = plan(X, Y, mode="zip", seeds=(1, 2))
    assert count_runs(sweep) == 4
    assert picked(sweep, "cfg", "seed") == [(5.0, 1), (5.0, 2), (7.0, 1), (7.0, 2)]


def test_samples_are_one_dimension_that_sets_several_parameters() -> None:
    samples = ({"cfg": 4.5, "steps": 12}, {"cfg": 8.25, "steps": 31})
    sweep = plan(Y, samples=samples)
    assert count_runs(sweep) == 4
    assert picked(sweep, "sampler_name", "cfg", "steps") == [
        ("euler", 4.5, 12),
        ("dpmpp_2m", 4.5, 12),
        ("euler", 8.25, 31),
        ("dpmpp_2m", 8.25, 31),
    ]
    assert [run.coords for run in runs(sweep)] == [(0, 0), (1, 0), (0, 1), (1, 1)]


def test_axis_values_override_the_fixed_values_and_the_rest_stay() -> None:
    (first, _) = runs(plan(X))
    assert first.assignment == {"steps": 20, "cfg": 5.0, "seed": 0}


def test_a_plan_without_dimensions_is_one_run_of_the_fixed_values_per_seed() -> None:
    assert [run.assignment for run in runs(plan())] == [FIXED]
    assert picked(plan(seeds=(3, 4)), "seed") == [(3,), (4,)]
    assert [run.coords for run in runs(plan(seeds=(3, 4)))] == [(0,), (1,)]
    assert count_runs(plan(mode="zip")) == 1


def test_every_run_gets_its_own_assignment() -> None:
    sweep = plan(X, seeds=(1, 2))
    first, second, *_ = runs(sweep)
    first.assignment["steps"] = 99  # type: ignore[index]
    assert second.assignment["steps"] == 20
    assert sweep.fixed["steps"] == 20


# Two trillion runs: building them would never end, so the guard fails the test if they are
# built, however loaded the machine (a wall-clock bound failed under load).
@pytest.mark.timeout(60)
def test_runs_are_counted_without_building_them() -> None:
    huge = plan(*(Axis(name, tuple(range(10_000))) for name in ("a", "b", "c")), seeds=(1, 2))
    assert count_runs(huge) == 2 * 10_000**3
    assert count_runs(SweepPlan({}, huge.axes, "zip")) == 10_000
    assert next(expand_sweep(huge)).index == 0  # lazy: the first run comes at once


def test_an_axis_needs_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        Axis("cfg", ())


def test_seeds_need_a_parameter_to_go_to() -> None:
    with pytest.raises(ValueError, match="seed_param"):
        SweepPlan({}, (), seeds=(1,))


def test_a_parameter_on_two_axes_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="two axes"):
        SweepPlan({}, (X, Axis("cfg", (1.0,))))


MODES: tuple[Mode, ...] = ("cartesian", "zip")
sizes = st.lists(st.integers(min_value=1, max_value=5), max_size=3)


@st.composite
def plans(draw: st.DrawFn) -> SweepPlan:
    axes = tuple(Axis(f"p{i}", tuple(range(size))) for i, size in enumerate(draw(sizes)))
    samples = tuple({"s": i, "t": -i} for i in range(draw(st.integers(0, 4))))
    seeds = tuple(range(draw(st.integers(0, 3))))
    mode = draw(st.sampled_from(MODES))
    return SweepPlan({"fixed": 1}, axes, mode, "seed" if seeds else None, seeds, samples)


def dimension_sizes(sweep: SweepPlan) -> list[int]:
    extra = [len(sweep.samples)] if sweep.samples else []
    return [len(axis.values) for axis in sweep.axes] + extra


@given(plans())
def test_the_count_is_the_product_or_the_longest_times_the_seeds(sweep: SweepPlan) -> None:
    found = dimension_sizes(sweep)
    combinations = math.prod(found) if sweep.mode == "cartesian" else max(found, default=1)
    expected = combinations * max(len(sweep.seeds), 1)
    assert count_runs(sweep) == expected == len(runs(sweep))


@given(plans())
def test_run_i_has_index_i_and_expansion_is_deterministic(sweep: SweepPlan) -> None:
    first, second = runs(sweep), runs(sweep)
    assert first == second
    assert [run.index for run in first] == list(range(len(first)))


@given(plans())
def test_coords_locate_each_run_exactly(sweep: SweepPlan) -> None:
    found = dimension_sizes(sweep)
    seeds = len(sweep.seeds)
    for run in runs(sweep):
        position = run.coords[: len(found)]
        if sweep.mode == "zip":
            combination = run.index // max(seeds, 1)
            assert position == tuple(combination % size for size in found)
        else:
            flat = 0
            for coord, size in reversed(list(zip(position, found, strict=True))):
                flat = flat * size + coord
            assert run.index == flat * max(seeds, 1) + (run.coords[-1] if seeds else 0)
        assert_assignment_matches(sweep, run, position)


def assert_assignment_matches(sweep: SweepPlan, run: RunSpec, position: tuple[int, ...]) -> None:
    for axis, coord in zip(sweep.axes, position, strict=False):
        assert run.assignment[axis.param] == axis.values[coord]
    if sweep.samples:
        assert run.assignment["s"] == sweep.samples[position[-1]]["s"]
    if sweep.seeds:
        assert run.assignment["seed"] == sweep.seeds[run.coords[-1]]
    assert run.assignment["fixed"] == 1
