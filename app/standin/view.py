"""`GET /view` file lookup with ComfyUI's path guard (server.py `view_image`).

A filename starting with `/` or containing `..` is refused with 400, an unknown `type` with
400, a `subfolder` that leaves the type's directory with 403, a missing file with 404.
`name.png [temp]` style annotations pick the directory like ComfyUI's annotated paths.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ANNOTATIONS = {" [output]": "output", " [input]": "input", " [temp]": "temp"}
# Served as downloads, never rendered: ComfyUI forces these to application/octet-stream.
UNSAFE_TYPES = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
}


@dataclass(frozen=True)
class ViewFile:
    path: Path
    filename: str
    content_type: str


def _split_annotation(filename: str) -> tuple[str, str | None]:
    for suffix, kind in ANNOTATIONS.items():
        if filename.endswith(suffix):
            return filename[: -len(suffix)], kind
    return filename, None


def content_type_of(filename: str) -> str:
    guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return "application/octet-stream" if guessed in UNSAFE_TYPES else guessed


def find_view_file(query: Mapping[str, str], directories: Mapping[str, Path]) -> ViewFile | int:
    """The file to stream, or the HTTP status to answer with."""
    if "filename" not in query:
        return 404
    filename, kind = _split_annotation(query["filename"])
    if not filename or filename.startswith("/") or ".." in filename:
        return 400
    directory = directories.get(kind or query.get("type", "output"))
    if directory is None:
        return 400
    root = str(directory)
    if "subfolder" in query:
        folder = os.path.abspath(os.path.join(root, query["subfolder"]))
        if os.path.commonpath((folder, root)) != root:
            return 403
        root = folder
    name = os.path.basename(filename)
    path = Path(root) / name
    if not path.is_file():
        return 404
    return ViewFile(path, name, content_type_of(name))
