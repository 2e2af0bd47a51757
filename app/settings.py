"""Every setting of the service, read once from the environment and validated at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'comfy-sweep.db'}",
        description="SQLAlchemy URL of the state store; Postgres in production.",
    )
    redis_url: str | None = Field(
        default=None, description="Celery broker; unset means embedded SQLite broker."
    )
    comfy_instances: str = Field(
        default="",
        description="Comma-separated ComfyUI base URLs, each optionally `url#tag1+tag2`.",
    )
    data_dir: Path = Field(default=PROJECT_ROOT / "var" / "data")
    workflows_dir: Path = Field(default=PROJECT_ROOT / "workflows")
    params_dir: Path = Field(default=PROJECT_ROOT / "params")
    auth_enabled: bool = Field(default=True, description="Set AUTH_ENABLED=false only locally.")
    max_runs_per_sweep: int = Field(default=10_000, ge=1)
    max_request_bytes: int = Field(default=1_000_000, ge=1024)
    max_page_size: int = Field(default=500, ge=1)
