"""Label text on grid pages, sized and shortened by estimate.

The domain has no fonts, so text is measured here by an average glyph advance (`CHAR_EM`): a
font size follows from the cell width, band heights from `estimated_lines`, and `shorten`
cuts text to about so many lines of so many characters for `Label.short`. What is drawn is
fitted with real metrics by `app.domain.grid_wrap`'s rules (breaks only at separators, a smaller
font before any cut), so an optimistic estimate costs a smaller font, never a spill.
"""

from __future__ import annotations

import math

FONT_FLOOR = 14  # px: legible at 100 % zoom however small the cells get
FONT_CAP = 40
FONT_RATIO = 0.07  # of the cell width: text grows with cells so a zoomed-out grid stays readable
CHAR_EM = 0.55  # average advance of a sans-serif glyph in em, a little generous
LINE_EM = 1.3
MAX_LABEL_LINES = 3
MAX_STACKED_LINES = 6  # zip and sample labels put one parameter per line
ELLIPSIS = "…"
SLOT_FONT_RATIO = 0.8
SLOT_FONT_FLOOR = 11  # px: a 16-digit seed fits a 128 px sub-cell


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


def slot_font_px(font_px: int) -> int:
    """The size of a sub-cell's seed label: smaller than the headers it sits under."""
    return max(SLOT_FONT_FLOOR, round(font_px * SLOT_FONT_RATIO))


def estimated_lines(text: str, chars: int) -> int:
    return sum(max(1, math.ceil(len(line) * 1.15 / chars)) for line in text.split("\n"))


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
