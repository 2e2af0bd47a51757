"""The fake model files the stand-in pretends to have, by ComfyUI models folder.

A real server fills loader COMBO lists by scanning `models/<folder>`; the stand-in has no
files, so it offers these names instead. `--models FILE.json` replaces the list of any folder
it names, e.g. `{"checkpoints": ["a.safetensors"], "loras": []}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

DEFAULT_MODEL_FILES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "checkpoints": (
            "v1-5-pruned-emaonly.safetensors",
            "v1-5-pruned-emaonly-fp16.safetensors",
            "dreamshaper_8.safetensors",
            "realisticVisionV60B1_v51VAE.safetensors",
            "sd_xl_base_1.0.safetensors",
            "sd_xl_refiner_1.0.safetensors",
            "juggernautXL_v9Rdphoto2Lightning.safetensors",
            "sd3.5_medium.safetensors",
            "flux1-dev-fp8.safetensors",
            "flux1-schnell-fp8.safetensors",
        ),
        "loras": (
            "add_detail.safetensors",
            "lcm-lora-sdv1-5.safetensors",
            "more_details.safetensors",
            "sdxl_offset_example_v10.safetensors",
            "flux_realism_lora.safetensors",
        ),
        "diffusion_models": (
            "flux1-dev.safetensors",
            "flux1-schnell.safetensors",
            "flux1-dev-fp8.safetensors",
            "sd3.5_large.safetensors",
        ),
        "text_encoders": (
            "t5xxl_fp16.safetensors",
            "t5xxl_fp8_e4m3fn.safetensors",
            "clip_l.safetensors",
            "clip_g.safetensors",
        ),
        "vae": (
            "ae.safetensors",
            "sdxl_vae.safetensors",
            "vae-ft-mse-840000-ema-pruned.safetensors",
        ),
        "upscale_models": (
            "4x-UltraSharp.pth",
            "RealESRGAN_x4plus.pth",
            "RealESRGAN_x2plus.pth",
        ),
        "controlnet": (
            "control_v11p_sd15_canny.pth",
            "control_v11f1p_sd15_depth.pth",
            "controlnet-canny-sdxl-1.0.safetensors",
        ),
    }
)


@dataclass(frozen=True)
class ModelFiles:
    """File names per models folder (`checkpoints`, `loras`, `vae`, ...)."""

    folders: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_MODEL_FILES))

    def names(self, folder: str) -> list[str]:
        return list(self.folders.get(folder, ()))


def load_model_files(path: Path | None) -> ModelFiles:
    """Defaults, with the folders named in `path` (a JSON object of name lists) replaced."""
    folders = dict(DEFAULT_MODEL_FILES)
    if path is None:
        return ModelFiles(folders)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of folder -> [file names]")
    for folder, names in data.items():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{path}: {folder!r} must be a list of file names")
        folders[folder] = tuple(names)
    return ModelFiles(folders)
