"""A run's outputs over HTTP: the file list, downloads with ETag and ranges, and the 404s that
keep other teams' files and anything outside DATA_DIR out of reach.

Rows are written through the stores in committed sessions of the app's own session factory,
files through `Storage` under the app's DATA_DIR. The last tests check the store's
idempotent insert on Postgres and on a migrated SQLite file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import alembic_config
from app.db.models import Run
from app.media.storage import Storage
from app.stores import outputs, sweeps, teams
from tests.api.conftest import ClientFactory

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # content is all that matters here


@dataclass(frozen=True)
class StoredRun:
    client: TestClient
    sweep_id: UUID
    index: int
    run_id: UUID


def new_output(storage: Storage, path: Path, data: bytes, position: int) -> outputs.NewOutput:
    digest = storage.write_stream(path, [data])
    return outputs.NewOutput(
        position=position,
        kind="image",
        path=storage.relative(path),
        mime="image/png",
        size=digest.size,
        sha256=digest.sha256,
    )


def store_run(
    app: FastAPI, team_client: ClientFactory, files: list[bytes], index: int = 3
) -> StoredRun:
    """A sweep of one team with run `index` holding `files` as outputs 0, 1, ..."""
    team = f"team-{uuid4().hex[:8]}"
    client = team_client(team)
    storage = Storage(app.state.settings.data_dir)
    sweep_id = uuid4()
    with app.state.session_factory() as session:
        run = add_run(session, teams.get_or_create_team(session, team).id, sweep_id, index)
        paths = [storage.output_path(sweep_id, index, n, ".png") for n in range(len(files))]
        news = [new_output(storage, paths[n], data, n) for n, data in enumerate(files)]
        outputs.add_outputs(session, run.id, news)
        session.commit()
        return StoredRun(client, sweep_id, index, run.id)


def add_run(session: Session, team_id: UUID, sweep_id: UUID, index: int) -> Run:
    plan = {"mode": "cartesian", "axes": [], "seeds": [1], "fixed": {}}
    sweeps.add_sweep(
        session,
        sweep_id=sweep_id,
        team_id=team_id,
        workflow="demo-noise",
        request={"workflow": "demo-noise"},
        plan=plan,
        total=index + 1,
    )
    runs = [Run(sweep_id=sweep_id, index=i, own_values={"seed": i}) for i in range(index + 1)]
    session.add_all(runs)
    session.flush()
    return runs[index]


def record(app: FastAPI, run_id: UUID, *news: outputs.NewOutput) -> None:
    with app.state.session_factory() as session:
        outputs.add_outputs(session, run_id, news)
        session.commit()


def file_url(stored: StoredRun, n: int = 0) -> str:
    return f"/v1/sweeps/{stored.sweep_id}/runs/{stored.index}/outputs/{n}"


def test_download_has_the_stored_type_etag_and_an_inline_name(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    response = stored.client.get(file_url(stored))
    assert response.status_code == 200
    assert response.content == PNG_BYTES
    assert response.headers["content-type"] == "image/png"
    assert response.headers["etag"] == f'"{hashlib.sha256(PNG_BYTES).hexdigest()}"'
    assert response.headers["content-length"] == str(len(PNG_BYTES))
    assert response.headers["accept-ranges"] == "bytes"
    name = f"{str(stored.sweep_id)[:8]}-3-0.png"
    assert response.headers["content-disposition"] == f'inline; filename="{name}"'
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=2-5", 2, 5), ("bytes=1000-", 1000, 1031), ("bytes=-4", 1028, 1031)],
)
def test_a_byte_range_answers_206_with_exactly_those_bytes(
    app: FastAPI, team_client: ClientFactory, header: str, start: int, end: int
) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    response = stored.client.get(file_url(stored), headers={"Range": header})
    assert response.status_code == 206
    assert response.content == PNG_BYTES[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(PNG_BYTES)}"
    assert response.headers["content-length"] == str(end - start + 1)


def test_a_range_past_the_end_answers_416(app: FastAPI, team_client: ClientFactory) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    response = stored.client.get(file_url(stored), headers={"Range": "bytes=5000-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(PNG_BYTES)}"


def test_a_known_etag_answers_304_without_a_body(app: FastAPI, team_client: ClientFactory) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    etag = stored.client.get(file_url(stored)).headers["etag"]
    response = stored.client.get(file_url(stored), headers={"If-None-Match": f'"x", {etag}'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


def test_another_teams_output_and_run_are_not_found(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    stranger = team_client()
    for url in (file_url(stored), f"/v1/sweeps/{stored.sweep_id}/runs/3"):
        response = stranger.get(url)
        assert response.status_code == 404
        assert PNG_BYTES not in response.content


def test_unknown_output_run_or_sweep_is_not_found(app: FastAPI, team_client: ClientFactory) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    for url in (
        file_url(stored, 1),
        f"/v1/sweeps/{stored.sweep_id}/runs/4/outputs/0",
        f"/v1/sweeps/{uuid4()}/runs/3/outputs/0",
        f"/v1/sweeps/{stored.sweep_id}/runs/4",
    ):
        assert stored.client.get(url).status_code == 404, url


def test_numbers_beyond_the_columns_are_refused_not_a_server_error(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    for url in (file_url(stored, 2**31), f"/v1/sweeps/{stored.sweep_id}/runs/{2**40}"):
        assert stored.client.get(url).status_code == 422, url


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_a_stored_path_leading_out_of_data_dir_is_a_404_not_a_leak(
    app: FastAPI, team_client: ClientFactory, tmp_path: Path, kind: str
) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"SECRET")
    stored = store_run(app, team_client, [PNG_BYTES])
    data_dir = Path(app.state.settings.data_dir).resolve()
    link = data_dir / f"link-{uuid4().hex}.png"
    link.symlink_to(secret)
    hostile = {
        "dotdot": "../" * len(data_dir.parts) + str(secret).lstrip("/"),
        "absolute": str(secret),
        "symlink": link.name,
    }[kind]
    sha = hashlib.sha256(b"SECRET").hexdigest()
    record(app, stored.run_id, outputs.NewOutput(1, "image", hostile, "image/png", 6, sha))
    response = stored.client.get(file_url(stored, 1))
    assert response.status_code == 404
    assert b"SECRET" not in response.content


def test_a_missing_file_is_a_404(app: FastAPI, team_client: ClientFactory) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    path = Storage(app.state.settings.data_dir).output_path(stored.sweep_id, 3, 0, ".png")
    path.unlink()
    assert stored.client.get(file_url(stored)).status_code == 404


def test_a_run_lists_its_outputs_with_download_urls(
    app: FastAPI, team_client: ClientFactory
) -> None:
    files = [PNG_BYTES, b"second file"]
    stored = store_run(app, team_client, files)
    run = stored.client.get(f"/v1/sweeps/{stored.sweep_id}/runs/3").json()
    assert run["index"] == 3
    assert run["assignment"] == {"seed": 3}
    assert [o["n"] for o in run["outputs"]] == [0, 1]
    first = run["outputs"][0]
    assert first["url"] == file_url(stored, 0)
    assert (first["kind"], first["mime"], first["size"]) == ("image", "image/png", len(PNG_BYTES))
    assert first["sha256"] == hashlib.sha256(PNG_BYTES).hexdigest()
    assert stored.client.get(run["outputs"][1]["url"]).content == b"second file"


def test_a_run_without_outputs_lists_none(app: FastAPI, team_client: ClientFactory) -> None:
    stored = store_run(app, team_client, [], index=0)
    run = stored.client.get(f"/v1/sweeps/{stored.sweep_id}/runs/0").json()
    assert run["outputs"] == []


def test_recording_outputs_again_keeps_the_first_rows(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored = store_run(app, team_client, [PNG_BYTES])
    again = outputs.NewOutput(0, "image", "elsewhere.png", "image/png", 1, "0" * 64)
    extra = outputs.NewOutput(1, "video", "v.mp4", "video/mp4", 2, "1" * 64)
    record(app, stored.run_id, again, extra)
    record(app, stored.run_id, again, extra)
    with app.state.session_factory() as session:
        rows = outputs.list_outputs(session, stored.run_id)
    assert [(r.position, r.path.endswith("0.png"), r.kind) for r in rows] == [
        (0, True, "image"),
        (1, False, "video"),
    ]


def test_recording_outputs_is_idempotent_on_sqlite_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    config = alembic_config(url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            team = teams.get_or_create_team(session, "sqlite-team")
            run = add_run(session, team.id, uuid4(), 0)
            row = outputs.NewOutput(0, "image", "a.png", "image/png", 1, "0" * 64)
            outputs.add_outputs(session, run.id, [row])
            outputs.add_outputs(session, run.id, [row, replace(row, position=1)])
            session.commit()
            assert [o.position for o in outputs.list_outputs(session, run.id)] == [0, 1]
            assert outputs.get_output(session, run.sweep_id, team.id, 0, 1) is not None
            assert outputs.get_output(session, run.sweep_id, uuid4(), 0, 1) is None
    finally:
        engine.dispose()
