"""A sweep's estimate: steps and megapixels read from the graph and the run's values, the
time an instance was busy with each past run, and the GPU time and finish that follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.domain.contracts import contract_defaults
from app.domain.estimates import (
    NO_HISTORY,
    NO_INSTANCES,
    PastRun,
    Pool,
    busy_seconds,
    estimate_sweep,
    megapixels_of,
    seconds_per_work,
    steps_of,
    sweep_work,
    work_shape,
)
from app.registry import Workflow, load_registry

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "workflows", ROOT / "params")
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def workflow(name: str) -> Workflow:
    found = REGISTRY.get(name)
    assert found is not None
    return found


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_steps_and_megapixels_come_from_the_runs_values_over_the_graphs() -> None:
    sd15 = workflow("sd15-txt2img")
    shape = work_shape(sd15.graph, sd15.contract)
    values = {**contract_defaults(sd15.contract), "steps": 30, "width": 1024, "height": 512}
    assert shape.unit == "step·megapixel"
    assert steps_of(shape, values) == 30
    assert megapixels_of(shape, values) == pytest.approx(0.524288)


def test_every_sampler_counts_and_an_advanced_one_only_its_step_range() -> None:
    def default_steps(name: str) -> int | None:
        found = workflow(name)
        return steps_of(work_shape(found.graph, found.contract), contract_defaults(found.contract))

    assert default_steps("sd15-hires-fix") == 20 + 15
    # Base 0-20 of 25, refiner 20 to the end: 25 steps in all, not 50.
    assert default_steps("sdxl-base-refiner") == 25


def test_a_workflow_without_sampler_has_no_steps_and_is_measured_in_megapixels() -> None:
    demo = workflow("demo-noise")
    shape = work_shape(demo.graph, demo.contract)
    assert shape.unit == "megapixel"
    work = sweep_work(shape, contract_defaults(demo.contract), [{"width": 1000}] * 3)
    assert (work.runs, work.steps) == (3, None)
    assert work.megapixels == pytest.approx(3 * 1000 * 512 / 1e6)
    assert work.work == pytest.approx(work.megapixels)


def test_a_size_another_node_computes_is_unknown() -> None:
    demo = workflow("demo-noise")
    graph = {**demo.graph, "9": {"class_type": "Number", "inputs": {}}}
    graph["1"] = {**graph["1"], "inputs": {**graph["1"]["inputs"], "width": ["9", 0]}}
    bindings = {p: v for p, v in demo.contract.parameters.items() if p != "width"}
    contract = type(demo.contract)(demo.contract.workflow, bindings, demo.contract.schema)
    assert work_shape(graph, contract).sizes is None
    assert work_shape(graph, contract).unit == "run"


def test_sweep_work_sums_steps_times_megapixels_run_by_run() -> None:
    sd15 = workflow("sd15-txt2img")
    defaults = contract_defaults(sd15.contract)
    runs = [{"steps": 10, "width": 1000, "height": 1000, "seed": 1}, {"steps": 20, "seed": 2}]
    work = sweep_work(work_shape(sd15.graph, sd15.contract), defaults, runs)
    assert work.steps == 30
    assert work.work == pytest.approx(10 * 1.0 + 20 * 0.262144)


def test_a_prompt_waiting_behind_another_on_its_instance_is_busy_only_once_that_ends() -> None:
    history = [
        PastRun("gpu1", at(0), at(2), 1.0),
        PastRun("gpu1", at(0), at(4), 1.0),  # queued behind the first: 2 s of its own
        PastRun("gpu2", at(1), at(4), 1.0),
    ]
    assert sorted(seconds for seconds, _ in busy_seconds(history)) == [2.0, 2.0, 3.0]


def test_rates_are_the_median_and_90th_percentile_per_unit_of_work() -> None:
    history = [PastRun(f"gpu{n}", at(0), at(n + 1), 2.0) for n in range(10)]
    rate = seconds_per_work(history)
    assert rate is not None
    assert rate.median == pytest.approx(2.75)  # (5 + 6) / 2 / 2
    assert rate.p90 == pytest.approx(4.5)  # 9th of 10: 9 s / 2


def test_without_history_the_times_are_null_with_the_reason() -> None:
    demo = workflow("demo-noise")
    work = sweep_work(work_shape(demo.graph, demo.contract), contract_defaults(demo.contract), [{}])
    estimate = estimate_sweep(work, 0, [], Pool(2, 0, T0))
    assert (estimate.gpu_seconds, estimate.makespan_s, estimate.finish_at) == (None, None, None)
    assert estimate.reason == NO_HISTORY


def test_gpu_time_spreads_over_the_instances_after_the_queue_ahead() -> None:
    sd15 = workflow("sd15-txt2img")
    runs = [{"steps": 10, "width": 1000, "height": 1000, "seed": n} for n in range(8)]
    defaults = contract_defaults(sd15.contract)
    work = sweep_work(work_shape(sd15.graph, sd15.contract), defaults, runs)  # 80 step·MP
    history = [PastRun("gpu1", at(n), at(n + 1), 20.0) for n in range(5)]  # 0.05 s per unit
    estimate = estimate_sweep(work, 1, history, Pool(2, 4, T0))
    assert estimate.gpu_seconds is not None
    assert estimate.gpu_seconds.median == pytest.approx(4.0)
    assert estimate.makespan_s == pytest.approx(2.0)
    assert estimate.queue_wait_s == pytest.approx(4 * 0.5 / 2)  # 4 runs ahead at 0.5 s each
    assert estimate.finish_at == at(3.0)
    assert estimate.history_runs == 5
    assert estimate.reason is None


def test_with_no_instance_to_run_it_there_is_no_finish() -> None:
    history = [PastRun("gpu1", at(0), at(1), 1.0)]
    demo = workflow("demo-noise")
    work = sweep_work(work_shape(demo.graph, demo.contract), contract_defaults(demo.contract), [{}])
    estimate = estimate_sweep(work, 0, history, Pool(0, 0, T0))
    assert estimate.gpu_seconds is not None
    assert (estimate.makespan_s, estimate.reason) == (None, NO_INSTANCES)
