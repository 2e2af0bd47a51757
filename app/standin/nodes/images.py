"""Model-free image nodes, computed for real with Pillow (no numpy, no torch).

Results are close to ComfyUI's, not bit-identical: what matters to a sweep is that they are
deterministic, that every input changes them, and that ComfyUI's runtime failures on odd
inputs (blur radius bigger than the image, an unknown dither) fail the same way here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache
from itertools import cycle
from statistics import NormalDist

from PIL import Image, ImageChops, ImageFilter, ImageOps

from app.standin.nodes.base import Images, Masks, NodeCall, NodeFunction, NodeResult

RESAMPLING = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
BLEND_MODES: dict[str, Callable[[Image.Image, Image.Image], Image.Image]] = {
    "normal": lambda _a, b: b,
    "multiply": ImageChops.multiply,
    "screen": ImageChops.screen,
    "overlay": ImageChops.overlay,
    "soft_light": ImageChops.soft_light,
    "difference": ImageChops.difference,
}


def _each(images: Images, change: Callable[[Image.Image], Image.Image]) -> NodeResult:
    """Apply `change` to the RGB part of every frame, keeping an alpha channel if any."""
    frames = []
    for frame in images.frames:
        if frame.mode == "RGBA":
            result = change(frame.convert("RGB")).convert("RGB")
            result.putalpha(frame.getchannel("A"))
        else:
            result = change(frame).convert("RGB")
        frames.append(result)
    return NodeResult((Images(tuple(frames)),))


def empty_image(call: NodeCall) -> NodeResult:
    color = call.integer("color")
    rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
    size = (call.integer("width"), call.integer("height"))
    frame = Image.new("RGB", size, rgb)
    return NodeResult((Images(tuple(frame.copy() for _ in range(call.integer("batch_size")))),))


@cache
def _noise_table(strength: float) -> list[int]:
    """Maps a uniform byte to 128 + 255 * strength * z, z standard normal (inverse CDF)."""
    normal = NormalDist()
    table = [round(128 + 255 * strength * normal.inv_cdf((u + 0.5) / 256)) for u in range(256)]
    return [min(255, max(0, v)) for v in table] * 3


def image_add_noise(call: NodeCall) -> NodeResult:
    rng = random.Random(call.integer("seed"))  # noqa: S311 - seeded noise, not secrets
    table = _noise_table(call.real("strength"))

    def add_noise(frame: Image.Image) -> Image.Image:
        noise = Image.frombytes("RGB", frame.size, rng.randbytes(frame.width * frame.height * 3))
        return ImageChops.add(frame, noise.point(table), scale=1.0, offset=-128)

    return _each(call.images("image"), add_noise)


def _reflect_pad_check(images: Images, radius: int) -> None:
    # torch's reflect padding needs padding < size; ComfyUI's blur fails with this message.
    width, height = images.size
    for dimension, size in ((3, width), (2, height)):
        if radius >= size:
            raise RuntimeError(
                "Argument #4: Padding size should be less than the corresponding input "
                f"dimension, but got: padding ({radius}, {radius}) at dimension {dimension} "
                f"of input [{len(images.frames)}, 3, {height}, {width}]"
            )


def image_blur(call: NodeCall) -> NodeResult:
    images, radius, sigma = call.images("image"), call.integer("blur_radius"), call.real("sigma")
    _reflect_pad_check(images, radius)
    blur = ImageFilter.GaussianBlur(radius=min(sigma, float(radius)))
    return _each(images, lambda frame: frame.filter(blur))


def image_sharpen(call: NodeCall) -> NodeResult:
    radius, sigma = call.integer("sharpen_radius"), call.real("sigma")
    percent = round(call.real("alpha") * 100)
    mask = ImageFilter.UnsharpMask(radius=min(sigma, float(radius)), percent=percent, threshold=0)
    return _each(call.images("image"), lambda frame: frame.filter(mask))


def _target_size(size: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    old_width, old_height = size
    if width == 0 and height == 0:
        return size
    if width == 0:
        width = max(1, round(old_width * height / old_height))
    if height == 0:
        height = max(1, round(old_height * width / old_width))
    return width, height


def _center_crop(frame: Image.Image, width: int, height: int) -> Image.Image:
    old_aspect, new_aspect = frame.width / frame.height, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((frame.width - frame.width * new_aspect / old_aspect) / 2)
    elif old_aspect < new_aspect:
        y = round((frame.height - frame.height * old_aspect / new_aspect) / 2)
    return frame.crop((x, y, frame.width - x, frame.height - y))


def scale_frame(frame: Image.Image, size: tuple[int, int], method: str, crop: str) -> Image.Image:
    if crop == "center":
        frame = _center_crop(frame, *size)
    return frame.resize(size, RESAMPLING.get(method, Image.Resampling.BICUBIC))


def image_scale(call: NodeCall) -> NodeResult:
    images = call.images("image")
    size = _target_size(images.size, call.integer("width"), call.integer("height"))
    method, crop = call.text("upscale_method"), call.text("crop")
    return _each(images, lambda frame: scale_frame(frame, size, method, crop))


def image_invert(call: NodeCall) -> NodeResult:
    return _each(call.images("image"), ImageOps.invert)


def _fit(frames: tuple[Image.Image, ...], size: tuple[int, int]) -> list[Image.Image]:
    return [scale_frame(f.convert("RGB"), size, "bicubic", "center") for f in frames]


def image_blend(call: NodeCall) -> NodeResult:
    first, second = call.images("image1"), call.images("image2")
    mode, factor = call.text("blend_mode"), call.real("blend_factor")
    if mode not in BLEND_MODES:
        raise ValueError(f"Unsupported blend mode: {mode}")
    seconds = cycle(_fit(second.frames, first.size))
    frames = tuple(
        Image.blend(a.convert("RGB"), BLEND_MODES[mode](a.convert("RGB"), next(seconds)), factor)
        for a in first.frames
    )
    return NodeResult((Images(frames),))


def image_crop(call: NodeCall) -> NodeResult:
    images = call.images("image")
    width, height = images.size
    x, y = min(call.integer("x"), width - 1), min(call.integer("y"), height - 1)
    box = (x, y, min(width, x + call.integer("width")), min(height, y + call.integer("height")))
    return NodeResult((Images(tuple(f.crop(box) for f in images.frames)),))


def image_quantize(call: NodeCall) -> NodeResult:
    dither = call.text("dither")
    if dither not in ("none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16"):
        # What ComfyUI 0.3.64 raises for an option it does not know (ws_runtime_candidate).
        raise UnboundLocalError(
            "cannot access local variable 'quantized_image' where it is not associated with a value"
        )
    mode = Image.Dither.FLOYDSTEINBERG if dither == "floyd-steinberg" else Image.Dither.NONE
    colors = call.integer("colors")
    return _each(call.images("image"), lambda f: f.quantize(colors=colors, dither=mode))


def repeat_image_batch(call: NodeCall) -> NodeResult:
    frames = call.images("image").frames * call.integer("amount")
    return NodeResult((Images(frames),))


def image_batch(call: NodeCall) -> NodeResult:
    first, second = call.images("image1"), call.images("image2")
    return NodeResult((Images(first.frames + tuple(_fit(second.frames, first.size))),))


def image_from_batch(call: NodeCall) -> NodeResult:
    frames = call.images("image").frames
    start = min(len(frames) - 1, call.integer("batch_index"))
    length = min(len(frames) - start, call.integer("length"))
    return NodeResult((Images(frames[start : start + length]),))


def solid_mask(call: NodeCall) -> NodeResult:
    level = round(255 * call.real("value"))
    frame = Image.new("L", (call.integer("width"), call.integer("height")), level)
    return NodeResult((Masks((frame,)),))


def mask_to_image(call: NodeCall) -> NodeResult:
    masks = call.value("mask", Masks)
    return NodeResult((Images(tuple(m.convert("RGB") for m in masks.frames)),))


def image_to_mask(call: NodeCall) -> NodeResult:
    channel = ("red", "green", "blue", "alpha").index(call.text("channel"))
    frames = call.images("image").frames
    if channel >= len(frames[0].getbands()):
        raise IndexError("index 3 is out of bounds for dimension 3 with size 3")
    return NodeResult((Masks(tuple(f.getchannel(channel) for f in frames)),))


def image_composite_masked(call: NodeCall) -> NodeResult:
    destination, source = call.images("destination"), call.images("source")
    sources = list(source.frames)
    if call.flag("resize_source"):
        sources = [f.resize(destination.size, Image.Resampling.BILINEAR) for f in sources]
    masks = call.inputs.get("mask")
    mask_frames = cycle(masks.frames) if isinstance(masks, Masks) else cycle([None])
    position = (call.integer("x"), call.integer("y"))
    frames = []
    for target, pasted in zip(destination.frames, cycle(sources), strict=False):
        mask = next(mask_frames)
        result = target.copy()
        result.paste(
            pasted.convert(target.mode),
            position,
            None if mask is None else mask.resize(pasted.size),
        )
        frames.append(result)
    return NodeResult((Images(tuple(frames)),))


def join_image_with_alpha(call: NodeCall) -> NodeResult:
    images, masks = call.images("image"), call.value("alpha", Masks)
    frames = []
    for frame, mask in zip(images.frames, cycle(masks.frames), strict=False):
        rgba = frame.convert("RGBA")
        rgba.putalpha(ImageOps.invert(mask.resize(frame.size)))  # ComfyUI: alpha = 1 - mask
        frames.append(rgba)
    return NodeResult((Images(tuple(frames)),))


def split_image_with_alpha(call: NodeCall) -> NodeResult:
    frames = call.images("image").frames
    rgb = tuple(f.convert("RGB") for f in frames)
    alpha = tuple(
        ImageOps.invert(f.getchannel("A")) if f.mode == "RGBA" else Image.new("L", f.size, 0)
        for f in frames
    )
    return NodeResult((Images(rgb), Masks(alpha)))


IMAGE_NODES: dict[str, NodeFunction] = {
    "EmptyImage": empty_image,
    "ImageAddNoise": image_add_noise,
    "ImageBlur": image_blur,
    "ImageSharpen": image_sharpen,
    "ImageScale": image_scale,
    "ImageInvert": image_invert,
    "ImageBlend": image_blend,
    "ImageCrop": image_crop,
    "ImageQuantize": image_quantize,
    "RepeatImageBatch": repeat_image_batch,
    "ImageBatch": image_batch,
    "ImageFromBatch": image_from_batch,
    "SolidMask": solid_mask,
    "MaskToImage": mask_to_image,
    "ImageToMask": image_to_mask,
    "ImageCompositeMasked": image_composite_masked,
    "JoinImageWithAlpha": join_image_with_alpha,
    "SplitImageWithAlpha": split_image_with_alpha,
}
