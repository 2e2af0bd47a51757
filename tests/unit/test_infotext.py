"""The A1111 "parameters" text of a run: layout, key names, quoting, and that A1111's own
reader (its `re_param_code` pattern, restated here) gets every value back."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from app.domain.contracts import JsonValue
from app.domain.infotext import infotext, quote

# A1111's reader for the last line: a key, then a JSON-quoted value or text up to a comma.
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')

SD15: dict[str, JsonValue] = {
    "prompt": "a lighthouse at sunset",
    "negative": "blurry, low quality",
    "steps": 20,
    "sampler": "euler",
    "scheduler": "karras",
    "cfg": 7.0,
    "seed": 1,
    "width": 512,
    "height": 768,
    "checkpoint": "v1-5-pruned-emaonly.safetensors",
}


def read_params(line: str) -> dict[str, str]:
    """The last line as A1111 reads it, quoted values unquoted as its `unquote` does."""
    return {
        key: json.loads(value) if value.startswith('"') else value
        for key, value in A1111_PARAM.findall(line)
    }


def test_prompt_then_negative_then_one_line_of_parameters() -> None:
    assert infotext(SD15).split("\n") == [
        "a lighthouse at sunset",
        "Negative prompt: blurry, low quality",
        "Steps: 20, Sampler: euler, Schedule type: karras, CFG scale: 7, Seed: 1, "
        "Size: 512x768, Model: v1-5-pruned-emaonly",
    ]


def test_no_negative_line_without_a_negative() -> None:
    text = infotext({**SD15, "negative": ""})
    assert "Negative prompt" not in text
    assert text.split("\n")[0] == "a lighthouse at sunset"


def test_without_a_prompt_the_parameters_line_comes_first() -> None:
    assert infotext({"seed": 3, "width": 64, "height": 64}) == "Seed: 3, Size: 64x64"


def test_only_present_keys_are_written() -> None:
    assert infotext({"prompt": "x", "steps": 4}) == "x\nSteps: 4"


def test_model_drops_folders_and_the_extension_like_a1111() -> None:
    line = infotext({"checkpoint": "SDXL\\sd_xl_base_1.0.safetensors", "seed": 1})
    assert line == "Seed: 1, Model: sd_xl_base_1.0"


def test_lora_becomes_a_tag_at_the_end_of_the_prompt() -> None:
    text = infotext({**SD15, "lora": "loras/add_detail.safetensors", "lora_strength": 0.6})
    assert text.split("\n")[0] == "a lighthouse at sunset <lora:add_detail:0.6>"
    assert "Lora" not in text.split("\n")[-1]


def test_lora_strength_defaults_to_one() -> None:
    assert infotext({"lora": "detail.safetensors"}).split("\n")[0] == "<lora:detail:1>"


def test_lora_strength_without_a_lora_is_kept_under_its_own_name() -> None:
    assert infotext({"prompt": "p", "lora": "", "lora_strength": 0.5}) == "p\nLora strength: 0.5"


def test_denoise_is_denoising_strength_and_left_out_at_full_strength() -> None:
    assert "Denoising strength: 0.45" in infotext({**SD15, "denoise": 0.45})
    assert "Denois" not in infotext({**SD15, "denoise": 1.0})


def test_flux_guidance_is_forges_distilled_cfg_scale_after_cfg() -> None:
    line = infotext({"cfg": 1, "guidance": 3.5, "seed": 2})
    assert line == "CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 2"


def test_a_lone_width_is_kept_under_its_own_name() -> None:
    assert infotext({"width": 512, "seed": 1}) == "Seed: 1, Width: 512"


def test_other_parameters_follow_in_name_order_humanised() -> None:
    line = infotext({"seed": 1, "upscale_factor": 1.5, "hires_steps": 15, "blur_radius": 3})
    assert line == "Seed: 1, Blur radius: 3, Hires steps: 15, Upscale factor: 1.5"


def test_values_with_commas_colons_or_newlines_are_json_quoted() -> None:
    assert quote("euler") == "euler"
    assert quote("a, b") == '"a, b"'
    assert quote("k: v") == '"k: v"'
    assert quote("two\nlines") == '"two\\nlines"'
    assert quote("ünïcode, kept") == '"ünïcode, kept"'


def test_values_a1111_would_misread_are_quoted_too() -> None:
    assert quote('"quoted"') == '"\\"quoted\\""'
    assert quote(" padded") == '" padded"'


def test_a1111_reads_back_every_mapped_key() -> None:
    params = read_params(infotext({**SD15, "denoise": 0.5, "guidance": 3.5}).split("\n")[-1])
    assert params == {
        "Steps": "20",
        "Sampler": "euler",
        "Schedule type": "karras",
        "CFG scale": "7",
        "Distilled CFG Scale": "3.5",
        "Seed": "1",
        "Size": "512x768",
        "Model": "v1-5-pruned-emaonly",
        "Denoising strength": "0.5",
    }


@given(st.text(min_size=1, max_size=40))
def test_a1111_reads_back_any_extra_text_value(value: str) -> None:
    line = infotext({"seed": 1, "style": value, "steps": 2}).split("\n")[-1]
    assert read_params(line) == {"Steps": "2", "Seed": "1", "Style": value}


@given(
    st.dictionaries(
        st.sampled_from(["steps", "cfg", "seed", "width", "height", "denoise", "x_y", "note"]),
        st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    )
)
def test_the_parameters_line_is_one_line_and_does_not_mutate(
    assignment: dict[str, JsonValue],
) -> None:
    before = dict(assignment)
    text = infotext(assignment)
    assert assignment == before
    assert "\n" not in text  # no prompt, no negative: everything is on one line
