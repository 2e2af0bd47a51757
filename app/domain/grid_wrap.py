"""Label text wrapped at separators and fitted to its area, by a width measure passed in.

A line breaks only after a space, `_` or `-`, which stays at the end of the line before the
break (`dpmpp_2m_` / `sde`): parameter values such as sampler names must never be split
inside a token, where the two halves read as two other names. When a token is wider than the
line, or the text needs more lines than its area holds, the font shrinks for that label, down
to `SHRINK_FLOOR`; only text that still does not fit is shortened, at token boundaries, with
an ellipsis where the middle was dropped. The domain has no fonts, so the renderer passes a
measure of real glyph advances and the tests a fixed-width one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from app.domain.grid_text import ELLIPSIS, LINE_EM

SHRINK_FLOOR = 10  # px: the smallest a label shrinks to; smaller is hard to read at 100 % zoom
# A run of non-separators followed by its separators, or a trailing run without any.
_TOKEN = re.compile(r"[^ _\-]*[ _\-]+|[^ _\-]+")

# Wrapped lines hold less than the text measured flat (a break drops a space, and hard breaks
# leave lines part empty); with this slack the flat measure only rules out what cannot fit.
_WRAP_SLACK = 1.1

Measure = Callable[[str, int], float]  # the advance width of text at a font size in px


@dataclass(frozen=True, slots=True)
class FittedText:
    lines: tuple[str, ...]
    font_px: int
    shortened: bool  # some of the text was left out to fit


def tokens(text: str) -> list[str]:
    """`text` split after each run of separators: joined back they are `text` again."""
    return _TOKEN.findall(text)


def line_height(font_px: int) -> int:
    return math.ceil(font_px * LINE_EM)


def wrap(text: str, width: float, measure: Callable[[str], float], most: int) -> list[str]:
    """Greedy wrap of each `\\n`-separated paragraph at separators; a token wider than the
    line gets a line of its own (and overflows: the caller checks). Stops after `most`
    lines, so a long prompt costs no more than the lines it can show."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        for line in _wrap_paragraph(paragraph, width, measure):
            lines.append(line)
            if len(lines) >= most:
                return lines
    return lines


def fit_text(
    text: str,
    width: int,
    height: int,
    font_px: int,
    measure: Measure,
    *,
    floor: int = SHRINK_FLOOR,
) -> FittedText:
    """`text` in as few lines of `width` as fit `height`, at `font_px` or the largest smaller
    size (down to `floor`) at which all of it fits; else shortened at the size where its
    widest token fits, so no line ever ends inside a token."""
    floor = min(floor, font_px)
    at = _Measures(measure)
    # Measured once and scaled: glyph advances grow about linearly with the size.
    flat = measure(text.replace("\n", " "), font_px) / font_px
    for px in range(font_px, floor - 1, -1):
        most = _lines_in(height, px)
        if flat * px > most * width * _WRAP_SLACK:
            continue  # too long to fit at this size whatever the breaks: skip wrapping it
        lines = wrap(text, width, at(px), most + 1)
        if len(lines) <= most and all(measure(line, px) <= width for line in lines):
            return FittedText(tuple(lines), px, shortened=False)
    px = _largest_fitting_tokens(text, width, font_px, floor, at)
    lines = _shortened(text, width, _lines_in(height, px), at(px))
    if lines == [ELLIPSIS] and px > floor:
        # Nothing but the ellipsis at this size (a long name on one short line): the
        # smallest size shows at least the start of it.
        px = floor
        lines = _shortened(text, width, _lines_in(height, px), at(px))
    return FittedText(tuple(lines), px, shortened=True)


class _Measures:
    """`measure` at one size, remembered per text: wrapping and shortening ask for the same
    tokens again and again, and a font's advance is by far the dearest step."""

    def __init__(self, measure: Measure) -> None:
        self._measure = measure
        self._sizes: dict[int, Callable[[str], float]] = {}

    def __call__(self, px: int) -> Callable[[str], float]:
        if px not in self._sizes:
            widths: dict[str, float] = {}

            def width(text: str) -> float:
                if text not in widths:
                    widths[text] = self._measure(text, px)
                return widths[text]

            self._sizes[px] = width
        return self._sizes[px]


