"""Grid build time and peak memory for 100 and 1,000 cells of 1024×1024 PNG.

Builds grids the way the finalizer does (`plan_grid` with its page budget, then `render_page`
for every page and the index), without the database, whose two reads are negligible next to
decoding. Cells are synthetic PNGs written at ComfyUI's compression level (4) from gradients,
fractals and noise, so they weigh and decode like real outputs (about 1.7 MB each). 100
distinct cells are made once, in parallel, and larger grids use hard links to them: decoding
costs the same whether two cells share bytes or not. Each build runs in a fresh subprocess
that reports its own peak RSS, so generation and earlier builds never count. The target is a
peak under 400 MB at 1,000 cells.

    python -m bench.grids                       # 100, 1,000 (one page, paged), 1,300 cells
    python -m bench.grids --keep /tmp/cells     # reuse (or make) the cells there
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import PIL
from PIL import Image, ImageChops

from app.domain.expansion import Axis, SweepPlan
from app.domain.grid_geometry import Size
from app.domain.grid_layout import cell_for, images_per_page, plan_grid
from app.grids.render import CellContent, GridRecord, render_page
from workers.gridding import PAGE_PIXELS

EDGE = 1024
DISTINCT = 100
TARGET_MB = 400
# name: axis sizes (X, Y, pages...)
SHAPES: dict[str, tuple[int, ...]] = {
    "100 cells, 10×10": (10, 10),
    "1,000 cells, 40×25 on one page": (40, 25),
    "1,000 cells, 10×10 × 10 pages + index": (10, 10, 10),
    # Past the page budget at 256 px: cells shrink until the canvas is the largest allowed.
    "1,300 cells, 52×25 (worst case)": (52, 25),
}


def make_cell(path: Path, seed: int, edge: int = EDGE) -> None:
    rnd = random.Random(seed)
    gradient = Image.linear_gradient("L").resize((edge, edge)).rotate(rnd.uniform(0, 360))
    extent = (-2 + rnd.random(), -1.5, 1 + rnd.random(), 1.5)
    fractal = Image.effect_mandelbrot((edge, edge), extent, 60)
    noise = Image.effect_noise((edge, edge), rnd.uniform(20, 40))
    red = Image.blend(gradient, noise, 0.35)
    green = Image.blend(ImageChops.offset(fractal, rnd.randrange(edge), 0), noise, 0.25)
    blue = Image.blend(gradient.transpose(Image.Transpose.ROTATE_90), fractal, rnd.random())
    Image.merge("RGB", (red, green, blue)).save(path, format="PNG", compress_level=4)


def prepare_cells(directory: Path, count: int, edge: int = EDGE) -> None:
    """`cell-0000.png` ... for `count` cells, the first DISTINCT made, the rest linked."""
    directory.mkdir(parents=True, exist_ok=True)
    distinct = [directory / f"cell-{n:04d}.png" for n in range(min(count, DISTINCT))]
    missing = [(path, n) for n, path in enumerate(distinct) if not path.exists()]
    if missing:
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            paths, seeds = zip(*missing, strict=True)
            list(pool.map(make_cell, paths, seeds, [edge] * len(paths)))
        print(f"made {len(missing)} cells in {time.perf_counter() - started:.1f} s")
    for n in range(len(distinct), count):
        link = directory / f"cell-{n:04d}.png"
        if not link.exists():
            os.link(distinct[n % DISTINCT], link)


def build(cells: Path, shape: tuple[int, ...], out: Path) -> dict[str, Any]:
    """One grid build, timed; run in a child process."""
    axes = tuple(Axis(f"p{n}", tuple(range(size))) for n, size in enumerate(shape))
    plan = SweepPlan({}, axes)
    count = math.prod(shape)
    started = time.perf_counter()
    cell = cell_for(Size(EDGE, EDGE), images_per_page(plan))
    grid = plan_grid(plan, count, cell=cell, max_pixels=PAGE_PIXELS)

    def source(index: int) -> CellContent:
        return CellContent(cells / f"cell-{index:04d}.png", "succeeded", None, {"index": index})

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
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    biggest = max((page.canvas for page in grid.pages), key=lambda size: size.pixels)
    return {
        "seconds": seconds,
        "pages": len(grid.pages),
        "cell": grid.cell.width,
        "canvas": f"{biggest.width}×{biggest.height}",
        "megapixels": biggest.pixels / 1e6,
        "file_mb": sum(p.stat().st_size for p in out.glob("*.png")) / 2**20,
        # Linux reports kilobytes.
        "peak_mb": usage.ru_maxrss / 1024,
        # CPU seconds of the whole child (imports too): what the build costs on a busy machine.
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def run_child(cells: Path, name: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.grids", "--child", name, "--keep", str(cells)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(name: str, result: dict[str, Any]) -> None:
    verdict = "ok" if result["peak_mb"] < TARGET_MB else f"OVER {TARGET_MB} MB"
    print(
        f"{name:40} {result['seconds']:5.1f} s (CPU {result['cpu_s']:5.1f} s)  "
        f"peak {result['peak_mb']:4.0f} MB ({verdict})  "
        f"{result['pages']:2d} page(s), cell {result['cell']} px, largest {result['canvas']} "
        f"({result['megapixels']:.0f} Mpx), {result['file_mb']:.0f} MB of PNG"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="directory for the cells, kept afterwards")
    parser.add_argument("--child", choices=sorted(SHAPES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(build(args.keep, SHAPES[args.child], Path(out))))
        return
    with tempfile.TemporaryDirectory() as scratch:
        cells = args.keep or Path(scratch)
        prepare_cells(cells, max(math.prod(shape) for shape in SHAPES.values()))
        print(f"{os.cpu_count()} cores, Pillow {PIL.__version__}")
        for name in SHAPES:
            report(name, run_child(cells, name))


if __name__ == "__main__":
    main()
