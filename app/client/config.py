"""Where the API is and which key to send: an option given on the command line wins, then the
environment (`COMFY_SWEEP_URL`, `COMFY_SWEEP_KEY`), then a TOML file
(`$COMFY_SWEEP_CONFIG`, else `~/.config/comfy-sweep/config.toml`) such as:

    url = "http://127.0.0.1:8000"
    key = "csk_..."

The key is never part of any message: `ClientConfig`'s repr hides it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "COMFY_SWEEP_URL"
KEY_VARIABLE = "COMFY_SWEEP_KEY"
CONFIG_VARIABLE = "COMFY_SWEEP_CONFIG"


class ConfigError(Exception):
    """The configuration file cannot be read or holds something other than url and key."""


@dataclass(frozen=True)
class ClientConfig:
    url: str
    key: str | None = field(repr=False)
    source: str = field(default="default", compare=False)


def default_config_path(environ: Mapping[str, str]) -> Path:
    explicit = environ.get(CONFIG_VARIABLE)
    if explicit:
        return Path(explicit).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "comfy-sweep" / "config.toml"


def read_config_file(path: Path) -> dict[str, str]:
    """`url` and `key` from the file; an absent file is an empty configuration."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read it as TOML ({error})") from None
    unknown = sorted(set(document) - {"url", "key"})
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; only url and key")
    for name, value in document.items():
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: {name} must be a non-empty string")
    return {str(name): str(value) for name, value in document.items()}


def resolve_config(
    url: str | None, key: str | None, environ: Mapping[str, str] | None = None
) -> ClientConfig:
    """Each of url and key from the first place that has it: option, environment, file."""
    environ = os.environ if environ is None else environ
    path = default_config_path(environ)
    from_file = read_config_file(path)
    chosen_url = url or environ.get(URL_VARIABLE) or from_file.get("url") or DEFAULT_URL
    chosen_key = key or environ.get(KEY_VARIABLE) or from_file.get("key")
    source = str(path) if from_file else "options and environment"
    if not chosen_url.startswith(("http://", "https://")):
        raise ConfigError(f"the API URL must start with http:// or https://, not {chosen_url!r}")
    return ClientConfig(url=chosen_url.rstrip("/"), key=chosen_key, source=source)
