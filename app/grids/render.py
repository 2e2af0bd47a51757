"""Draws one page of a comparison grid from its computed layout, streaming cells from disk.

Owns the pixels, never the geometry (that is `app.domain.grid_layout`) nor the database: a
`CellSource` says what each run index shows. A cell whose tile (`app.grids.tiles`) fits its
slot is pasted as it is; other cells are decoded a few at a time, in order, and
reduced to their slot as they are decoded (`draft` for JPEG, `reduce` then a small resize
otherwise), so memory is the page canvas plus one full-size image per decoding thread and a
few thumbnails, whatever the number of cells. Files are opened under an explicit
`Image.MAX_IMAGE_PIXELS` (never None: cells come from remote machines), restored afterwards.
The PNG is written through a temporary file renamed into place, and carries the sweep
request, every cell's assignment and the full text of every label as JSON text chunks, so a
grid found on disk later says exactly what produced it."""

from __future__ import annotations

import io
import json
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, PngImagePlugin

from app.domain.grid_geometry import INDEX_PREVIEW, PageLayout, Size, Slot
from app.grids.labels import corners, draw_label, draw_placeholder
from app.grids.png_writer import write_png
from app.grids.posters import PosterUnavailable, is_video, poster_frame
from app.grids.tiles import TileKey, read_tile, tile_path
from app.media.storage import atomic_file

REQUEST_KEY = "comfy_sweep_request"
CELLS_KEY = "comfy_sweep_cells"
PAGE_KEY = "comfy_sweep_page"
# Largest cell image decoded: 16.7 Mpx (4096 × 4096, a 4× upscale of SDXL) is 64 MB in
# memory (Pillow keeps 4 bytes a pixel, RGB too); larger outputs get a placeholder.
MAX_CELL_PIXELS = 2**24
# Decoding is the cost (~17 ms a 1024² PNG) and Pillow releases the GIL while it decodes and
# reduces, so two threads use two cores; each holds at most one full-size image.
DECODE_THREADS = 2
# Pillow refuses to reopen a compressed text chunk that inflates past this; larger JSON is
# written uncompressed, which it reads up to 64 MB.
_MAX_COMPRESSED_TEXT = PngImagePlugin.MAX_TEXT_CHUNK

# What Pillow raises for a file it cannot decode (truncated, not an image, corrupt chunks).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError)

BACKGROUND = (255, 255, 255)
SLOT_BACKGROUND = (236, 236, 236)


@dataclass(frozen=True)
class CellContent:
    """What one run shows: its first image or video (None when it has none), its status, the
    short error when it failed, the parameters it ran with, and where a tile of the image
    already fitted to its slot may be (`app.grids.tiles`)."""

    path: Path | None
    status: str
    error: str | None
    assignment: Mapping[str, Any]
    tile: TileKey | None = None


CellSource = Callable[[int], CellContent]


@dataclass(frozen=True)
class GridRecord:
    """What the PNG records besides its cells: the request as submitted, and facts about the
    page (sweep id, workflow, page number, ...), each written as a JSON text chunk."""

    request: Mapping[str, Any]
    page: Mapping[str, Any]


class CellUnreadable(Exception):
    """A cell's file could not be shown; `word` and `detail` go on its placeholder."""

    def __init__(self, word: str, detail: str) -> None:
        super().__init__(f"{word}: {detail}")
        self.word = word
        self.detail = detail


