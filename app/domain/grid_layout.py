"""Grid geometry: which run every cell of every page shows, and where each label and cell goes.

Owns the arithmetic of comparison grids, never their pixels: from a sweep plan, its run count
and a cell size it computes frozen layouts that `app.grids.render` draws. The first grid
dimension runs across (X), the second down (Y), the rest make pages (one per combination,
in run order); seeds are either sub-cells of each cell or a dimension of their own. A page
whose canvas would pass the pixel budget first gets smaller cells (down to `MIN_CELL`), then
is split by columns and rows. Text is measured by estimate (no fonts in the domain); the
renderer fits it with real metrics (`grid_wrap`), drawing it smaller if an estimate was
optimistic.

This module places pages, cells and labels. The value types it returns live in
`grid_geometry`, the dimensions in `grid_dimensions`, band and cell sizes in `grid_frames`,
and text estimates in `grid_text`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from app.domain.contracts import JsonValue
from app.domain.expansion import SweepPlan
from app.domain.grid_dimensions import (
    NO_DIMENSION,
    Dimension,
    dimensions_of,
    page_keys,
    seed_legend,
)
from app.domain.grid_frames import (
    Frame,
    FrameStyle,
    GridRequest,
    fitted_frame,
    scaled_to,
    strip_columns,
    strip_frame,
    strip_pixels,
    table_frame,
    table_pixels,
)
from app.domain.grid_geometry import (
    DEFAULT_CELL,
    INDEX_PREVIEW,
    MAX_IMAGE_PIXELS,
    MIN_CELL,
    Cell,
    GridPlan,
    Label,
    LabelRole,
    PageLayout,
    Rect,
    SeedLayout,
    Size,
    Slot,
)
from app.domain.grid_text import shorten

# --- public entry points ---


def plan_grid(
    plan: SweepPlan,
    run_count: int,
    *,
    seed_layout: SeedLayout = "cell",
    cell: Size = DEFAULT_CELL,
    title: str = "",
    max_pixels: int = MAX_IMAGE_PIXELS,
    min_cell: int = MIN_CELL,
) -> GridPlan:
    """Every page of the sweep's grid, and an index page when there are several."""
    dims, per_cell = dimensions_of(plan, seed_layout)
    x, y = [*dims, NO_DIMENSION, NO_DIMENSION][:2]
    strip = len(dims) < 2 and len(x.labels) > 1
    legend = seed_legend(plan) if per_cell > 1 else ""
    slot_labels = tuple(str(seed) for seed in plan.seeds) if per_cell > 1 else ()
    titled = bool(title or legend or len(dims) > 2)
    request = GridRequest(title, run_count, legend, titled, slot_labels)

    def make(thumb: Size, shared: GridRequest = request) -> Frame:
        if strip:
            return strip_frame(x, thumb, per_cell, shared)
        return table_frame(x, y, thumb, per_cell, shared)

    pixels = strip_pixels(x) if strip else table_pixels(x, y)
    frame, chosen = fitted_frame(make, cell, pixels, max_pixels, min_cell)
    if pixels(frame) > max_pixels and not request.titled:
        # The page splits: each part needs a title band to say which part it is.
        request = replace(request, titled=True)
        frame = make(chosen, request)
    if strip:
        pages = list(_strip_pages(frame, x, dims[2:], request, max_pixels))
    else:
        pages = list(_table_pages(frame, x, y, dims[2:], request, max_pixels))
    numbered = tuple(replace(page, number=n) for n, page in enumerate(pages, start=1))
    index = _index_page(numbered, max_pixels, min_cell) if len(numbered) > 1 else None
    return GridPlan(chosen, numbered, index)


def cell_for(image: Size | None, cells: int) -> Size:
    """The cell size to ask for: a long side of 512 for small grids, 256 beyond 36 cells,
    with the images' aspect, never larger than the images themselves."""
    long_side = 512 if cells <= 36 else 256
    if image is None or image.width <= 0 or image.height <= 0:
        return Size(long_side, long_side)
    long_side = max(MIN_CELL, min(long_side, max(image.width, image.height)))
    return scaled_to(image, long_side)


def slot_of(grid: GridPlan, index: int) -> Slot | None:
    """Where run `index` is drawn on its page; None when no page shows it (an index past the
    sweep's runs). The index page's slots are pages, not runs, and are not searched."""
    return slots_by_index(grid).get(index)


def slots_by_index(grid: GridPlan) -> dict[int, Slot]:
    """Every run's slot, by run index (its first, as `slot_of` finds it): for looking up many
    runs' slots in one plan."""
    slots: dict[int, Slot] = {}
    for page in grid.pages:
        for cell in page.cells:
            for slot in cell.slots:
                slots.setdefault(slot.index, slot)
    return slots


