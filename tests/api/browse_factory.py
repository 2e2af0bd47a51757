"""Sweeps with runs and real output files, for the contact sheet and export tests.

Rows go through the stores in committed sessions of the app's own session factory, files
through `Storage` under the app's DATA_DIR, as the worker would leave them. Shared by the API
tests and the browser tests.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from fastapi import FastAPI
from PIL import Image

from app.db.models import Run
from app.domain.states import RunStatus
from app.media.storage import Storage
from app.stores import sweeps, teams
from app.stores.outputs import NewOutput, add_outputs

HOSTILE_PROMPT = "</script><img src=x onerror=alert(1)><!--"
CONTACT_SHEET = "/v1/sweeps/{sweep_id}/contact-sheet"


@dataclass(frozen=True)
class FileSpec:
    kind: str
    mime: str
    data: bytes
    suffix: str


@dataclass(frozen=True)
class RunSpec:
    assignment: dict[str, Any]
    status: RunStatus = RunStatus.SUCCEEDED
    files: tuple[FileSpec, ...] = ()
    error: dict[str, Any] | None = None
    attempts: int = 1


@dataclass(frozen=True)
class StoredSweep:
    sweep_id: UUID
    team: str
    runs: tuple[RunSpec, ...] = field(default=())


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def image_file(width: int, height: int, color: tuple[int, int, int]) -> FileSpec:
    return FileSpec("image", "image/png", png(width, height, color), ".png")


VIDEO = FileSpec("video", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(64), ".mp4")


def sample_runs() -> tuple[RunSpec, ...]:
    """Six runs over prompt × cfg with a fixed seed: four images, one video, one failure.

    Colours differ per run so a test can tell which image it is looking at.
    """
    prompts = ["a red fox", HOSTILE_PROMPT]
    cfgs = [3.5, 7.0, 10.0]
    specs = []
    for index in range(6):
        assignment = {"prompt": prompts[index % 2], "cfg": cfgs[index // 2], "seed": 42}
        color = (40 * index, 200 - 30 * index, 90)
        specs.append(RunSpec(assignment, files=(image_file(320, 240, color),)))
    specs[4] = RunSpec(specs[4].assignment, files=(VIDEO,), attempts=2)
    error = {"kind": "execution", "message": "CUDA out of memory <b>boom</b>"}
    specs[5] = RunSpec(specs[5].assignment, RunStatus.FAILED, error=error, attempts=3)
    return tuple(specs)


def store_sweep(
    app: FastAPI,
    team: str,
    specs: Sequence[RunSpec],
    fixed: Mapping[str, Any] | None = None,
    *,
    lean: bool = False,
) -> StoredSweep:
    """A sweep of `team` with one run per spec (index = position) and their files. `fixed`
    goes into the plan; each run stores its whole assignment, as rows stored before runs were
    lean did, or with `lean` only what is not in `fixed`, as a submission stores it now."""
    storage = Storage(app.state.settings.data_dir)
    sweep_id = uuid4()
    axes = [{"param": "prompt", "values": []}, {"param": "cfg", "values": []}]
    with app.state.session_factory() as session:
        team_id = teams.get_or_create_team(session, team).id
        sweeps.add_sweep(
            session,
            sweep_id=sweep_id,
            team_id=team_id,
            workflow="demo-noise",
            request={"workflow": "demo-noise", "note": HOSTILE_PROMPT},
            plan={"mode": "cartesian", "axes": axes, "seeds": [42], "fixed": dict(fixed or {})},
            total=len(specs),
        )
        for index, spec in enumerate(specs):
            run = Run(
                sweep_id=sweep_id,
                index=index,
                own_values=_own_values(spec.assignment, fixed or {}) if lean else spec.assignment,
                status=spec.status,
                attempts=spec.attempts,
                error=spec.error,
                instance="http://gpu1:8188",
            )
            session.add(run)
            session.flush()
            news = [_write(storage, sweep_id, index, n, f) for n, f in enumerate(spec.files)]
            add_outputs(session, run.id, news)
        session.commit()
    return StoredSweep(sweep_id, team, tuple(specs))


def _own_values(assignment: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in assignment.items() if name not in fixed}


def _write(storage: Storage, sweep_id: UUID, index: int, n: int, file: FileSpec) -> NewOutput:
    path = storage.output_path(sweep_id, index, n, file.suffix)
    digest = storage.write_stream(path, [file.data])
    return NewOutput(n, file.kind, storage.relative(path), file.mime, digest.size, digest.sha256)
