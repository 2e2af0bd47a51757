"""The operator's command line: API keys and the database schema."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from app.db.engine import make_engine, make_session_factory
from app.db.models import KEY_ROLES
from app.services import keys as key_service
from app.settings import Settings
from app.stores import teams

cli = typer.Typer(help="Operate a comfy-sweep deployment.", no_args_is_help=True)
keys_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
console = Console()


def _sessions() -> Session:
    return make_session_factory(make_engine(Settings().database_url))()


@keys_cli.command("create")
def create_key(
    team: str = typer.Option(..., help="The team the key acts for; created if new."),
    label: str = typer.Option("", help="A note to tell keys apart, e.g. 'render farm'."),
    role: str = typer.Option(
        "member", help="member, or admin (may also register global workflows)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the key."),
) -> None:
    """Mint a key. It is printed once and stored only as a hash."""
    if role not in KEY_ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(KEY_ROLES)}", param_hint="--role")
    with _sessions() as session:
        minted = key_service.create_key(session, team, label, role)
    if quiet:
        typer.echo(minted.plaintext)
        return
    console.print(f"team {minted.team_name}, key id {minted.prefix}… (shown once, keep it safe):")
    typer.echo(minted.plaintext)


@keys_cli.command("list")
def list_keys(team: str | None = typer.Option(None, help="Only this team's keys.")) -> None:
    """List keys by their visible prefix; the keys themselves are not stored."""
    table = Table("prefix", "team", "role", "label", "created", "last used", "revoked")
    with _sessions() as session:
        for key in teams.list_keys(session, team):
            table.add_row(
                key.prefix,
                key.team.name,
                key.role,
                key.label,
                f"{key.created_at:%Y-%m-%d %H:%M}",
                "" if key.last_used_at is None else f"{key.last_used_at:%Y-%m-%d %H:%M}",
                "" if key.revoked_at is None else f"{key.revoked_at:%Y-%m-%d %H:%M}",
            )
    console.print(table)


@keys_cli.command("revoke")
def revoke_key(
    prefix: str = typer.Argument(..., help="The key's prefix, as `keys list` shows."),
) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    with _sessions() as session:
        revoked = key_service.revoke_key(session, prefix)
    if revoked == 0:
        console.print(f"[red]no active key with prefix {prefix}[/red]")
        raise typer.Exit(code=1)
    console.print(f"revoked {revoked} key(s)")


def main() -> None:
    cli()
