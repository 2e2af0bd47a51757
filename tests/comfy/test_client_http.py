"""History, queue control, instance endpoints and `/view` downloads against replayed answers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.comfy.client import ComfyClient
from app.comfy.download import Rewrite
from app.comfy.errors import ComfyError
from app.comfy.protocol import OutputFile
from tests.comfy.fakes import FakeComfy, body_of, capture, captured_response, serving_http

pytestmark = pytest.mark.anyio

OK_ID = "a5278fe9-7f05-4b93-aedf-b26a17628f5e"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
IMAGE = OutputFile(node_id="3", filename="sweep_probe_00001_.png")


async def test_history_reads_one_entry_by_id() -> None:
    comfy = FakeComfy()
    comfy.answer("GET", f"/history/{OK_ID}", capture("get_history_ok"))
    async with comfy.client() as client:
        entry = await client.history(OK_ID)
    assert entry is not None
    assert [f.filename for f in entry.outputs] == ["sweep_probe_00001_.png"]


async def test_history_of_an_unknown_prompt_is_none() -> None:
    comfy = FakeComfy()
    comfy.answer("GET", f"/history/{OK_ID}", capture("get_history_unknown_id"))
    async with comfy.client() as client:
        assert await client.history(OK_ID) is None


async def test_a_history_answer_of_the_wrong_shape_is_a_protocol_error() -> None:
    comfy = FakeComfy()
    comfy.answer("GET", f"/history/{OK_ID}", {OK_ID: {"outputs": "nope"}})
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.history(OK_ID)
    assert raised.value.error.kind == "protocol"


async def test_queue_control_sends_ids_in_json_bodies() -> None:
    comfy = FakeComfy()
    comfy.answer("GET", "/queue", capture("get_queue_busy"))
    for path in ("/queue", "/history", "/interrupt", "/free"):
        comfy.on("POST", path, httpx.Response(200))
    async with comfy.client() as client:
        state = await client.queue()
        await client.remove_from_queue([OK_ID])
        await client.delete_history([OK_ID])
        await client.interrupt(OK_ID)
        await client.free()
    assert state.running == ["a55e5726-d8cb-4a8b-80e5-ee21c87ea7fa"]
    assert body_of(comfy.sent("POST", "/queue")[0]) == {"delete": [OK_ID]}
    assert body_of(comfy.sent("POST", "/history")[0]) == {"delete": [OK_ID]}
    # Targeted: a bare POST /interrupt would stop whatever runs, someone else's prompt too.
    assert body_of(comfy.sent("POST", "/interrupt")[0]) == {"prompt_id": OK_ID}
    assert body_of(comfy.sent("POST", "/free")[0]) == {"unload_models": True, "free_memory": True}


async def test_instance_endpoints_return_their_json() -> None:
    comfy = FakeComfy()
    comfy.answer("GET", "/system_stats", capture("get_system_stats"))
    comfy.answer("GET", "/object_info", capture("get_object_info_ImageBlur"))
    async with comfy.client() as client:
        stats = await client.system_stats()
        info = await client.object_info()
    assert stats["system"]["comfyui_version"] == "0.3.64"
    assert info["ImageBlur"]["input"]["required"]["blur_radius"][1]["max"] == 31


async def test_an_answer_that_is_not_an_object_is_a_protocol_error() -> None:
    comfy = FakeComfy()
    comfy.answer("GET", "/system_stats", [1, 2])
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.system_stats()
    assert raised.value.error.kind == "protocol"


async def test_a_base_url_with_a_path_prefix_is_kept() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=capture("get_queue_idle"))

    async with serving_http(record) as base_url, ComfyClient(f"{base_url}/comfy/") as client:
        await client.queue()
        socket_url = str(client.socket_url("c1"))
    assert seen == ["/comfy/queue"]
    host = base_url.removeprefix("http://")
    assert socket_url == f"ws://{host}/comfy/ws?clientId=c1"


# --- /view ----------------------------------------------------------------------------------


def view_server(response: httpx.Response) -> tuple[FakeComfy, list[httpx.Request]]:
    comfy = FakeComfy()
    comfy.on("GET", "/view", response)
    return comfy, comfy.requests


async def test_a_download_streams_hashes_and_names_the_type(tmp_path: Path) -> None:
    headers = capture("get_view_headers")["headers"]
    headers["Content-Length"] = str(len(PNG))
    comfy, requests = view_server(httpx.Response(200, headers=headers, content=PNG))
    destination = tmp_path / "runs" / "r1" / "out.png"
    async with comfy.client() as client:
        downloaded = await client.download(IMAGE, destination)
    assert destination.read_bytes() == PNG
    assert downloaded.size == len(PNG)
    assert downloaded.sha256 == hashlib.sha256(PNG).hexdigest()
    assert downloaded.mime == "image/png"
    assert dict(requests[0].url.params) == {
        "filename": "sweep_probe_00001_.png",
        "subfolder": "",
        "type": "output",
    }
    assert os.listdir(destination.parent) == ["out.png"]  # no temp file left behind


def keeping(seen: list[bytes]) -> Rewrite:
    """A rewrite of PNGs that writes each body reversed, so a test can tell who wrote it."""

    def write(body: bytes, path: Path) -> tuple[int, str]:
        seen.append(body)
        path.write_bytes(body[::-1])
        return len(body), "rewritten"

    return Rewrite("image/png", write)


async def test_a_small_body_to_rewrite_is_handed_over_in_memory(tmp_path: Path) -> None:
    headers = {"Content-Type": "image/png", "Content-Length": str(len(PNG))}
    comfy, _ = view_server(httpx.Response(200, headers=headers, content=PNG))
    seen: list[bytes] = []
    destination = tmp_path / "out.png"
    async with comfy.client() as client:
        downloaded = await client.download(IMAGE, destination, keeping(seen))
    assert seen == [PNG]
    assert destination.read_bytes() == PNG[::-1]
    assert (downloaded.size, downloaded.sha256, downloaded.rewritten) == (
        len(PNG),
        "rewritten",
        True,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "image/png", "Content-Length": "4"},  # over the limit set below
        {"Content-Type": "image/png"},  # a length unknown up front may be any
        {"Content-Type": "image/webp", "Content-Length": "4"},  # not the rewrite's type
    ],
)
async def test_other_bodies_are_streamed_to_disk_despite_a_rewrite(
    tmp_path: Path, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.comfy.download.REWRITE_IN_MEMORY_BYTES", 3)
    body = b"\x89PNG"
    response = httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))
    comfy, _ = view_server(response)
    seen: list[bytes] = []
    destination = tmp_path / "out.png"
    async with comfy.client() as client:
        downloaded = await client.download(IMAGE, destination, keeping(seen))
    assert seen == []
    assert not downloaded.rewritten
    assert downloaded.sha256 == hashlib.sha256(body).hexdigest()


async def test_a_large_body_arrives_in_chunks(tmp_path: Path) -> None:
    chunk = os.urandom(1 << 16)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(160):  # 10 MiB
            yield chunk

    comfy, _ = view_server(httpx.Response(200, content=body()))
    video = OutputFile(node_id="3", filename="probe_00001_.mp4", subfolder="video", animated=True)
    async with comfy.client() as client:
        downloaded = await client.download(video, tmp_path / "v.mp4")
    assert downloaded.size == 160 << 16
    assert downloaded.sha256 == hashlib.sha256(chunk * 160).hexdigest()
    assert downloaded.mime == "video/mp4"  # no Content-Type: guessed from the file name


async def test_a_generic_content_type_falls_back_to_the_file_name(tmp_path: Path) -> None:
    headers = {"Content-Type": "application/octet-stream"}
    comfy, _ = view_server(httpx.Response(200, headers=headers, content=b"RIFF"))
    webp = OutputFile(node_id="5", filename="anim_00001_.webp", animated=True)
    async with comfy.client() as client:
        downloaded = await client.download(webp, tmp_path / "a.webp")
    assert downloaded.mime == "image/webp"


async def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    destination = tmp_path / "out.png"
    destination.write_bytes(b"old")
    comfy, _ = view_server(httpx.Response(200, content=PNG))
    async with comfy.client() as client:
        await client.download(IMAGE, destination)
    assert destination.read_bytes() == PNG


@pytest.mark.parametrize(
    ("capture_name", "kind"),
    [("get_view_missing", "transport"), ("get_view_traversal", "protocol")],
)
async def test_view_refusals_leave_no_file(tmp_path: Path, capture_name: str, kind: str) -> None:
    comfy, _ = view_server(captured_response(capture_name))
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.download(IMAGE, tmp_path / "out.png")
    assert raised.value.error.kind == kind
    assert raised.value.error.node_id == "3"
    assert list(tmp_path.iterdir()) == []


async def test_a_truncated_body_is_a_transport_error_and_leaves_no_file(tmp_path: Path) -> None:
    headers = {"Content-Length": str(len(PNG) + 10)}
    comfy, _ = view_server(httpx.Response(200, headers=headers, content=PNG))
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.download(IMAGE, tmp_path / "out.png")
    assert raised.value.error.kind == "transport"
    assert list(tmp_path.iterdir()) == []


async def test_a_connection_lost_mid_body_leaves_no_file(tmp_path: Path) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield PNG
        raise httpx.ReadError("connection reset")

    comfy, _ = view_server(httpx.Response(200, content=body()))
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.download(IMAGE, tmp_path / "out.png")
    assert raised.value.error.kind == "transport"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("filename", "subfolder", "type_"),
    [
        ("../../etc/passwd", "", "output"),
        ("..", "", "output"),
        ("a/b.png", "", "output"),
        ("a.png", "../secrets", "output"),
        ("a.png", "ok/../../up", "output"),
        ("a.png", "/abs", "output"),
        ("a.png", "..\\win", "output"),
        ("a.png", "", "models"),
        ("", "", "output"),
    ],
)
async def test_names_that_would_leave_comfyuis_folders_are_never_requested(
    tmp_path: Path, filename: str, subfolder: str, type_: str
) -> None:
    comfy, requests = view_server(httpx.Response(200, content=PNG))
    output = OutputFile(node_id="3", filename=filename, subfolder=subfolder, type=type_)
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.download(output, tmp_path / "out.png")
    assert raised.value.error.kind == "protocol"
    assert requests == []


async def test_a_nested_subfolder_is_allowed(tmp_path: Path) -> None:
    comfy, requests = view_server(httpx.Response(200, content=PNG))
    output = OutputFile(node_id="4", filename="demo_00001_.png", subfolder="comfy-sweep/s1/000001")
    async with comfy.client() as client:
        await client.download(output, tmp_path / "out.png")
    assert requests[0].url.params["subfolder"] == "comfy-sweep/s1/000001"


# --- proxies --------------------------------------------------------------------------------


async def test_requests_go_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def proxy(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json=capture("get_queue_idle"))

    async with serving_http(proxy) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with ComfyClient("http://comfy.invalid:8188") as client:
            await client.queue()
    assert [url.split("/", 3)[-1] for url in asked] == ["queue"]


async def test_no_proxy_exempts_the_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=capture("get_queue_idle"))

    async with serving_http(proxy) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "comfy.invalid")
        async with ComfyClient("http://comfy.invalid:8188") as client:
            with pytest.raises(ComfyError) as raised:
                await client.queue()  # asked directly: the name does not resolve
    assert raised.value.error.kind == "transport"
