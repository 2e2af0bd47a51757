"""Node specs: the real `/object_info` entries (from `object_info.json`) with model lists filled.

The entries were captured from ComfyUI 0.3.64 and are served as they are; only the loader
COMBO lists, empty on a server without models, get the stand-in's fake file names.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from importlib import resources
from typing import cast

from app.standin.graph import JsonObject, JsonValue
from app.standin.model_files import ModelFiles

# (class_type, input name) -> ComfyUI models folder whose files fill that COMBO.
MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("VAELoader", "vae_name"): "vae",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("ControlNetLoader", "control_net_name"): "controlnet",
}


@dataclass(frozen=True)
class InputSpec:
    name: str
    category: str  # "required" or "optional"
    type: str | list[JsonValue]  # "INT", "IMAGE", "COMBO", or an old-style option list
    config: JsonObject  # default, min, max, options, tooltip...

    @property
    def wire_config(self) -> list[JsonValue]:
        """The `input_config` ComfyUI puts into validation errors: `[type, config]`."""
        return [self.type, self.config]


@dataclass(frozen=True)
class NodeSpec:
    name: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    output_node: bool
    info: JsonObject  # the `/object_info/{class}` entry

    @property
    def input_order(self) -> list[str]:
        return [spec.name for spec in self.inputs]


def _fill_models(info: dict[str, JsonObject], model_files: ModelFiles) -> None:
    for (class_type, input_name), folder in MODEL_INPUTS.items():
        node = info.get(class_type)
        if node is None:
            continue
        inputs = cast(dict[str, dict[str, list[JsonValue]]], node["input"])
        category = "required" if input_name in inputs["required"] else "optional"
        entry = inputs[category][input_name]
        names: list[JsonValue] = list(model_files.names(folder))
        if isinstance(entry[0], list):  # old-style COMBO: the type is the option list
            entry[0] = names + [n for n in entry[0] if n not in names]
        else:  # new-style COMBO: {"options": [...]}
            cast(JsonObject, entry[1])["options"] = names


def _input_specs(node: JsonObject) -> tuple[InputSpec, ...]:
    inputs = cast(dict[str, dict[str, list[JsonValue]]], node["input"])
    specs: list[InputSpec] = []
    for category in ("required", "optional"):
        for name, entry in inputs.get(category, {}).items():
            raw_type = entry[0]
            input_type = raw_type if isinstance(raw_type, list) else str(raw_type)
            config = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            specs.append(InputSpec(name, category, input_type, config))
    return tuple(specs)


def load_specs(model_files: ModelFiles) -> dict[str, NodeSpec]:
    """Every node the stand-in implements, by class_type, in object_info order."""
    text = resources.files("app.standin").joinpath("object_info.json").read_text("utf-8")
    info = cast(dict[str, JsonObject], json.loads(text))
    info = copy.deepcopy(info)
    _fill_models(info, model_files)
    return {
        name: NodeSpec(
            name=name,
            inputs=_input_specs(node),
            outputs=tuple(str(t) for t in cast(list[JsonValue], node["output"])),
            output_node=node.get("output_node") is True,
            info=node,
        )
        for name, node in info.items()
    }
