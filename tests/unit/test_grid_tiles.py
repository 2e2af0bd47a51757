"""Fitted tiles: where a run's tile goes (pure), the tile file itself, and pages drawn from tiles
being exactly the pages drawn from the originals, with a fall back when a tile is missing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import pytest
from PIL import Image, PngImagePlugin

from app.domain.expansion import Axis, SweepPlan, count_runs
from app.domain.grid_geometry import GridPlan, PageLayout, Size, Slot
from app.domain.grid_layout import plan_grid, slot_of
from app.grids import render as render_module
from app.grids.render import SLOT_BACKGROUND, CellContent, GridRecord, load_thumbnail, render_page
from app.grids.tiles import TileKey, read_tile, tile_key, tile_path, write_tile
from tests.support.videos import solid_video

CFG = Axis("cfg", (5.0, 7.0, 9.0))
SAMPLER = Axis("sampler_name", ("euler", "dpmpp_2m"))
STEPS = Axis("steps", (10, 20))
RECORD = GridRecord({"workflow": "w"}, {"sweep_id": "0d4c"})
SHA = "ab" * 32
RED, BLUE = (220, 20, 20), (20, 20, 220)


CELL = Size(160, 160)


def planned(plan: SweepPlan, cell: Size = CELL) -> GridPlan:
    return plan_grid(plan, count_runs(plan), cell=cell, title="w · sweep 0d4c")


def all_slots(grid: GridPlan) -> list[Slot]:
    return [slot for page in grid.pages for cell in page.cells for slot in cell.slots]


# --- placement (pure) ---


def test_every_run_has_the_slot_its_page_draws_it_in() -> None:
    grid = planned(SweepPlan({"seed": 1}, (CFG, SAMPLER, STEPS)))  # two pages and an index
    assert len(grid.pages) == 2
    for slot in all_slots(grid):
        assert slot_of(grid, slot.index) == slot
    assert {slot.index for slot in all_slots(grid)} == set(range(12))


def test_seeds_sharing_a_cell_get_their_own_smaller_slots() -> None:
    grid = planned(SweepPlan({}, (CFG,), seeds=(1, 2), seed_param="seed"))
    first, second = slot_of(grid, 0), slot_of(grid, 1)
    assert first is not None
    assert second is not None
    assert first.rect != second.rect
    assert first.rect.width < grid.pages[0].cells[0].rect.width


def test_an_index_past_the_runs_has_no_slot() -> None:
    grid = planned(SweepPlan({"seed": 1}, (CFG, SAMPLER)))
    assert slot_of(grid, 6) is None
    assert slot_of(grid, -1) is None


# --- the tile file ---


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_tile_reads_back_as_the_same_pixels(tmp_path: Path, mode: str) -> None:
    image = Image.effect_noise((90, 60), 40).convert(mode)
    path = tmp_path / "t.tile"
    write_tile(path, image)
    read = read_tile(path, Size(90, 60))
    assert read is not None
    assert (read.mode, read.size, read.tobytes()) == (mode, (90, 60), image.tobytes())
    assert [p.name for p in tmp_path.iterdir()] == ["t.tile"]  # no temporary file left


def test_torn_foreign_oversized_and_missing_tiles_are_not_read(tmp_path: Path) -> None:
    path = tmp_path / "t.tile"
    write_tile(path, Image.new("RGB", (90, 60), RED))
    assert read_tile(path, Size(80, 80)) is None  # wider than the slot asked for
    path.write_bytes(path.read_bytes()[:-1])
    assert read_tile(path, Size(90, 60)) is None  # torn
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert read_tile(path, Size(90, 60)) is None  # not a tile
    assert read_tile(tmp_path / "none.tile", Size(90, 60)) is None


def test_a_tile_name_comes_only_from_a_well_formed_hash(tmp_path: Path) -> None:
    assert tile_key(tmp_path, 3, "../../etc/passwd") is None
    assert tile_key(tmp_path, 3, None) is None
    key = tile_key(tmp_path, 3, SHA)
    assert key is not None
    assert tile_path(key, Size(90, 60)).name == f"000003-90x60-{SHA[:16]}.tile"


# --- pages drawn from tiles ---


def mixed_outputs(tmp_path: Path) -> dict[int, Path]:
    """Six runs of a 3×2 grid: RGB of two sizes, transparent, palette, a video; run 2 failed."""
    noise = Image.effect_noise((640, 384), 50)
    files = {
        0: tmp_path / "0.png",
        1: tmp_path / "1.png",
        3: solid_video(tmp_path / "3.mp4", (40, 160, 40), size=(320, 160)),
        4: tmp_path / "4.png",
        5: tmp_path / "5.jpg",
    }
    Image.merge("RGB", (noise, noise.rotate(90), noise.rotate(180))).save(files[0])
    see_through = Image.new("RGBA", (120, 300), (0, 0, 0, 0))
    see_through.paste((200, 30, 30, 255), (10, 10, 110, 200))
    see_through.save(files[1])
    noise.resize((300, 300)).convert("P").save(files[4])
    noise.convert("RGB").save(files[5], quality=90)
    return files


def source_for(files: Mapping[int, Path], tiles: Path | None) -> Callable[[int], CellContent]:
    def source(index: int) -> CellContent:
        if index not in files:
            return CellContent(None, "failed", "execution: CUDA out of memory", {"i": index})
        key = TileKey(tiles, index, SHA) if tiles is not None else None
        return CellContent(files[index], "succeeded", None, {"i": index}, key)

    return source


def ingest(files: Mapping[int, Path], grid: GridPlan, tiles: Path) -> None:
    """What the worker does for each succeeded run: fit its output into its slot."""
    for index, path in files.items():
        slot = slot_of(grid, index)
        assert slot is not None
        box = Size(slot.rect.width, slot.rect.height)
        with load_thumbnail(path, box) as fitted:
            write_tile(tile_path(TileKey(tiles, index, SHA), box), fitted)


def render(page: PageLayout, source: Callable[[int], CellContent], path: Path) -> bytes:
    render_page(page, source, path, RECORD)
    return path.read_bytes()


def test_a_page_from_tiles_is_the_page_from_the_originals(tmp_path: Path) -> None:
    files = mixed_outputs(tmp_path)
    grid = planned(SweepPlan({"seed": 1}, (CFG, SAMPLER)), cell=Size(200, 120))
    tiles = tmp_path / "tiles"
    ingest(files, grid, tiles)
    assert len(list(tiles.iterdir())) == 5
    page = grid.pages[0]
    old = render(page, source_for(files, None), tmp_path / "old.png")
    new = render(page, source_for(files, tiles), tmp_path / "new.png")
    assert new == old  # byte-identical, metadata included


def test_the_tile_is_what_gets_drawn_and_a_missing_one_falls_back(tmp_path: Path) -> None:
    plan = SweepPlan({"seed": 1}, (CFG, SAMPLER))
    grid = planned(plan)
    page = grid.pages[0]
    files = {n: tmp_path / f"{n}.png" for n in range(6)}
    for path in files.values():
        Image.new("RGB", (160, 160), RED).save(path)
    tiles = tmp_path / "tiles"
    slot = slot_of(grid, 0)
    assert slot is not None
    box = Size(slot.rect.width, slot.rect.height)
    write_tile(tile_path(TileKey(tiles, 0, SHA), box), Image.new("RGB", (160, 160), BLUE))
    render(page, source_for(files, tiles), tmp_path / "page.png")
    with Image.open(tmp_path / "page.png") as drawn:
        rgb = drawn.convert("RGB")
        centre = slot_of(grid, 1)
        assert centre is not None
        assert rgb.getpixel((slot.rect.x + 80, slot.rect.y + 80)) == BLUE  # from the tile
        assert rgb.getpixel((centre.rect.x + 80, centre.rect.y + 80)) == RED  # fitted anew


def pillow_png(canvas: Image.Image, file: BinaryIO, texts: Mapping[str, tuple[str, bool]]) -> None:
    """How pages were encoded before `app.grids.png_writer`."""
    info = PngImagePlugin.PngInfo()
    for key, (text, zipped) in texts.items():
        info.add_itxt(key, text, zip=zipped)
    canvas.save(file, format="PNG", pnginfo=info, compress_level=1)


def test_tiles_and_the_page_writer_draw_what_originals_and_pillow_drew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = mixed_outputs(tmp_path)
    grid = planned(SweepPlan({"seed": 1}, (CFG, SAMPLER)), cell=Size(200, 120))
    ingest(files, grid, tmp_path / "tiles")
    page = grid.pages[0]
    render(page, source_for(files, tmp_path / "tiles"), tmp_path / "new.png")
    monkeypatch.setattr(render_module, "write_png", pillow_png)
    render(page, source_for(files, None), tmp_path / "old.png")
    with Image.open(tmp_path / "old.png") as old, Image.open(tmp_path / "new.png") as new:
        assert isinstance(old, PngImagePlugin.PngImageFile)
        assert isinstance(new, PngImagePlugin.PngImageFile)
        assert new.text == old.text
        assert new.tobytes() == old.tobytes()


def test_the_slot_background_shows_around_a_narrow_image_and_behind_a_transparent_one(
    tmp_path: Path,
) -> None:
    grid = planned(SweepPlan({"seed": 1}, (CFG,)))
    narrow = tmp_path / "narrow.png"
    Image.new("RGB", (40, 160), RED).save(narrow)
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (160, 160), (0, 0, 0, 0)).save(clear)
    files = {0: narrow, 1: clear, 2: narrow}
    render(grid.pages[0], source_for(files, None), tmp_path / "page.png")
    with Image.open(tmp_path / "page.png") as drawn:
        rgb = drawn.convert("RGB")
        for index in (0, 1):
            slot = slot_of(grid, index)
            assert slot is not None
            assert rgb.getpixel((slot.rect.x + 2, slot.rect.y + 2)) == SLOT_BACKGROUND
