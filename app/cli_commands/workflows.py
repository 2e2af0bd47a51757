"""`workflows list` (and bare `workflows`): the workflows the key's team can sweep, from the
API; `workflows draft`, which works offline, stays in `app.cli`."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from app.cli_commands.common import JsonOption, KeyOption, UrlOption, connected, print_json

console = Console()


def list_workflows(
    as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Workflows your team can sweep, with their latest version (GET /v1/workflows)."""
    with connected(url, key) as api:
        workflows = api.workflows()
    if as_json:
        print_json(workflows)
        return
    table = Table("name", "version", "scope", "title")
    for workflow in workflows:
        table.add_row(
            workflow["name"], str(workflow["version"]), workflow["scope"], workflow["title"]
        )
    console.print(table)


def workflows_group(
    context: typer.Context,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Registered workflows: `workflows` or `workflows list` lists them (from the API);
    `workflows draft` drafts a contract for a new one (offline)."""
    if context.invoked_subcommand is None:
        list_workflows(as_json, url, key)


def register(workflows_cli: typer.Typer) -> None:
    workflows_cli.callback(invoke_without_command=True)(workflows_group)
    workflows_cli.command("list")(list_workflows)
