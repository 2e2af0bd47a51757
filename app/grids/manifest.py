"""The listing of a sweep's grid files, `grids.json`, beside them under DATA_DIR.

The finalizer writes it last and atomically, after every page it lists; the API serves only
pages it lists. So its presence means the grids are complete, and a reader never sees a
half-written page. Names of grid files are built here from numbers, never taken from input.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ValidationError

from app.media.storage import Storage, atomic_file

MANIFEST_NAME = "grids.json"
INDEX_FILE = "index.png"


class ManifestPage(BaseModel):
    page: int  # 1, 2, ... in run order; 0 for the index page
    kind: Literal["page", "index"]
    file: str  # a name inside the grids directory, from `page_file`
    title: str
    fixed: dict[str, Any]
    width: int
    height: int
    cells: int


class GridManifest(BaseModel):
    sweep_id: UUID
    created_at: datetime
    pages: list[ManifestPage]  # the index page first when there is one


def grids_directory(storage: Storage, sweep_id: UUID) -> Path:
    """`DATA_DIR/sweeps/<sweep>/grids`, through the storage path guard."""
    return storage.resolve(f"sweeps/{sweep_id}/grids")


def page_file(number: int) -> str:
    return INDEX_FILE if number == 0 else f"page-{number}.png"


def write_manifest(directory: Path, manifest: GridManifest) -> None:
    with atomic_file(directory / MANIFEST_NAME) as file:
        file.write(manifest.model_dump_json(indent=2).encode())


def read_manifest(directory: Path) -> GridManifest | None:
    """The listing, or None while there is none (or it cannot be read: the grids are then
    rebuilt by the next finalize, and the API answers as if they were not written yet)."""
    try:
        text = (directory / MANIFEST_NAME).read_text(encoding="utf-8")
        return GridManifest.model_validate(json.loads(text))
    except (OSError, ValueError, ValidationError):
        return None
