"""`comfy-sweep teams set|list`: an operator sets a team's weight and caps and sees them."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from typer.testing import CliRunner

from app.cli import cli
from app.db.migrate import alembic_config


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'teams.db'}"
    config = alembic_config(url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")  # so rich does not wrap the table's cells
    return url


def test_set_then_list_shows_the_weight_and_caps(sqlite_url: str) -> None:
    runner = CliRunner()
    options = ["--weight", "2", "--max-running", "8", "--max-queued", "5000"]
    result = runner.invoke(cli, ["teams", "set", "render-farm", *options, "--max-priority", "80"])
    assert result.exit_code == 0, result.output
    assert "weight 2, max_running 8, max_queued 5000" in result.output
    listing = runner.invoke(cli, ["teams", "list"])
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.output.splitlines() if "render-farm" in line)
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "render-farm",
        "2",
        "8",
        "5000",
        "-",
        "80",
        "0",
        "0",
    ]


def test_none_lifts_a_cap_and_options_left_out_stay(sqlite_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["teams", "set", "a", "--max-running", "3"]).exit_code == 0
    result = runner.invoke(cli, ["teams", "set", "a", "--max-running", "none", "--weight", "3"])
    assert result.exit_code == 0, result.output
    assert "weight 3, max_running -" in result.output


@pytest.mark.parametrize(
    ("option", "value"), [("--max-running", "-1"), ("--max-priority", "101"), ("--weight", "0")]
)
def test_bad_values_are_refused_naming_the_option(sqlite_url: str, option: str, value: str) -> None:
    result = CliRunner().invoke(cli, ["teams", "set", "a", option, value])
    assert result.exit_code != 0
    assert option in result.output
