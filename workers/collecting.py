"""Copying a finished prompt's outputs from its instance into our storage, with metadata.

Files stream to disk (videos can be hundreds of MB); PNGs keep ComfyUI's `prompt` chunk and
gain the A1111 `parameters` line and our own `comfy_sweep` record, and, when the workflow
version has a UI-format source, a `workflow` chunk holding it with the run's values.
"""

from __future__ import annotations

import logging
import mimetypes
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from app.comfy.client import ComfyClient
from app.comfy.download import Rewrite
from app.comfy.errors import ComfyError
from app.comfy.protocol import HistoryEntry, OutputFile
from app.domain.infotext import infotext
from app.domain.patching import patch_graph
from app.domain.ui_widgets import patch_ui_graph
from app.media.png_metadata import annotate_png, write_annotated_png
from app.media.storage import Digest, hash_file
from app.stores.outputs import NewOutput
from app.stores.runs import Claim
from workers.runtime import Runtime
from workers.workflows import pinned_workflow

log = logging.getLogger(__name__)
# Node specs change only when an instance installs nodes or models; widget order even less.
OBJECT_INFO_TTL_S = 300.0
_object_info: dict[str, tuple[float, dict[str, Any]]] = {}
PNG = "image/png"


@dataclass(frozen=True)
class Collected:
    """A run's stored outputs, and the bodies of those that were written from memory (small
    PNGs, `Rewrite`), by position: the run's tile is fitted from there, not read back."""

    outputs: list[NewOutput]
    bodies: dict[int, bytes] = field(default_factory=dict)


async def collect_outputs(
    rt: Runtime, client: ComfyClient, claim: Claim, entry: HistoryEntry
) -> Collected:
    """Called once the prompt is followed, when nothing else runs on the worker's loop: the
    database reads and file rewrites here block it in place rather than hop to a thread."""
    # Previews ("temp") are ComfyUI's scratch files, not results.
    kept = [o for o in entry.outputs if o.type == "output"]
    workflow = await _ui_workflow(rt, client, claim) if kept else None
    collected = Collected([])
    for position, output in enumerate(kept):
        stored, body = await _collect_one(rt, client, claim, position, output, workflow)
        collected.outputs.append(stored)
        if body is not None:
            collected.bodies[position] = body
    return collected


async def _ui_workflow(rt: Runtime, client: ComfyClient, claim: Claim) -> dict[str, Any] | None:
    """The version's UI-format source with this run's values in its widgets, or None."""
    pinned = pinned_workflow(rt, claim.sweep_id)
    if pinned.ui_graph is None:
        return None
    contract = pinned.workflow.contract
    prompt = patch_graph(pinned.workflow.graph, contract, claim.assignment)
    bound = [
        (binding.node_id, binding.input_name)
        for name, parameter in contract.parameters.items()
        if name in claim.assignment
        for binding in parameter.bindings
    ]
    return patch_ui_graph(pinned.ui_graph, prompt, bound, await _specs_of(client))


async def _specs_of(client: ComfyClient) -> Mapping[str, Any] | None:
    """The instance's /object_info, cached per process; None if it does not answer, and the
    UI source is then written unpatched rather than failing a run that succeeded."""
    cached = _object_info.get(client.base_url)
    if cached is not None and time.monotonic() - cached[0] < OBJECT_INFO_TTL_S:
        return cached[1]
    try:
        specs = await client.object_info()
    except ComfyError as failure:
        log.warning(
            "object_info_unavailable instance=%s error=%s", client.instance, failure.error.message
        )
        return None
    _object_info[client.base_url] = (time.monotonic(), specs)
    return specs


async def _collect_one(
    rt: Runtime,
    client: ComfyClient,
    claim: Claim,
    position: int,
    output: OutputFile,
    workflow: Mapping[str, Any] | None,
) -> tuple[NewOutput, bytes | None]:
    """The stored output, and its body as downloaded if it was written from memory."""
    suffix = PurePosixPath(output.filename).suffix.lower() or ".bin"
    # The run's directory is made by whichever write finds it missing (`atomic_file`).
    destination = rt.storage.output_path(claim.sweep_id, claim.index, position, suffix)
    text = infotext(claim.assignment)
    record = {
        "sweep_id": str(claim.sweep_id),
        "run_index": claim.index,
        "assignment": dict(claim.assignment),
    }

    in_memory: list[bytes] = []

    def annotated(body: bytes, path: Path) -> Digest:
        in_memory.append(body)
        return write_annotated_png(
            body, path, parameters=text, comfy_sweep=record, workflow=workflow
        )

    # A PNG of usual size is annotated in memory and written once; a larger one is saved
    # as it came, then rewritten.
    downloaded = await client.download(output, destination, Rewrite(PNG, annotated))
    size, sha256, mime = downloaded.size, downloaded.sha256, downloaded.mime
    if mime == PNG and not downloaded.rewritten:
        annotate_png(destination, parameters=text, comfy_sweep=record, workflow=workflow)
        size, sha256 = hash_file(destination)
    stored = NewOutput(
        position=position,
        kind=_kind(mime, output),
        path=rt.storage.relative(destination),
        mime=mime or mimetypes.guess_type(output.filename)[0] or "application/octet-stream",
        size=size,
        sha256=sha256,
    )
    # The annotation adds text chunks only: the pixels are the stored file's.
    return stored, in_memory[0] if in_memory else None


def _kind(mime: str, output: OutputFile) -> str:
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("image/"):
        return "animation" if output.animated else "image"
    return "file"
