"""Output nodes: SaveImage, PreviewImage and SaveAnimatedWEBP, with ComfyUI's file naming.

Files are `<prefix>_<counter:05>_.png` in the prefix's folder under the output (or temp)
directory; the counter is one past the highest already there for that prefix, found by
listing the folder (folder_paths.get_save_image_path). PNGs carry tEXt `prompt` and one chunk
per `extra_pnginfo` key (`workflow`), which is what lets ComfyUI reload a workflow from a PNG.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from PIL.PngImagePlugin import PngInfo

from app.standin.graph import JsonObject, JsonValue
from app.standin.nodes.base import NodeCall, NodeFunction, NodeResult

WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}


def _expand_variables(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    replacements = {
        "%width%": str(width),
        "%height%": str(height),
        "%year%": str(now.tm_year),
        "%month%": f"{now.tm_mon:02}",
        "%day%": f"{now.tm_mday:02}",
        "%hour%": f"{now.tm_hour:02}",
        "%minute%": f"{now.tm_min:02}",
        "%second%": f"{now.tm_sec:02}",
    }
    for variable, value in replacements.items():
        prefix = prefix.replace(variable, value)
    return prefix


def _next_counter(folder: Path, filename: str) -> int:
    highest = 0
    for existing in os.listdir(folder):
        head, rest = existing[: len(filename) + 1], existing[len(filename) + 1 :]
        if os.path.normcase(head[:-1]) != os.path.normcase(filename) or head[-1:] != "_":
            continue
        digits = rest.split("_")[0]
        highest = max(highest, int(digits) if digits.isdigit() else 0)
    return highest + 1


def save_path(prefix: str, root: Path, size: tuple[int, int]) -> tuple[Path, str, int, str]:
    """(folder, file name stem, first counter, subfolder) for a filename_prefix under root."""
    if "%" in prefix:
        prefix = _expand_variables(prefix, *size)
    normalized = os.path.normpath(prefix)
    subfolder, filename = os.path.dirname(normalized), os.path.basename(normalized)
    folder = Path(os.path.abspath(os.path.join(root, subfolder)))
    if os.path.commonpath((str(root), str(folder))) != str(root):
        raise Exception(  # ComfyUI raises a bare Exception with this text
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {folder}\n         output_dir: {root}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder, filename, _next_counter(folder, filename), subfolder


def _png_info(call: NodeCall) -> PngInfo:
    info = PngInfo()
    info.add_text("prompt", json.dumps(call.prompt))
    for key, value in (call.extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def _save_pngs(call: NodeCall, root: Path, kind: str, prefix: str, level: int) -> NodeResult:
    images = call.images("images")
    folder, filename, counter, subfolder = save_path(prefix, root, images.size)
    info = _png_info(call)
    results: list[JsonValue] = []
    for batch_number, frame in enumerate(images.frames):
        name = f"{filename.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
        frame.save(folder / name, pnginfo=info, compress_level=level)
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return NodeResult(ui={"images": results})


def save_image(call: NodeCall) -> NodeResult:
    prefix = call.text("filename_prefix", "ComfyUI")
    return _save_pngs(call, call.runtime.output_dir, "output", prefix, 4)


def preview_image(call: NodeCall) -> NodeResult:
    letters = "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))  # noqa: S311
    prefix = f"ComfyUI_temp_{letters}"
    return _save_pngs(call, call.runtime.temp_dir, "temp", prefix, 1)


def save_animated_webp(call: NodeCall) -> NodeResult:
    images = call.images("images")
    root = call.runtime.output_dir
    folder, filename, counter, subfolder = save_path(
        call.text("filename_prefix"), root, images.size
    )
    name = f"{filename}_{counter:05}_.webp"
    first, *rest = images.frames
    first.save(
        folder / name,
        save_all=True,
        append_images=rest,
        duration=round(1000.0 / call.real("fps")),
        lossless=call.flag("lossless"),
        quality=call.integer("quality"),
        method=WEBP_METHODS.get(call.text("method"), 4),
    )
    entry: JsonObject = {"filename": name, "subfolder": subfolder, "type": "output"}
    return NodeResult(ui={"images": [entry], "animated": [True]})


SAVER_NODES: dict[str, NodeFunction] = {
    "SaveImage": save_image,
    "PreviewImage": preview_image,
    "SaveAnimatedWEBP": save_animated_webp,
}
