"""Where the CLI finds the API and its key: option, then environment, then the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.client.config import ConfigError, resolve_config


def config_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text, "utf-8")
    return {"COMFY_SWEEP_CONFIG": str(path)}


def test_an_option_wins_over_the_environment_and_the_file(tmp_path: Path) -> None:
    environ = {
        **config_file(tmp_path, 'url = "http://file:1"\nkey = "csk_file"\n'),
        "COMFY_SWEEP_URL": "http://env:2",
        "COMFY_SWEEP_KEY": "csk_env",
    }
    chosen = resolve_config("http://option:3/", "csk_option", environ)
    assert (chosen.url, chosen.key) == ("http://option:3", "csk_option")


def test_the_environment_wins_over_the_file_setting_by_setting(tmp_path: Path) -> None:
    environ = {
        **config_file(tmp_path, 'url = "http://file:1"\nkey = "csk_file"\n'),
        "COMFY_SWEEP_KEY": "csk_env",
    }
    chosen = resolve_config(None, None, environ)
    assert (chosen.url, chosen.key) == ("http://file:1", "csk_env")


def test_without_any_setting_the_local_api_is_used_without_a_key(tmp_path: Path) -> None:
    chosen = resolve_config(None, None, {"COMFY_SWEEP_CONFIG": str(tmp_path / "absent.toml")})
    assert (chosen.url, chosen.key) == ("http://127.0.0.1:8000", None)


def test_the_default_file_is_under_xdg_config_home(tmp_path: Path) -> None:
    (tmp_path / "comfy-sweep").mkdir()
    (tmp_path / "comfy-sweep" / "config.toml").write_text('key = "csk_xdg"\n', "utf-8")
    assert resolve_config(None, None, {"XDG_CONFIG_HOME": str(tmp_path)}).key == "csk_xdg"


def test_the_key_never_shows_in_the_configs_repr(tmp_path: Path) -> None:
    chosen = resolve_config(None, "csk_secret", {"COMFY_SWEEP_CONFIG": str(tmp_path / "x")})
    assert "csk_secret" not in repr(chosen)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('url = "http://a"\ntoken = "x"\n', "unknown setting(s) token"),
        ("url = 3\n", "url must be a non-empty string"),
        ("url = \n", "cannot read it as TOML"),
    ],
)
def test_a_bad_config_file_is_named_with_its_problem(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=r"config\.toml") as refused:
        resolve_config(None, None, config_file(tmp_path, text))
    assert complaint in str(refused.value)


def test_a_url_that_is_not_http_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="http"):
        resolve_config("file:///etc/passwd", None, {"COMFY_SWEEP_CONFIG": str(tmp_path / "x")})
