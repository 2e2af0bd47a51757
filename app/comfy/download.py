"""Streaming a `/view` body to disk: hashed as it arrives, published with one atomic rename.

Videos run to hundreds of MB, so the body is never held in memory, and a reader never sees a
half-written file: bytes go to a hidden temp file beside the destination, are fsynced, and only
then replace it (`os.replace`), so a crash leaves either the old file or the whole new one.
A small body the caller would rewrite at once (a PNG it annotates) is the exception: it is
handed over in memory, and the caller's `Rewrite` writes the file, just as atomically.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from app.comfy.errors import ComfyError, RunError
from app.comfy.protocol import OutputFile

CHUNK_BYTES = 1 << 20
VIEW_TYPES = frozenset({"output", "temp", "input"})  # the folders ComfyUI's /view serves
GENERIC_MIME = "application/octet-stream"
# Above this a body is streamed to disk even when the caller would rewrite it: creating,
# syncing and reading back a file that is replaced at once costs a worker more CPU than
# the rest of a small image's handling.
REWRITE_IN_MEMORY_BYTES = 16 << 20


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str
    mime: str
    rewritten: bool = False  # written by the caller's `Rewrite`, in its final form


@dataclass(frozen=True)
class Rewrite:
    """What the caller does with a body of `mime` (at most REWRITE_IN_MEMORY_BYTES, as its
    Content-Length says): `write(body, destination)` writes the file atomically in its final
    form and returns its size and sha256 as written."""

    mime: str
    write: Callable[[bytes, Path], tuple[int, str]]


def view_params(output: OutputFile) -> dict[str, str]:
    """Query parameters for `/view`, refusing names that would leave ComfyUI's folders.

    ComfyUI guards `/view` itself (400 on `..`, capture get_view_traversal); names come from
    its history, which is data, so we refuse them before asking too.
    """
    name, subfolder = output.filename, output.subfolder
    bad_name = not name or name in {".", ".."} or any(c in name for c in "/\\\0")
    parts = subfolder.replace("\\", "/").split("/")
    bad_subfolder = "\0" in subfolder or subfolder.startswith(("/", "\\")) or ".." in parts
    if bad_name or bad_subfolder or output.type not in VIEW_TYPES:
        message = f"refusing to fetch {output.type}/{subfolder}/{name}: not a plain file name"
        raise ComfyError(RunError(kind="protocol", message=message, node_id=output.node_id))
    return {"filename": name, "subfolder": subfolder, "type": output.type}


async def save_body(
    response: aiohttp.ClientResponse,
    destination: Path,
    filename: str,
    rewrite: Rewrite | None = None,
) -> Downloaded:
    """Stream `response` into `destination`; the temp file is removed on any failure. A small
    body of the mime type `rewrite` names goes to it instead."""
    mime = mime_of(response, filename)
    if rewrite is not None and mime == rewrite.mime and _fits_in_memory(response):
        body = await response.read()
        _check_length(response, len(body))
        size, sha256 = rewrite.write(body, destination)
        return Downloaded(size=size, sha256=sha256, mime=mime, rewritten=True)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.part")
    try:
        size, sha256 = await _write(response, temp)
        _check_length(response, size)
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return Downloaded(size=size, sha256=sha256, mime=mime)


def _fits_in_memory(response: aiohttp.ClientResponse) -> bool:
    length = response.headers.get("Content-Length", "")
    encoded = response.headers.get("Content-Encoding", "identity") != "identity"
    return length.isdigit() and not encoded and int(length) <= REWRITE_IN_MEMORY_BYTES


async def _write(response: aiohttp.ClientResponse, temp: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with temp.open("xb") as file:  # "x": created fresh with the process umask, never reused
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            file.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        file.flush()
        # fsync before the rename: the worker records the file as saved right after this.
        await asyncio.to_thread(os.fsync, file.fileno())
    return size, digest.hexdigest()


def _check_length(response: aiohttp.ClientResponse, size: int) -> None:
    # aiohttp already refuses a body shorter than Content-Length (ClientPayloadError); this
    # says so in our words whatever the client. An encoded body (gzip through a proxy) has a
    # different decoded size.
    expected = response.headers.get("Content-Length", "")
    encoded = response.headers.get("Content-Encoding", "identity") != "identity"
    if expected.isdigit() and not encoded and int(expected) != size:
        message = f"/view body ended after {size} of {expected} bytes"
        raise ComfyError(RunError(kind="transport", message=message))


def mime_of(response: aiohttp.ClientResponse, filename: str) -> str:
    """The Content-Type ComfyUI sent, else a guess from the file name."""
    header = str(response.headers.get("Content-Type", "")).split(";")[0].strip().lower()
    if header and header != GENERIC_MIME:
        return header
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or header or GENERIC_MIME
