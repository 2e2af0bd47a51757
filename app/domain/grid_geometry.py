"""The value types of comparison-grid layouts, and the limits layouts are computed within.

A layout is plain frozen data in pixels: sizes and rects, labels with their full and shortened
text, cells whose slots say which run each image shows, and pages that hold them.
`app.domain.grid_layout` computes these values and `app.grids.render` draws them; both, and
everything that passes layouts between them, import the types from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from app.domain.contracts import JsonValue

# Pillow's default Image.MAX_IMAGE_PIXELS: above it (twice it, for open()) nobody can reopen
# the file with default settings. Copied so the domain needs no PIL.
MAX_IMAGE_PIXELS = 89_478_485
MIN_CELL = 128  # below this a generated image is too small to compare; pages split instead
INDEX_PREVIEW = 384  # long side of a page's preview on the index page

SeedLayout = Literal["cell", "axis"]
LabelRole = Literal["title", "axis", "column", "row", "seed"]  # seed: a sub-cell's own
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
