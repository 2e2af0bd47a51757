"""Simulated latents, samplers and VAE: step costs and `progress` events, labelled pictures.

Samplers sleep `--step-ms` per step and report each step as ComfyUI's progress hook does
(`progress_state` then `progress`, values 1..steps); an interrupt is honoured between steps.
The decoded picture depends on the decode node's signature, i.e. on every upstream input.
"""

from __future__ import annotations

from app.standin.nodes.base import (
    Images,
    Latent,
    NodeCall,
    NodeFunction,
    NodeResult,
    Simulated,
    merge_labels,
)
from app.standin.nodes.images import RESAMPLING
from app.standin.nodes.render import render_latent


def empty_latent_image(call: NodeCall) -> NodeResult:
    latent = Latent(call.integer("width"), call.integer("height"), call.integer("batch_size"))
    return NodeResult((latent,))


def _sampled(call: NodeCall, run_steps: int, /, **own: object) -> Latent:
    """Run `run_steps` simulated steps on the latent; the result carries the sampling labels."""
    model = call.simulated("model", "MODEL")
    positive = call.simulated("positive", "CONDITIONING")
    call.simulated("negative", "CONDITIONING")
    latent = call.latent("latent_image")
    call.runtime.sample(run_steps)
    labels = merge_labels(latent.labels, model.labels, positive.labels, **own)
    return Latent(latent.width, latent.height, latent.batch, labels, latent.source)


def _sampler_labels(call: NodeCall, seed_input: str) -> dict[str, object]:
    return {
        "seed": call.integer(seed_input),
        "cfg": f"{call.real('cfg'):g}",
        "sampler": call.text("sampler_name"),
        "scheduler": call.text("scheduler"),
    }


def ksampler(call: NodeCall) -> NodeResult:
    steps, denoise = call.integer("steps"), call.real("denoise", 1.0)
    labels = _sampler_labels(call, "seed")
    if denoise < 1.0:
        labels["denoise"] = f"{denoise:g}"
    return NodeResult((_sampled(call, steps, steps=steps, **labels),))


def ksampler_advanced(call: NodeCall) -> NodeResult:
    steps = call.integer("steps")
    start, end = call.integer("start_at_step"), call.integer("end_at_step")
    run = max(0, min(end, steps) - start)
    labels = _sampler_labels(call, "noise_seed")
    return NodeResult((_sampled(call, run, steps=f"{start}-{min(end, steps)}/{steps}", **labels),))


def random_noise(call: NodeCall) -> NodeResult:
    return NodeResult((Simulated("NOISE", (("seed", str(call.integer("noise_seed"))),)),))


def ksampler_select(call: NodeCall) -> NodeResult:
    return NodeResult((Simulated("SAMPLER", (("sampler", call.text("sampler_name")),)),))


def basic_scheduler(call: NodeCall) -> NodeResult:
    call.simulated("model", "MODEL")
    steps = call.integer("steps") if call.real("denoise") > 0 else 0
    labels = (("scheduler", call.text("scheduler")), ("steps", str(steps)))
    return NodeResult((Simulated("SIGMAS", labels, steps),))


def basic_guider(call: NodeCall) -> NodeResult:
    model = call.simulated("model", "MODEL")
    conditioning = call.simulated("conditioning", "CONDITIONING")
    return NodeResult((Simulated("GUIDER", merge_labels(model.labels, conditioning.labels)),))


def cfg_guider(call: NodeCall) -> NodeResult:
    model = call.simulated("model", "MODEL")
    positive = call.simulated("positive", "CONDITIONING")
    call.simulated("negative", "CONDITIONING")
    labels = merge_labels(model.labels, positive.labels, cfg=f"{call.real('cfg'):g}")
    return NodeResult((Simulated("GUIDER", labels),))


def sampler_custom_advanced(call: NodeCall) -> NodeResult:
    noise = call.simulated("noise", "NOISE")
    guider = call.simulated("guider", "GUIDER")
    sampler = call.simulated("sampler", "SAMPLER")
    sigmas = call.simulated("sigmas", "SIGMAS")
    latent = call.latent("latent_image")
    call.runtime.sample(sigmas.steps)
    labels = merge_labels(latent.labels, noise.labels, guider.labels, sampler.labels, sigmas.labels)
    result = Latent(latent.width, latent.height, latent.batch, labels, latent.source)
    return NodeResult((result, result))


def _resized(latent: Latent, width: int, height: int) -> Latent:
    if width == 0 and height == 0:
        return latent
    if width == 0:
        width = max(8, round(latent.width * height / latent.height))
    if height == 0:
        height = max(8, round(latent.height * width / latent.width))
    return Latent(width, height, latent.batch, latent.labels, latent.source)


def latent_upscale(call: NodeCall) -> NodeResult:
    latent = call.latent("samples")
    return NodeResult((_resized(latent, call.integer("width"), call.integer("height")),))


def latent_upscale_by(call: NodeCall) -> NodeResult:
    latent, scale = call.latent("samples"), call.real("scale_by")
    width, height = max(8, round(latent.width * scale)), max(8, round(latent.height * scale))
    return NodeResult((_resized(latent, width, height),))


def vae_decode(call: NodeCall) -> NodeResult:
    call.simulated("vae", "VAE")
    return NodeResult((Images(render_latent(call.signature, call.latent("samples"))),))


def vae_encode(call: NodeCall) -> NodeResult:
    call.simulated("vae", "VAE")
    pixels = call.images("pixels")
    width, height = pixels.size
    return NodeResult((Latent(width, height, len(pixels.frames), (), pixels),))


def image_upscale_with_model(call: NodeCall) -> NodeResult:
    model = call.simulated("upscale_model", "UPSCALE_MODEL")
    scale = int(dict(model.labels).get("scale", "4"))
    images = call.images("image")
    size = (images.size[0] * scale, images.size[1] * scale)
    method = RESAMPLING["lanczos"]
    frames = tuple(frame.resize(size, method) for frame in images.frames)
    return NodeResult((Images(frames),))


SAMPLING_NODES: dict[str, NodeFunction] = {
    "EmptyLatentImage": empty_latent_image,
    "EmptySD3LatentImage": empty_latent_image,
    "KSampler": ksampler,
    "KSamplerAdvanced": ksampler_advanced,
    "RandomNoise": random_noise,
    "KSamplerSelect": ksampler_select,
    "BasicScheduler": basic_scheduler,
    "BasicGuider": basic_guider,
    "CFGGuider": cfg_guider,
    "SamplerCustomAdvanced": sampler_custom_advanced,
    "LatentUpscale": latent_upscale,
    "LatentUpscaleBy": latent_upscale_by,
    "VAEDecode": vae_decode,
    "VAEEncode": vae_encode,
    "ImageUpscaleWithModel": image_upscale_with_model,
}
