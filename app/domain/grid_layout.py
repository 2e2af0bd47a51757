"""Grid geometry: which run every cell of every page shows, and where each label and cell goes.

Owns the arithmetic of comparison grids, never their pixels: from a sweep plan, its run count
and a cell size it computes frozen layouts that `app.grids.render` draws. The first grid
dimension runs across (X), the second down (Y), the rest make pages (one per combination,
in run order); seeds are either sub-cells of each cell or a dimension of their own. A page
whose canvas would pass the pixel budget first gets smaller cells (down to `MIN_CELL`), then
is split by columns and rows. Text is measured by estimate here (no fonts in the domain); the
renderer wraps with real metrics and shortens further if an estimate was optimistic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import product
from typing import Any, Literal

from app.domain.contracts import JsonValue
from app.domain.expansion import Axis, SweepPlan
from app.domain.values import format_value

# Pillow's default Image.MAX_IMAGE_PIXELS: above it (twice it, for open()) nobody can reopen
# the file with default settings. Copied so the domain needs no PIL.
MAX_IMAGE_PIXELS = 89_478_485
MIN_CELL = 128  # below this a generated image is too small to compare; pages split instead
FONT_FLOOR = 14  # px: legible at 100 % zoom however small the cells get
FONT_CAP = 40
FONT_RATIO = 0.07  # of the cell width: text grows with cells so a zoomed-out grid stays readable
CHAR_EM = 0.55  # average advance of a sans-serif glyph in em, a little generous
LINE_EM = 1.3
MAX_LABEL_LINES = 3
MAX_STACKED_LINES = 6  # zip and sample labels put one parameter per line
STRIP_COLUMNS = 16  # a one-dimensional strip wraps into rows beyond this
INDEX_PREVIEW = 384  # long side of a page's preview on the index page
ELLIPSIS = "…"

SeedLayout = Literal["cell", "axis"]
LabelRole = Literal["title", "axis", "column", "row"]
PageKind = Literal["page", "index"]


@dataclass(frozen=True, slots=True)
class Size:
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


DEFAULT_CELL = Size(256, 256)


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height


@dataclass(frozen=True, slots=True)
class Label:
    rect: Rect
    full: str  # the whole text, also written to the PNG's metadata
    short: str  # what should fit in `lines` lines by estimate; `\n` is a hard break
    role: LabelRole
    font_px: int
    lines: int
    vertical: bool = False  # drawn rotated a quarter turn (the Y axis title)


@dataclass(frozen=True, slots=True)
class Slot:
    rect: Rect
    index: int  # the run shown; on the index page, the number of the page previewed


@dataclass(frozen=True, slots=True)
class Cell:
    rect: Rect
    slots: tuple[Slot, ...]  # one per seed in "cell" layout, else one; none past the runs


@dataclass(frozen=True)
class PageLayout:
    number: int  # 1, 2, ... in run order; 0 for the index page
    kind: PageKind
    canvas: Size
    title: str  # what sets this page apart (fixed values, part); "" for a lone page
    fixed: Mapping[str, JsonValue]  # what the page dimensions hold on this page
    labels: tuple[Label, ...]
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class GridPlan:
    cell: Size  # the size one image was given (a sub-cell when seeds share a cell)
    pages: tuple[PageLayout, ...]
    index_page: PageLayout | None  # previews of every page, when there are several


@dataclass(frozen=True, slots=True)
class _Dim:
    title: str
    labels: tuple[str, ...]
    sets: tuple[Mapping[str, JsonValue], ...]  # what each position assigns
    stride: int  # run-index distance between neighbouring positions


_SINGLE = _Dim("", ("",), ({},), 0)  # stands in for "no dimension": one unlabelled position


@dataclass(frozen=True, slots=True)
class _Style:
    font_px: int
    line_h: int
    pad: int
    gap: int

    def chars(self, width: int) -> int:
        return max(1, int((width - 2 * self.pad) / (CHAR_EM * self.font_px)))

    def lines_in(self, height: int) -> int:
        return max(1, (height - 2 * self.pad) // self.line_h)

    def band(self, lines: int) -> int:
        return lines * self.line_h + 2 * self.pad


@dataclass(frozen=True)
class _Shape:
    """A whole cell and where its sub-cells sit in it (relative rects)."""

    size: Size
    slots: tuple[Rect, ...]


@dataclass(frozen=True)
class _Frame:
    """Sizes shared by every page of one grid at one cell size."""

    style: _Style
    shape: _Shape
    title_h: int
    axis_h: int  # X axis title band
    head_h: int  # column header band (above each row of cells in a strip)
    axis_w: int  # Y axis title band
    head_w: int  # row headers
    stacked: bool  # a strip: every cell has its own header above it

    @property
    def left(self) -> int:
        return self.style.gap + self.axis_w + self.head_w

    @property
    def top(self) -> int:
        return self.title_h + self.axis_h + (0 if self.stacked else self.head_h)

    @property
    def col_step(self) -> int:
        return self.shape.size.width + self.style.gap

    @property
    def row_step(self) -> int:
        return self.shape.size.height + self.style.gap + (self.head_h if self.stacked else 0)

    def canvas(self, cols: int, rows: int) -> Size:
        # Each step ends with a gap, which past the last cell is the right and bottom margin.
        return Size(self.left + cols * self.col_step, self.top + rows * self.row_step)


@dataclass(frozen=True)
class _Request:
    """What every page of one grid shares besides geometry."""

    title: str
    run_count: int
    seed_legend: str
    titled: bool  # whether pages have a title band


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
    dims, per_cell = _dimensions(plan, seed_layout)
    x, y = [*dims, _SINGLE, _SINGLE][:2]
    strip = len(dims) < 2 and len(x.labels) > 1
    legend = _seed_legend(plan) if per_cell > 1 else ""
    request = _Request(title, run_count, legend, titled=bool(title or legend or len(dims) > 2))

    def make(thumb: Size, shared: _Request = request) -> _Frame:
        if strip:
            return _strip_frame(x, thumb, per_cell, shared)
        return _table_frame(x, y, thumb, per_cell, shared)

    pixels = _strip_pixels(x) if strip else _table_pixels(x, y)
    frame, chosen = _fitted(make, cell, pixels, max_pixels, min_cell)
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
    return _scaled(image, long_side)


def images_per_page(plan: SweepPlan, seed_layout: SeedLayout = "cell") -> int:
    """How many images one unsplit page shows: the first two dimensions, seeds included."""
    dims, per_cell = _dimensions(plan, seed_layout)
    return math.prod(len(dim.labels) for dim in dims[:2]) * per_cell


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
    )


def shorten(text: str, chars: int, lines: int) -> str:
    """`text` cut to about `lines` lines of `chars` characters; the middle of a long single
    line is dropped (a prompt's subject and its last words usually tell values apart)."""
    hard = text.split("\n")
    if len(hard) > 1:
        kept = [_cut_end(line, chars) for line in hard[:lines]]
        if len(hard) > lines:  # say that lines were dropped
            kept[-1] = hard[lines - 1][: max(0, chars - 1)].rstrip() + ELLIPSIS
        return "\n".join(kept)
    # Word wrapping leaves lines part empty, so multi-line text gets a little less room.
    budget = chars if lines == 1 else int(chars * lines * 0.85)
    return _cut_middle(text, max(1, budget))


def font_px_for(cell_width: int) -> int:
    return min(FONT_CAP, max(FONT_FLOOR, round(cell_width * FONT_RATIO)))


# --- dimensions: what runs across, down, and over pages ---


def _dimensions(plan: SweepPlan, seed_layout: SeedLayout) -> tuple[list[_Dim], int]:
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


def _crossed(sources: Sequence[_Source], stride: int) -> list[_Dim]:
    dims = []
    for title, sets in sources:
        dims.append(_Dim(title, tuple(_label(s) for s in sets), sets, stride))
        stride *= len(sets)
    return dims


def _zipped(sources: Sequence[_Source], stride: int) -> _Dim:
    # As expansion does: shorter dimensions cycle so each position of the longest is reached.
    length = max(len(sets) for _, sets in sources)
    merged = tuple(_merge(sets[k % len(sets)] for _, sets in sources) for k in range(length))
    title = " + ".join(title for title, _ in sources)
    return _Dim(title, tuple(_label(s) for s in merged), merged, stride)


def _seed_dim(plan: SweepPlan) -> _Dim:
    name = plan.seed_param or "seed"
    sets = tuple({name: seed} for seed in plan.seeds)
    return _Dim(name, tuple(str(seed) for seed in plan.seeds), sets, 1)


def _merge(parts: Iterable[Mapping[str, JsonValue]]) -> dict[str, JsonValue]:
    merged: dict[str, JsonValue] = {}
    for part in parts:
        merged.update(part)
    return merged


def _label(values: Mapping[str, JsonValue]) -> str:
    if len(values) == 1:
        return format_value(next(iter(values.values())))
    return "\n".join(f"{name}={format_value(value)}" for name, value in values.items())


def _seed_legend(plan: SweepPlan) -> str:
    seeds = ", ".join(str(seed) for seed in plan.seeds)
    return f"{plan.seed_param} {seeds} in each cell, left to right, top to bottom"


def _page_keys(extra: Sequence[_Dim]) -> Iterator[tuple[int, dict[str, JsonValue], list[str]]]:
    """Per page in run order (first page dimension fastest): its run-index offset, the values
    it holds and their labels."""
    for reversed_coords in product(*(range(len(d.labels)) for d in reversed(extra))):
        coords = reversed_coords[::-1]
        offset = sum(c * d.stride for c, d in zip(coords, extra, strict=True))
        fixed = _merge(d.sets[c] for c, d in zip(coords, extra, strict=True))
        described = [_describe(d, c) for c, d in zip(coords, extra, strict=True)]
        yield offset, fixed, described


def _describe(dim: _Dim, position: int) -> str:
    label = dim.labels[position].replace("\n", ", ")
    return label if "=" in label else f"{dim.title}={label}"


# --- frames: band and header sizes for one cell size ---


def _style(cell: Size) -> _Style:
    font_px = font_px_for(cell.width)
    return _Style(
        font_px=font_px,
        line_h=math.ceil(font_px * LINE_EM),
        pad=max(4, font_px // 3),
        gap=max(2, round(min(cell.width, cell.height) / 64)),
    )


def _shape(thumb: Size, per_cell: int) -> _Shape:
    """Sub-cells of `thumb` size in a near-square block, seed order left to right."""
    cols = math.ceil(math.sqrt(per_cell))
    rows = math.ceil(per_cell / cols)
    sub_gap = 2 if per_cell > 1 else 0
    slots = tuple(
        Rect(
            (k % cols) * (thumb.width + sub_gap),
            (k // cols) * (thumb.height + sub_gap),
            thumb.width,
            thumb.height,
        )
        for k in range(per_cell)
    )
    size = Size(
        cols * thumb.width + (cols - 1) * sub_gap, rows * thumb.height + (rows - 1) * sub_gap
    )
    return _Shape(size, slots)


def _title_h(style: _Style, request: _Request) -> int:
    return style.band(2) if request.titled else style.pad


def _head_lines(dim: _Dim, style: _Style, width: int) -> int:
    if not any(dim.labels):
        return 0
    chars = style.chars(width)
    needed = max(_estimated_lines(label, chars) for label in dim.labels)
    stacked = max(label.count("\n") + 1 for label in dim.labels)
    cap = MAX_STACKED_LINES if stacked > 1 else MAX_LABEL_LINES
    return max(1, min(needed, cap))


def _estimated_lines(text: str, chars: int) -> int:
    return sum(max(1, math.ceil(len(line) * 1.15 / chars)) for line in text.split("\n"))


def _head_width(dim: _Dim, style: _Style, cell: Size) -> int:
    """Row headers: as wide as the longest label, between a few characters and a cell."""
    if not any(dim.labels):
        return 0
    longest = max(len(line) for label in dim.labels for line in label.split("\n"))
    char_w = CHAR_EM * style.font_px
    widest = max(cell.width, math.ceil(12 * char_w))
    return min(widest, max(math.ceil(4 * char_w), math.ceil(longest * char_w))) + 2 * style.pad


def _table_frame(x: _Dim, y: _Dim, thumb: Size, per_cell: int, request: _Request) -> _Frame:
    shape = _shape(thumb, per_cell)
    style = _style(shape.size)
    head_lines = _head_lines(x, style, shape.size.width)
    return _Frame(
        style=style,
        shape=shape,
        title_h=_title_h(style, request),
        axis_h=style.band(1) if x.title else 0,
        head_h=style.band(head_lines) if head_lines else 0,
        axis_w=style.band(1) if y.title else 0,
        head_w=_head_width(y, style, shape.size),
        stacked=False,
    )


def _strip_frame(x: _Dim, thumb: Size, per_cell: int, request: _Request) -> _Frame:
    shape = _shape(thumb, per_cell)
    style = _style(shape.size)
    return _Frame(
        style=style,
        shape=shape,
        title_h=_title_h(style, request),
        axis_h=style.band(1) if x.title else 0,
        head_h=style.band(_head_lines(x, style, shape.size.width)),
        axis_w=0,
        head_w=0,
        stacked=True,
    )


def _table_pixels(x: _Dim, y: _Dim) -> Callable[[_Frame], int]:
    return lambda frame: frame.canvas(len(x.labels), len(y.labels)).pixels


def _strip_pixels(x: _Dim) -> Callable[[_Frame], int]:
    def pixels(frame: _Frame) -> int:
        cols = _strip_columns(len(x.labels))
        return frame.canvas(cols, math.ceil(len(x.labels) / cols)).pixels

    return pixels


def _strip_columns(count: int) -> int:
    return min(count, max(STRIP_COLUMNS, math.ceil(math.sqrt(count))))


def _fitted(
    make: Callable[[Size], _Frame],
    cell: Size,
    pixels: Callable[[_Frame], int],
    max_pixels: int,
    min_cell: int,
) -> tuple[_Frame, Size]:
    """The frame at the largest cell size (up to `cell`) whose whole page fits the budget,
    or at `min_cell` when none does (the pages then split)."""
    frame = make(cell)
    for _ in range(12):  # each step shrinks by the remaining excess; a few always suffice
        excess = pixels(frame) / max_pixels
        long_side = max(cell.width, cell.height)
        if excess <= 1 or long_side <= min_cell:
            break
        cell = _scaled(cell, max(min_cell, math.floor(long_side * 0.98 / math.sqrt(excess))))
        frame = make(cell)
    return frame, cell


def _scaled(size: Size, long_side: int) -> Size:
    scale = long_side / max(size.width, size.height)
    return Size(max(1, round(size.width * scale)), max(1, round(size.height * scale)))


# --- pages ---


def _table_pages(
    frame: _Frame, x: _Dim, y: _Dim, extra: Sequence[_Dim], request: _Request, max_pixels: int
) -> Iterator[PageLayout]:
    cols, rows = _fit(len(x.labels), len(y.labels), frame, max_pixels)
    col_chunks = _chunks(len(x.labels), cols)
    row_chunks = _chunks(len(y.labels), rows)
    for offset, fixed, described in _page_keys(extra):
        for row_range in row_chunks:
            for col_range in col_chunks:
                part = _part(x, col_range, len(col_chunks)) + _part(y, row_range, len(row_chunks))
                page_title = " · ".join([*described, *part])
                yield _table_page(
                    frame, x, y, (col_range, row_range), offset, _Page(page_title, fixed), request
                )


def _strip_pages(
    frame: _Frame, x: _Dim, extra: Sequence[_Dim], request: _Request, max_pixels: int
) -> Iterator[PageLayout]:
    cols = _strip_columns(len(x.labels))
    fit_cols, fit_rows = _fit(cols, math.ceil(len(x.labels) / cols), frame, max_pixels)
    per_page = fit_cols * fit_rows
    chunks = _chunks(len(x.labels), per_page)
    for offset, fixed, described in _page_keys(extra):
        for positions in chunks:
            part = _part(x, positions, len(chunks))
            page = _Page(" · ".join([*described, *part]), fixed)
            yield _strip_page(frame, x, positions, min(fit_cols, cols), offset, page, request)


@dataclass(frozen=True)
class _Page:
    title: str
    fixed: Mapping[str, JsonValue]


def _fit(cols: int, rows: int, frame: _Frame, max_pixels: int) -> tuple[int, int]:
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


def _part(dim: _Dim, positions: range, parts: int) -> list[str]:
    if parts == 1:
        return []
    name = dim.title or "cells"
    return [f"{name} {positions.start + 1}–{positions.stop} of {len(dim.labels)}"]


def _table_page(
    frame: _Frame,
    x: _Dim,
    y: _Dim,
    ranges: tuple[range, range],
    offset: int,
    page: _Page,
    request: _Request,
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
    return PageLayout(0, "page", canvas, page.title, page.fixed, tuple(labels), tuple(cells))


def _strip_page(
    frame: _Frame,
    x: _Dim,
    positions: range,
    cols: int,
    offset: int,
    page: _Page,
    request: _Request,
) -> PageLayout:
    canvas = frame.canvas(cols, math.ceil(len(positions) / cols))
    labels = [*_title_labels(frame, canvas, page.title, request)]
    labels += _axis_labels(frame, x, _SINGLE, canvas)
    cells = []
    for n, position in enumerate(positions):
        col, row = n % cols, n // cols
        top = frame.top + row * frame.row_step
        header = Rect(frame.left + col * frame.col_step, top, frame.shape.size.width, frame.head_h)
        labels.append(_text(header, x.labels[position], "column", frame.style))
        index = offset + position * x.stride
        cells.append(_cell(frame, col, row, index, request.run_count))
    return PageLayout(0, "page", canvas, page.title, page.fixed, tuple(labels), tuple(cells))


def _cell(frame: _Frame, col: int, row: int, first: int, run_count: int) -> Cell:
    y = frame.top + row * frame.row_step + (frame.head_h if frame.stacked else 0)
    size = frame.shape.size
    rect = Rect(frame.left + col * frame.col_step, y, size.width, size.height)
    slots = tuple(
        Slot(Rect(rect.x + sub.x, rect.y + sub.y, sub.width, sub.height), first + k)
        for k, sub in enumerate(frame.shape.slots)
        if first + k < run_count
    )
    return Cell(rect, slots)


def _title_labels(frame: _Frame, canvas: Size, page_title: str, request: _Request) -> list[Label]:
    text = " · ".join(part for part in (request.title, page_title, request.seed_legend) if part)
    if not text or not request.titled:
        return []
    gap = frame.style.gap
    rect = Rect(gap, 0, canvas.width - 2 * gap, frame.title_h)
    return [_text(rect, text, "title", frame.style)]


def _axis_labels(frame: _Frame, x: _Dim, y: _Dim, canvas: Size) -> list[Label]:
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


def _column_labels(frame: _Frame, x: _Dim, cols: range, top: int) -> list[Label]:
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


def _row_labels(frame: _Frame, y: _Dim, rows: range) -> list[Label]:
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


def _text(rect: Rect, full: str, role: LabelRole, style: _Style, vertical: bool = False) -> Label:
    along, across = (rect.height, rect.width) if vertical else (rect.width, rect.height)
    lines = style.lines_in(across)
    return Label(
        rect, full, shorten(full, style.chars(along), lines), role, style.font_px, lines, vertical
    )


# --- the index page: a preview of every page, labelled with what sets it apart ---


def _index_page(pages: Sequence[PageLayout], max_pixels: int, min_cell: int) -> PageLayout:
    first = pages[0].canvas
    preview = _scaled(first, min(INDEX_PREVIEW, max(first.width, first.height)))
    titles = tuple(page.title or f"page {page.number}" for page in pages)
    dim = _Dim("", titles, tuple(page.fixed for page in pages), 1)  # the title says "pages"
    request = _Request(f"{len(pages)} pages", len(pages) + 1, "", titled=True)
    frame, _ = _fitted(
        lambda c: _strip_frame(dim, c, 1, request),
        preview,
        _strip_pixels(dim),
        max_pixels,
        min_cell,
    )
    cols = _strip_columns(len(pages))
    fit_cols, fit_rows = _fit(cols, math.ceil(len(pages) / cols), frame, max_pixels)
    shown = range(min(len(pages), fit_cols * fit_rows))  # beyond that, the listing has them
    title = "" if len(shown) == len(pages) else f"first {len(shown)} shown"
    page = _strip_page(frame, dim, shown, min(cols, fit_cols), 1, _Page(title, {}), request)
    return replace(page, number=0, kind="index")


def _cut_end(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(0, chars - 1)].rstrip() + ELLIPSIS


def _cut_middle(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    keep = chars - 1
    head, tail = text[: keep - keep // 2], text[len(text) - keep // 2 :] if keep // 2 else ""
    # Cut at a word boundary when one is near, so no half word is left on either side.
    space = head.rfind(" ")
    if space >= len(head) - 8 and space > 0:
        head = head[:space]
    space = tail.find(" ")
    if 0 <= space < 8:
        tail = tail[space + 1 :]
    return head.rstrip() + ELLIPSIS + tail.lstrip()
