"""`comfy-sweep keys create --role`: admin keys are minted on request, members by default."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from typer.testing import CliRunner

from app.cli import cli
from app.db.migrate import alembic_config


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    config = alembic_config(url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def roles(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(
                connection.scalars(sa.text("SELECT role FROM api_keys ORDER BY created_at"))
            )
    finally:
        engine.dispose()


def test_keys_are_members_unless_created_as_admin(sqlite_url: str) -> None:
    runner = CliRunner()
    member = runner.invoke(cli, ["keys", "create", "--team", "a", "-q"])
    admin = runner.invoke(cli, ["keys", "create", "--team", "ops", "--role", "admin", "-q"])
    assert (member.exit_code, admin.exit_code) == (0, 0), member.output + admin.output
    assert roles(sqlite_url) == ["member", "admin"]


def test_an_unknown_role_is_refused_naming_the_option(sqlite_url: str) -> None:
    result = CliRunner().invoke(cli, ["keys", "create", "--team", "a", "--role", "boss"])
    assert result.exit_code != 0
    assert "--role" in result.output
    assert roles(sqlite_url) == []
