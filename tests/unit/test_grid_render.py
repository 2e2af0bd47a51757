"""Rendered grid pages: their size, legible labels, placeholders, fitted cells and the record
of what produced them, read back from the PNG."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from app.domain.expansion import Axis, SweepPlan, count_runs, expand_sweep
from app.domain.grid_geometry import GridPlan, PageLayout, Rect, Size
from app.domain.grid_layout import plan_grid
from app.domain.grid_text import LINE_EM
from app.grids import render
from app.grids.fonts import FONT_PACKAGE, font, font_file
from app.grids.labels import PLACEHOLDER_COLORS, fit_label
from app.grids.render import (
    BACKGROUND,
    CELLS_KEY,
    PAGE_KEY,
    REQUEST_KEY,
    SLOT_BACKGROUND,
    CellContent,
    GridRecord,
    render_page,
)
from tests.support.videos import solid_video

CFG = Axis("cfg", (5.0, 7.0, 9.0))
SAMPLER = Axis("sampler_name", ("euler", "dpmpp_2m"))
STEPS = Axis("steps", (10, 20, 30))
RED = (220, 20, 20)
REQUEST = {"workflow": "sd15-txt2img", "axes": [{"param": "cfg", "values": "5-9 (+2)"}]}
RECORD = GridRecord(REQUEST, {"sweep_id": "0d4c", "workflow": "sd15-txt2img"})


def solid(path: Path, size: tuple[int, int], color: tuple[int, int, int] = RED) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def sweep_of(*axes: Axis) -> SweepPlan:
    return SweepPlan({"seed": 1}, axes)


CELL = Size(160, 160)


def text_chunks(path: Path) -> dict[str, str]:
    with Image.open(path) as image:
        assert isinstance(image, PngImagePlugin.PngImageFile)
        return dict(image.text)


def laid_out(sweep: SweepPlan, cell: Size = CELL) -> GridPlan:
    return plan_grid(sweep, count_runs(sweep), cell=cell, title="sd15-txt2img · sweep 0d4c")


def source_from(
    sweep: SweepPlan, files: Mapping[int, Path], failures: Mapping[int, str] | None = None
) -> Callable[[int], CellContent]:
    assignments = {run.index: dict(run.assignment) for run in expand_sweep(sweep)}
    failures = failures or {}

    def source(index: int) -> CellContent:
        if index in failures:
            return CellContent(None, "failed", failures[index], assignments[index])
        return CellContent(files.get(index), "succeeded", None, assignments[index])

    return source


def region(image: Image.Image, rect: Rect) -> Image.Image:
    return image.crop((rect.x, rect.y, rect.right, rect.bottom))


def has_ink(image: Image.Image, rect: Rect) -> bool:
    darkest = region(image, rect).convert("L").getextrema()[0]
    assert isinstance(darkest, int)
    return darkest < 128


@pytest.fixture
def three_by_two(tmp_path: Path) -> tuple[PageLayout, Path, list[dict[str, Any]]]:
    sweep = sweep_of(CFG, SAMPLER)
    page = laid_out(sweep).pages[0]
    files = {n: solid(tmp_path / f"{n}.png", (512, 512)) for n in range(6)}
    destination = tmp_path / "grids" / "page-1.png"
    source = source_from(sweep, files, failures={4: "execution: CUDA out of memory"})
    render_page(page, source, destination, RECORD)
    return page, destination, json.loads(text_chunks(destination)[CELLS_KEY])


def test_a_three_by_two_page_has_the_layouts_size(
    three_by_two: tuple[PageLayout, Path, list[dict[str, Any]]],
) -> None:
    page, destination, _ = three_by_two
    with Image.open(destination) as image:
        assert image.size == (page.canvas.width, page.canvas.height)
        assert image.format == "PNG"


def test_every_label_area_holds_text(
    three_by_two: tuple[PageLayout, Path, list[dict[str, Any]]],
) -> None:
    page, destination, _ = three_by_two
    roles = {label.role for label in page.labels}
    assert roles == {"title", "axis", "column", "row"}
    with Image.open(destination) as image:
        rgb = image.convert("RGB")
        assert all(has_ink(rgb, label.rect) for label in page.labels)
        # ...and the space between labels stays background.
        gap = page.labels[0].rect
        assert rgb.getpixel((gap.x, gap.y)) == BACKGROUND


def test_a_failed_run_shows_a_placeholder_with_its_error(
    three_by_two: tuple[PageLayout, Path, list[dict[str, Any]]],
) -> None:
    page, destination, _ = three_by_two
    failed = page.cells[4].slots[0].rect
    succeeded = page.cells[3].slots[0].rect
    with Image.open(destination) as image:
        rgb = image.convert("RGB")
        corner = rgb.getpixel((failed.x + 2, failed.y + 2))
        assert corner == PLACEHOLDER_COLORS["failed"][0]
        assert has_ink(rgb, failed)  # the word and the error
        assert rgb.getpixel((succeeded.x + 80, succeeded.y + 80)) == RED


def test_the_png_records_the_request_and_every_cells_assignment(
    three_by_two: tuple[PageLayout, Path, list[dict[str, Any]]],
) -> None:
    _, destination, cells = three_by_two
    expected = {run.index: dict(run.assignment) for run in expand_sweep(sweep_of(CFG, SAMPLER))}
    assert {cell["index"]: cell["assignment"] for cell in cells} == expected
    assert [cell["status"] for cell in cells] == ["succeeded"] * 4 + ["failed", "succeeded"]
    assert cells[4]["error"] == "execution: CUDA out of memory"
    chunks = text_chunks(destination)
    assert json.loads(chunks[REQUEST_KEY]) == REQUEST
    about = json.loads(chunks[PAGE_KEY])
    assert about["sweep_id"] == "0d4c"
    assert {"role": "column", "text": "5"} in about["labels"]


def test_cells_of_other_shapes_are_fitted_keeping_their_aspect(tmp_path: Path) -> None:
    sweep = sweep_of(CFG)
    page = laid_out(sweep, Size(200, 200)).pages[0]
    files = {
        0: solid(tmp_path / "wide.png", (800, 200)),
        1: solid(tmp_path / "tall.jpg", (300, 1200)),
        2: solid(tmp_path / "small.png", (50, 100)),
    }
    destination = tmp_path / "page.png"
    render_page(page, source_from(sweep, files), destination, RECORD)
    with Image.open(destination) as image:
        rgb = image.convert("RGB")
        boxes = [_red_box(rgb, cell.slots[0].rect) for cell in page.cells]
    assert boxes[0] == (200, 50)
    assert abs(boxes[1][0] - 50) <= 2  # JPEG edges blur by a pixel
    assert boxes[1][1] >= 198
    assert boxes[2] == (100, 200)


def _red_box(image: Image.Image, rect: Rect) -> tuple[int, int]:
    cell = region(image, rect)
    mask = Image.eval(cell.getchannel("G"), lambda g: 255 if g < 120 else 0)
    bbox = mask.getbbox()
    assert bbox is not None
    left, top, right, bottom = bbox
    assert cell.getpixel((0, 0)) in (SLOT_BACKGROUND, RED)
    return right - left, bottom - top


def test_transparent_and_palette_images_are_drawn_too(tmp_path: Path) -> None:
    sweep = sweep_of(Axis("kind", ("rgba", "palette")))
    page = laid_out(sweep).pages[0]
    rgba = Image.new("RGBA", (64, 64), (*RED, 255))
    rgba.save(tmp_path / "a.png")
    Image.new("RGB", (64, 64), RED).quantize(4).save(tmp_path / "p.png")
    files = {0: tmp_path / "a.png", 1: tmp_path / "p.png"}
    render_page(page, source_from(sweep, files), tmp_path / "out.png", RECORD)
    with Image.open(tmp_path / "out.png") as image:
        rgb = image.convert("RGB")
        for cell in page.cells:
            rect = cell.slots[0].rect
            assert rgb.getpixel((rect.x + rect.width // 2, rect.y + rect.height // 2)) == RED


def test_unreadable_missing_and_oversized_cells_become_placeholders(tmp_path: Path) -> None:
    sweep = sweep_of(Axis("case", ("broken", "none", "huge", "cancelled")))
    page = laid_out(sweep).pages[0]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    solid(tmp_path / "huge.png", (400, 400))

    def source(index: int) -> CellContent:
        return [
            CellContent(tmp_path / "broken.png", "succeeded", None, {}),
            CellContent(None, "succeeded", None, {}),
            CellContent(tmp_path / "huge.png", "succeeded", None, {}),
            CellContent(None, "cancelled", None, {}),
        ][index]

    before = Image.MAX_IMAGE_PIXELS
    render_page(page, source, tmp_path / "out.png", RECORD, max_cell_pixels=100 * 100)
    assert before == Image.MAX_IMAGE_PIXELS  # set for each open only
    with Image.open(tmp_path / "out.png") as image:
        rgb = image.convert("RGB")
        for cell in page.cells:
            rect = cell.slots[0].rect
            assert rgb.getpixel((rect.x + 1, rect.y + 1)) != SLOT_BACKGROUND
            assert has_ink(rgb, rect)
            assert rgb.getpixel((rect.x + 80, rect.y + 80)) != RED


def test_a_corrupt_video_is_a_placeholder_saying_it_cannot_be_decoded(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0\0\0\x18ftypmp42" + bytes(64))
    with pytest.raises(render.CellUnreadable) as raised:
        render.load_thumbnail(video, Size(100, 100))
    assert raised.value.word == "video"
    assert "cannot be decoded" in raised.value.detail


def test_a_playlist_named_like_a_video_is_never_followed(tmp_path: Path) -> None:
    # Read by the suffix's demuxer only: an HLS playlist must not make FFmpeg open its entries.
    secret = solid_video(tmp_path / "secret.mp4", (0, 200, 0))
    playlist = tmp_path / "clip.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:{secret}\n")
    with pytest.raises(render.CellUnreadable) as raised:
        render.load_thumbnail(playlist, Size(100, 100))
    assert raised.value.word == "video"


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mov", ".mkv"])
def test_a_video_contributes_its_first_frame(tmp_path: Path, suffix: str) -> None:
    video = solid_video(tmp_path / f"clip{suffix}", (220, 20, 20), size=(320, 160))
    with render.load_thumbnail(video, Size(100, 100)) as thumb:
        assert thumb.size == (100, 50)
        red, green, blue = thumb.convert("RGB").getpixel((50, 25))  # type: ignore[misc]
    assert red > 200 > 40 > max(green, blue)


def test_a_video_larger_than_the_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    video = solid_video(tmp_path / "clip.mp4", RED, size=(320, 160))
    with pytest.raises(render.CellUnreadable) as raised:
        render.load_thumbnail(video, Size(100, 100), max_pixels=320 * 159)
    assert "over" in raised.value.detail


def test_a_grid_of_videos_shows_each_first_frame(tmp_path: Path) -> None:
    sweep = sweep_of(CFG)
    page = laid_out(sweep).pages[0]
    colors = [(220, 20, 20), (20, 200, 20), (20, 20, 220)]
    files = {n: solid_video(tmp_path / f"{n}.mp4", color) for n, color in enumerate(colors)}
    render_page(page, source_from(sweep, files), tmp_path / "out.png", RECORD)
    with Image.open(tmp_path / "out.png") as image:
        rgb = image.convert("RGB")
        for cell, color in zip(page.cells, colors, strict=True):
            rect = cell.slots[0].rect
            pixel = rgb.getpixel((rect.x + rect.width // 2, rect.y + rect.height // 2))
            assert isinstance(pixel, tuple)
            assert all(abs(a - b) <= 12 for a, b in zip(pixel, color, strict=True)), pixel


def test_a_three_axis_sweep_renders_one_page_per_value_of_the_third(tmp_path: Path) -> None:
    sweep = sweep_of(CFG, SAMPLER, STEPS)
    grid = laid_out(sweep, Size(64, 64))
    files = {n: solid(tmp_path / f"{n}.png", (128, 128)) for n in range(count_runs(sweep))}
    source = source_from(sweep, files)
    for page in grid.pages:
        render_page(
            page,
            source,
            tmp_path / f"page-{page.number}.png",
            RECORD,
            preview=tmp_path / f"p{page.number}.png",
        )
    assert len(grid.pages) == 3
    for page, steps in zip(grid.pages, STEPS.values, strict=True):
        chunks = text_chunks(tmp_path / f"page-{page.number}.png")
        about, cells = json.loads(chunks[PAGE_KEY]), json.loads(chunks[CELLS_KEY])
        assert about["fixed"] == {"steps": steps}
        assert {cell["assignment"]["steps"] for cell in cells} == {steps}
    index = grid.index_page
    assert index is not None

    def previews(number: int) -> CellContent:
        return CellContent(tmp_path / f"p{number}.png", "succeeded", None, {"page": number})

    render_page(index, previews, tmp_path / "index.png", RECORD)
    with Image.open(tmp_path / "index.png") as image:
        assert image.size == (index.canvas.width, index.canvas.height)
    listed = json.loads(text_chunks(tmp_path / "index.png")[CELLS_KEY])
    assert [cell["index"] for cell in listed] == [1, 2, 3]


def test_huge_records_stay_readable_by_pillow(tmp_path: Path) -> None:
    # Pillow refuses to reopen compressed text that inflates past 1 MB; such records are
    # written uncompressed instead.
    prompt = "an extremely detailed prompt " * 400
    sweep = sweep_of(Axis("prompt", tuple(f"{n} {prompt}" for n in range(120))))
    page = laid_out(sweep, Size(32, 32)).pages[0]
    render_page(page, source_from(sweep, {}), tmp_path / "out.png", RECORD)
    cells = json.loads(text_chunks(tmp_path / "out.png")[CELLS_KEY])
    assert len(json.dumps(cells)) > 1_048_576
    assert cells[119]["assignment"]["prompt"].startswith("119 an extremely")


def test_writing_leaves_no_temporary_files(
    three_by_two: tuple[PageLayout, Path, list[dict[str, Any]]],
) -> None:
    _, destination, _ = three_by_two
    assert [p.name for p in destination.parent.iterdir()] == ["page-1.png"]


def test_labels_use_the_packaged_truetype_font() -> None:
    path = font_file()
    assert path is not None, f"{FONT_PACKAGE} is not installed"
    assert path.suffix == ".ttf"
    assert font(20).getname()[0] == "Source Sans Pro"
    assert font(20) is font(20)  # cached per size


def test_long_labels_are_wrapped_and_shortened_inside_their_areas(tmp_path: Path) -> None:
    prompt = "a lighthouse on a cliff at dusk, volumetric light, " * 8 + "by Turner"
    sweep = sweep_of(Axis("prompt", (prompt, "a cat", prompt.upper())), SAMPLER)
    page = laid_out(sweep, Size(96, 96)).pages[0]
    render_page(page, source_from(sweep, {}), tmp_path / "out.png", RECORD)
    columns = [label for label in page.labels if label.role == "column"]
    with Image.open(tmp_path / "out.png") as image:
        rgb = image.convert("RGB")
        assert all(has_ink(rgb, label.rect) for label in columns)
        # The gaps between neighbouring headers stay blank: no text spills over.
        for left, right in itertools.pairwise(columns):
            gap = Rect(
                left.rect.right, left.rect.y, right.rect.x - left.rect.right, left.rect.height
            )
            assert region(rgb, gap).getcolors() == [(gap.width * gap.height, BACKGROUND)]


LONG_SEED = 8734561234567890
SAMPLER_NAMES = Axis("sampler_name", ("euler_ancestral", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu"))


@pytest.mark.parametrize("cell", [Size(64, 64), Size(96, 96), Size(128, 128)])
def test_sampler_names_wrap_only_after_separators_at_small_cells(cell: Size) -> None:
    sweep = SweepPlan({}, (SAMPLER_NAMES, CFG), "cartesian", "seed", (LONG_SEED,))
    page = laid_out(sweep, cell).pages[0]
    columns = [label for label in page.labels if label.role == "column"]
    for label in columns:
        fitted = fit_label(label)
        assert not fitted.shortened
        assert "".join(fitted.lines) == label.full
        assert all(line[-1] == "_" for line in fitted.lines[:-1]), fitted.lines
        widest = max(font(fitted.font_px).getlength(line) for line in fitted.lines)
        assert widest <= label.rect.width
        assert len(fitted.lines) * math.ceil(fitted.font_px * LINE_EM) <= label.rect.height


def test_a_sixteen_digit_seed_fits_the_title_of_a_narrow_page() -> None:
    steps = Axis("steps", (20,))
    one = Axis("sampler_name", ("dpmpp_2m_sde_gpu",))
    sweep = SweepPlan({}, (one, CFG, steps, Axis("seed", (LONG_SEED,))))
    page = laid_out(sweep, Size(64, 64)).pages[0]
    (title,) = (label for label in page.labels if label.role == "title")
    fitted = fit_label(title)
    assert not fitted.shortened
    assert f"seed={LONG_SEED}" in fitted.lines
    face = font(fitted.font_px, bold=True)
    assert all(face.getlength(line) <= title.rect.width for line in fitted.lines)
    assert len(fitted.lines) * math.ceil(fitted.font_px * LINE_EM) <= title.rect.height


def test_each_seed_sub_cell_is_labelled_with_its_seed(tmp_path: Path) -> None:
    sweep = SweepPlan({}, (SAMPLER_NAMES,), "cartesian", "seed", (LONG_SEED, 42))
    page = laid_out(sweep, Size(128, 128)).pages[0]
    files = {n: solid(tmp_path / f"{n}.png", (256, 256)) for n in range(count_runs(sweep))}
    render_page(page, source_from(sweep, files), tmp_path / "out.png", RECORD)
    bands = [label for label in page.labels if label.role == "seed"]
    assert [band.full for band in bands] == [str(LONG_SEED), "42"] * 3
    assert all(fit_label(band).lines == (band.full,) for band in bands)  # whole, one line
    with Image.open(tmp_path / "out.png") as image:
        rgb = image.convert("RGB")
        assert all(has_ink(rgb, band.rect) for band in bands)
        for cell in page.cells:
            for slot in cell.slots:
                centre = (slot.rect.x + slot.rect.width // 2, slot.rect.y + slot.rect.height // 2)
                assert rgb.getpixel(centre) == RED  # the band takes no room from the image
    labelled = json.loads(text_chunks(tmp_path / "out.png")[PAGE_KEY])["labels"]
    assert {"role": "seed", "text": str(LONG_SEED)} in labelled
