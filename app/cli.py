"""`comfy-sweep`, the root of the command line. The operator's commands here (API keys, teams'
weights and caps, workflow contracts) open the database directly; the client commands
(`submit`, `watch`, `status`, ...; see `app.cli_commands`) talk to the HTTP API with a key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from app.cli_commands import files as file_commands
from app.cli_commands import sweeps as sweep_commands
from app.cli_commands import workflows as workflow_commands
from app.cli_commands.common import CommandLine
from app.comfy.node_specs import NodeSpecs
from app.db.engine import make_engine, make_session_factory
from app.db.models import KEY_ROLES, Team
from app.domain.contract_draft import draft_from_document
from app.domain.fair_share import MAX_PRIORITY
from app.domain.problems import SweepRejected
from app.services import keys as key_service
from app.settings import Settings, parse_instances
from app.stores import teams

cli = typer.Typer(
    cls=CommandLine,
    help="Run sweeps on a comfy-sweep deployment, and operate it.",
    no_args_is_help=True,
)
sweep_commands.register(cli)
file_commands.register(cli)
keys_cli = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
workflows_cli = typer.Typer(help="List registered workflows; draft contracts for new ones.")
workflow_commands.register(workflows_cli)
cli.add_typer(workflows_cli, name="workflows")
teams_cli = typer.Typer(help="Fair-share weights and caps of teams.", no_args_is_help=True)
cli.add_typer(teams_cli, name="teams")
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


def _cap(value: str | None, option: str) -> int | None:
    # "none" lifts a cap; the option left out keeps it as it is.
    if value is None or value.lower() == "none":
        return None
    try:
        number = int(value)
    except ValueError:
        raise typer.BadParameter("must be a whole number or 'none'", param_hint=option) from None
    if number < 0:
        raise typer.BadParameter("must not be negative", param_hint=option)
    return number


_CAP_HELP = "A whole number, or 'none' for no cap; left out: unchanged."


@teams_cli.command("set")
def set_team(
    name: str = typer.Argument(..., help="The team; created if new."),
    weight: int | None = typer.Option(
        None, min=1, help="Share of running slots against teams at the same priority."
    ),
    max_running: str | None = typer.Option(None, help=f"Most runs running at once. {_CAP_HELP}"),
    max_queued: str | None = typer.Option(None, help=f"Most runs queued at once. {_CAP_HELP}"),
    max_runs_per_sweep: str | None = typer.Option(None, help=f"Most runs a sweep. {_CAP_HELP}"),
    max_priority: str | None = typer.Option(
        None, help=f"Highest priority a sweep may ask for (0-100). {_CAP_HELP}"
    ),
) -> None:
    """Set a team's weight and caps; options left out stay as they are."""
    given = {
        "max_running": (max_running, "--max-running"),
        "max_queued": (max_queued, "--max-queued"),
        "max_runs_per_sweep": (max_runs_per_sweep, "--max-runs-per-sweep"),
        "max_priority": (max_priority, "--max-priority"),
    }
    values = {field: _cap(raw, option) for field, (raw, option) in given.items() if raw}
    priority_cap = values.get("max_priority")
    if priority_cap is not None and priority_cap > MAX_PRIORITY:
        raise typer.BadParameter(f"must be 0-{MAX_PRIORITY}", param_hint="--max-priority")
    if weight is not None:
        values["weight"] = weight
    with _sessions() as session:
        team = teams.set_limits(session, name, values)
        session.commit()
        console.print(f"team {team.name}: " + _limits_text(team))


@teams_cli.command("list")
def list_teams() -> None:
    """Every team with its weight, caps and the runs it has running and queued now."""
    table = Table("team", "weight", "max running", "max queued", "max runs/sweep", "max prio")
    table.add_column("running")
    table.add_column("queued")
    with _sessions() as session:
        running = teams.running_runs(session)
        for team in teams.list_teams(session):
            table.add_row(
                team.name,
                str(team.weight),
                *(_shown(cap) for cap in _caps(team)),
                str(running.get(team.id, 0)),
                str(teams.queued_runs(session, team.id)),
            )
    console.print(table)


def _caps(team: Team) -> tuple[int | None, ...]:
    return (team.max_running, team.max_queued, team.max_runs_per_sweep, team.max_priority)


def _shown(cap: int | None) -> str:
    return "-" if cap is None else str(cap)


def _limits_text(team: Team) -> str:
    names = ("max_running", "max_queued", "max_runs_per_sweep", "max_priority")
    caps = ", ".join(f"{n} {_shown(c)}" for n, c in zip(names, _caps(team), strict=True))
    return f"weight {team.weight}, {caps}"


@workflows_cli.command("draft")
def draft_workflow(
    graph: Annotated[Path, typer.Argument(help="A workflow in API or UI format (JSON).")],
    object_info: Annotated[
        Path | None,
        typer.Option(help="Node specs saved from /object_info, for use without a ComfyUI."),
    ] = None,
    comfy_url: Annotated[
        str | None,
        typer.Option(help="A ComfyUI to ask for /object_info; default: COMFY_INSTANCES."),
    ] = None,
    api_graph: Annotated[
        Path | None, typer.Option(help="Also write the workflow in API format here.")
    ] = None,
) -> None:
    """Print a parameters contract drafted from the workflow and the node specs."""
    document = _read_json(graph)
    specs = _read_json(object_info) if object_info else _fetch_specs(comfy_url)
    try:
        contract, converted = draft_from_document(document, specs, title=graph.stem)
    except SweepRejected as rejected:
        for problem in rejected.problems:
            where = "/".join(map(str, problem.loc[1:])) or "(root)"
            typer.echo(f"{graph} at {where}: {problem.msg}", err=True)
        raise typer.Exit(code=1) from None
    if api_graph is not None:
        api_graph.write_text(json.dumps(converted, indent=2) + "\n", encoding="utf-8")
    typer.echo(json.dumps(contract, indent=2))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        typer.echo(f"{path}: cannot read JSON ({error})", err=True)
        raise typer.Exit(code=2) from None
    if not isinstance(document, dict):
        typer.echo(f"{path}: must hold a JSON object", err=True)
        raise typer.Exit(code=2)
    return document


def _fetch_specs(comfy_url: str | None) -> dict[str, Any]:
    instances = parse_instances(comfy_url) if comfy_url else Settings().instances
    specs = NodeSpecs(instances, ttl_s=0).current()
    if specs is None:
        urls = ", ".join(i.url for i in instances) or "none configured"
        typer.echo(f"no ComfyUI answered /object_info ({urls}); try --object-info", err=True)
        raise typer.Exit(code=2)
    return dict(specs)


def main() -> None:
    cli()
