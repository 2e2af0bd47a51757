"""Draws one page of a comparison grid from its computed layout, streaming cells from disk.

Owns the pixels, never the geometry (that is `app.domain.grid_layout`) nor the database: a
`CellSource` says what each run index shows. Cells are opened ONE AT A TIME and reduced to
their slot as they are decoded (`draft` for JPEG, `reduce` then a small resize otherwise), so
memory is the page canvas plus one decoded image, whatever the number of cells. Each file is
opened under an explicit `Image.MAX_IMAGE_PIXELS` (never None: cells come from remote
machines), restored afterwards. The PNG is written through a temporary file renamed into
place, and carries the sweep request, every cell's assignment and the full text of every
label as JSON text chunks, so a grid found on disk later says exactly what produced it.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from app.domain.grid_layout import (
    ELLIPSIS,
    FONT_FLOOR,
    INDEX_PREVIEW,
    LINE_EM,
    Label,
    PageLayout,
    Rect,
    Size,
    Slot,
)
from app.grids.fonts import font
from app.media.storage import atomic_file

REQUEST_KEY = "comfy_sweep_request"
CELLS_KEY = "comfy_sweep_cells"
PAGE_KEY = "comfy_sweep_page"
# Largest cell image opened: 32 Mpx (an 8K × 4K upscale) decodes to at most 128 MB RGBA,
# which with a canvas at Pillow's own limit keeps a worker under 400 MB.
MAX_CELL_PIXELS = 2**25
VIDEO_TIMEOUT_S = 60.0
# Each video suffix with the one demuxer ffmpeg may use for it: a file named .mp4 that is
# really an HLS playlist must not make ffmpeg fetch URLs or read other local files.
VIDEO_DEMUXERS: Mapping[str, str] = {
    ".mp4": "mov",
    ".mov": "mov",
    ".webm": "matroska",
    ".mkv": "matroska",
}
# Pillow refuses to reopen a compressed text chunk that inflates past this; larger JSON is
# written uncompressed, which it reads up to 64 MB.
_MAX_COMPRESSED_TEXT = PngImagePlugin.MAX_TEXT_CHUNK

# What Pillow raises for a file it cannot decode (truncated, not an image, corrupt chunks).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError)

Color = tuple[int, int, int]
BACKGROUND: Color = (255, 255, 255)
SLOT_BACKGROUND: Color = (236, 236, 236)
TEXT: Color = (24, 24, 24)
_PLACEHOLDER_COLORS: Mapping[str, tuple[Color, Color]] = {
    "failed": ((251, 226, 226), (150, 24, 24)),
    "unreadable": ((251, 236, 214), (140, 80, 10)),
    "video": ((226, 232, 246), (40, 60, 120)),
}
_DEFAULT_PLACEHOLDER: tuple[Color, Color] = ((228, 228, 228), (90, 90, 90))


@dataclass(frozen=True)
class CellContent:
    """What one run shows: its first image or video (None when it has none), its status, the
    short error when it failed, and the parameters it ran with."""

    path: Path | None
    status: str
    error: str | None
    assignment: Mapping[str, Any]


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
) -> None:
    """Draw `layout`, write it to `destination` atomically, and a small preview if asked."""
    canvas = Image.new("RGB", (layout.canvas.width, layout.canvas.height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for label in layout.labels:
        draw_label(canvas, draw, label)
    cells = [
        _draw_slot(canvas, draw, slot, cell_source(slot.index), max_cell_pixels)
        for cell in layout.cells
        for slot in cell.slots
    ]
    _save(canvas, destination, _text_chunks(layout, metadata, cells))
    if preview is not None:
        _save_preview(canvas, preview)
    canvas.close()


# --- cells ---


def _draw_slot(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    slot: Slot,
    content: CellContent,
    max_cell_pixels: int,
) -> dict[str, Any]:
    rect = slot.rect
    draw.rectangle(_box(rect), fill=SLOT_BACKGROUND)
    try:
        thumb = _cell_image(content, Size(rect.width, rect.height), max_cell_pixels)
    except CellUnreadable as problem:
        draw_placeholder(draw, rect, problem.word, problem.detail)
    else:
        with thumb:
            position = (
                rect.x + (rect.width - thumb.width) // 2,
                rect.y + (rect.height - thumb.height) // 2,
            )
            canvas.paste(thumb, position, thumb if thumb.mode == "RGBA" else None)
    record = {"index": slot.index, "assignment": dict(content.assignment), "status": content.status}
    return {**record, "error": content.error} if content.error else record


def _cell_image(content: CellContent, box: Size, max_pixels: int) -> Image.Image:
    if content.status != "succeeded":
        raise CellUnreadable(content.status, content.error or "")
    if content.path is None:
        raise CellUnreadable("no image", content.error or "the run produced no image or video")
    return load_thumbnail(content.path, box, max_pixels)


def load_thumbnail(path: Path, box: Size, max_pixels: int = MAX_CELL_PIXELS) -> Image.Image:
    """The image at `path` fitted into `box` with its aspect kept (RGB, or RGBA when it has
    transparency); a video's first frame. Raises `CellUnreadable`."""
    demuxer = VIDEO_DEMUXERS.get(path.suffix.lower())
    if demuxer is not None:
        return _poster_frame(path, demuxer, box, max_pixels)
    try:
        with _opened(path, max_pixels) as image:
            return fit_image(image, box)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise CellUnreadable("too large", str(error).split(" pixels")[0] + " pixels") from error
    except _DECODE_ERRORS as error:
        raise CellUnreadable("unreadable", f"{type(error).__name__}: {error}") from error


