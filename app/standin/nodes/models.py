"""Simulated loaders and conditioning: no weights, only names, labels and load costs.

A loader that executes (is not served from the cache) sleeps for a fraction of
`--checkpoint-load-ms` and is counted in `/system_stats` -> `standin`, which is how benchmarks
see needless reloads. Like ComfyUI, an unknown file fails at execution, not at validation,
for new-style COMBO inputs (UpscaleModelLoader).
"""

from __future__ import annotations

from app.standin.nodes.base import (
    NodeCall,
    NodeFunction,
    NodeResult,
    Simulated,
    merge_labels,
)

# Share of --checkpoint-load-ms a load costs, by models folder.
LOAD_COST = {
    "checkpoints": 1.0,
    "diffusion_models": 1.0,
    "text_encoders": 0.25,
    "loras": 0.1,
    "vae": 0.05,
    "upscale_models": 0.05,
    "controlnet": 0.1,
}


def _load(call: NodeCall, folder: str, input_name: str) -> str:
    name = call.text(input_name)
    call.runtime.load_model(folder, name, LOAD_COST[folder])
    return name


def checkpoint_loader_simple(call: NodeCall) -> NodeResult:
    labels = (("model", _load(call, "checkpoints", "ckpt_name")),)
    return NodeResult(
        (Simulated("MODEL", labels), Simulated("CLIP", labels), Simulated("VAE", labels))
    )


def unet_loader(call: NodeCall) -> NodeResult:
    name = _load(call, "diffusion_models", "unet_name")
    return NodeResult((Simulated("MODEL", (("model", name),)),))


def clip_loader(call: NodeCall) -> NodeResult:
    name = _load(call, "text_encoders", "clip_name")
    return NodeResult((Simulated("CLIP", (("clip", name),)),))


def dual_clip_loader(call: NodeCall) -> NodeResult:
    first = _load(call, "text_encoders", "clip_name1")
    second = _load(call, "text_encoders", "clip_name2")
    return NodeResult((Simulated("CLIP", (("clip", f"{first}+{second}"),)),))


def vae_loader(call: NodeCall) -> NodeResult:
    name = call.text("vae_name")
    if name != "pixel_space":  # a built-in, nothing to read
        name = _load(call, "vae", "vae_name")
    return NodeResult((Simulated("VAE", (("vae", name),)),))


def lora_loader(call: NodeCall) -> NodeResult:
    name = _load(call, "loras", "lora_name")
    model, clip = call.simulated("model", "MODEL"), call.simulated("clip", "CLIP")
    lora = f"{name}:{call.real('strength_model'):g}"
    return NodeResult(
        (
            Simulated("MODEL", merge_labels(model.labels, lora=lora)),
            Simulated("CLIP", merge_labels(clip.labels, lora=lora)),
        )
    )


def upscale_model_loader(call: NodeCall) -> NodeResult:
    name = _load(call, "upscale_models", "model_name")
    scale = 2 if "x2" in name.lower() or "2x" in name.lower() else 4
    return NodeResult((Simulated("UPSCALE_MODEL", (("upscaler", name), ("scale", str(scale)))),))


def controlnet_loader(call: NodeCall) -> NodeResult:
    name = _load(call, "controlnet", "control_net_name")
    return NodeResult((Simulated("CONTROL_NET", (("controlnet", name),)),))


def clip_set_last_layer(call: NodeCall) -> NodeResult:
    clip = call.simulated("clip", "CLIP")
    labels = merge_labels(clip.labels, clip_skip=call.integer("stop_at_clip_layer"))
    return NodeResult((Simulated("CLIP", labels),))


def clip_text_encode(call: NodeCall) -> NodeResult:
    call.simulated("clip", "CLIP")
    return NodeResult((Simulated("CONDITIONING", (("prompt", call.text("text")),)),))


def flux_guidance(call: NodeCall) -> NodeResult:
    conditioning = call.simulated("conditioning", "CONDITIONING")
    labels = merge_labels(conditioning.labels, guidance=call.real("guidance"))
    return NodeResult((Simulated("CONDITIONING", labels),))


def model_sampling_shift(call: NodeCall) -> NodeResult:
    model = call.simulated("model", "MODEL")
    shift = call.inputs.get("shift", call.inputs.get("max_shift"))
    return NodeResult((Simulated("MODEL", merge_labels(model.labels, shift=shift)),))


def controlnet_apply_advanced(call: NodeCall) -> NodeResult:
    controlnet = call.simulated("control_net", "CONTROL_NET")
    call.images("image")
    strength = f"{dict(controlnet.labels)['controlnet']}:{call.real('strength'):g}"
    return NodeResult(
        tuple(
            Simulated("CONDITIONING", merge_labels(cond.labels, controlnet=strength))
            for cond in (
                call.simulated("positive", "CONDITIONING"),
                call.simulated("negative", "CONDITIONING"),
            )
        )
    )


MODEL_NODES: dict[str, NodeFunction] = {
    "CheckpointLoaderSimple": checkpoint_loader_simple,
    "UNETLoader": unet_loader,
    "CLIPLoader": clip_loader,
    "DualCLIPLoader": dual_clip_loader,
    "VAELoader": vae_loader,
    "LoraLoader": lora_loader,
    "UpscaleModelLoader": upscale_model_loader,
    "ControlNetLoader": controlnet_loader,
    "CLIPSetLastLayer": clip_set_last_layer,
    "CLIPTextEncode": clip_text_encode,
    "FluxGuidance": flux_guidance,
    "ModelSamplingFlux": model_sampling_shift,
    "ModelSamplingSD3": model_sampling_shift,
    "ControlNetApplyAdvanced": controlnet_apply_advanced,
}
