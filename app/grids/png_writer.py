"""Writes an RGB canvas as PNG about five times faster than Pillow, for the same size of file.

Encoding was most of a finalizer's time once cells came as fitted tiles: Pillow tries four
filters on every row, then deflates with zlib (0.44 s of CPU for a 6.5 Mpx page of 20 cells
here). This writes every row with PNG's Sub filter, computed by numpy, and deflates with
ISA-L at level 1 (0.09 s, within 3 % of Pillow's level-1 size). Rows are encoded a band at a
time, so memory stays the canvas plus a few bands whatever the page size. Text goes in iTXt
chunks before the image data, as Pillow writes them, so readers find the record unchanged.

Bands are deflated in parallel, as pigz does: each band is a raw deflate stream ended by a
sync flush (byte-aligned, so streams simply concatenate), the last one finished, inside one
zlib header and the Adler-32 of all rows. ISA-L releases the GIL while it compresses, so a
1,000-cell page set deflates on every core; bands restart the dictionary, which costs
nothing measurable at 256 rows a band.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any, BinaryIO

import numpy as np
from isal import isal_zlib
from PIL import Image

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB, _BIT_DEPTH = 2, 8  # PNG colour type 2: truecolour, 8 bits a sample
_SUB = 1  # PNG row filter: each byte less the same sample of the pixel to its left
_BAND_ROWS = 256
LEVEL = 1  # ISA-L's levels are 0-3; 1 is as small as zlib's 1 and far quicker
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, "fastest" level hint; no dictionary


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
    for data in _deflated_bands(canvas, level):
        _chunk(file, b"IDAT", data)
    _chunk(file, b"IEND", b"")


def _deflated_bands(canvas: Image.Image, level: int) -> Iterator[bytes]:
    """The zlib stream of every filtered row, in pieces: the header, each band's raw deflate
    stream as it is ready (a few bands in flight at once), then the checksum."""
    yield _ZLIB_HEADER
    height = canvas.height
    pending: deque[Future[bytes]] = deque()
    checksum = 1  # Adler-32's initial value
    for top in range(0, height, _BAND_ROWS):
        band = _filtered(canvas, top, min(top + _BAND_ROWS, height))
        checksum = isal_zlib.adler32(band, checksum)
        last = top + _BAND_ROWS >= height
        pending.append(_pool().submit(_deflate_band, band, level, last))
        if len(pending) > _IN_FLIGHT:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
    yield struct.pack(">I", checksum)


def _deflate_band(band: np.ndarray[Any, np.dtype[np.uint8]], level: int, last: bool) -> bytes:
    deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)  # raw: no header
    data = deflate.compress(band)
    return data + deflate.flush(isal_zlib.Z_FINISH if last else isal_zlib.Z_SYNC_FLUSH)


# Bands deflating at once beyond the one being filtered: enough to keep every core busy,
# few enough that memory stays the canvas plus a handful of bands.
_IN_FLIGHT = max(2, os.cpu_count() or 1)


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_IN_FLIGHT, thread_name_prefix="png-deflate")


# A forked child (a Celery pool process) inherits the pool object but not its threads, and
# would wait forever on work no thread takes: it makes its own on first use instead.
os.register_at_fork(after_in_child=_pool.cache_clear)


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
