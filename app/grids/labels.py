"""Text on grid pages: header labels and the words on placeholder cells, wrapped and
shortened by measured width so they never spill out of the areas the layout gave them.

A label is drawn in full when it fits its lines, else shortened the way the layout shortens
(the middle of a long line dropped) as little as its measured width allows. The full text is never
lost: the page's PNG metadata records it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from PIL import Image, ImageDraw, ImageFont

from app.domain.grid_geometry import Label, Rect
from app.domain.grid_text import ELLIPSIS, FONT_FLOOR, LINE_EM, shorten
from app.grids.fonts import font

Color = tuple[int, int, int]
TEXT: Color = (24, 24, 24)
# Placeholder fill and ink by what happened; anything else is grey.
PLACEHOLDER_COLORS: Mapping[str, tuple[Color, Color]] = {
    "failed": ((251, 226, 226), (150, 24, 24)),
    "unreadable": ((251, 236, 214), (140, 80, 10)),
    "too large": ((251, 236, 214), (140, 80, 10)),
    "video": ((226, 232, 246), (40, 60, 120)),
}
_DEFAULT_PLACEHOLDER: tuple[Color, Color] = ((228, 228, 228), (90, 90, 90))


def draw_placeholder(draw: ImageDraw.ImageDraw, rect: Rect, word: str, detail: str) -> None:
    """A tinted slot with what happened (`failed`, `cancelled`, ...) and the short error."""
    fill, ink = PLACEHOLDER_COLORS.get(word, _DEFAULT_PLACEHOLDER)
    draw.rectangle(corners(rect), fill=fill)
    size = min(32, max(FONT_FLOOR, round(rect.width * 0.08)))
    inset = max(2, size // 3)
    width = rect.width - 2 * inset
    line_h = math.ceil(size * LINE_EM)
    heading = _fit_lines(word, font(size, bold=True), width, 1) or [""]
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
    lines = list(_wrap(label.full, face, width, label.lines + 1))
    if len(lines) <= label.lines:
        return lines
    if "\n" not in label.full:
        return _middle_cut(label.full, face, width, label.lines)
    # Stacked `name=value` lines were shortened line by line by the layout.
    return _fit_lines(label.short, face, width, label.lines)


def _middle_cut(text: str, face: ImageFont.FreeTypeFont, width: int, most: int) -> list[str]:
    """The longest middle-shortened `text` (as the layout shortens) that wraps into `most`
    lines by measured width: the layout's estimate is cautious and leaves room unused."""
    low, high = 1, len(text) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if len(list(_wrap(shorten(text, middle, 1), face, width, most + 1))) <= most:
            low = middle
        else:
            high = middle - 1
    return _fit_lines(shorten(text, low, 1), face, width, most)


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
    canvas.paste(TEXT, corners(rect, inclusive=False), rotated)


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


def corners(rect: Rect, inclusive: bool = True) -> tuple[int, int, int, int]:
    # ImageDraw.rectangle includes its far corner; Image.paste boxes do not.
    end = 1 if inclusive else 0
    return rect.x, rect.y, rect.right - end, rect.bottom - end
