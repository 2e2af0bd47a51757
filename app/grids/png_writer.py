"""Writes an RGB canvas as PNG about five times faster than Pillow, for the same size of file.

Encoding was most of a finalizer's time once cells came as fitted tiles: Pillow tries four
filters on every row, then deflates with zlib (0.44 s of CPU for a 6.5 Mpx page of 20 cells
here). This writes every row with PNG's Sub filter, computed by numpy, and deflates with
ISA-L at level 1 (0.09 s, within 3 % of Pillow's level-1 size). Rows are encoded a band at a
time, so memory stays the canvas plus one band whatever the page size. Text goes in iTXt
chunks before the image data, as Pillow writes them, so readers find the record unchanged.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np
from isal import isal_zlib
from PIL import Image

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB, _BIT_DEPTH = 2, 8  # PNG colour type 2: truecolour, 8 bits a sample
_SUB = 1  # PNG row filter: each byte less the same sample of the pixel to its left
_BAND_ROWS = 256
LEVEL = 1  # ISA-L's levels are 0-3; 1 is as small as zlib's 1 and far quicker


def write_png(
    canvas: Image.Image, file: BinaryIO, texts: Mapping[str, tuple[str, bool]], level: int = LEVEL
) -> None:
    """`canvas` (RGB) as PNG to `file`, with each text as an iTXt chunk, deflated when its
    flag says so (a reader refuses to inflate very large chunks)."""
    if canvas.mode != "RGB":
        raise ValueError(f"write_png writes RGB canvases, not {canvas.mode!r}")
    width, height = canvas.size
    file.write(_SIGNATURE)
    _chunk(file, b"IHDR", struct.pack(">IIBBBBB", width, height, _BIT_DEPTH, _RGB, 0, 0, 0))
    for key, (text, compressed) in texts.items():
        _chunk(file, b"iTXt", _itxt(key, text, compressed))
    deflate = isal_zlib.compressobj(level)
    for top in range(0, height, _BAND_ROWS):
        # Each band's output is an IDAT of its own: readers join them, whatever their sizes.
        data = deflate.compress(_filtered(canvas, top, min(top + _BAND_ROWS, height)))
        if data:
            _chunk(file, b"IDAT", data)
    _chunk(file, b"IDAT", deflate.flush())
    _chunk(file, b"IEND", b"")


def _filtered(canvas: Image.Image, top: int, bottom: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Rows `top` to `bottom`, each as its filter byte then its Sub-filtered samples."""
    width = canvas.width
    rows = np.frombuffer(_raw_rows(canvas, top, bottom), dtype=np.uint8)
    rows = rows.reshape(bottom - top, width * 3)
    out = np.empty((bottom - top, width * 3 + 1), dtype=np.uint8)
    out[:, 0] = _SUB
    out[:, 1:4] = rows[:, :3]
    np.subtract(rows[:, 3:], rows[:, :-3], out=out[:, 4:])  # wraps modulo 256, as PNG's does
    return out


def _raw_rows(canvas: Image.Image, top: int, bottom: int) -> bytes:
    # Pillow's raw encoder over a region, as `tobytes` runs it over the whole image: `crop`
    # then `tobytes` would copy every pixel twice more (0.8 s of CPU for 70 Mpx, not 0.15).
    size = canvas.width * 3 * (bottom - top)
    encoder = Image._getencoder("RGB", "raw", ("RGB", 0, 1))
    encoder.setimage(canvas.im, (0, top, canvas.width, bottom))
    parts = []
    status = 0
    while status == 0:  # one round for a buffer the band's size, more should that change
        _, status, data = encoder.encode(size)
        parts.append(data)
    raw = parts[0] if len(parts) == 1 else b"".join(parts)
    if status < 0 or len(raw) != size:
        raise RuntimeError(f"Pillow's raw encoder returned {len(raw)} bytes of {size}")
    return raw


def _itxt(key: str, text: str, compressed: bool) -> bytes:
    # keyword, NUL, compression flag and method, language tag, NUL, translated keyword, NUL.
    body = zlib.compress(text.encode()) if compressed else text.encode()
    return key.encode("latin-1") + b"\0" + (b"\1\0" if compressed else b"\0\0") + b"\0\0" + body


def _chunk(file: BinaryIO, kind: bytes, data: bytes) -> None:
    file.write(struct.pack(">I", len(data)))
    file.write(kind)
    file.write(data)
    file.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))