def render_page(
    layout: PageLayout,
    cell_source: CellSource,
    destination: Path,
    metadata: GridRecord,
    *,
    preview: Path | None = None,
    max_cell_pixels: int = MAX_CELL_PIXELS,
    decode_threads: int = DECODE_THREADS,
) -> None:
    """Draw `layout`, write it to `destination` atomically, and a small preview if asked."""
    canvas = Image.new("RGB", (layout.canvas.width, layout.canvas.height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for label in layout.labels:
        draw_label(canvas, draw, label)
    slots = [slot for cell in layout.cells for slot in cell.slots]
    # Limits are set here, once, not per open: the decoding threads must not race on them.
    with _decode_limits(max_cell_pixels), ThreadPoolExecutor(decode_threads) as pool:
        loading = _prefetched(pool, slots, cell_source, max_cell_pixels, 2 * decode_threads)
        cells = [_draw_slot(canvas, draw, slot, content, thumb) for slot, content, thumb in loading]
    _save(canvas, destination, _text_chunks(layout, metadata, cells))
    if preview is not None:
        _save_preview(canvas, preview)
    canvas.close()


# --- cells ---


_Loading = tuple[Slot, CellContent, Future[Image.Image]]


def _prefetched(
    pool: ThreadPoolExecutor,
    slots: list[Slot],
    cell_source: CellSource,
    max_pixels: int,
    ahead: int,
) -> Iterator[_Loading]:
    """Each slot with its cell being decoded in the pool, in order, never more than `ahead`
    decoded and waiting: memory stays a few thumbnails whatever the number of cells."""
    pending: deque[_Loading] = deque()
    for slot in slots:
        content = cell_source(slot.index)
        area = Size(slot.rect.width, slot.rect.height)
        pending.append((slot, content, pool.submit(_cell_image, content, area, max_pixels)))
        if len(pending) > ahead:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


def _draw_slot(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    slot: Slot,
    content: CellContent,
    loading: Future[Image.Image],
) -> dict[str, Any]:
    rect = slot.rect
    try:
        thumb = loading.result()
    except CellUnreadable as problem:
        draw_placeholder(draw, rect, problem.word, problem.detail)
    else:
        # Only where the image leaves some of the slot showing: filling 70 Mpx of slots that
        # opaque images then cover entirely costs a tenth of a second of CPU.
        if thumb.size != (rect.width, rect.height) or thumb.mode != "RGB":
            draw.rectangle(corners(rect), fill=SLOT_BACKGROUND)
        with thumb:
            position = (
                rect.x + (rect.width - thumb.width) // 2,
                rect.y + (rect.height - thumb.height) // 2,
            )
            canvas.paste(thumb, position, thumb if thumb.mode == "RGBA" else None)
    record = {"index": slot.index, "assignment": dict(content.assignment), "status": content.status}
    return {**record, "error": content.error} if content.error else record


def _cell_image(content: CellContent, area: Size, max_pixels: int) -> Image.Image:
    if content.status != "succeeded":
        raise CellUnreadable(content.status, content.error or "")
    if content.path is None:
        raise CellUnreadable("no image", content.error or "the run produced no image or video")
    if content.tile is not None:
        # Fitted when the run was ingested; missing or for another slot size, fitted now.
        fitted = read_tile(tile_path(content.tile, area), area)
        if fitted is not None:
            return fitted
    return _thumbnail(content.path, area, max_pixels)


# An image file, or an image's whole file still in memory (a worker's download, read
# straight from there rather than from the disk it was just written to).
ImageSource = Path | bytes


def load_thumbnail(
    source: ImageSource, box: Size, max_pixels: int = MAX_CELL_PIXELS
) -> Image.Image:
    """The image at `source` fitted into `box` with its aspect kept (RGB, or RGBA when it
    has transparency); a video's first frame. Raises `CellUnreadable`."""
    with _decode_limits(max_pixels):
        return _thumbnail(source, box, max_pixels)


def peek_size(source: ImageSource, max_pixels: int = MAX_CELL_PIXELS) -> Size | None:
    """An image's size from its header alone (no decoding); None when it cannot be read."""
    if isinstance(source, Path) and is_video(source):
        return None
    try:
        with _decode_limits(max_pixels), Image.open(_readable(source)) as image:
            return Size(*image.size)
    except (*_DECODE_ERRORS, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None


def _readable(source: ImageSource) -> Path | io.BytesIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source


def _thumbnail(source: ImageSource, box: Size, max_pixels: int) -> Image.Image:
    # Runs in decoding threads, under limits the caller holds.
    if isinstance(source, Path) and is_video(source):
        return _poster(source, box, max_pixels)
    try:
        with Image.open(_readable(source)) as image:
            return fit_image(image, box)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise CellUnreadable("too large", f"over {max_pixels:,} pixels") from error
    except _DECODE_ERRORS as error:
        raise CellUnreadable("unreadable", f"{type(error).__name__}: {error}") from error


@contextmanager
def _decode_limits(max_pixels: int) -> Iterator[None]:
    """Pillow's pixel limit at `max_pixels`, refused rather than warned about between it and
    twice it; both put back afterwards. Never None: cells come from remote machines."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def fit_image(image: Image.Image, box: Size) -> Image.Image:
    """`image` (first frame) scaled to fit `box`, aspect kept; decoded as little as the
    format allows: JPEG's DCT scaling, then an integer box `reduce`, then a small resize."""
    target = _fitted_size(Size(*image.size), box)
    if image.format == "JPEG":
        image.draft("RGB", (target.width, target.height))  # decodes at 1/2, 1/4 or 1/8
    normal = _normal_mode(image)
    factor = min(normal.width // target.width, normal.height // target.height)
    if factor >= 2:
        normal = normal.reduce(factor)
    if normal.size == (target.width, target.height):
        # The caller closes what it opened, which would also close an image returned as is.
        return normal.copy() if normal is image else normal
    return normal.resize((target.width, target.height), Image.Resampling.LANCZOS)


def _fitted_size(size: Size, box: Size) -> Size:
    scale = min(box.width / size.width, box.height / size.height)
    width = min(box.width, max(1, round(size.width * scale)))
    return Size(width, min(box.height, max(1, round(size.height * scale))))


def _normal_mode(image: Image.Image) -> Image.Image:
    # reduce() averages raw values, which is wrong for palette indexes: convert first.
    if image.mode in ("RGB", "RGBA"):
        image.load()
        return image
    transparent = image.mode in ("LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if transparent else "RGB")


def _poster(path: Path, box: Size, max_pixels: int) -> Image.Image:
    try:
        frame = poster_frame(path, max_pixels)
    except PosterUnavailable as problem:
        raise CellUnreadable("video", str(problem)) from problem
    with frame:
        return fit_image(frame, box)


# --- writing ---


def _text_chunks(
    layout: PageLayout, metadata: GridRecord, cells: list[dict[str, Any]]
) -> dict[str, str]:
    labels = [{"role": label.role, "text": label.full} for label in layout.labels]
    page = {
        **metadata.page,
        "page": layout.number,
        "kind": layout.kind,
        "title": layout.title,
        "fixed": dict(layout.fixed),
        "labels": labels,
    }
    return {REQUEST_KEY: _json(metadata.request), CELLS_KEY: _json(cells), PAGE_KEY: _json(page)}


def _json(value: object) -> str:
    # default=str: ids and timestamps become their usual text form.
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _save(canvas: Image.Image, destination: Path, chunks: Mapping[str, str]) -> None:
    # iTXt is UTF-8, so a prompt in any script survives.
    texts = {
        key: (text, len(text.encode()) <= _MAX_COMPRESSED_TEXT) for key, text in chunks.items()
    }
    with atomic_file(destination) as file:
        # Not Pillow's encoder: it takes five times as long (`app.grids.png_writer`).
        write_png(canvas, file, texts)


def _save_preview(canvas: Image.Image, preview: Path) -> None:
    target = _fitted_size(Size(*canvas.size), Size(INDEX_PREVIEW, INDEX_PREVIEW))
    factor = max(1, min(canvas.width // target.width, canvas.height // target.height))
    with canvas.reduce(factor) as reduced:
        small = reduced.resize((target.width, target.height), Image.Resampling.LANCZOS)
    preview.parent.mkdir(parents=True, exist_ok=True)
    small.save(preview, format="PNG")
