"""Brings a database to the newest schema with the project's Alembic migrations."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from app.settings import PROJECT_ROOT


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # Alembic's config is an INI file: a literal % in a URL (encoded password) must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    config = alembic_config(database_url)
    # The caller's logging setup stays (app.logs.setup), not alembic.ini's.
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
