"""`grid` and `export`: a sweep's comparison grid as PNG and the whole sweep as a zip, saved
where the caller says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.cli_commands.common import JsonOption, KeyOption, SweepId, UrlOption, connected, print_json

console = Console()


def grid(
    sweep_id: SweepId,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to save the PNG.")
    ] = None,
    page: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="1, 2, ... for one page; 0 the index page. Default: the "
            "index page when there are several pages, else page 1.",
        ),
    ] = None,
    list_pages: Annotated[
        bool, typer.Option("--list", help="List the pages instead of downloading one.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Download a grid page of an ended sweep, or list its pages."""
    if list_pages:
        with connected(url, key) as api:
            _print_pages(api.grids(sweep_id), as_json)
        return
    if output is None:
        raise typer.BadParameter("give -o FILE.png, or --list", param_hint="--output")
    with connected(url, key) as api:
        params = {} if page is None else {"page": page}
        size = api.download(f"/v1/sweeps/{sweep_id}/grid", output, params)
    if as_json:
        print_json({"path": str(output), "bytes": size, "page": page})
    else:
        typer.echo(f"saved {output} ({size} bytes)")


def _print_pages(grids: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(grids)
        return
    table = Table("page", "kind", "title", "size", "cells")
    pages = grids.get("pages")
    for entry in pages if isinstance(pages, list) else []:
        size = f"{entry['width']}×{entry['height']}"
        table.add_row(str(entry["page"]), entry["kind"], entry["title"], size, str(entry["cells"]))
    console.print(table)


def export(
    sweep_id: SweepId,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to save the zip.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Download the sweep as a zip: its outputs, metadata.csv and sweep.json."""
    with connected(url, key) as api:
        size = api.download(f"/v1/sweeps/{sweep_id}/export", output)
    if as_json:
        print_json({"path": str(output), "bytes": size})
    else:
        typer.echo(f"saved {output} ({size} bytes)")


def register(cli: typer.Typer) -> None:
    cli.command("grid")(grid)
    cli.command("export")(export)
