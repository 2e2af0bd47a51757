"""What a sweep will cost before it runs: its sampler steps and megapixels, read from the
graph and each run's values, and its GPU time and finish from the workflow's past runs on
the pool. Pure, no I/O: the caller reads the history, the pool and the queue.

The work of a run is steps × megapixels: a sampler's time grows with both. A workflow
whose graph gives only one of them (no sampler, or a size set by a linked node) is measured
in that one, and one with neither in runs; its history is measured in the same unit, so
the rate stays comparable. Time is what an instance is busy with a run: ComfyUI executes
one prompt at a time per instance, and the slots only keep the next ones waiting there.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from app.domain.contracts import Contract, JsonValue

WorkUnit = Literal["step·megapixel", "step", "megapixel", "run"]
NO_HISTORY = "no history yet"
NO_INSTANCES = "no instance can serve this sweep"


@dataclass(frozen=True, slots=True)
class InputSource:
    """A node input's value in a run: the bound parameter's if one drives it, else the
    graph's literal."""

    param: str | None
    literal: JsonValue

    def value(self, assignment: Mapping[str, JsonValue]) -> JsonValue:
        return self.literal if self.param is None else assignment.get(self.param, self.literal)


@dataclass(frozen=True, slots=True)
class WorkShape:
    """Where a run's steps and output size come from; None where the graph cannot tell."""

    # Per sampler: steps, start_at_step and end_at_step (KSamplerAdvanced runs a range).
    steps: tuple[tuple[InputSource, InputSource, InputSource], ...] | None
    sizes: tuple[tuple[InputSource, InputSource, InputSource], ...] | None

    @property
    def params(self) -> tuple[str, ...]:
        """The parameters the steps and sizes depend on."""
        sources = [*(self.steps or ()), *(self.sizes or ())]
        return tuple(sorted({s.param for group in sources for s in group if s.param}))

    @property
    def unit(self) -> WorkUnit:
        if self.steps is not None and self.sizes is not None:
            return "step·megapixel"
        if self.steps is not None:
            return "step"
        return "megapixel" if self.sizes is not None else "run"


def work_shape(graph: Mapping[str, Any], contract: Contract) -> WorkShape:
    """Samplers are the nodes with a `steps` input (KSampler, KSamplerAdvanced,
    BasicScheduler); sizes come from the empty latents and images (`Empty…` nodes with a
    width and a height) that every later node works at. A linked value is unknown here."""
    bound = {
        (binding.node_id, binding.input_name): name
        for name, parameter in contract.parameters.items()
        for binding in parameter.bindings
    }
    steps: list[tuple[InputSource | None, ...]] = []
    sizes: list[tuple[InputSource | None, ...]] = []
    for node_id, node in graph.items():
        inputs = node.get("inputs") or {}
        node_bound = {name: bound.get((str(node_id), name)) for name in inputs}
        if "steps" in inputs:
            names = ("steps", "start_at_step", "end_at_step")
            steps.append(tuple(_source(inputs, node_bound, name) for name in names))
        if str(node.get("class_type", "")).startswith("Empty") and {"width", "height"} <= {*inputs}:
            names = ("width", "height", "batch_size")
            sizes.append(tuple(_source(inputs, node_bound, name) for name in names))
    return WorkShape(_known(steps), _known(sizes))


def _source(
    inputs: Mapping[str, Any], bound: Mapping[str, str | None], name: str
) -> InputSource | None:
    """None for a value another node computes. Absent inputs take what ComfyUI's absence
    means: one image in a batch, a step range from the first step to the last."""
    param, value = bound.get(name), inputs.get(name, _ABSENT.get(name))
    return None if param is None and _is_link(value) else InputSource(param, value)


_ABSENT: dict[str, JsonValue] = {"batch_size": 1, "start_at_step": 0, "end_at_step": None}


def _known(
    found: Sequence[tuple[InputSource | None, ...]],
) -> tuple[tuple[InputSource, InputSource, InputSource], ...] | None:
    if not found or any(None in sources for sources in found):
        return None
    return tuple((a, b, c) for a, b, c in found if a and b and c)


def _is_link(value: object) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], str)


def steps_of(shape: WorkShape, assignment: Mapping[str, JsonValue]) -> int | None:
    if shape.steps is None:
        return None
    total = 0
    for sources in shape.steps:
        steps, start, end = (_number(source.value(assignment)) for source in sources)
        if steps is None or start is None:
            return None
        last = steps if end is None else min(end, steps)
        total += max(int(last - start), 0)
    return total


def megapixels_of(shape: WorkShape, assignment: Mapping[str, JsonValue]) -> float | None:
    if shape.sizes is None:
        return None
    total = 0.0
    for sources in shape.sizes:
        width, height, batch = (_number(source.value(assignment)) for source in sources)
        if width is None or height is None or batch is None:
            return None
        total += width * height * batch / 1_000_000
    return total