def images_per_page(plan: SweepPlan, seed_layout: SeedLayout = "cell") -> int:
    """How many images one unsplit page shows: the first two dimensions, seeds included."""
    dims, per_cell = dimensions_of(plan, seed_layout)
    return math.prod(len(dim.labels) for dim in dims[:2]) * per_cell


# --- pages ---


def _table_pages(
    frame: Frame,
    x: Dimension,
    y: Dimension,
    extra: Sequence[Dimension],
    request: GridRequest,
    max_pixels: int,
) -> Iterator[PageLayout]:
    cols, rows = _fit(len(x.labels), len(y.labels), frame, max_pixels)
    col_chunks = _chunks(len(x.labels), cols)
    row_chunks = _chunks(len(y.labels), rows)
    for offset, fixed, described in page_keys(extra):
        for row_range in row_chunks:
            for col_range in col_chunks:
                part = _part(x, col_range, len(col_chunks)) + _part(y, row_range, len(row_chunks))
                page_title = " · ".join([*described, *part])
                yield _table_page(
                    frame, x, y, (col_range, row_range), offset, _Page(page_title, fixed), request
                )


def _strip_pages(
    frame: Frame, x: Dimension, extra: Sequence[Dimension], request: GridRequest, max_pixels: int
) -> Iterator[PageLayout]:
    cols = strip_columns(len(x.labels))
    fit_cols, fit_rows = _fit(cols, math.ceil(len(x.labels) / cols), frame, max_pixels)
    per_page = fit_cols * fit_rows
    chunks = _chunks(len(x.labels), per_page)
    for offset, fixed, described in page_keys(extra):
        for positions in chunks:
            part = _part(x, positions, len(chunks))
            page = _Page(" · ".join([*described, *part]), fixed)
            yield _strip_page(frame, x, positions, min(fit_cols, cols), offset, page, request)


@dataclass(frozen=True)
class _Page:
    title: str
    fixed: Mapping[str, JsonValue]


def _fit(cols: int, rows: int, frame: Frame, max_pixels: int) -> tuple[int, int]:
    """How many columns, then rows, one page can hold within the budget (at least one)."""
    fit_cols = _largest(cols, lambda c: frame.canvas(c, 1).pixels <= max_pixels)
    fit_rows = _largest(rows, lambda r: frame.canvas(fit_cols, r).pixels <= max_pixels)
    return fit_cols, fit_rows


def _largest(limit: int, fits: Callable[[int], bool]) -> int:
    low, high = 1, limit
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _chunks(count: int, most: int) -> list[range]:
    """`count` positions in even runs of at most `most`, so no page is left nearly empty."""
    parts = math.ceil(count / most)
    size = math.ceil(count / parts)
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def _part(dim: Dimension, positions: range, parts: int) -> list[str]:
    if parts == 1:
        return []
    name = dim.title or "cells"
    return [f"{name} {positions.start + 1}–{positions.stop} of {len(dim.labels)}"]


def _table_page(
    frame: Frame,
    x: Dimension,
    y: Dimension,
    ranges: tuple[range, range],
    offset: int,
    page: _Page,
    request: GridRequest,
) -> PageLayout:
    cols, rows = ranges
    canvas = frame.canvas(len(cols), len(rows))
    labels = [*_title_labels(frame, canvas, page.title, request)]
    labels += _axis_labels(frame, x, y, canvas)
    labels += _column_labels(frame, x, cols, frame.title_h + frame.axis_h)
    labels += _row_labels(frame, y, rows)
    cells = [
        _cell(frame, ci, ri, offset + c * x.stride + r * y.stride, request.run_count)
        for ri, r in enumerate(rows)
        for ci, c in enumerate(cols)
    ]
    labels += _slot_labels(frame, cells, request)
    return PageLayout(0, "page", canvas, page.title, page.fixed, tuple(labels), tuple(cells))


def _strip_page(
    frame: Frame,
    x: Dimension,
    positions: range,
    cols: int,
    offset: int,
    page: _Page,
    request: GridRequest,
) -> PageLayout:
    canvas = frame.canvas(cols, math.ceil(len(positions) / cols))
    labels = [*_title_labels(frame, canvas, page.title, request)]
    labels += _axis_labels(frame, x, NO_DIMENSION, canvas)
    cells = []
    for n, position in enumerate(positions):
        col, row = n % cols, n // cols
        top = frame.top + row * frame.row_step
        header = Rect(frame.left + col * frame.col_step, top, frame.shape.size.width, frame.head_h)
        labels.append(_text(header, x.labels[position], "column", frame.style))
        index = offset + position * x.stride
        cells.append(_cell(frame, col, row, index, request.run_count))
    labels += _slot_labels(frame, cells, request)
    return PageLayout(0, "page", canvas, page.title, page.fixed, tuple(labels), tuple(cells))


