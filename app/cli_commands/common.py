"""What every client command shares: the connection options, the exit codes, printing JSON
for scripts and the API's errors for people."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from app.client.api import ApiError, SweepApi, error_lines
from app.client.config import ConfigError, resolve_config

# A farm job depends on these: the sweep's outcome, or that the command itself went wrong.
EXIT_SUCCEEDED = 0
EXIT_FAILED = 1  # failed, or partial: some runs failed
EXIT_CANCELLED = 2
EXIT_ERROR = 3  # a usage error, an unreadable file, an error answer or no answer from the API
USAGE_EXIT_OF_CLICK = 2
EXIT_CODES = {
    "succeeded": EXIT_SUCCEEDED,
    "partial": EXIT_FAILED,
    "failed": EXIT_FAILED,
    "cancelled": EXIT_CANCELLED,
}

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The API, e.g. http://127.0.0.1:8000; default: COMFY_SWEEP_URL, then the "
        "config file, then http://127.0.0.1:8000.",
        show_default=False,
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="An API key; default: COMFY_SWEEP_KEY, then the config file. Never printed.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")
]
SweepId = Annotated[str, typer.Argument(help="The sweep's id, as submit printed it.")]


def exit_code_for(status: str) -> int:
    return EXIT_CODES.get(status, EXIT_ERROR)


def fail(message: str) -> NoReturn:
    typer.echo(f"comfy-sweep: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


@contextmanager
def connected(url: str | None, key: str | None) -> Iterator[SweepApi]:
    """The API client; an error answer inside ends the command with EXIT_ERROR after
    printing the API's JSON error on stderr."""
    try:
        config = resolve_config(url, key)
    except ConfigError as error:
        fail(str(error))
    try:
        with SweepApi(config) as api:
            yield api
    except ApiError as error:
        for line in error_lines(error):
            typer.echo(line, err=True)
        raise typer.Exit(EXIT_ERROR) from None


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False))


def counts_text(counts: dict[str, int]) -> str:
    order = ("succeeded", "failed", "cancelled", "running", "queued")
    shown = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    shown += [f"{n} {s}" for s, n in counts.items() if s not in order and n]
    return ", ".join(shown) or "no runs"


class CommandLine(TyperGroup):
    """The root command. A mistyped command line exits with EXIT_ERROR rather than click's 2,
    which is a cancelled sweep's here: a farm job must not read a typo as a cancellation."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_errors_exit_with_error():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors_exit_with_error():
            return super().invoke(ctx)


@contextmanager
def _usage_errors_exit_with_error() -> Iterator[None]:
    try:
        yield
    except typer.TyperException as error:
        # Click's usage errors (bad option, missing argument, ...) are the ones exiting 2.
        if getattr(error, "exit_code", None) == USAGE_EXIT_OF_CLICK:
            error.exit_code = EXIT_ERROR
        raise