def peek_size(path: Path, max_pixels: int = MAX_CELL_PIXELS) -> Size | None:
    """An image's size from its header alone (no decoding); None when it cannot be read."""
    if path.suffix.lower() in VIDEO_DEMUXERS:
        return None
    try:
        with _opened(path, max_pixels) as image:
            return Size(*image.size)
    except (*_DECODE_ERRORS, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None


def _opened(path: Path | io.BytesIO, max_pixels: int) -> Image.Image:
    with _pixel_limit(max_pixels), warnings.catch_warnings():
        # Pillow only warns between the limit and twice it; we refuse there too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


@contextmanager
def _pixel_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's limit set to `max_pixels` (never None: cells come from remote machines) for
    one open, then put back, so other code in the process keeps its own."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
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


def _poster_frame(path: Path, demuxer: str, box: Size, max_pixels: int) -> Image.Image:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CellUnreadable("video", "no video decoder (ffmpeg) on this machine")
    scale = f"scale={box.width}:{box.height}:force_original_aspect_ratio=decrease"
    # Read only the file itself, with the demuxer its suffix implies; one frame, as PNG.
    source = ["-protocol_whitelist", "file", "-f", demuxer, "-i", str(path)]
    output = ["-frames:v", "1", "-vf", scale, "-f", "image2pipe", "-c:v", "png", "-"]
    command = [ffmpeg, "-nostdin", "-v", "error", *source, *output]
    try:
        # No shell, a fixed command; the one variable part is a path under DATA_DIR.
        done = subprocess.run(  # noqa: S603
            command, capture_output=True, timeout=VIDEO_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise CellUnreadable("video", "decoding the first frame timed out") from error
    if done.returncode != 0 or not done.stdout:
        raise CellUnreadable("video", "no frame could be decoded")
    with _opened(io.BytesIO(done.stdout), max_pixels) as frame:
        return fit_image(frame, box)


def draw_placeholder(draw: ImageDraw.ImageDraw, rect: Rect, word: str, detail: str) -> None:
    """A tinted slot with what happened (`failed`, `cancelled`, ...) and the short error."""
    fill, ink = _PLACEHOLDER_COLORS.get(word, _DEFAULT_PLACEHOLDER)
    draw.rectangle(_box(rect), fill=fill)
    size = min(32, max(FONT_FLOOR, round(rect.width * 0.08)))
    inset = max(2, size // 3)
    width = rect.width - 2 * inset
    line_h = math.ceil(size * LINE_EM)
    heading = _fit_lines(word, font(size, bold=True), width, 1)
    lines = _fit_lines(detail, font(size), width, max(0, (rect.height - 2 * inset) // line_h - 1))
    top = rect.y + max(inset, (rect.height - line_h * (1 + len(lines))) // 2)
    draw.text(
        (rect.x + rect.width // 2, top),
        heading[0],
        font=font(size, bold=True),
        fill=ink,
        anchor="ma",
    )
    for n, line in enumerate(lines, start=1):
        draw.text(
            (rect.x + rect.width // 2, top + n * line_h),
            line,
            font=font(size),
            fill=ink,
            anchor="ma",
        )


# --- labels ---


def draw_label(canvas: Image.Image, draw: ImageDraw.ImageDraw, label: Label) -> None:
    """The label's full text if it fits its lines, else its shortened text, shortened more
    if the layout's estimate was optimistic."""
    face = font(label.font_px, bold=label.role in ("title", "axis"))
    if label.vertical:
        _draw_vertical(canvas, label, face)
        return
    inset = max(2, label.font_px // 4)
    lines = _label_lines(label, face, label.rect.width - 2 * inset)
    _draw_lines(draw, lines, label, face, inset)


def _label_lines(label: Label, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    for text in (label.full, label.short):
        lines = list(_wrap(text, face, width, label.lines + 1))
        if len(lines) <= label.lines:
            return lines
    return _fit_lines(label.short, face, width, label.lines)


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: list[str],
    label: Label,
    face: ImageFont.FreeTypeFont,
    inset: int,
) -> None:
    rect = label.rect
    line_h = math.ceil(label.font_px * LINE_EM)
    top = rect.y + max(0, (rect.height - line_h * len(lines)) // 2)
    left_aligned = label.role == "title"
    x = rect.x + inset if left_aligned else rect.x + rect.width // 2
    for n, line in enumerate(lines):
        draw.text(
            (x, top + n * line_h), line, font=face, fill=TEXT, anchor="la" if left_aligned else "ma"
        )


def _draw_vertical(canvas: Image.Image, label: Label, face: ImageFont.FreeTypeFont) -> None:
    # Drawn across a mask as wide as the rect is tall, then turned to read bottom to top.
    rect = label.rect
    mask = Image.new("L", (rect.height, rect.width), 0)
    turned = Label(
        Rect(0, 0, rect.height, rect.width),
        label.full,
        label.short,
        label.role,
        label.font_px,
        label.lines,
    )
    inset = max(2, label.font_px // 4)
    lines = _label_lines(turned, face, rect.height - 2 * inset)
    line_h = math.ceil(label.font_px * LINE_EM)
    top = max(0, (rect.width - line_h * len(lines)) // 2)
    mask_draw = ImageDraw.Draw(mask)
    for n, line in enumerate(lines):
        mask_draw.text((rect.height // 2, top + n * line_h), line, font=face, fill=255, anchor="ma")
    rotated = mask.transpose(Image.Transpose.ROTATE_90)
    canvas.paste(TEXT, _box(rect, inclusive=False), rotated)


def _fit_lines(text: str, face: ImageFont.FreeTypeFont, width: int, most: int) -> list[str]:
    """At most `most` wrapped lines; the last ends in an ellipsis when text was left out."""
    if most <= 0 or not text:
        return []
    lines = list(_wrap(text, face, width, most + 1))
    if len(lines) <= most:
        return lines
    last = lines[most - 1]
    while last and face.getlength(last + ELLIPSIS) > width:
        last = last[:-1]
    return [*lines[: most - 1], last.rstrip() + ELLIPSIS]


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: int, most: int) -> Iterator[str]:
    """Greedy word wrap by measured width, breaking words longer than a line; stops after
    `most` lines so a long prompt costs no more than the lines it can show."""
    count = 0
    for paragraph in text.split("\n"):
        for line in _wrap_paragraph(paragraph, face, width):
            yield line
            count += 1
            if count >= most:
                return


def _wrap_paragraph(text: str, face: ImageFont.FreeTypeFont, width: int) -> Iterator[str]:
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if face.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            yield line
        line = word
        while len(line) > 1 and face.getlength(line) > width:
            cut = _longest_prefix(line, face, width)
            yield line[:cut]
            line = line[cut:]
    yield line


def _longest_prefix(word: str, face: ImageFont.FreeTypeFont, width: int) -> int:
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if face.getlength(word[:middle]) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _box(rect: Rect, inclusive: bool = True) -> tuple[int, int, int, int]:
    # ImageDraw.rectangle includes its far corner; Image.paste boxes do not.
    end = 1 if inclusive else 0
    return rect.x, rect.y, rect.right - end, rect.bottom - end


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
    info = PngImagePlugin.PngInfo()
    for key, text in chunks.items():
        # iTXt is UTF-8, so a prompt in any script survives.
        info.add_itxt(key, text, zip=len(text.encode()) <= _MAX_COMPRESSED_TEXT)
    with atomic_file(destination) as file:
        # Level 1: Pillow's default (6) takes four times as long on a big canvas for ~20 %.
        canvas.save(file, format="PNG", pnginfo=info, compress_level=1)


def _save_preview(canvas: Image.Image, preview: Path) -> None:
    target = _fitted_size(Size(*canvas.size), Size(INDEX_PREVIEW, INDEX_PREVIEW))
    factor = max(1, min(canvas.width // target.width, canvas.height // target.height))
    with canvas.reduce(factor) as reduced:
        small = reduced.resize((target.width, target.height), Image.Resampling.LANCZOS)
    preview.parent.mkdir(parents=True, exist_ok=True)
    small.save(preview, format="PNG")