def _number(value: JsonValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def work_of(shape: WorkShape, assignment: Mapping[str, JsonValue]) -> float:
    """A run's work in `shape.unit`."""
    steps, megapixels = steps_of(shape, assignment), megapixels_of(shape, assignment)
    return (1.0 if steps is None else steps) * (1.0 if megapixels is None else megapixels)


@dataclass(frozen=True, slots=True)
class SweepWork:
    runs: int
    steps: int | None
    megapixels: float | None
    unit: WorkUnit
    work: float


def sweep_work(
    shape: WorkShape, fixed: Mapping[str, JsonValue], runs: Iterable[Mapping[str, JsonValue]]
) -> SweepWork:
    """The work of runs that vary `runs` (their own values) over `fixed`. Each distinct
    combination of the values the shape reads is worked out once: a sweep of 10,000 runs
    mostly varies seeds, which no step count or size depends on."""
    names = shape.params
    known: dict[tuple[JsonValue, ...], tuple[int, float, float]] = {}
    count, steps, megapixels, work = 0, 0, 0.0, 0.0
    for own in runs:
        values = tuple(own.get(name, fixed.get(name)) for name in names)
        if values not in known:
            assignment = dict(zip(names, values, strict=True))
            known[values] = (
                steps_of(shape, assignment) or 0,
                megapixels_of(shape, assignment) or 0.0,
                work_of(shape, assignment),
            )
        run_steps, run_megapixels, run_work = known[values]
        count += 1
        steps += run_steps
        megapixels += run_megapixels
        work += run_work
    return SweepWork(
        count,
        None if shape.steps is None else steps,
        None if shape.sizes is None else round(megapixels, 6),
        shape.unit,
        work,
    )


@dataclass(frozen=True, slots=True)
class PastRun:
    """A finished run of the workflow: where it ran, from its claim until its prompt was
    done (or the run finished), and its work."""

    instance: str
    started_at: datetime
    ended_at: datetime
    work: float


def busy_seconds(history: Iterable[PastRun]) -> list[tuple[float, float]]:
    """(seconds, work) per run, counting only the time its instance spent on it: a prompt
    waiting behind the one before it on the same instance is not busy until that one ends,
    so the wait counts once, for the run that was executing."""
    by_instance: dict[str, list[PastRun]] = {}
    for run in history:
        by_instance.setdefault(run.instance, []).append(run)
    busy: list[tuple[float, float]] = []
    for runs in by_instance.values():
        previous_end: datetime | None = None
        for run in sorted(runs, key=lambda r: (r.ended_at, r.started_at)):
            began = run.started_at if previous_end is None else max(run.started_at, previous_end)
            busy.append((max((run.ended_at - began).total_seconds(), 0.0), run.work))
            previous_end = run.ended_at
    return busy


@dataclass(frozen=True, slots=True)
class Spread:
    median: float
    p90: float

    def times(self, factor: float) -> Spread:
        return Spread(self.median * factor, self.p90 * factor)


def seconds_per_work(history: Iterable[PastRun]) -> Spread | None:
    """Median and 90th percentile (nearest rank) of seconds per unit of work."""
    rates = sorted(seconds / work for seconds, work in busy_seconds(history) if work > 0)
    if not rates:
        return None
    p90 = rates[max(math.ceil(0.9 * len(rates)) - 1, 0)]
    return Spread(statistics.median(rates), p90)


@dataclass(frozen=True, slots=True)
class Estimate:
    work: SweepWork
    model_loads: int
    history_runs: int
    seconds_per_work: Spread | None
    gpu_seconds: Spread | None
    instances: int
    makespan_s: float | None
    queue_ahead_runs: int
    queue_wait_s: float | None
    finish_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Pool:
    """What the estimate needs of the pool and its queue now."""

    instances: int  # those that may take the sweep's runs
    queue_ahead_runs: int  # queued runs that go first: equal or higher priority
    now: datetime


def estimate_sweep(
    work: SweepWork, model_loads: int, history: Sequence[PastRun], pool: Pool
) -> Estimate:
    """GPU time is the median (and p90) rate times the work; the sweep's own time spreads it
    over the instances; the queue ahead waits the sweep's mean run time per run, also
    spread. Without history or instances the times are None and `reason` says why."""
    rate = seconds_per_work(history)
    gpu = None if rate is None else rate.times(work.work)
    reason = NO_HISTORY if gpu is None else NO_INSTANCES if pool.instances < 1 else None
    makespan = wait = finish = None
    if gpu is not None and reason is None:
        makespan = gpu.median / pool.instances
        per_run = gpu.median / work.runs if work.runs else 0.0
        wait = pool.queue_ahead_runs * per_run / pool.instances
        finish = pool.now + timedelta(seconds=wait + makespan)
    return Estimate(
        work=work,
        model_loads=model_loads,
        history_runs=len(history),
        seconds_per_work=rate,
        gpu_seconds=gpu,
        instances=pool.instances,
        makespan_s=makespan,
        queue_ahead_runs=pool.queue_ahead_runs,
        queue_wait_s=wait,
        finish_at=finish,
        reason=reason,
    )
