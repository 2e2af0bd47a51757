"""Adds our text chunks to a PNG that ComfyUI wrote, without re-encoding it.

The file is rewritten chunk by chunk: every existing chunk is copied byte for byte (IDAT,
so the pixels, and ComfyUI's `prompt` and `workflow` text, so dropping the PNG onto ComfyUI
still reloads the workflow), and two text chunks are inserted before the first IDAT:
`parameters` (A1111's infotext, read by A1111, Forge and most image viewers) and
`comfy_sweep` (JSON naming the sweep, run and assignment). Those two keywords are ours: an
earlier copy of either is replaced, so annotating twice (a redelivered task) gives the same
file. When the workflow version has a UI-format source, a `workflow` chunk (ComfyUI's own
keyword, which its frontend loads on drop) carries it with the run's values and replaces
any `workflow` chunk the saver wrote. It must never decode or re-encode pixels, and never
touch a file that is not a PNG.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from app.media.storage import BLOCK_SIZE, Digest, HashingWriter, atomic_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARAMETERS_KEY = "parameters"
COMFY_SWEEP_KEY = "comfy_sweep"
WORKFLOW_KEY = "workflow"
_OWN_KEYWORDS = frozenset({PARAMETERS_KEY.encode(), COMFY_SWEEP_KEY.encode()})
_TEXT_TYPES = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_HEADER = struct.Struct(">I4s")  # chunk data length, chunk type
_MAX_CHUNK = 2**31 - 1  # PNG's own limit on a chunk's length


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class MalformedPng(ValueError):
    """The file starts like a PNG but its chunk stream is broken."""


def annotate_png(
    path: Path,
    *,
    parameters: str,
    comfy_sweep: Mapping[str, Any],
    workflow: Mapping[str, Any] | None = None,
) -> None:
    """Rewrite `path` in place with `parameters` and `comfy_sweep` text chunks, and a
    `workflow` chunk when given; a file that is not a PNG is left untouched. The rewrite is
    atomic (temporary file, then rename)."""
    new_chunks, replaced = _annotation(parameters, comfy_sweep, workflow)
    with path.open("rb") as source:
        if source.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            return
        with atomic_file(path) as target:
            target.write(PNG_SIGNATURE)
            _copy_chunks(source, target, new_chunks, replaced)


def write_annotated_png(
    body: bytes,
    path: Path,
    *,
    parameters: str,
    comfy_sweep: Mapping[str, Any],
    workflow: Mapping[str, Any] | None = None,
) -> Digest:
    """Write `body`, a file still in memory, to `path` as `annotate_png` would leave it had
    it been written first (a body that is not a PNG unchanged), atomically; its size and
    sha256 as written. One file written and synced, none read back."""
    with atomic_file(path) as file:
        target = HashingWriter(file)
        if not body.startswith(PNG_SIGNATURE):
            target.write(body)
            return target.digest
        new_chunks, replaced = _annotation(parameters, comfy_sweep, workflow)
        source = io.BytesIO(body)
        target.write(source.read(len(PNG_SIGNATURE)))
        _copy_chunks(source, target, new_chunks, replaced)
    return target.digest


def _annotation(
    parameters: str, comfy_sweep: Mapping[str, Any], workflow: Mapping[str, Any] | None
) -> tuple[bytes, frozenset[bytes]]:
    """Our text chunks, and the keywords of the chunks they replace."""
    # default=str: ids and other non-JSON scalars become their usual text form.
    sweep_json = json.dumps(comfy_sweep, ensure_ascii=False, sort_keys=True, default=str)
    new_chunks = text_chunk(PARAMETERS_KEY, parameters) + text_chunk(COMFY_SWEEP_KEY, sweep_json)
    if workflow is None:
        return new_chunks, _OWN_KEYWORDS
    # Compact, like the frontend's own JSON.stringify: the chunk can be large.
    workflow_json = json.dumps(workflow, ensure_ascii=False, separators=(",", ":"))
    new_chunks += text_chunk(WORKFLOW_KEY, workflow_json)
    return new_chunks, _OWN_KEYWORDS | {WORKFLOW_KEY.encode()}


def text_chunk(keyword: str, text: str) -> bytes:
    """A complete text chunk: tEXt when the text is Latin-1 (the PNG text encoding), else an
    uncompressed UTF-8 iTXt, so a prompt in any script survives."""
    key = keyword.encode("latin-1")
    try:
        return _chunk(b"tEXt", key + b"\0" + text.encode("latin-1"))
    except UnicodeEncodeError:
        # keyword, compression flag and method (none), empty language tag and translation.
        return _chunk(b"iTXt", key + b"\0\0\0" + b"\0" + b"\0" + text.encode("utf-8"))


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _copy_chunks(
    source: BinaryIO, target: _Sink, new_chunks: bytes, replaced: frozenset[bytes]
) -> None:
    inserted = False
    while True:
        header = _read_exact(source, _HEADER.size)
        length, kind = _HEADER.unpack(header)
        if length > _MAX_CHUNK:
            raise MalformedPng(f"chunk {kind!r} claims {length} bytes")
        if kind == b"IDAT" and not inserted:
            target.write(new_chunks)
            inserted = True
        _copy_chunk(source, target, header, kind, length, replaced)
        if kind == b"IEND":
            break
    if not inserted:
        raise MalformedPng("no IDAT chunk before IEND")


def _copy_chunk(
    source: BinaryIO,
    target: _Sink,
    header: bytes,
    kind: bytes,
    length: int,
    replaced: frozenset[bytes],
) -> None:
    if kind in _TEXT_TYPES:
        body = _read_exact(source, length + 4)  # data and CRC; text chunks are small
        if _keyword(body) not in replaced:
            target.write(header + body)
        return
    target.write(header)
    remaining = length + 4
    while remaining:
        block = _read_exact(source, min(remaining, BLOCK_SIZE))
        target.write(block)
        remaining -= len(block)


def _keyword(body: bytes) -> bytes:
    # tEXt, zTXt and iTXt all open with a NUL-terminated keyword of 1 to 79 bytes.
    return body[: body.find(b"\0")] if b"\0" in body[:80] else b""


def _read_exact(source: BinaryIO, count: int) -> bytes:
    data = source.read(count)
    if len(data) != count:
        raise MalformedPng(f"file ends inside a chunk ({len(data)} of {count} bytes)")
    return data
