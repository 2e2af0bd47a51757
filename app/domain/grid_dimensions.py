"""What a sweep's grid runs across, down and over pages.

A `SweepPlan` becomes the grid's dimensions in order: one per axis and one for the samples, or
a single one for all of them in zip mode, plus the seeds when they are laid out as a dimension
of their own. Each dimension carries its title, a label and the assigned values for every
position, and the run-index distance between neighbouring positions, so the run a cell shows
follows from its coordinates without expanding the sweep. Also reads a sweep's stored plan
back into a `SweepPlan`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from app.domain.contracts import JsonValue
from app.domain.expansion import Axis, SweepPlan
from app.domain.grid_geometry import SeedLayout
from app.domain.values import format_value


@dataclass(frozen=True, slots=True)
class Dimension:
    title: str
    labels: tuple[str, ...]
    sets: tuple[Mapping[str, JsonValue], ...]  # what each position assigns
    stride: int  # run-index distance between neighbouring positions


# Stands in for "no dimension": one unlabelled position.
NO_DIMENSION = Dimension("", ("",), ({},), 0)


def sweep_plan_from_record(record: Mapping[str, Any]) -> SweepPlan:
    """The plan a sweep was expanded from, read back from its stored JSON (`Sweep.plan`)."""
    axes = tuple(Axis(str(a["param"]), tuple(a["values"])) for a in record.get("axes", ()))
    seeds = tuple(int(s) for s in record.get("seeds") or ())
    seed_param = record.get("seed_param")
    return SweepPlan(
        fixed=dict(record.get("fixed") or {}),
        axes=axes,
        mode="zip" if record.get("mode") == "zip" else "cartesian",
        seed_param=str(seed_param) if seed_param and seeds else None,
        seeds=seeds if seed_param else (),
        samples=tuple(dict(s) for s in record.get("samples") or ()),
        templates=tuple(str(name) for name in record.get("templates") or ()),
    )


def dimensions_of(plan: SweepPlan, seed_layout: SeedLayout) -> tuple[list[Dimension], int]:
    """The grid's dimensions in order, and how many seeds share each cell."""
    seeded = plan.seed_param is not None and bool(plan.seeds)
    per_combination = len(plan.seeds) if seeded else 1
    sources = _sources(plan)
    if plan.mode == "zip" and len(sources) > 1:
        dims = [_zipped(sources, per_combination)]
    else:
        dims = _crossed(sources, per_combination)
    if not seeded:
        return dims, 1
    if seed_layout == "axis":
        return [*dims, _seed_dim(plan)], 1
    return dims, per_combination


_Source = tuple[str, tuple[Mapping[str, JsonValue], ...]]  # a dimension's title and positions


def _sources(plan: SweepPlan) -> list[_Source]:
    sources: list[_Source] = [(a.param, tuple({a.param: v} for v in a.values)) for a in plan.axes]
    if plan.samples:
        sources.append(("sample", tuple(plan.samples)))
    return sources


def _crossed(sources: Sequence[_Source], stride: int) -> list[Dimension]:
    dims = []
    for title, sets in sources:
        dims.append(Dimension(title, tuple(_label(s) for s in sets), sets, stride))
        stride *= len(sets)
    return dims


def _zipped(sources: Sequence[_Source], stride: int) -> Dimension:
    # As expansion does: shorter dimensions cycle so each position of the longest is reached.
    length = max(len(sets) for _, sets in sources)
    merged = tuple(_merge(sets[k % len(sets)] for _, sets in sources) for k in range(length))
    title = " + ".join(title for title, _ in sources)
    return Dimension(title, tuple(_label(s) for s in merged), merged, stride)


def _seed_dim(plan: SweepPlan) -> Dimension:
    name = plan.seed_param or "seed"
    sets = tuple({name: seed} for seed in plan.seeds)
    return Dimension(name, tuple(str(seed) for seed in plan.seeds), sets, 1)


def _merge(parts: Iterable[Mapping[str, JsonValue]]) -> dict[str, JsonValue]:
    merged: dict[str, JsonValue] = {}
    for part in parts:
        merged.update(part)
    return merged


def _label(values: Mapping[str, JsonValue]) -> str:
    if len(values) == 1:
        return format_value(next(iter(values.values())))
    return "\n".join(f"{name}={format_value(value)}" for name, value in values.items())


def seed_legend(plan: SweepPlan) -> str:
    # The values themselves label each image: a list of 16-digit seeds would crowd the title.
    return f"{len(plan.seeds)} × {plan.seed_param} in each cell, each labelled above its image"


def page_keys(
    extra: Sequence[Dimension],
) -> Iterator[tuple[int, dict[str, JsonValue], list[str]]]:
    """Per page in run order (first page dimension fastest): its run-index offset, the values
    it holds and their labels."""
    for reversed_coords in product(*(range(len(d.labels)) for d in reversed(extra))):
        coords = reversed_coords[::-1]
        offset = sum(c * d.stride for c, d in zip(coords, extra, strict=True))
        fixed = _merge(d.sets[c] for c, d in zip(coords, extra, strict=True))
        described = [_describe(d, c) for c, d in zip(coords, extra, strict=True)]
        yield offset, fixed, described


def _describe(dim: Dimension, position: int) -> str:
    label = dim.labels[position].replace("\n", ", ")
    return label if "=" in label else f"{dim.title}={label}"