def _cell(frame: Frame, col: int, row: int, first: int, run_count: int) -> Cell:
    y = frame.top + row * frame.row_step + (frame.head_h if frame.stacked else 0)
    size = frame.shape.size
    rect = Rect(frame.left + col * frame.col_step, y, size.width, size.height)
    slots = tuple(
        Slot(Rect(rect.x + sub.x, rect.y + sub.y, sub.width, sub.height), first + k)
        for k, sub in enumerate(frame.shape.slots)
        if first + k < run_count
    )
    return Cell(rect, slots)


def _slot_labels(frame: Frame, cells: Sequence[Cell], request: GridRequest) -> list[Label]:
    """Each sub-cell's seed in the band above it: a legend alone leaves the reader counting
    positions, and a 16-digit seed per image does not fit a title."""
    bands = frame.shape.bands
    if not bands or not request.slot_labels:
        return []
    px = frame.shape.band_font_px
    return [
        Label(
            Rect(cell.rect.x + band.x, cell.rect.y + band.y, band.width, band.height),
            text,
            text,
            "seed",
            px,
            1,
        )
        for cell in cells
        for band, text, _ in zip(bands, request.slot_labels, cell.slots, strict=False)
    ]


def _title_labels(frame: Frame, canvas: Size, page_title: str, request: GridRequest) -> list[Label]:
    text = " · ".join(part for part in (request.title, page_title, request.seed_legend) if part)
    if not text or not request.titled:
        return []
    gap = frame.style.gap
    rect = Rect(gap, 0, canvas.width - 2 * gap, frame.title_h)
    return [_text(rect, text, "title", frame.style)]


def _axis_labels(frame: Frame, x: Dimension, y: Dimension, canvas: Size) -> list[Label]:
    labels = []
    grid_top = frame.title_h + frame.axis_h
    if frame.axis_h:
        rect = Rect(
            frame.left, frame.title_h, canvas.width - frame.left - frame.style.gap, frame.axis_h
        )
        labels.append(_text(rect, x.title, "axis", frame.style))
    if frame.axis_w:
        rect = Rect(frame.style.gap, grid_top, frame.axis_w, canvas.height - grid_top)
        labels.append(_text(rect, y.title, "axis", frame.style, vertical=True))
    return labels


def _column_labels(frame: Frame, x: Dimension, cols: range, top: int) -> list[Label]:
    if not frame.head_h:
        return []
    width = frame.shape.size.width
    return [
        _text(
            Rect(frame.left + n * frame.col_step, top, width, frame.head_h),
            x.labels[c],
            "column",
            frame.style,
        )
        for n, c in enumerate(cols)
    ]


def _row_labels(frame: Frame, y: Dimension, rows: range) -> list[Label]:
    if not frame.head_w:
        return []
    x0 = frame.style.gap + frame.axis_w
    height = frame.shape.size.height
    return [
        _text(
            Rect(x0, frame.top + n * frame.row_step, frame.head_w, height),
            y.labels[r],
            "row",
            frame.style,
        )
        for n, r in enumerate(rows)
    ]


def _text(
    rect: Rect, full: str, role: LabelRole, style: FrameStyle, vertical: bool = False
) -> Label:
    along, across = (rect.height, rect.width) if vertical else (rect.width, rect.height)
    lines = style.lines_in(across)
    return Label(
        rect, full, shorten(full, style.chars(along), lines), role, style.font_px, lines, vertical
    )


# --- the index page: a preview of every page, labelled with what sets it apart ---


def _index_page(pages: Sequence[PageLayout], max_pixels: int, min_cell: int) -> PageLayout:
    first = pages[0].canvas
    preview = scaled_to(first, min(INDEX_PREVIEW, max(first.width, first.height)))
    titles = tuple(page.title or f"page {page.number}" for page in pages)
    dim = Dimension("", titles, tuple(page.fixed for page in pages), 1)  # the title says "pages"
    request = GridRequest(f"{len(pages)} pages", len(pages) + 1, "", titled=True)
    frame, _ = fitted_frame(
        lambda c: strip_frame(dim, c, 1, request),
        preview,
        strip_pixels(dim),
        max_pixels,
        min_cell,
    )
    cols = strip_columns(len(pages))
    fit_cols, fit_rows = _fit(cols, math.ceil(len(pages) / cols), frame, max_pixels)
    shown = range(min(len(pages), fit_cols * fit_rows))  # beyond that, the listing has them
    title = "" if len(shown) == len(pages) else f"first {len(shown)} shown"
    page = _strip_page(frame, dim, shown, min(cols, fit_cols), 1, _Page(title, {}), request)
    return replace(page, number=0, kind="index")
