"""Annotating ComfyUI's PNGs: our chunks added, the pixels and ComfyUI's own chunks untouched."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from app.media.png_metadata import MalformedPng, annotate_png, text_chunk, write_annotated_png
from app.media.storage import hash_file

PROMPT_GRAPH = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}})
WORKFLOW = json.dumps({"nodes": [{"id": 3, "type": "KSampler"}], "links": []})
SWEEP = {"sweep_id": "5f0c7f7e-7f55-4c8e-9d0e-2f3b8a1c9d10", "run_index": 7, "assignment": {}}


def comfy_png(path: Path, **text: str) -> Path:
    """A PNG as ComfyUI's SaveImage writes it: `prompt` and `workflow` text chunks."""
    info = PngImagePlugin.PngInfo()
    for key, value in {"prompt": PROMPT_GRAPH, "workflow": WORKFLOW, **text}.items():
        info.add_text(key, value)
    image = Image.linear_gradient("L").resize((64, 48)).convert("RGB")
    image.save(path, pnginfo=info)
    return path


def chunks(path: Path) -> list[tuple[bytes, bytes]]:
    data = path.read_bytes()[8:]
    found: list[tuple[bytes, bytes]] = []
    while data:
        length, kind = struct.unpack(">I4s", data[:8])
        body, crc = data[8 : 8 + length], data[8 + length : 12 + length]
        assert struct.unpack(">I", crc)[0] == zlib.crc32(kind + body), kind
        found.append((kind, body))
        data = data[12 + length :]
    return found


def idat(path: Path) -> bytes:
    return b"".join(body for kind, body in chunks(path) if kind == b"IDAT")


def text_of(path: Path) -> dict[str, str]:
    with Image.open(path) as image:
        assert isinstance(image, PngImagePlugin.PngImageFile)
        return dict(image.text)


def test_pixels_stay_byte_for_byte_and_comfyui_chunks_are_kept(tmp_path: Path) -> None:
    path = comfy_png(tmp_path / "out.png")
    before = idat(path)

    annotate_png(path, parameters="a cat\nSteps: 20, Seed: 1", comfy_sweep=SWEEP)

    assert idat(path) == before
    text = text_of(path)
    assert text["prompt"] == PROMPT_GRAPH
    assert text["workflow"] == WORKFLOW
    assert text["parameters"] == "a cat\nSteps: 20, Seed: 1"
    assert json.loads(text["comfy_sweep"]) == SWEEP


def test_the_image_still_decodes_to_the_same_pixels(tmp_path: Path) -> None:
    path = comfy_png(tmp_path / "out.png")
    with Image.open(path) as image:
        pixels = image.tobytes()
    annotate_png(path, parameters="p", comfy_sweep=SWEEP)
    with Image.open(path) as image:
        assert image.tobytes() == pixels


def test_new_chunks_come_before_the_first_idat(tmp_path: Path) -> None:
    path = comfy_png(tmp_path / "out.png")
    annotate_png(path, parameters="p", comfy_sweep=SWEEP)
    kinds = [kind for kind, _ in chunks(path)]
    first_idat = kinds.index(b"IDAT")
    assert kinds[first_idat - 2 : first_idat] == [b"tEXt", b"tEXt"]
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"


def test_non_latin1_text_is_stored_as_itxt_and_survives(tmp_path: Path) -> None:
    path = comfy_png(tmp_path / "out.png")
    prompt = "灯台、夕焼け — маяк 🌅\nSteps: 20"
    annotate_png(path, parameters=prompt, comfy_sweep={**SWEEP, "assignment": {"prompt": "灯台"}})
    assert text_of(path)["parameters"] == prompt
    assert json.loads(text_of(path)["comfy_sweep"])["assignment"] == {"prompt": "灯台"}
    assert (b"iTXt", text_chunk("parameters", prompt)[8:-4]) in chunks(path)


def test_latin1_text_stays_plain_text(tmp_path: Path) -> None:
    assert text_chunk("parameters", "café")[4:8] == b"tEXt"
    assert text_chunk("parameters", "naïve ✓")[4:8] == b"iTXt"


