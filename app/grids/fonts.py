"""The TrueType font grid labels are drawn with, loaded once per size.

The font ships in a PyPI package (`font-source-sans-pro`, SIL Open Font License 1.1), so it
installs with the project's dependencies on any machine, with no system fonts needed. If that
package is missing, Pillow's own embedded TrueType font (Aileron, FreeType-scaled) stands in
with a warning: labels stay scalable and legible, only the typeface changes.
"""

from __future__ import annotations

import logging
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger(__name__)

FONT_PACKAGE = "font_source_sans_pro"
REGULAR = "SourceSansPro-Regular.ttf"
SEMIBOLD = "SourceSansPro-Semibold.ttf"


@cache
def font_file(name: str = REGULAR) -> Path | None:
    """Where the packaged font file is, or None when its package is not installed."""
    try:
        path = resources.files(FONT_PACKAGE) / "files" / name
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


# A grid uses a handful of sizes (headers, titles, placeholders), so a small cache holds all.
@lru_cache(maxsize=64)
def font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The label font at `size` pixels."""
    path = font_file(SEMIBOLD if bold else REGULAR)
    if path is not None:
        return ImageFont.truetype(str(path), size)
    log.warning("grid_font_missing package=%s using=pillow-default", FONT_PACKAGE)
    fallback = ImageFont.load_default(size)
    if not isinstance(fallback, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError(f"install {FONT_PACKAGE}: Pillow has no FreeType to scale its own")
    return fallback
