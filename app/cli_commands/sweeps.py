"""`submit`, `watch`, `status`, `runs`, `cancel`, `pause` and `resume`: a sweep's life from
the command line. `submit --wait` and `watch` exit with the sweep's outcome (see
`app.cli_commands.common`), so a farm job can depend on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

import typer
import yaml
from rich.console import Console
from rich.table import Table

from app.cli_commands.common import (
    JsonOption,
    KeyOption,
    SweepId,
    UrlOption,
    connected,
    counts_text,
    exit_code_for,
    fail,
    print_json,
)
from app.cli_commands.progress import progress_display
from app.client.api import SweepApi
from app.client.follow import follow_sweep

console = Console()
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def submit(
    sweep_file: Annotated[
        Path, typer.Argument(help="The sweep's body: a .json, .yaml or .yml file.")
    ],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow it and exit with its outcome (0, 1 or 2).")
    ] = False,
    priority: Annotated[
        int | None, typer.Option(min=0, max=100, help="Overrides the file's priority.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="Send this Idempotency-Key (default: a fresh one): a job that reruns with "
            "the same key within 24 h gets the same sweep instead of a second one."
        ),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Submit a sweep (POST /v1/sweeps)."""
    body = _read_body(sweep_file)
    if priority is not None:
        body["priority"] = priority
    with connected(url, key) as api:
        created = api.submit(body, idempotency_key or uuid4().hex)
        if not wait:
            if as_json:
                print_json(created)
            else:
                console.print(
                    f"sweep {created['id']} {created['status']}: {created['total']} runs "
                    f"of {created['workflow']}",
                    markup=False,
                    highlight=False,
                )
            return
        code = _follow(api, str(created["id"]), as_json)
    raise typer.Exit(code)


def watch(
    sweep_id: SweepId, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Follow a sweep until it ends; exit 0 succeeded, 1 failed or partial, 2 cancelled."""
    with connected(url, key) as api:
        code = _follow(api, sweep_id, as_json)
    raise typer.Exit(code)


def _follow(api: SweepApi, sweep_id: str, as_json: bool) -> int:
    with progress_display() as show:
        follow_sweep(api, sweep_id, show)
    sweep = api.sweep(sweep_id)
    if as_json:
        print_json(sweep)
    else:
        _print_outcome(sweep)
    return exit_code_for(str(sweep["status"]))


def _print_outcome(sweep: dict[str, Any]) -> None:
    elapsed = sweep.get("elapsed_s")
    took = "" if elapsed is None else f" in {elapsed:.1f} s"
    line = f"sweep {sweep['id']} {sweep['status']}{took}: {counts_text(sweep['counts'])}"
    console.print(line, markup=False, highlight=False)
    if sweep["counts"].get("succeeded"):
        console.print(
            f"grid: comfy-sweep grid {sweep['id']} -o grid.png", markup=False, highlight=False
        )


def status(
    sweep_id: SweepId, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """A sweep's status, counts and axes (GET /v1/sweeps/{id})."""
    with connected(url, key) as api:
        sweep = api.sweep(sweep_id)
    if as_json:
        print_json(sweep)
        return
    table = Table(show_header=False, box=None)
    for name in (
        "id",
        "workflow",
        "status",
        "total",
        "progress",
        "priority",
        "created_at",
        "started_at",
        "finished_at",
        "elapsed_s",
    ):
        if sweep.get(name) is not None:
            table.add_row(name, _shown(sweep[name]))
    table.add_row("counts", counts_text(sweep["counts"]))
    for axis in sweep.get("axes", []):
        table.add_row(f"axis {axis['param']}", ", ".join(map(str, axis["values"])))
    console.print(table)


def runs(
    sweep_id: SweepId,
    run_status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only runs in this state: {', '.join(RUN_STATUSES)}."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """A sweep's runs by index, with their values and errors (GET /v1/sweeps/{id}/runs)."""
    if run_status is not None and run_status not in RUN_STATUSES:
        raise typer.BadParameter(f"must be one of {', '.join(RUN_STATUSES)}", param_hint="--status")
    with connected(url, key) as api:
        found = api.runs(sweep_id, run_status)
    if as_json:
        print_json(found)
        return
    table = Table("index", "status", "instance", "attempts", "values", "error")
    for run in found:
        table.add_row(
            str(run["index"]),
            run["status"],
            run.get("instance") or "",
            str(run["attempts"]),
            ", ".join(f"{k}={_shown(v)}" for k, v in run["assignment"].items()),
            _error_text(run.get("error")),
        )
    console.print(table)


def _error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    parts = (error.get("kind"), error.get("node_type"), error.get("message"))
    return " ".join(str(p) for p in parts if p)[:200]


def _shown(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _act(action: str, sweep_id: str, as_json: bool, url: str | None, key: str | None) -> None:
    with connected(url, key) as api:
        sweep = api.act(sweep_id, action)
    if as_json:
        print_json(sweep)
    else:
        line = f"sweep {sweep['id']} {sweep['status']}: {counts_text(sweep['counts'])}"
        console.print(line, markup=False, highlight=False)


def cancel(
    sweep_id: SweepId, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Cancel a sweep: queued runs stop at once, running prompts are withdrawn."""
    _act("cancel", sweep_id, as_json, url, key)


def pause(
    sweep_id: SweepId, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Pause a sweep: no queued run starts until it is resumed."""
    _act("pause", sweep_id, as_json, url, key)


def resume(
    sweep_id: SweepId, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Resume a paused sweep."""
    _act("resume", sweep_id, as_json, url, key)


def _read_body(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        fail(f"{path}: cannot read it ({error.strerror or error})")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            document = yaml.safe_load(text)
        else:
            document = json.loads(text)
    except (ValueError, yaml.YAMLError) as error:
        fail(f"{path}: cannot parse it ({error})")
    if not isinstance(document, dict):
        fail(f"{path}: must hold one object (workflow, base, axes, ...)")
    return document


def register(cli: typer.Typer) -> None:
    for command in (submit, watch, status, runs, cancel, pause, resume):
        cli.command(command.__name__)(command)
