"""Text on grid pages: header labels and the words on placeholder cells, wrapped and
fitted by measured width so they never spill out of the areas the layout gave them.

Lines break only at separators (`app.domain.grid_wrap`): a label whose token is too wide, or
whose text needs more lines than its area holds, is drawn smaller, and only text that does
not fit even at the smallest size is shortened, with an ellipsis. The full text is never
lost: the page's PNG metadata records it.
"""

from __future__ import annotations

from collections.abc import Mapping

from PIL import Image, ImageDraw, ImageFont

from app.domain.grid_geometry import Label, Rect
from app.domain.grid_text import FONT_FLOOR
from app.domain.grid_wrap import FittedText, clip_lines, fit_text, line_height
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
    line_h = line_height(size)
    bold, regular = font(size, bold=True), font(size)
    heading = clip_lines(word, width, 1, bold.getlength) or [""]
    most = max(0, (rect.height - 2 * inset) // line_h - 1)
    lines = clip_lines(detail, width, most, regular.getlength)
    top = rect.y + max(inset, (rect.height - line_h * (1 + len(lines))) // 2)
    center = rect.x + rect.width // 2
    draw.text((center, top), heading[0], font=bold, fill=ink, anchor="ma")
    for n, line in enumerate(lines, start=1):
        draw.text((center, top + n * line_h), line, font=regular, fill=ink, anchor="ma")


def draw_label(canvas: Image.Image, draw: ImageDraw.ImageDraw, label: Label) -> None:
    """The label's text as `fit_label` fits it, centred in its area (titles to the left)."""
    fitted = fit_label(label)
    face = font(fitted.font_px, bold=_bold(label))
    if label.vertical:
        _draw_vertical(canvas, label, fitted, face)
        return
    rect = label.rect
    line_h = line_height(fitted.font_px)
    top = rect.y + max(0, (rect.height - line_h * len(fitted.lines)) // 2)
    left_aligned = label.role == "title"
    x = rect.x + _inset(label) if left_aligned else rect.x + rect.width // 2
    for n, line in enumerate(fitted.lines):
        anchor = "la" if left_aligned else "ma"
        draw.text((x, top + n * line_h), line, font=face, fill=TEXT, anchor=anchor)


def fit_label(label: Label) -> FittedText:
    """The lines and font size `label` is drawn with, measured with the real font."""
    rect = label.rect
    along, across = (rect.height, rect.width) if label.vertical else (rect.width, rect.height)
    inset = _inset(label)
    bold = _bold(label)

    def measure(text: str, px: int) -> float:
        return font(px, bold=bold).getlength(text)

    return fit_text(label.full, along - 2 * inset, across - 2 * inset, label.font_px, measure)


def _inset(label: Label) -> int:
    return max(2, label.font_px // 4)


def _bold(label: Label) -> bool:
    return label.role in ("title", "axis")


def _draw_vertical(
    canvas: Image.Image, label: Label, fitted: FittedText, face: ImageFont.FreeTypeFont
) -> None:
    # Drawn across a mask as wide as the rect is tall, then turned to read bottom to top.
    rect = label.rect
    mask = Image.new("L", (rect.height, rect.width), 0)
    line_h = line_height(fitted.font_px)
    top = max(0, (rect.width - line_h * len(fitted.lines)) // 2)
    mask_draw = ImageDraw.Draw(mask)
    for n, line in enumerate(fitted.lines):
        mask_draw.text((rect.height // 2, top + n * line_h), line, font=face, fill=255, anchor="ma")
    rotated = mask.transpose(Image.Transpose.ROTATE_90)
    canvas.paste(TEXT, corners(rect, inclusive=False), rotated)


def corners(rect: Rect, inclusive: bool = True) -> tuple[int, int, int, int]:
    # ImageDraw.rectangle includes its far corner; Image.paste boxes do not.
    end = 1 if inclusive else 0
    return rect.x, rect.y, rect.right - end, rect.bottom - end
