"""Deterministic pictures for simulated decodes: colours from a hash, key parameters as text.

The colour field is seeded by the decoding node's cache signature, which covers every
upstream input, so two prompts that differ anywhere (a seed, a prompt word) give different
pixels, and the same prompt gives the same pixels on any instance.
"""

from __future__ import annotations

import random
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from app.standin.nodes.base import Labels, Latent

FIRST_LABELS = ("seed", "steps", "cfg", "guidance", "sampler", "scheduler", "denoise", "model")
PROMPT_CHARS = 48


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # Pillow built without FreeType: fixed bitmap font
        return ImageFont.load_default()


def caption_lines(labels: Labels) -> list[str]:
    values = dict(labels)
    lines = [f"{key} {values.pop(key)}" for key in FIRST_LABELS if key in values]
    prompt = values.pop("prompt", None)
    lines += [f"{key} {value}" for key, value in values.items()]
    if prompt is not None:
        short = prompt if len(prompt) <= PROMPT_CHARS else prompt[: PROMPT_CHARS - 1] + "…"
        lines.append(f'"{short}"')
    return lines


def _field(signature: str, index: int, size: tuple[int, int]) -> Image.Image:
    rng = random.Random(f"{signature}/{index}")  # noqa: S311 - deterministic pixels
    seed_pixels = Image.frombytes("RGB", (6, 6), rng.randbytes(6 * 6 * 3))
    return seed_pixels.resize(size, Image.Resampling.BICUBIC)


def _caption(image: Image.Image, lines: list[str]) -> None:
    if not lines:
        return
    size = max(9, min(image.width, image.height) // 30)
    font = _font(size)
    draw = ImageDraw.Draw(image)
    step = size + size // 3
    box_width = max(round(draw.textlength(line, font=font)) for line in lines) + size
    draw.rectangle((0, 0, box_width, step * len(lines) + size // 2), fill=(0, 0, 0))
    for row, line in enumerate(lines):
        draw.text((size // 2, size // 4 + row * step), line, fill=(255, 255, 255), font=font)


def render_latent(signature: str, latent: Latent) -> tuple[Image.Image, ...]:
    """One RGB frame per latent in the batch."""
    size = (max(1, latent.width), max(1, latent.height))
    lines = caption_lines(latent.labels)
    frames = []
    for index in range(latent.batch):
        image = _field(signature, index, size)
        if latent.source is not None:
            source = latent.source.frames[index % len(latent.source.frames)]
            image = Image.blend(source.convert("RGB").resize(size), image, 0.5)
        _caption(image, lines)
        frames.append(image)
    return tuple(frames)
