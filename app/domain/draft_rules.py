"""The curated tables behind a drafted contract: which inputs are left out, which names read
better, and the soft ranges worth sweeping. Kept apart from `contract_draft` so the rules are
read (and extended) as data.
"""

from __future__ import annotations

from collections.abc import Mapping

# Inputs never drafted, whatever the node: where a file is saved says nothing about the image,
# and a sweep makes one image per run, so a batch size only multiplies the cost.
LEFT_OUT_NAMES = frozenset({"filename_prefix", "batch_size"})

# Inputs left out because they must match the model or the graph's wiring rather than express
# a look: a text encoder or VAE that does not fit the checkpoint fails, a weight dtype or a
# resampling filter is a technical setting, and the add-noise / leftover-noise switches of a
# split sampler are set by how its stages are chained. Keyed by input name (every node class).
PLUMBING_NAMES = frozenset(
    {
        "vae_name",
        "clip_name",
        "clip_name1",
        "clip_name2",
        "clip_name3",
        "clip_name4",
        "weight_dtype",
        "upscale_method",
        "add_noise",
        "return_with_leftover_noise",
        "device",
    }
)
# The same, for input names too generic to leave out everywhere.
PLUMBING_INPUTS = frozenset(
    {
        ("CLIPLoader", "type"),
        ("DualCLIPLoader", "type"),
        ("TripleCLIPLoader", "type"),
    }
)

# Inputs that mean the same in every sampler-like node: when several nodes hold the same value
# (both passes of a hires fix, base and refiner) one parameter drives them all.
SHARED_NAMES = frozenset({"steps", "cfg", "sampler_name", "scheduler"})

# Parameter names that read better than the input's own.
FRIENDLY_NAMES: Mapping[str, str] = {
    "sampler_name": "sampler",
    "ckpt_name": "checkpoint",
    "unet_name": "model",
    "lora_name": "lora",
    "scale_by": "upscale_factor",
}

# The range a sweep usually explores, inside ComfyUI's far wider hard bounds (cfg may be 100,
# but nothing past 12 is worth a grid cell). Shown as `x-sweep-range`; advice, not a rule.
SOFT_RANGES: Mapping[tuple[str, str], tuple[float, float]] = {
    ("KSampler", "cfg"): (1.0, 12.0),
    ("KSampler", "steps"): (10, 60),
    ("KSampler", "denoise"): (0.3, 1.0),
    ("KSamplerAdvanced", "cfg"): (1.0, 12.0),
    ("KSamplerAdvanced", "steps"): (10, 60),
    ("CFGGuider", "cfg"): (1.0, 12.0),
    ("BasicScheduler", "steps"): (10, 60),
    ("BasicScheduler", "denoise"): (0.3, 1.0),
    ("LoraLoader", "strength_model"): (-1.0, 2.0),
    ("LoraLoader", "strength_clip"): (-1.0, 2.0),
    ("LoraLoaderModelOnly", "strength_model"): (-1.0, 2.0),
    ("FluxGuidance", "guidance"): (1.0, 6.0),
    ("ModelSamplingFlux", "max_shift"): (0.5, 2.0),
    ("ModelSamplingFlux", "base_shift"): (0.0, 1.0),
    ("ModelSamplingSD3", "shift"): (1.0, 6.0),
    ("LatentUpscaleBy", "scale_by"): (1.0, 2.0),
    ("ControlNetApplyAdvanced", "strength"): (0.0, 1.5),
    ("ControlNetApplyAdvanced", "start_percent"): (0.0, 0.5),
    ("ControlNetApplyAdvanced", "end_percent"): (0.5, 1.0),
    ("ImageAddNoise", "strength"): (0.0, 1.0),
    ("ImageBlur", "blur_radius"): (1, 10),
    ("ImageBlur", "sigma"): (0.1, 3.0),
    ("ImageSharpen", "alpha"): (0.0, 2.0),
    ("CLIPSetLastLayer", "stop_at_clip_layer"): (-4, -1),
}
