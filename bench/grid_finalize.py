"""Time from the last run recorded to the sweep's final status: the finalizer's grid step, with
and without the fitted tiles the worker writes as each run is ingested.

The finalizer's two database reads and its status update take milliseconds; what stands
between the last run and the final status is drawing the pages. This times that step on real
files, as the finalizer does it (peek the first image, plan, render every page with its
preview, then the index page): once fitting every original ("before"), once pasting tiles
written beforehand the way the worker writes them ("after"). Cells are synthetic 512² PNGs at
ComfyUI's compression level (see `bench.grids`). Each measurement runs in a fresh subprocess;
CPU time counts every thread and is the steadier figure on a shared machine.

    python -m bench.grid_finalize                       # 20 and 1,000 cells
    python -m bench.grid_finalize --keep /tmp/cells512  # reuse (or make) the cells there
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import PIL
from PIL import Image, PngImagePlugin

from app.domain.expansion import Axis, SweepPlan
from app.domain.grid_geometry import GridPlan, Size
from app.domain.grid_layout import cell_for, images_per_page, plan_grid, slot_of
from app.grids import render
from app.grids.render import CellContent, GridRecord, load_thumbnail, peek_size, render_page
from app.grids.tiles import TileKey, tile_path, write_tile
from bench.grids import prepare_cells
from workers.gridding import PAGE_PIXELS

EDGE = 512
SHA = "0" * 64  # every cell's output hash: the bench has one output per run
# name: (axis sizes, target seconds)
CASES: dict[str, tuple[tuple[int, ...], float]] = {
    "20 cells, 5×4, 512 px": ((5, 4), 0.3),
    "1,000 cells, 40×25 on one page": ((40, 25), 2.0),
    "1,000 cells, 10×10 × 10 pages + index": ((10, 10, 10), 2.0),
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _plan(shape: tuple[int, ...], first: Size | None) -> GridPlan:
    plan = SweepPlan({}, tuple(Axis(f"p{n}", tuple(range(size))) for n, size in enumerate(shape)))
    cell = cell_for(first, images_per_page(plan))
    title = "bench · sweep 0d4c0d4c"
    return plan_grid(plan, math.prod(shape), cell=cell, title=title, max_pixels=PAGE_PIXELS)


def ingest(cells: Path, shape: tuple[int, ...], tiles: Path) -> dict[str, float]:
    """What the worker adds to each run: fit its output into its slot, write the tile."""
    started, cpu = time.perf_counter(), _cpu()
    count = math.prod(shape)
    for index in range(count):
        path = cells / f"cell-{index:04d}.png"
        slot = slot_of(_plan(shape, peek_size(path)), index)
        assert slot is not None
        box = Size(slot.rect.width, slot.rect.height)
        with load_thumbnail(path, box) as fitted:
            write_tile(tile_path(TileKey(tiles, index, SHA), box), fitted)
    return {
        "ingest_ms": (time.perf_counter() - started) / count * 1000,
        "ingest_cpu_ms": (_cpu() - cpu) / count * 1000,
    }


def finalize(cells: Path, shape: tuple[int, ...], out: Path, tiles: Path | None) -> dict[str, Any]:
    """The finalizer's grid step, timed."""
    started, cpu = time.perf_counter(), _cpu()

    def source(index: int) -> CellContent:
        key = TileKey(tiles, index, SHA) if tiles is not None else None
        path = cells / f"cell-{index:04d}.png"
        return CellContent(path, "succeeded", None, {"index": index}, key)

    grid = _plan(shape, peek_size(cells / "cell-0000.png"))
    record = GridRecord({"workflow": "bench"}, {"sweep_id": "bench"})
    previews = out / "previews" if grid.index_page is not None else None
    for page in grid.pages:
        preview = previews / f"{page.number}.png" if previews is not None else None
        render_page(page, source, out / f"page-{page.number}.png", record, preview=preview)
    if grid.index_page is not None and previews is not None:
        folder = previews

        def index_source(number: int) -> CellContent:
            return CellContent(folder / f"{number}.png", "succeeded", None, {})

        render_page(grid.index_page, index_source, out / "index.png", record)
    canvas = max((page.canvas for page in grid.pages), key=lambda size: size.pixels)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": _cpu() - cpu,
        "pages": len(grid.pages),
        "cell": grid.cell.width,
        "canvas": f"{canvas.width}×{canvas.height}",
        "file_mb": sum(path.stat().st_size for path in out.glob("*.png")) / 2**20,
    }


def pillow_png(
    canvas: Image.Image, file: BinaryIO, texts: Mapping[str, tuple[str, bool]], level: int = 1
) -> None:
    """The finalizer's encoder before `app.grids.png_writer`: Pillow at level 1."""
    info = PngImagePlugin.PngInfo()
    for key, (text, zipped) in texts.items():
        info.add_itxt(key, text, zip=zipped)
    canvas.save(file, format="PNG", pnginfo=info, compress_level=level)


def child(cells: Path, name: str, tiled: bool, pillow: bool) -> dict[str, Any]:
    shape, _ = CASES[name]
    if pillow:
        render.write_png = pillow_png  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        tiles = out / "tiles" if tiled else None
        ingested = ingest(cells, shape, tiles) if tiles is not None else {}
        return {**ingested, **finalize(cells, shape, out, tiles)}


def run_child(cells: Path, name: str, tiled: bool, pillow: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.grid_finalize", "--keep", str(cells), "--child", name]
    flags = [*(["--tiled"] if tiled else []), *(["--pillow"] if pillow else [])]
    done = subprocess.run([*command, *flags], **_CAPTURE)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


_CAPTURE: dict[str, Any] = {"capture_output": True, "text": True, "check": True}


def report(name: str, before: dict[str, Any], tiles: dict[str, Any], after: dict[str, Any]) -> None:
    _, target = CASES[name]
    verdict = "PASS" if after["seconds"] <= target else "MISS"
    cpu_verdict = "PASS" if after["cpu_s"] <= target else "MISS"
    print(f"{name}: {after['pages']} page(s), cell {after['cell']} px, largest {after['canvas']}")
    for label, result in (("before", before), ("tiles", tiles), ("after", after)):
        print(
            f"  {label:7} {result['seconds']:6.2f} s (CPU {result['cpu_s']:6.2f} s), "
            f"{result['file_mb']:6.1f} MB of PNG"
        )
    print(
        f"  target {target} s: {verdict} (wall), {cpu_verdict} (CPU); the tile costs each run "
        f"{after['ingest_ms']:.1f} ms (CPU {after['ingest_cpu_ms']:.1f} ms), before it is recorded"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="directory for the cells, kept afterwards")
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--tiled", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pillow", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=sorted(CASES), help="one case only")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.keep, args.child, args.tiled, args.pillow)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        cells = args.keep or Path(scratch)
        names = [args.only] if args.only else list(CASES)
        prepare_cells(cells, max(math.prod(CASES[name][0]) for name in names), EDGE)
        print(f"Pillow {PIL.__version__}; wall and CPU seconds of the finalizer's grid step")
        for name in names:
            before = run_child(cells, name, tiled=False, pillow=True)
            tiles = run_child(cells, name, tiled=True, pillow=True)
            report(name, before, tiles, run_child(cells, name, tiled=True, pillow=False))


if __name__ == "__main__":
    main()
