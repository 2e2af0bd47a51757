"""The sizes every page of one grid shares at one cell size, and the cell size that fits.

A frame holds the text style, the title, axis and header bands, and the shape of a cell with
its seeds' sub-cells, so a page's canvas for any number of columns and rows follows from it.
`fitted_frame` shrinks the cells until a whole page fits the pixel budget, down to a minimum
past which `app.domain.grid_layout` splits pages instead; that module then places pages, cells
and labels in the frame chosen here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from app.domain.grid_dimensions import Dimension
from app.domain.grid_geometry import Rect, Size
from app.domain.grid_text import (
    CHAR_EM,
    LINE_EM,
    MAX_LABEL_LINES,
    MAX_STACKED_LINES,
    estimated_lines,
    font_px_for,
    slot_font_px,
)

STRIP_COLUMNS = 16  # a one-dimensional strip wraps into rows beyond this


@dataclass(frozen=True, slots=True)
class FrameStyle:
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
    """A whole cell and where its sub-cells sit in it (relative rects), each under a band
    for its label when seeds share the cell."""

    size: Size
    slots: tuple[Rect, ...]
    bands: tuple[Rect, ...] = ()  # one per slot, or none
    band_font_px: int = 0


@dataclass(frozen=True)
class Frame:
    """Sizes shared by every page of one grid at one cell size."""

    style: FrameStyle
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
class GridRequest:
    """What every page of one grid shares besides geometry."""

    title: str
    run_count: int
    seed_legend: str
    titled: bool  # whether pages have a title band
    slot_labels: tuple[str, ...] = ()  # one per sub-cell (its seed) when seeds share a cell


def _style(cell: Size) -> FrameStyle:
    font_px = font_px_for(cell.width)
    return FrameStyle(
        font_px=font_px,
        line_h=math.ceil(font_px * LINE_EM),
        pad=max(4, font_px // 3),
        gap=max(2, round(min(cell.width, cell.height) / 64)),
    )


def _shape(thumb: Size, per_cell: int, band_font_px: int = 0) -> _Shape:
    """Sub-cells of `thumb` size in a near-square block, seed order left to right, each with
    a label band above it when there are several and `band_font_px` is given."""
    cols = math.ceil(math.sqrt(per_cell))
    rows = math.ceil(per_cell / cols)
    sub_gap = 2 if per_cell > 1 else 0
    band = _band_h(band_font_px) if per_cell > 1 and band_font_px else 0
    step_x, step_y = thumb.width + sub_gap, band + thumb.height + sub_gap
    slots = tuple(
        Rect((k % cols) * step_x, (k // cols) * step_y + band, thumb.width, thumb.height)
        for k in range(per_cell)
    )
    bands = tuple(Rect(slot.x, slot.y - band, slot.width, band) for slot in slots) if band else ()
    size = Size(cols * step_x - sub_gap, rows * step_y - sub_gap)
    return _Shape(size, slots, bands, band_font_px if band else 0)


def _band_h(font_px: int) -> int:
    # One line and the renderer's smallest inset above and below it.
    return math.ceil(font_px * LINE_EM) + 4


def _sized(thumb: Size, per_cell: int) -> tuple[FrameStyle, _Shape]:
    """The style follows from the cell's width alone, so the label bands (which add height
    only) can be sized from it."""
    style = _style(_shape(thumb, per_cell).size)
    return style, _shape(thumb, per_cell, slot_font_px(style.font_px))


def _title_h(style: FrameStyle, request: GridRequest) -> int:
    return style.band(2) if request.titled else style.pad


def _head_lines(dim: Dimension, style: FrameStyle, width: int) -> int:
    if not any(dim.labels):
        return 0
    chars = style.chars(width)
    needed = max(estimated_lines(label, chars) for label in dim.labels)
    stacked = max(label.count("\n") + 1 for label in dim.labels)
    cap = MAX_STACKED_LINES if stacked > 1 else MAX_LABEL_LINES
    return max(1, min(needed, cap))


def _head_width(dim: Dimension, style: FrameStyle, cell: Size) -> int:
    """Row headers: as wide as the longest label, between a few characters and a cell."""
    if not any(dim.labels):
        return 0
    longest = max(len(line) for label in dim.labels for line in label.split("\n"))
    char_w = CHAR_EM * style.font_px
    widest = max(cell.width, math.ceil(12 * char_w))
    return min(widest, max(math.ceil(4 * char_w), math.ceil(longest * char_w))) + 2 * style.pad


def table_frame(
    x: Dimension, y: Dimension, thumb: Size, per_cell: int, request: GridRequest
) -> Frame:
    style, shape = _sized(thumb, per_cell)
    head_lines = _head_lines(x, style, shape.size.width)
    return Frame(
        style=style,
        shape=shape,
        title_h=_title_h(style, request),
        axis_h=style.band(1) if x.title else 0,
        head_h=style.band(head_lines) if head_lines else 0,
        axis_w=style.band(1) if y.title else 0,
        head_w=_head_width(y, style, shape.size),
        stacked=False,
    )


def strip_frame(x: Dimension, thumb: Size, per_cell: int, request: GridRequest) -> Frame:
    style, shape = _sized(thumb, per_cell)
    return Frame(
        style=style,
        shape=shape,
        title_h=_title_h(style, request),
        axis_h=style.band(1) if x.title else 0,
        head_h=style.band(_head_lines(x, style, shape.size.width)),
        axis_w=0,
        head_w=0,
        stacked=True,
    )


def table_pixels(x: Dimension, y: Dimension) -> Callable[[Frame], int]:
    return lambda frame: frame.canvas(len(x.labels), len(y.labels)).pixels


def strip_pixels(x: Dimension) -> Callable[[Frame], int]:
    def pixels(frame: Frame) -> int:
        cols = strip_columns(len(x.labels))
        return frame.canvas(cols, math.ceil(len(x.labels) / cols)).pixels

    return pixels


def strip_columns(count: int) -> int:
    return min(count, max(STRIP_COLUMNS, math.ceil(math.sqrt(count))))


def fitted_frame(
    make: Callable[[Size], Frame],
    cell: Size,
    pixels: Callable[[Frame], int],
    max_pixels: int,
    min_cell: int,
) -> tuple[Frame, Size]:
    """The frame at the largest cell size (up to `cell`) whose whole page fits the budget,
    or at `min_cell` when none does (the pages then split)."""
    frame = make(cell)
    for _ in range(12):  # each step shrinks by the remaining excess; a few always suffice
        excess = pixels(frame) / max_pixels
        long_side = max(cell.width, cell.height)
        if excess <= 1 or long_side <= min_cell:
            break
        cell = scaled_to(cell, max(min_cell, math.floor(long_side * 0.98 / math.sqrt(excess))))
        frame = make(cell)
    return frame, cell


def scaled_to(size: Size, long_side: int) -> Size:
    """`size` with the same aspect and a long side of `long_side` (at least 1 px each way)."""
    scale = long_side / max(size.width, size.height)
    return Size(max(1, round(size.width * scale)), max(1, round(size.height * scale)))
