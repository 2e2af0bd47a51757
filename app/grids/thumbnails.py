"""Small JPEG thumbnails of output files, one file at a time, for pages that embed them.

Only one source image is decoded at once and nothing is kept after it is encoded, so a
10,000-run contact sheet costs the memory of one image. A file that cannot be decoded (a
corrupt video, a truncated PNG, a decompression bomb) gets a drawn placeholder rather than an
error: one bad output must never break the page showing the others.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from contextlib import suppress
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from app.grids.posters import PosterUnavailable, poster_frame

log = logging.getLogger(__name__)

THUMBNAIL_EDGE = 256
# A thumbnail is looked at small: 75 keeps a 256 px JPEG around 8-12 KB.
JPEG_QUALITY = 75
_BACKGROUND = (34, 34, 38)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Pillow's own safety limits stop bombs; this stops merely huge files from taking seconds.
_MAX_PIXELS = 64_000_000
# The warning too: where warnings are errors (tests), Image.open raises it for big files.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


def thumbnail_jpeg(path: Path, kind: str, edge: int = THUMBNAIL_EDGE) -> bytes:
    """JPEG bytes of `path` fitted in `edge`×`edge`; a placeholder when it cannot be read.

    `kind` is the output's kind (`image`, `video`, ...): a video shows its first frame,
    anything else that is not an image gets a placeholder.
    """
    return _thumbnail(path, kind, edge) or placeholder_jpeg(kind, edge)


def cached_thumbnail(
    cache_dir: Path, sha256: str, path: Path, kind: str, edge: int = THUMBNAIL_EDGE
) -> bytes:
    """As `thumbnail_jpeg`, kept in `cache_dir` under the file's sha256.

    Outputs never change once written, so an entry never goes stale and a second look at a
    sweep decodes nothing (a 1024² PNG costs 30-60 ms; 10,000 of them are minutes).
    Placeholders are not kept: a newer decoder may read later what this one could not.
    """
    if not _SHA256.fullmatch(sha256):  # the name must never be a path
        return thumbnail_jpeg(path, kind, edge)
    entry = cache_dir / sha256[:2] / f"{sha256}-{edge}.jpg"
    with suppress(OSError):
        return entry.read_bytes()
    data = _thumbnail(path, kind, edge)
    if data is None:
        return placeholder_jpeg(kind, edge)
    _keep(entry, data)
    return data


def _thumbnail(path: Path, kind: str, edge: int) -> bytes | None:
    # is_file: a FIFO or device planted under DATA_DIR would block or stream forever.
    image = _first_frame(path, kind) if path.is_file() else None
    if image is None:
        return None
    try:
        return _encode(_fit(image, edge))
    except _DECODE_ERRORS as error:
        log.info("thumbnail_unreadable path=%s error=%s", path.name, type(error).__name__)
        return None
    finally:
        image.close()


def _keep(entry: Path, data: bytes) -> None:
    """Write a cache entry through a temporary file and a rename, so no reader sees half of
    one. No fsync: a lost entry is only made again. A read-only DATA_DIR means no cache."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=entry.parent, suffix=".part")
    except OSError as error:
        log.info("thumbnail_not_cached error=%s", type(error).__name__)
        return
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(temp, 0o644)  # mkstemp makes 0600; workers may run as another user
        os.replace(temp, entry)
    except OSError as error:
        log.info("thumbnail_not_cached error=%s", type(error).__name__)
        with suppress(OSError):
            os.unlink(temp)


@cache
def placeholder_jpeg(kind: str, edge: int = THUMBNAIL_EDGE) -> bytes:
    """A drawn stand-in: a play triangle for videos, a crossed box for anything else."""
    image = Image.new("RGB", (edge, edge), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    third = edge // 3
    if kind == "video":
        draw.polygon([(third, third), (third, 2 * third), (2 * third, edge // 2)], fill="#ddd")
    else:
        draw.rectangle([third, third, 2 * third, 2 * third], outline="#888", width=3)
        draw.line([third, third, 2 * third, 2 * third], fill="#888", width=3)
        draw.line([third, 2 * third, 2 * third, third], fill="#888", width=3)
    return _encode(image)


def _first_frame(path: Path, kind: str) -> Image.Image | None:
    if kind == "video":
        return _video_frame(path)
    if kind != "image":
        return None
    try:
        image = Image.open(path)
    except (*_DECODE_ERRORS, UnidentifiedImageError) as error:
        log.info("thumbnail_unreadable path=%s error=%s", path.name, type(error).__name__)
        return None
    if image.width * image.height > _MAX_PIXELS:
        image.close()
        return None
    return image


def _fit(image: Image.Image, edge: int) -> Image.Image:
    # draft() lets the JPEG decoder scale by 1/2..1/8 while decoding: much faster for photos.
    image.draft("RGB", (edge, edge))
    image = ImageOps.exif_transpose(image)
    image.thumbnail((edge, edge), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return _flatten(image)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on the page's background: JPEG has no alpha, and black corners look broken."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def _video_frame(path: Path) -> Image.Image | None:
    try:
        return poster_frame(path, _MAX_PIXELS)
    except PosterUnavailable as problem:
        log.info("video_frame_failed path=%s reason=%s", path.name, problem)
        return None