def test_annotating_twice_replaces_our_chunks_instead_of_adding_more(tmp_path: Path) -> None:
    path = comfy_png(tmp_path / "out.png")
    annotate_png(path, parameters="first", comfy_sweep=SWEEP)
    annotate_png(path, parameters="second", comfy_sweep=SWEEP)
    keywords = [body.split(b"\0")[0] for kind, body in chunks(path) if kind == b"tEXt"]
    assert sorted(keywords) == [b"comfy_sweep", b"parameters", b"prompt", b"workflow"]
    assert text_of(path)["parameters"] == "second"


def test_comfyui_itxt_chunks_are_kept_verbatim(tmp_path: Path) -> None:
    path = comfy_png(
        tmp_path / "out.png", workflow=json.dumps({"title": "Überblick 概要"}, ensure_ascii=False)
    )
    before = [c for c in chunks(path) if c[0] == b"iTXt"]
    assert before  # Pillow wrote the non-Latin-1 workflow as iTXt
    annotate_png(path, parameters="p", comfy_sweep=SWEEP)
    assert [c for c in chunks(path) if c[0] == b"iTXt"] == before


def test_other_files_are_left_untouched(tmp_path: Path) -> None:
    webp = tmp_path / "out.webp"
    Image.new("RGB", (8, 8)).save(webp)
    video = tmp_path / "out.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    for path in (webp, video):
        before, mtime = path.read_bytes(), path.stat().st_mtime_ns
        annotate_png(path, parameters="p", comfy_sweep=SWEEP)
        assert (path.read_bytes(), path.stat().st_mtime_ns) == (before, mtime)


def test_a_truncated_png_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = comfy_png(tmp_path / "out.png")
    path.write_bytes(path.read_bytes()[:-20])
    before = path.read_bytes()
    with pytest.raises(MalformedPng):
        annotate_png(path, parameters="p", comfy_sweep=SWEEP)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_given_workflow_replaces_the_savers_workflow_chunk_once(tmp_path: Path) -> None:
    path = comfy_png(tmp_path / "out.png")
    ui = {"nodes": [{"id": 3, "type": "KSampler", "widgets_values": [42, "fixed"]}], "links": []}

    annotate_png(path, parameters="x", comfy_sweep=SWEEP, workflow=ui)
    annotate_png(path, parameters="x", comfy_sweep=SWEEP, workflow=ui)

    keywords = [body.split(b"\0")[0] for kind, body in chunks(path) if kind == b"tEXt"]
    assert keywords.count(b"workflow") == 1
    assert json.loads(text_of(path)["workflow"]) == ui
    assert text_of(path)["prompt"] == PROMPT_GRAPH


def test_without_a_workflow_the_savers_workflow_chunk_is_kept(tmp_path: Path) -> None:
    path = comfy_png(tmp_path / "out.png")
    annotate_png(path, parameters="x", comfy_sweep=SWEEP)
    assert text_of(path)["workflow"] == WORKFLOW


@pytest.mark.parametrize("workflow", [None, {"nodes": [], "links": []}])
def test_a_png_annotated_in_memory_is_the_file_annotated_on_disk(
    tmp_path: Path, workflow: dict[str, list[object]] | None
) -> None:
    on_disk = comfy_png(tmp_path / "disk.png", parameters="stale")
    body = on_disk.read_bytes()
    annotate_png(on_disk, parameters="a cat", comfy_sweep=SWEEP, workflow=workflow)

    in_memory = tmp_path / "memory.png"
    digest = write_annotated_png(
        body, in_memory, parameters="a cat", comfy_sweep=SWEEP, workflow=workflow
    )

    assert in_memory.read_bytes() == on_disk.read_bytes()
    assert digest == hash_file(in_memory)


def test_a_body_that_is_not_a_png_is_written_as_it_came(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    digest = write_annotated_png(b"GIF89a", path, parameters="a cat", comfy_sweep=SWEEP)
    assert path.read_bytes() == b"GIF89a"
    assert digest == hash_file(path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left behind
