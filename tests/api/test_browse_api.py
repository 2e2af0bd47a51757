"""The contact sheet and the zip export over HTTP, and the pieces they are made of.

The page: every run is in its data island, a hostile prompt cannot leave it, the CSP pins the
one inline script and style, signed links open it (and its files) without a key and only
until they expire. The export: the zip's members, its CSV and sweep.json, that it streams in
blocks, and that member names and CSV cells cannot be turned against the person opening them.
Another team's sweep is a 404 everywhere.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import re
import stat
import zipfile
from collections.abc import AsyncIterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from app.api.routes import browse
from app.api.signed_links import LinkSigner, link_signer
from app.db.models import Sweep
from app.domain.states import RunStatus
from app.grids import thumbnails
from app.grids.contact_sheet import island_json
from app.media import export
from app.stores import outputs
from app.stores.browse import runs_with_outputs
from tests.api.browse_factory import (
    HOSTILE_PROMPT,
    FileSpec,
    RunSpec,
    StoredSweep,
    image_file,
    png,
    sample_runs,
    store_sweep,
)
from tests.api.conftest import ClientFactory
from tests.support.videos import solid_video

ISLAND = re.compile(r'<script type="application/json" id="sheet-data">(.*?)</script>', re.S)
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def stored_with_client(
    app: FastAPI, team_client: ClientFactory, specs: tuple[RunSpec, ...] | None = None
) -> tuple[StoredSweep, TestClient]:
    team = f"team-{uuid4().hex[:8]}"
    client = team_client(team)
    return store_sweep(app, team, sample_runs() if specs is None else specs), client


def island(page: str) -> dict[str, Any]:
    match = ISLAND.search(page)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def sheet_url(sweep_id: UUID) -> str:
    return f"/v1/sweeps/{sweep_id}/contact-sheet"


def export_zip(client: TestClient, sweep_id: UUID) -> zipfile.ZipFile:
    response = client.get(f"/v1/sweeps/{sweep_id}/export")
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(response.content))


# --- the contact sheet ---


def test_the_sheet_holds_every_run_with_its_thumbnail(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, client = stored_with_client(app, team_client)
    response = client.get(sheet_url(stored.sweep_id))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    data = island(response.text)
    assert data["sweep"]["params"] == ["prompt", "cfg", "seed"]  # axes first
    runs = data["runs"]
    assert [r["index"] for r in runs] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in runs] == ["succeeded"] * 5 + ["failed"]
    assert runs[5]["error"] == "execution: CUDA out of memory <b>boom</b>"
    assert runs[5]["thumb"] is None
    for run in runs[:5]:
        prefix, _, encoded = run["thumb"].partition(",")
        assert prefix == "data:image/jpeg;base64"
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as thumb:
            assert thumb.format == "JPEG"
            assert max(thumb.size) <= thumbnails.THUMBNAIL_EDGE


def test_a_hostile_prompt_cannot_leave_the_data_island(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, client = stored_with_client(app, team_client)
    page = client.get(sheet_url(stored.sweep_id)).text
    assert "<img" not in page
    assert "<!--" not in page
    # Exactly two elements close: the data island and the inline script.
    assert page.count("</script>") == 2
    assert island(page)["runs"][1]["assignment"]["prompt"] == HOSTILE_PROMPT


def test_island_json_escapes_every_character_that_could_end_the_element() -> None:
    text = island_json({"p": "</script><!-- & >"})
    assert not set("<>&") & set(text)
    assert json.loads(text) == {"p": "</script><!-- & >"}


def test_the_sheet_has_a_csp_that_pins_its_only_script_and_style(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, client = stored_with_client(app, team_client)
    response = client.get(sheet_url(stored.sweep_id))
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["img-src"] == "data: blob:"
    assert "unsafe" not in response.headers["content-security-policy"]
    scripts = INLINE_SCRIPT.findall(response.text)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert policy["script-src"] == f"'sha256-{digest}'"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-length" not in response.headers  # streamed, card by card


def test_the_page_names_no_other_origin(app: FastAPI, team_client: ClientFactory) -> None:
    stored, client = stored_with_client(app, team_client)
    page = client.get(sheet_url(stored.sweep_id)).text
    assert not re.search(r"https?://(?!gpu1:8188)", page)  # the run's instance is data
    assert "//cdn" not in page


def test_a_signed_link_opens_the_sheet_and_its_files_without_a_key(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, client = stored_with_client(app, team_client)
    link = client.get(f"/v1/sweeps/{stored.sweep_id}/contact-sheet-link").json()
    assert link["url"].startswith(f"/browse/sweeps/{stored.sweep_id}/contact-sheet?token=")
    with TestClient(app) as browser:
        page = browser.get(link["url"])
        assert page.status_code == 200
        file = island(page.text)["runs"][2]["files"][0]
        assert file["url"].startswith(f"/browse/sweeps/{stored.sweep_id}/runs/2/outputs/0?token=")
        full = browser.get(file["url"])
        assert full.status_code == 200
        assert full.content == stored.runs[2].files[0].data
        assert full.headers["content-security-policy"] == "sandbox"
        ranged = browser.get(file["url"], headers={"Range": "bytes=0-7"})
        assert ranged.status_code == 206
        export_url = island(page.text)["sweep"]["export_url"]
        assert browser.get(export_url).headers["content-type"] == "application/zip"


def test_a_forged_expired_or_foreign_token_is_refused(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, _ = stored_with_client(app, team_client)
    other, _ = stored_with_client(app, team_client)
    signer = link_signer(app.state.settings)
    good = signer.sign(stored.sweep_id).token
    expired = signer.sign(stored.sweep_id, now=datetime.now(UTC).timestamp() - 7200).token
    forged = LinkSigner(b"not the server's secret").sign(stored.sweep_id).token
    foreign = signer.sign(other.sweep_id).token
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    with TestClient(app) as browser:
        base = f"/browse/sweeps/{stored.sweep_id}"
        assert browser.get(f"{base}/contact-sheet?token={good}").status_code == 200
        for token in (expired, forged, foreign, flipped, "1.x", "é" * 8):
            for path in ("contact-sheet", "runs/0/outputs/0", "export"):
                response = browser.get(f"{base}/{path}", params={"token": token})
                assert response.status_code == 401, (token, path)
        assert browser.get(f"{base}/contact-sheet").status_code == 422


def test_tokens_expire_and_bind_the_sweep() -> None:
    signer = LinkSigner(b"k" * 32, ttl_s=60)
    sweep_id = uuid4()
    link = signer.sign(sweep_id, now=1000.0)
    assert link.expires_at == datetime.fromtimestamp(1060, UTC)
    assert signer.verify(sweep_id, link.token, now=1059.0)
    assert not signer.verify(sweep_id, link.token, now=1060.0)
    assert not signer.verify(uuid4(), link.token, now=1000.0)
    assert not signer.verify(sweep_id, "9" * 20 + "." + link.token.split(".")[1], now=1000.0)


def test_another_teams_sweep_is_not_found(app: FastAPI, team_client: ClientFactory) -> None:
    stored, _ = stored_with_client(app, team_client)
    stranger = team_client()
    for path in ("contact-sheet", "contact-sheet-link", "export"):
        response = stranger.get(f"/v1/sweeps/{stored.sweep_id}/{path}")
        assert response.status_code == 404, path
        assert b"fox" not in response.content
    assert stranger.get(f"/v1/sweeps/{uuid4()}/export").status_code == 404


def test_the_browse_routes_need_a_key(app: FastAPI, team_client: ClientFactory) -> None:
    stored, _ = stored_with_client(app, team_client)
    with TestClient(app) as anonymous:
        for path in ("contact-sheet", "contact-sheet-link", "export"):
            assert anonymous.get(f"/v1/sweeps/{stored.sweep_id}/{path}").status_code == 401


def test_a_signed_link_for_a_vanished_sweep_is_not_found(app: FastAPI) -> None:
    sweep_id = uuid4()
    token = link_signer(app.state.settings).sign(sweep_id).token
    with TestClient(app) as browser:
        response = browser.get(f"/browse/sweeps/{sweep_id}/contact-sheet", params={"token": token})
        assert response.status_code == 404


def test_an_output_outside_data_dir_gets_no_thumbnail_and_is_not_exported(
    app: FastAPI, team_client: ClientFactory, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(png(8, 8, (1, 2, 3)))
    specs = (RunSpec({"prompt": "x"}),)
    stored, client = stored_with_client(app, team_client, specs)
    with app.state.session_factory() as session:
        run_id = browse_run_id(session, stored.sweep_id)
        hostile = outputs.NewOutput(0, "image", str(secret), "image/png", 1, "0" * 64)
        outputs.add_outputs(session, run_id, [hostile])
        session.commit()
    run = island(client.get(sheet_url(stored.sweep_id)).text)["runs"][0]
    assert run["thumb"] is None
    archive = export_zip(client, stored.sweep_id)
    assert not [n for n in archive.namelist() if "/outputs/" in n]
    rows = list(csv.DictReader(io.StringIO(read_text(archive, "metadata.csv"))))
    assert rows[0]["outputs"] == ""


def browse_run_id(session: Session, sweep_id: UUID) -> UUID:
    return runs_with_outputs(session, sweep_id)[0].run.id


# --- the export ---


def read_text(archive: zipfile.ZipFile, suffix: str) -> str:
    name = next(n for n in archive.namelist() if n.endswith(suffix))
    return archive.read(name).decode("utf-8-sig")


def test_the_export_holds_outputs_metadata_and_the_sweep(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, client = stored_with_client(app, team_client)
    response = client.get(f"/v1/sweeps/{stored.sweep_id}/export")
    name = f"sweep-{stored.sweep_id}.zip"
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    root = f"sweep-{stored.sweep_id}/"
    expected = [f"{root}outputs/{i:06d}-0.png" for i in range(4)] + [f"{root}outputs/000004-0.mp4"]
    assert archive.namelist() == [f"{root}sweep.json", f"{root}metadata.csv", *expected]
    for index, member in enumerate(expected):
        assert archive.read(member) == stored.runs[index].files[0].data
        assert archive.getinfo(member).compress_type == zipfile.ZIP_STORED
    assert archive.getinfo(f"{root}metadata.csv").compress_type == zipfile.ZIP_DEFLATED


def test_the_metadata_csv_has_a_row_per_run_and_a_column_per_parameter(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, client = stored_with_client(app, team_client)
    text = read_text(export_zip(client, stored.sweep_id), "metadata.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [*export.RUN_COLUMNS, "prompt", "cfg", "seed"]
    assert [row["index"] for row in rows] == ["0", "1", "2", "3", "4", "5"]
    assert rows[1]["prompt"] == HOSTILE_PROMPT
    assert (rows[2]["cfg"], rows[2]["seed"], rows[2]["outputs"]) == (
        "7.0",
        "42",
        "outputs/000002-0.png",
    )
    failed = rows[5]
    assert (failed["status"], failed["attempts"], failed["outputs"]) == ("failed", "3", "")
    assert (failed["error_kind"], failed["error_message"]) == (
        "execution",
        "CUDA out of memory <b>boom</b>",
    )
    assert rows[4]["instance"] == "http://gpu1:8188"


def test_sweep_json_holds_the_stored_request_and_plan(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, client = stored_with_client(app, team_client)
    document = json.loads(read_text(export_zip(client, stored.sweep_id), "sweep.json"))
    assert document["id"] == str(stored.sweep_id)
    assert document["request"] == {"workflow": "demo-noise", "note": HOSTILE_PROMPT}
    assert document["plan"]["axes"][0]["param"] == "prompt"
    assert (document["workflow"], document["total"]) == ("demo-noise", 6)


def test_the_export_streams_in_blocks_not_one_buffer(
    app: FastAPI, team_client: ClientFactory
) -> None:
    big = FileSpec("image", "image/png", bytes(range(256)) * 12_288, ".png")  # 3 MiB
    stored, client = stored_with_client(app, team_client, (RunSpec({"seed": 1}, files=(big,)),))
    assert "content-length" not in client.get(f"/v1/sweeps/{stored.sweep_id}/export").headers
    with app.state.session_factory() as session:
        team_id = session.scalar(_team_of(stored.sweep_id))
        response = browse.export_sweep(stored.sweep_id, session, app.state.settings, team_id)
    assert isinstance(response, StreamingResponse)
    chunks = asyncio.run(_collect(response.body_iterator))
    assert len(chunks) >= 3
    assert max(len(chunk) for chunk in chunks) <= 1024 * 1024 + 4096
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.read(archive.namelist()[-1]) == big.data


def _team_of(sweep_id: UUID) -> sa.Select[UUID]:
    return sa.select(Sweep.team_id).where(Sweep.id == sweep_id)


async def _collect(body: AsyncIterable[Any]) -> list[bytes]:
    return [bytes(chunk) async for chunk in body]


def test_formula_like_cells_are_quoted_for_spreadsheets() -> None:
    run = export.ExportRun(
        index=0,
        status="failed",
        attempts=1,
        instance=None,
        error={"kind": "execution", "message": "=cmd|' /C calc'!A0"},
        assignment={"prompt": "+SUM(A1)", "cfg": -1.5, "flag": True, "none": None},
        files=(),
    )
    text = export.metadata_csv([run], ["prompt", "cfg", "flag", "none", "status"]).decode(
        "utf-8-sig"
    )
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["prompt"] == "'+SUM(A1)"
    assert row["error_message"] == "'=cmd|' /C calc'!A0"
    assert (row["cfg"], row["flag"], row["none"]) == ("-1.5", "true", "null")  # numbers stay
    assert row["param:status"] == ""  # a parameter named like a column gets its own


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/x.png", "abs/x.png"),
        ("a\\..\\b.png", "a/b.png"),
        ("C:/x", "C_/x"),
        ("sweep/./outputs//0.png", "sweep/outputs/0.png"),
        ("..", "unnamed"),
        ("ok/n\x00ame.png", "ok/n_ame.png"),
    ],
)
def test_member_names_cannot_leave_the_extraction_directory(name: str, safe: str) -> None:
    assert export.sanitize_member_name(name) == safe


def test_stream_zip_writes_a_valid_archive_from_bytes_and_files(tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(b"x" * 3000)
    moment = datetime(1970, 1, 1, tzinfo=UTC)  # before zip time begins: clamped
    entries = [
        export.ZipEntry("../evil.txt", b"hello", moment),
        export.ZipEntry("dir/a.png", source, datetime.now(UTC), compress=False),
    ]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(export.stream_zip(entries))))
    assert archive.namelist() == ["evil.txt", "dir/a.png"]
    assert archive.read("evil.txt") == b"hello"
    assert archive.read("dir/a.png") == b"x" * 3000
    assert archive.getinfo("evil.txt").date_time == (1980, 1, 1, 0, 0, 0)
    assert stat.S_IMODE(archive.getinfo("dir/a.png").external_attr >> 16) == 0o644


# --- thumbnails ---


def test_a_thumbnail_is_a_small_jpeg_with_transparency_flattened(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (800, 400), (255, 0, 0, 0)).save(path)
    with Image.open(io.BytesIO(thumbnails.thumbnail_jpeg(path, "image"))) as thumb:
        assert (thumb.format, thumb.mode, thumb.size) == ("JPEG", "RGB", (256, 128))
        pixel = thumb.getpixel((10, 10))
        assert isinstance(pixel, tuple)
        assert pixel[0] < 80  # the page background, not a red square


@pytest.mark.parametrize("kind", ["image", "video", "audio"])
def test_unreadable_files_get_a_placeholder(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "broken.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data = thumbnails.thumbnail_jpeg(path, kind)
    assert data == thumbnails.placeholder_jpeg(kind)
    assert thumbnails.thumbnail_jpeg(tmp_path / "missing.png", kind) == data


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_a_video_thumbnail_is_its_first_frame(tmp_path: Path, suffix: str) -> None:
    video = solid_video(tmp_path / f"clip{suffix}", (0, 0, 255), size=(320, 160))
    with Image.open(io.BytesIO(thumbnails.thumbnail_jpeg(video, "video"))) as thumb:
        assert thumb.size == (256, 128)
        pixel = thumb.getpixel((128, 64))
    assert isinstance(pixel, tuple)
    assert pixel[2] > 200 > 40 > max(pixel[:2])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(video.read_bytes()[:48])
    assert thumbnails.thumbnail_jpeg(corrupt, "video") == thumbnails.placeholder_jpeg("video")


def test_a_many_output_run_shows_its_first_image(app: FastAPI, team_client: ClientFactory) -> None:
    files = (FileSpec("audio", "audio/wav", b"RIFF", ".wav"), image_file(10, 10, (9, 9, 9)))
    specs = (RunSpec({"seed": 1}, status=RunStatus.SUCCEEDED, files=files),)
    stored, client = stored_with_client(app, team_client, specs)
    run = island(client.get(sheet_url(stored.sweep_id)).text)["runs"][0]
    assert [f["kind"] for f in run["files"]] == ["audio", "image"]
    with Image.open(io.BytesIO(base64.b64decode(run["thumb"].split(",", 1)[1]))) as thumb:
        assert thumb.size == (10, 10)


def test_the_link_answer_matches_its_schema(app: FastAPI, team_client: ClientFactory) -> None:
    stored, client = stored_with_client(app, team_client)
    answer = client.get(f"/v1/sweeps/{stored.sweep_id}/contact-sheet-link").json()
    expires = datetime.fromisoformat(answer["expires_at"])
    assert 3500 < (expires - datetime.now(UTC)).total_seconds() <= 3600


def test_thumbnails_are_cached_by_content_hash_but_placeholders_are_not(tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(png(40, 20, (200, 10, 10)))
    cache = tmp_path / "cache"
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    first = thumbnails.cached_thumbnail(cache, sha, source, "image")
    assert (cache / sha[:2] / f"{sha}-256.jpg").read_bytes() == first
    source.unlink()  # a second look decodes nothing
    assert thumbnails.cached_thumbnail(cache, sha, source, "image") == first
    other = "f" * 64
    placeholder = thumbnails.cached_thumbnail(cache, other, source, "image")
    assert placeholder == thumbnails.placeholder_jpeg("image")
    assert not (cache / "ff").exists()
    thumbnails.cached_thumbnail(cache, "../../escape", source, "image")
    assert sorted(p.name for p in cache.iterdir()) == [sha[:2]]


def test_a_second_view_of_the_sheet_uses_the_thumbnail_cache(
    app: FastAPI, team_client: ClientFactory
) -> None:
    stored, client = stored_with_client(app, team_client)
    first = island(client.get(sheet_url(stored.sweep_id)).text)["runs"][0]["thumb"]
    storage_root = Path(app.state.settings.data_dir)
    for path in (storage_root / "sweeps" / str(stored.sweep_id)).rglob("000000/0.png"):
        path.write_bytes(b"not a png any more")  # same row, same sha256: the cache answers
    second = island(client.get(sheet_url(stored.sweep_id)).text)["runs"][0]["thumb"]
    assert second == first


# --- lean runs: every page reads a run's full assignment ---

# Values shared by every run, kept once in the plan; the runs vary prompt and cfg.
LEAN_FIXED = {"seed": 42, "steps": 20, "sampler_name": "euler", "denoise": None}


def whole_and_lean(
    app: FastAPI, team_client: ClientFactory
) -> tuple[tuple[StoredSweep, StoredSweep], TestClient]:
    """The same sweep twice: runs stored whole (as before runs were lean) and lean."""
    team = f"team-{uuid4().hex[:8]}"
    client = team_client(team)
    specs = tuple(
        replace(spec, assignment={**spec.assignment, **LEAN_FIXED}) for spec in sample_runs()
    )
    whole = store_sweep(app, team, specs, LEAN_FIXED)
    lean = store_sweep(app, team, specs, LEAN_FIXED, lean=True)
    return (whole, lean), client


def test_lean_runs_store_none_of_the_fixed_values(app: FastAPI, team_client: ClientFactory) -> None:
    (_, lean), _ = whole_and_lean(app, team_client)
    with app.state.session_factory() as session:
        stored = [row.run.own_values for row in runs_with_outputs(session, lean.sweep_id)]
    assert stored[0] == {"prompt": "a red fox", "cfg": 3.5}


def test_the_api_shows_a_lean_run_with_its_full_assignment(
    app: FastAPI, team_client: ClientFactory
) -> None:
    (whole, lean), client = whole_and_lean(app, team_client)
    pages = [client.get(f"/v1/sweeps/{s.sweep_id}/runs").json()["items"] for s in (whole, lean)]
    assert pages[1] == pages[0]
    assert [item["assignment"] for item in pages[1]] == [{**spec.assignment} for spec in whole.runs]
    run = client.get(f"/v1/sweeps/{lean.sweep_id}/runs/3").json()
    assert run["assignment"] == whole.runs[3].assignment


def test_the_sheet_and_the_export_show_lean_runs_as_runs_stored_whole(
    app: FastAPI, team_client: ClientFactory
) -> None:
    (whole, lean), client = whole_and_lean(app, team_client)
    sheets = [island(client.get(sheet_url(s.sweep_id)).text) for s in (whole, lean)]
    assert [r["assignment"] for r in sheets[1]["runs"]] == [
        r["assignment"] for r in sheets[0]["runs"]
    ]
    assert sheets[1]["runs"][0]["assignment"]["steps"] == 20
    assert set(sheets[1]["sweep"]["params"]) == set(sheets[0]["sweep"]["params"])
    tables = [
        list(csv.DictReader(io.StringIO(read_text(export_zip(client, s.sweep_id), "metadata.csv"))))
        for s in (whole, lean)
    ]
    assert tables[1] == tables[0]
    assert (tables[1][2]["steps"], tables[1][2]["denoise"]) == ("20", "null")
