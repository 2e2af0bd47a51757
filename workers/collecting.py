"""Copying a finished prompt's outputs from its instance into our storage, with metadata.

Files stream to disk (videos can be hundreds of MB); PNGs keep ComfyUI's `prompt` chunk and
gain the A1111 `parameters` line and our own `comfy_sweep` record.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import PurePosixPath

from app.comfy.client import ComfyClient
from app.comfy.protocol import HistoryEntry, OutputFile
from app.domain.infotext import infotext
from app.media.png_metadata import annotate_png
from app.media.storage import hash_file
from app.stores.outputs import NewOutput
from app.stores.runs import Claim
from workers.runtime import Runtime


async def collect_outputs(
    rt: Runtime, client: ComfyClient, claim: Claim, entry: HistoryEntry
) -> list[NewOutput]:
    # Previews ("temp") are ComfyUI's scratch files, not results.
    kept = [o for o in entry.outputs if o.type == "output"]
    return [await _collect_one(rt, client, claim, n, output) for n, output in enumerate(kept)]


async def _collect_one(
    rt: Runtime, client: ComfyClient, claim: Claim, position: int, output: OutputFile
) -> NewOutput:
    suffix = PurePosixPath(output.filename).suffix.lower() or ".bin"
    destination = rt.storage.output_path(claim.sweep_id, claim.index, position, suffix)
    destination.parent.mkdir(parents=True, exist_ok=True)
    downloaded = await client.download(output, destination)
    size, sha256, mime = downloaded.size, downloaded.sha256, downloaded.mime
    if mime == "image/png":
        record = {
            "sweep_id": str(claim.sweep_id),
            "run_index": claim.index,
            "assignment": dict(claim.assignment),
        }
        text = infotext(claim.assignment)
        await asyncio.to_thread(annotate_png, destination, parameters=text, comfy_sweep=record)
        size, sha256 = await asyncio.to_thread(hash_file, destination)
    return NewOutput(
        position=position,
        kind=_kind(mime, output),
        path=rt.storage.relative(destination),
        mime=mime or mimetypes.guess_type(output.filename)[0] or "application/octet-stream",
        size=size,
        sha256=sha256,
    )


def _kind(mime: str, output: OutputFile) -> str:
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("image/"):
        return "animation" if output.animated else "image"
    return "file"