def clip_lines(text: str, width: int, most: int, measure: Callable[[str], float]) -> list[str]:
    """At most `most` lines wrapped at separators; the last ends in an ellipsis when text was
    left out, and a token wider than the line is shortened in its middle."""
    if most <= 0 or not text:
        return []
    lines = [_fit_token(line, width, measure) for line in wrap(text, width, measure, most + 1)]
    if len(lines) <= most:
        return lines
    return [*lines[: most - 1], _with_ellipsis(lines[most - 1], width, measure)]


# --- wrapping ---


def _wrap_paragraph(text: str, width: float, measure: Callable[[str], float]) -> Iterator[str]:
    # Lines are summed from token widths (each measured once) rather than measured whole at
    # every step; kerning across a break point is the only difference, and `fit_text` checks
    # the lines it keeps by measuring them whole.
    line: list[str] = []
    used = 0.0
    for token in tokens(text):
        if line and used + measure(token.rstrip(" ")) > width:
            yield "".join(line).rstrip(" ")
            line, used = [], 0.0
            token = token.lstrip(" ")
            if not token:
                continue
        line.append(token)
        used += measure(token)
    yield "".join(line).rstrip(" ")


def _lines_in(height: int, font_px: int) -> int:
    return max(1, height // line_height(font_px))


# --- shortening ---


def _largest_fitting_tokens(
    text: str, width: int, font_px: int, floor: int, at: Callable[[int], Callable[[str], float]]
) -> int:
    parts = [token.rstrip(" ") for token in tokens(text.replace("\n", " "))]
    for px in range(font_px, floor - 1, -1):
        if all(at(px)(part) <= width for part in parts):
            return px
    return floor


def _shortened(text: str, width: int, most: int, measure: Callable[[str], float]) -> list[str]:
    if "\n" in text:
        # Stacked `name=value` lines: the first ones matter most, so the end is dropped.
        return clip_lines(text, width, most, measure)
    parts = tokens(text)

    def fits(shown: int) -> bool:
        wrapped = wrap(_middle_cut(parts, shown), width, measure, most + 1)
        # A lone token too wide even at the floor is shortened by `clip_lines` itself.
        return len(wrapped) <= most and all(
            measure(line) <= width or len(tokens(line)) == 1 for line in wrapped
        )

    # As many tokens as fit, half from the start and half from the end: a prompt's subject
    # and its last words usually tell values apart.
    low, high = 0, len(parts)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return clip_lines(_middle_cut(parts, low), width, most, measure)


def _middle_cut(parts: list[str], shown: int) -> str:
    if shown >= len(parts):
        return "".join(parts)
    head = "".join(parts[: shown - shown // 2])
    tail = "".join(parts[len(parts) - shown // 2 :]) if shown // 2 else ""
    # The ellipsis stands where the dropped tokens were: after a space it is a word of its
    # own, after `_` or `-` it ends the token it follows (`sampler_…`).
    cut = head.rstrip(" ") + (" " if head.endswith(" ") else "") + ELLIPSIS
    return f"{cut} {tail.lstrip(' ')}" if tail else cut


def _fit_token(line: str, width: int, measure: Callable[[str], float]) -> str:
    """`line` whole if it fits, else its middle replaced by an ellipsis: a lone token too wide
    even at the smallest size (a seed in a tiny sub-cell) keeps its start and its end."""
    if measure(line) <= width:
        return line
    low, high = 0, len(line) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if measure(_cut_chars(line, middle)) <= width:
            low = middle
        else:
            high = middle - 1
    return _cut_chars(line, low)


def _cut_chars(text: str, keep: int) -> str:
    tail = keep // 2
    return text[: keep - tail] + ELLIPSIS + (text[len(text) - tail :] if tail else "")


def _with_ellipsis(line: str, width: int, measure: Callable[[str], float]) -> str:
    """`line` ended by an ellipsis, dropping whole tokens from its end to make room."""
    parts = tokens(line)
    while parts:
        candidate = "".join(parts).rstrip(" ") + ELLIPSIS
        if measure(candidate) <= width:
            return candidate
        parts.pop()
    return ELLIPSIS
