"""The grid pages' PNG writer: what Pillow reads back is the canvas, pixel for pixel, and the
text chunks, exactly as Pillow's own encoder would have written them."""

from __future__ import annotations

import io
import os
import select
from pathlib import Path

import pytest
from PIL import Image, ImageChops, PngImagePlugin

from app.grids.png_writer import write_png


def noisy(width: int, height: int) -> Image.Image:
    noise = Image.effect_noise((width, height), 60)
    gradient = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (noise, gradient, ImageChops.invert(noise)))


def written(canvas: Image.Image, texts: dict[str, tuple[str, bool]]) -> bytes:
    buffer = io.BytesIO()
    write_png(canvas, buffer, texts)
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(1, 1), (1, 300), (301, 257), (1000, 513)])
def test_the_pixels_read_back_exactly(size: tuple[int, int]) -> None:
    canvas = noisy(*size)
    with Image.open(io.BytesIO(written(canvas, {}))) as read:
        read.load()  # decodes every row, checking each chunk's CRC and the stream's end
        assert (read.mode, read.size) == ("RGB", size)
        assert read.tobytes() == canvas.tobytes()


def test_pixels_and_text_match_what_pillows_encoder_writes(tmp_path: Path) -> None:
    canvas = noisy(640, 300)
    texts = {"comfy_sweep_request": ("提示 · prompt " * 50, True), "plain": ("é" * 10, False)}
    info = PngImagePlugin.PngInfo()
    for key, (text, zipped) in texts.items():
        info.add_itxt(key, text, zip=zipped)
    canvas.save(tmp_path / "pillow.png", pnginfo=info, compress_level=1)
    (tmp_path / "ours.png").write_bytes(written(canvas, texts))
    with Image.open(tmp_path / "pillow.png") as theirs, Image.open(tmp_path / "ours.png") as ours:
        assert isinstance(theirs, PngImagePlugin.PngImageFile)
        assert isinstance(ours, PngImagePlugin.PngImageFile)
        assert ours.text == theirs.text == {key: text for key, (text, _) in texts.items()}
        assert ours.tobytes() == theirs.tobytes()


def test_only_rgb_canvases_are_written() -> None:
    with pytest.raises(ValueError, match="RGBA"):
        written(Image.new("RGBA", (4, 4)), {})


def test_a_forked_child_writes_pages_after_its_parent_did() -> None:
    canvas = noisy(300, 600)
    expected = canvas.tobytes()
    written(canvas, {})  # the parent's deflate threads exist now
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            with Image.open(io.BytesIO(written(canvas, {}))) as read:
                os.write(writer, b"1" if read.tobytes() == expected else b"0")
        finally:
            os._exit(0)
    os.close(writer)
    ready, _, _ = select.select([reader], [], [], 10.0)
    verdict = os.read(reader, 1) if ready else b""
    os.waitpid(child, 0) if ready else os.kill(child, 9)
    os.close(reader)
    assert verdict == b"1", "the forked child did not write the page within 10 s"
