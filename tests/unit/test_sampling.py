"""Sampled sweeps: typed, snapped, deterministic points, and every rejection with its place."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.contracts import Binding, Parameter
from app.domain.problems import Loc, Problem, SweepRejected
from app.domain.sampling import SampledRange, SamplingSpec, Strategy, sample_points

LOC: Loc = ("sampling",)
STRATEGIES: tuple[Strategy, ...] = ("sobol", "lhs", "random")


def parameter(name: str, type_: str) -> Parameter:
    return Parameter(name, type_, (Binding("3", name),))  # type: ignore[arg-type]


PARAMETERS = {
    "steps": parameter("steps", "integer"),
    "cfg": parameter("cfg", "number"),
    "denoise": parameter("denoise", "number"),
    "sampler_name": parameter("sampler_name", "string"),
    "tiling": parameter("tiling", "boolean"),
}


def spec(
    *ranges: SampledRange, strategy: Strategy = "sobol", samples: int = 16, seed: int = 7
) -> SamplingSpec:
    return SamplingSpec(strategy, samples, seed, ranges)


def problems(sampling: SamplingSpec) -> tuple[Problem, ...]:
    with pytest.raises(SweepRejected) as caught:
        sample_points(sampling, PARAMETERS, LOC)
    return caught.value.problems


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_point_sets_every_sampled_parameter_in_range_order(strategy: Strategy) -> None:
    sampling = spec(SampledRange("cfg", 3, 9), SampledRange("steps", 10, 40), strategy=strategy)
    points = sample_points(sampling, PARAMETERS, LOC)
    assert len(points) == 16
    assert all(list(point) == ["cfg", "steps"] for point in points)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_same_seed_gives_the_same_points(strategy: Strategy) -> None:
    sampling = spec(SampledRange("cfg", 3, 9), strategy=strategy, samples=10)
    assert sample_points(sampling, PARAMETERS, LOC) == sample_points(sampling, PARAMETERS, LOC)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_another_seed_gives_other_points(strategy: Strategy) -> None:
    first = sample_points(spec(SampledRange("cfg", 3, 9), strategy=strategy), PARAMETERS, LOC)
    other = spec(SampledRange("cfg", 3, 9), strategy=strategy, seed=8)
    assert sample_points(other, PARAMETERS, LOC) != first


def test_integer_parameters_get_integers_within_the_bounds() -> None:
    points = sample_points(spec(SampledRange("steps", 10, 40), samples=64), PARAMETERS, LOC)
    assert all(type(p["steps"]) is int and 10 <= p["steps"] <= 40 for p in points)
    assert len({p["steps"] for p in points}) > 20  # spread, not clumped


def test_a_step_snaps_to_the_minimum_plus_whole_steps_without_float_noise() -> None:
    sampling = spec(SampledRange("cfg", 1, 2, step=0.1), samples=64)
    lattice = {float(Decimal(1) + k * Decimal("0.1")) for k in range(11)}
    values = {p["cfg"] for p in sample_points(sampling, PARAMETERS, LOC)}
    assert values <= lattice
    assert len(values) == 11  # every lattice point, the maximum included, is reachable


def test_a_step_never_passes_the_maximum() -> None:
    sampling = spec(SampledRange("steps", 10, 20, step=3), samples=64)
    values = {p["steps"] for p in sample_points(sampling, PARAMETERS, LOC)}
    assert values == {10, 13, 16, 19}


def test_equal_bounds_give_that_value_every_time() -> None:
    points = sample_points(spec(SampledRange("cfg", 5, 5)), PARAMETERS, LOC)
    assert {p["cfg"] for p in points} == {5}


def test_sobol_with_a_count_that_is_not_a_power_of_two_gives_the_start_of_the_sequence() -> None:
    # pytest turns warnings into errors, so this also shows scipy's balance warning is avoided.
    five = sample_points(spec(SampledRange("cfg", 0, 1), samples=5), PARAMETERS, LOC)
    eight = sample_points(spec(SampledRange("cfg", 0, 1), samples=8), PARAMETERS, LOC)
    assert five == eight[:5]


def test_latin_hypercube_puts_one_point_in_each_stratum() -> None:
    sampling = spec(SampledRange("cfg", 0, 1), SampledRange("denoise", 0, 1), strategy="lhs")
    points = sample_points(sampling, PARAMETERS, LOC)
    for name in ("cfg", "denoise"):
        assert sorted(int(p[name] * 16) for p in points) == list(range(16))


def test_an_unknown_parameter_is_refused_at_its_range() -> None:
    (problem,) = problems(spec(SampledRange("clip_skip", 1, 2)))
    assert (problem.loc, problem.type) == (("sampling", "ranges", "clip_skip"), "unknown_parameter")


@pytest.mark.parametrize("name", ["sampler_name", "tiling"])
def test_a_string_or_boolean_parameter_cannot_be_sampled(name: str) -> None:
    (problem,) = problems(spec(SampledRange(name, 0, 1)))
    assert (problem.loc, problem.type) == (("sampling", "ranges", name), "invalid_input_type")


def test_a_minimum_above_the_maximum_is_an_invalid_range() -> None:
    (problem,) = problems(spec(SampledRange("cfg", 9, 3)))
    assert (problem.loc, problem.type) == (("sampling", "ranges", "cfg"), "invalid_range")
    assert "swap" in problem.msg


def test_infinite_bounds_are_an_invalid_range() -> None:
    (problem,) = problems(spec(SampledRange("cfg", 0, float("inf"))))
    assert problem.type == "invalid_range"


@pytest.mark.parametrize("samples", [0, -3])
def test_fewer_than_one_sample_is_refused(samples: int) -> None:
    (problem,) = problems(spec(SampledRange("cfg", 3, 9), samples=samples))
    assert (problem.loc, problem.type) == (("sampling", "samples"), "value_smaller_than_min")


def test_a_negative_seed_is_refused() -> None:
    (problem,) = problems(spec(SampledRange("cfg", 3, 9), seed=-1))
    assert (problem.loc, problem.type) == (("sampling", "seed"), "value_smaller_than_min")


@pytest.mark.parametrize("step", [0, -0.5])
def test_a_step_must_be_above_zero(step: float) -> None:
    (problem,) = problems(spec(SampledRange("cfg", 3, 9, step=step)))
    assert (problem.loc, problem.type) == (
        ("sampling", "ranges", "cfg", "step"),
        "invalid_range_step",
    )


def test_an_integer_parameter_needs_whole_bounds_and_steps() -> None:
    found = problems(spec(SampledRange("steps", 1.5, 30, step=2.5)))
    assert [(p.loc, p.type) for p in found] == [
        (("sampling", "ranges", "steps", "minimum"), "invalid_input_type"),
        (("sampling", "ranges", "steps", "step"), "invalid_range_step"),
    ]


def test_no_ranges_is_an_empty_sampling() -> None:
    (problem,) = problems(spec())
    assert (problem.loc, problem.type) == (("sampling", "ranges"), "empty_axis")


def test_a_parameter_with_two_ranges_is_refused() -> None:
    (problem,) = problems(spec(SampledRange("cfg", 1, 2), SampledRange("cfg", 3, 4)))
    assert (problem.loc, problem.type) == (("sampling", "ranges", "cfg"), "duplicate_parameter")


def test_every_problem_is_reported_at_once() -> None:
    sampling = spec(SampledRange("nope", 0, 1), SampledRange("cfg", 2, 1), samples=0)
    assert [p.type for p in problems(sampling)] == [
        "value_smaller_than_min",
        "unknown_parameter",
        "invalid_range",
    ]


bounds = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    strategy=st.sampled_from(STRATEGIES),
    samples=st.integers(min_value=1, max_value=70),
    seed=st.integers(min_value=0, max_value=2**64),
    low=bounds,
    high=bounds,
    whole_low=st.integers(min_value=-1000, max_value=1000),
    width=st.integers(min_value=0, max_value=1000),
)
def test_every_point_lies_within_its_bounds_and_has_its_type(
    strategy: Strategy, samples: int, seed: int, low: float, high: float, whole_low: int, width: int
) -> None:
    low, high = min(low, high), max(low, high)
    sampling = SamplingSpec(
        strategy,
        samples,
        seed,
        (SampledRange("cfg", low, high), SampledRange("steps", whole_low, whole_low + width)),
    )
    points = sample_points(sampling, PARAMETERS, LOC)
    assert len(points) == samples
    for point in points:
        assert type(point["cfg"]) is float
        assert low <= point["cfg"] <= high
        assert type(point["steps"]) is int
        assert whole_low <= point["steps"] <= whole_low + width


@given(
    low=st.decimals(min_value=-100, max_value=100, places=2),
    width=st.decimals(min_value=0, max_value=50, places=2),
    step=st.decimals(min_value=Decimal("0.01"), max_value=10, places=2),
)
def test_stepped_points_are_clean_lattice_values_never_past_the_maximum(
    low: Decimal, width: Decimal, step: Decimal
) -> None:
    sampling = spec(SampledRange("cfg", float(low), float(low + width), float(step)))
    for point in sample_points(sampling, PARAMETERS, LOC):
        offset = Decimal(repr(point["cfg"])) - low
        assert offset % step == 0
        assert point["cfg"] <= float(low + width)
