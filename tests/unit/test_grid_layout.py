"""Grid geometry: which run each cell shows, where labels go, pages, splits and legibility."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.contracts import JsonValue
from app.domain.expansion import Axis, Mode, SweepPlan, count_runs, expand_sweep
from app.domain.grid_dimensions import sweep_plan_from_record
from app.domain.grid_geometry import (
    DEFAULT_CELL,
    MAX_IMAGE_PIXELS,
    MIN_CELL,
    GridPlan,
    Label,
    PageLayout,
    Rect,
    SeedLayout,
    Size,
    Slot,
)
from app.domain.grid_layout import cell_for, images_per_page, plan_grid
from app.domain.grid_text import ELLIPSIS, FONT_FLOOR, shorten
from app.domain.grid_wrap import SHRINK_FLOOR, fit_text, tokens
from app.domain.values import format_value

CFG = Axis("cfg", (5.0, 7.0, 9.0))
SAMPLER = Axis("sampler_name", ("euler", "dpmpp_2m"))
STEPS = Axis("steps", (10, 20, 30, 40))
SCHEDULER = Axis("scheduler", ("normal", "karras"))


def plan(*axes: Axis, seeds: tuple[int, ...] = (), mode: Mode = "cartesian") -> SweepPlan:
    return SweepPlan({"seed": 0}, axes, mode, "seed" if seeds else None, seeds)


def grid(
    sweep: SweepPlan,
    layout: SeedLayout = "cell",
    *,
    cell: Size = DEFAULT_CELL,
    max_pixels: int = MAX_IMAGE_PIXELS,
    min_cell: int = MIN_CELL,
) -> GridPlan:
    return plan_grid(
        sweep,
        count_runs(sweep),
        seed_layout=layout,
        cell=cell,
        max_pixels=max_pixels,
        min_cell=min_cell,
    )


def labels(page: PageLayout, role: str) -> list[str]:
    return [label.full for label in page.labels if label.role == role]


def slots(page: PageLayout) -> Iterator[Slot]:
    for cell in page.cells:
        yield from cell.slots


def inside(inner: Rect, outer: Rect) -> bool:
    return (
        outer.x <= inner.x
        and outer.y <= inner.y
        and inner.right <= outer.right
        and inner.bottom <= outer.bottom
    )


def overlap(a: Rect, b: Rect) -> bool:
    return a.x < b.right and b.x < a.right and a.y < b.bottom and b.y < a.bottom


def canvas_rect(page: PageLayout) -> Rect:
    return Rect(0, 0, page.canvas.width, page.canvas.height)


def test_two_axes_put_the_first_across_and_the_second_down() -> None:
    page = grid(plan(CFG, SAMPLER)).pages[0]
    assert [[s.index for s in c.slots] for c in page.cells] == [[0], [1], [2], [3], [4], [5]]
    columns = sorted({c.rect.x for c in page.cells})
    rows = sorted({c.rect.y for c in page.cells})
    assert (len(columns), len(rows)) == (3, 2)
    assert labels(page, "column") == ["5", "7", "9"]
    assert labels(page, "row") == ["euler", "dpmpp_2m"]
    assert labels(page, "axis") == ["cfg", "sampler_name"]
    assert [label.vertical for label in page.labels if label.role == "axis"] == [False, True]


def test_a_three_by_two_page_holds_every_cell_and_label_without_overlap() -> None:
    page = grid(plan(CFG, SAMPLER), cell=Size(200, 200)).pages[0]
    rects = [c.rect for c in page.cells] + [
        label.rect for label in page.labels if label.role != "axis"
    ]
    assert all(inside(rect, canvas_rect(page)) for rect in rects)
    assert not any(overlap(a, b) for n, a in enumerate(rects) for b in rects[n + 1 :])
    assert all(c.rect.width == c.rect.height == 200 for c in page.cells)
    # Header areas hug the cells: each column label sits right above its column.
    columns = [label for label in page.labels if label.role == "column"]
    top_row = [c.rect for c in page.cells[:3]]
    assert [(label.rect.x, label.rect.width) for label in columns] == [
        (r.x, r.width) for r in top_row
    ]
    assert all(label.rect.bottom <= top_row[0].y for label in columns)


def test_one_axis_is_a_single_strip_with_a_label_over_each_cell() -> None:
    page = grid(plan(CFG)).pages[0]
    assert len({c.rect.y for c in page.cells}) == 1
    assert labels(page, "column") == ["5", "7", "9"]
    assert labels(page, "row") == []


def test_a_long_strip_wraps_into_rows_each_with_its_headers() -> None:
    values = tuple(range(40))
    page = grid(plan(Axis("steps", values))).pages[0]
    assert len({c.rect.y for c in page.cells}) == 3
    assert len({c.rect.x for c in page.cells}) == 16
    headers = [label for label in page.labels if label.role == "column"]
    assert [label.full for label in headers] == [str(v) for v in values]
    for header, cell in zip(headers, page.cells, strict=True):
        assert (header.rect.x, header.rect.bottom) == (cell.rect.x, cell.rect.y)


def test_no_axes_is_one_cell() -> None:
    result = grid(plan())
    assert len(result.pages) == 1
    assert [[s.index for s in c.slots] for c in result.pages[0].cells] == [[0]]


def test_three_axes_give_one_page_per_value_of_the_third_and_an_index() -> None:
    result = grid(plan(CFG, SAMPLER, STEPS))
    assert [page.fixed for page in result.pages] == [{"steps": s} for s in STEPS.values]
    assert [page.number for page in result.pages] == [1, 2, 3, 4]
    assert [page.title for page in result.pages] == ["steps=10", "steps=20", "steps=30", "steps=40"]
    second = [s.index for s in slots(result.pages[1])]
    assert second == list(range(6, 12))
    index = result.index_page
    assert index is not None
    assert (index.kind, index.number) == ("index", 0)
    assert [s.index for s in slots(index)] == [1, 2, 3, 4]
    assert labels(index, "column") == ["steps=10", "steps=20", "steps=30", "steps=40"]


def test_four_axes_page_over_the_third_fastest_then_the_fourth() -> None:
    result = grid(plan(CFG, SAMPLER, STEPS, SCHEDULER))
    assert len(result.pages) == 8
    assert [dict(page.fixed) for page in result.pages[:5]] == [
        {"steps": 10, "scheduler": "normal"},
        {"steps": 20, "scheduler": "normal"},
        {"steps": 30, "scheduler": "normal"},
        {"steps": 40, "scheduler": "normal"},
        {"steps": 10, "scheduler": "karras"},
    ]


def test_seeds_in_cell_layout_are_sub_cells_of_one_cell() -> None:
    page = grid(plan(CFG, SAMPLER, seeds=(1, 2, 3, 4)), cell=Size(100, 100)).pages[0]
    assert len(page.cells) == 6
    first = page.cells[0]
    assert [s.index for s in first.slots] == [0, 1, 2, 3]
    assert all(inside(s.rect, first.rect) for s in first.slots)
    assert {(s.rect.width, s.rect.height) for s in first.slots} == {(100, 100)}
    assert len({(s.rect.x, s.rect.y) for s in first.slots}) == 4  # a 2 × 2 block
    assert not any(overlap(a.rect, b.rect) for a in first.slots for b in first.slots if a != b)
    assert "4 × seed in each cell" in labels(page, "title")[0]


def test_each_seed_sub_cell_has_a_label_band_with_its_seed_above_it() -> None:
    seeds = (8734561234567890, 2, 3)
    page = grid(plan(CFG, SAMPLER, seeds=seeds), cell=Size(128, 128)).pages[0]
    bands = [label for label in page.labels if label.role == "seed"]
    assert len(bands) == 6 * 3
    every_slot = [slot for cell in page.cells for slot in cell.slots]
    for band, slot in zip(bands, every_slot, strict=True):
        assert band.full == str(seeds[slot.index % 3])
        assert (band.rect.x, band.rect.width, band.rect.bottom) == (
            slot.rect.x,
            slot.rect.width,
            slot.rect.y,
        )
        assert band.rect.height >= band.font_px
        assert not any(overlap(band.rect, other.rect) for other in every_slot)
    cell = page.cells[0].rect
    assert all(inside(band.rect, cell) for band in bands[:3])


def test_a_single_seed_per_cell_needs_no_label_band() -> None:
    page = grid(plan(CFG, seeds=(8734561234567890,)), cell=Size(128, 128)).pages[0]
    assert labels(page, "seed") == []


def test_seeds_as_an_axis_go_down_under_one_axis_and_over_pages_under_two() -> None:
    one = grid(plan(CFG, seeds=(7, 8)), "axis").pages[0]
    assert labels(one, "row") == ["7", "8"]
    assert [s.index for s in slots(one)] == [0, 2, 4, 1, 3, 5]
    two = grid(plan(CFG, SAMPLER, seeds=(7, 8)), "axis")
    assert [page.fixed for page in two.pages] == [{"seed": 7}, {"seed": 8}]


def test_zip_mode_is_one_strip_labelled_with_every_parameter() -> None:
    sweep = plan(CFG, SAMPLER, mode="zip")
    result = grid(sweep)
    assert len(result.pages) == 1
    page = result.pages[0]
    assert [s.index for s in slots(page)] == [0, 1, 2]
    # As expansion: the shorter axis cycles.
    assert labels(page, "column") == [
        "cfg=5\nsampler_name=euler",
        "cfg=7\nsampler_name=dpmpp_2m",
        "cfg=9\nsampler_name=euler",
    ]
    assert labels(page, "axis") == ["cfg + sampler_name"]


def test_samples_are_a_dimension_labelled_with_their_values() -> None:
    samples: tuple[Mapping[str, JsonValue], ...] = (
        {"cfg": 3.5, "steps": 12},
        {"cfg": 8.0, "steps": 30},
    )
    sweep = SweepPlan({}, (), samples=samples)
    page = grid(sweep).pages[0]
    assert labels(page, "column") == ["cfg=3.5\nsteps=12", "cfg=8\nsteps=30"]


def test_cells_past_the_run_count_are_left_empty() -> None:
    result = plan_grid(plan(CFG, SAMPLER), 4)
    assert [len(c.slots) for c in result.pages[0].cells] == [1, 1, 1, 1, 0, 0]


def test_a_page_over_the_budget_gets_smaller_cells_first() -> None:
    big = plan(Axis("a", tuple(range(40))), Axis("b", tuple(range(25))))
    result = grid(big, cell=Size(512, 512))
    assert len(result.pages) == 1
    assert result.pages[0].canvas.pixels <= MAX_IMAGE_PIXELS
    assert 256 < result.cell.width < 512


def test_a_page_still_over_the_budget_at_the_smallest_cell_splits_into_parts() -> None:
    big = plan(Axis("a", tuple(range(30))), Axis("b", tuple(range(20))))
    budget = 4_000_000
    result = grid(big, cell=Size(256, 256), max_pixels=budget, min_cell=128)
    assert result.cell == Size(128, 128)
    assert len(result.pages) > 1
    assert all(page.canvas.pixels <= budget for page in result.pages)
    shown = sorted(s.index for page in result.pages for s in slots(page))
    assert shown == list(range(600))
    assert all(page.title for page in result.pages)  # which part it is
    assert all(labels(page, "title") for page in result.pages)
    assert result.index_page is not None


def test_cells_keep_the_images_aspect() -> None:
    page = grid(plan(CFG), cell=cell_for(Size(832, 1216), 3)).pages[0]
    cell = page.cells[0].rect
    assert cell.height > cell.width
    assert math.isclose(cell.width / cell.height, 832 / 1216, rel_tol=0.01)


def test_cell_for_prefers_big_cells_for_small_grids_and_never_upscales() -> None:
    assert cell_for(None, 6) == Size(512, 512)
    assert cell_for(None, 100) == Size(256, 256)
    assert cell_for(Size(300, 200), 6) == Size(300, 200)
    assert cell_for(Size(2048, 1024), 100) == Size(256, 128)


def test_labels_stay_legible_at_the_smallest_cells_and_grow_with_them() -> None:
    small = grid(plan(CFG, SAMPLER), cell=Size(64, 64)).pages[0]
    large = grid(plan(CFG, SAMPLER), cell=Size(512, 512)).pages[0]
    assert min(label.font_px for label in small.labels) >= FONT_FLOOR
    assert max(label.font_px for label in large.labels) > FONT_FLOOR
    assert all(label.rect.height >= label.font_px for label in small.labels)


def test_a_long_prompt_is_shortened_for_show_and_kept_whole() -> None:
    prompt = "a photograph of an astronaut riding a horse on the moon, " * 6 + "by Rembrandt"
    page = grid(plan(Axis("prompt", (prompt, "a cat"))), cell=Size(256, 256)).pages[0]
    label = next(lb for lb in page.labels if lb.role == "column" and lb.full == prompt)
    assert len(label.short) < len(prompt)
    assert label.short.startswith("a photograph")
    assert label.short.endswith("by Rembrandt")
    assert "…" in label.short
    assert 1 < label.lines <= 3


def test_shorten_keeps_short_text_and_cuts_long_text_to_its_budget() -> None:
    assert shorten("euler", 10, 1) == "euler"
    cut = shorten("one two three four five six seven eight nine ten", 20, 1)
    assert len(cut) <= 20
    assert (cut[:3], cut[-3:]) == ("one", "ten")
    assert shorten("cfg=5\nsteps=20\nsampler_name=euler", 30, 2) == "cfg=5\nsteps=20…"


def test_images_per_page_counts_the_first_two_dimensions_and_seeds() -> None:
    assert images_per_page(plan(CFG, SAMPLER, STEPS, seeds=(1, 2))) == 12
    assert images_per_page(plan(CFG, SAMPLER, STEPS, seeds=(1, 2)), "axis") == 6


def test_the_stored_plan_reads_back_as_the_plan_that_was_expanded() -> None:
    record = {
        "fixed": {"steps": 20},
        "axes": [{"param": "cfg", "values": [5.0, 7.0]}, {"param": "sampler", "values": ["a"]}],
        "mode": "zip",
        "seed_param": "seed",
        "seeds": [3, 4],
        "samples": [],
        "sampling": None,
    }
    read = sweep_plan_from_record(record)
    assert read == SweepPlan(
        {"steps": 20}, (Axis("cfg", (5.0, 7.0)), Axis("sampler", ("a",))), "zip", "seed", (3, 4)
    )


axis_sizes = st.lists(st.integers(1, 4), max_size=4)


@given(
    sizes=axis_sizes,
    seeds=st.integers(0, 3),
    layout=st.sampled_from(["cell", "axis"]),
    mode=st.sampled_from(["cartesian", "zip"]),
)
def test_every_run_is_shown_once_under_the_labels_of_its_values(
    sizes: list[int], seeds: int, layout: SeedLayout, mode: Mode
) -> None:
    axes = tuple(Axis(f"p{n}", tuple(range(size))) for n, size in enumerate(sizes))
    sweep = plan(*axes, seeds=tuple(range(100, 100 + seeds)), mode=mode)
    result = grid(sweep, layout, cell=Size(64, 64))
    runs = {run.index: run.assignment for run in expand_sweep(sweep)}
    shown = [s.index for page in result.pages for s in slots(page)]
    assert sorted(shown) == sorted(runs)
    for page in result.pages:
        for cell in page.cells:
            for slot in cell.slots:
                assignment = runs[slot.index]
                assert all(assignment[k] == v for k, v in page.fixed.items())
                header = _column_header(page, cell.rect)
                if header is not None and mode == "cartesian" and header.full:
                    assert header.full in _labels_of(assignment)


def _column_header(page: PageLayout, rect: Rect) -> Label | None:
    above = [
        label
        for label in page.labels
        if label.role == "column" and label.rect.x == rect.x and label.rect.bottom <= rect.y
    ]
    return max(above, key=lambda label: label.rect.y, default=None)


def _labels_of(assignment: Mapping[str, JsonValue]) -> set[str]:
    return {format_value(value) for value in assignment.values()}


@pytest.mark.parametrize("count", [1, 7, 50, 400])
def test_budget_is_respected_for_strips_of_any_length(count: int) -> None:
    result = grid(plan(Axis("p", tuple(range(count)))), max_pixels=3_000_000)
    assert all(page.canvas.pixels <= 3_000_000 for page in result.pages)
    assert sorted(s.index for page in result.pages for s in slots(page)) == list(range(count))


# --- wrapping at separators (measured by a fixed-width stand-in for a font) ---


def fixed_width(text: str, px: int) -> float:
    return len(text) * px * 0.55


SAMPLERS = (
    "euler_ancestral",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde_gpu",
    "dpm_2_ancestral",
    "res_multistep_cfg_pp",
    "uni_pc_bh2",
    "ddim",
    "LCM-LoRA sdxl-v1",
)


def breaks_after_separators(text: str, lines: tuple[str, ...]) -> bool:
    """Whether `lines` are `text` broken only after a space, `_` or `-`."""
    position = 0
    for n, line in enumerate(lines):
        position = text.index(line, position) + len(line)
        last = n == len(lines) - 1
        if not last and line[-1] not in "_-" and text[position] != " ":
            return False
    return position == len(text)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("width", [56, 70, 90, 120, 160])
def test_no_line_ends_inside_a_token(name: str, width: int) -> None:
    fitted = fit_text(name, width, 200, 14, fixed_width)
    assert not fitted.shortened
    assert breaks_after_separators(name, fitted.lines), fitted.lines
    assert all(fixed_width(line, fitted.font_px) <= width for line in fitted.lines)


def test_the_separator_stays_at_the_end_of_the_line_before_the_break() -> None:
    fitted = fit_text("dpmpp_2m_sde", 70, 200, 14, fixed_width)
    assert fitted.lines == ("dpmpp_2m_", "sde")
    assert fitted.font_px == 14
    assert tokens("dpmpp_2m_sde") == ["dpmpp_", "2m_", "sde"]
    assert tokens("a cat - b") == ["a ", "cat - ", "b"]


def test_a_token_wider_than_the_line_shrinks_the_label_instead_of_splitting() -> None:
    fitted = fit_text("euler_ancestral", 60, 200, 14, fixed_width)
    assert fitted.lines == ("euler_", "ancestral")
    assert SHRINK_FLOOR <= fitted.font_px < 14
    assert fixed_width("ancestral", fitted.font_px) <= 60 < fixed_width("ancestral", 14)


def test_text_too_long_at_every_size_is_shortened_between_tokens() -> None:
    prompt = "a photograph of an astronaut riding a horse on the moon, " * 6 + "by Rembrandt"
    fitted = fit_text(prompt, 200, 60, 18, fixed_width)
    assert fitted.shortened
    shown = " ".join(fitted.lines)
    assert shown.startswith("a photograph")
    assert shown.endswith("by Rembrandt")
    assert ELLIPSIS in shown
    words = set(prompt.split())
    assert all(word in words or word == ELLIPSIS for word in shown.split())
    assert all(fixed_width(line, fitted.font_px) <= 200 for line in fitted.lines)


def test_a_lone_token_too_wide_even_at_the_floor_keeps_its_start_and_end() -> None:
    fitted = fit_text("8734561234567890", 60, 20, 11, fixed_width)
    (line,) = fitted.lines
    assert fitted.font_px == SHRINK_FLOOR
    assert line.startswith("87")
    assert line.endswith("90")
    assert ELLIPSIS in line
    assert fixed_width(line, fitted.font_px) <= 60
