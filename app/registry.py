"""The workflows this service can sweep: each `workflows/<name>.api.json` graph with its
`params/<name>.schema.json` contract, loaded and cross-checked once at startup.

Loading stops at the first fault and names the file and the JSON pointer (or line) where it
is, so a bad workflow is caught when the service starts rather than when a sweep runs it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.domain.contracts import Contract, ContractError, build_contract, check_bindings
from app.domain.workflow_check import graph_faults

logger = logging.getLogger(__name__)

GRAPH_SUFFIX = ".api.json"
SCHEMA_SUFFIX = ".schema.json"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class Workflow:
    name: str
    graph: Mapping[str, Any]
    contract: Contract
    title: str
    description: str


class RegistryError(Exception):
    """A workflow or schema file the service refuses to start with."""

    def __init__(
        self, path: Path, message: str, pointer: str | None = None, line: int | None = None
    ) -> None:
        self.path = path
        self.pointer = pointer
        self.line = line
        self.message = message
        super().__init__(f"{_where(path, pointer, line)}: {message}")


def _where(path: Path, pointer: str | None, line: int | None) -> str:
    if line is not None:
        return f"{path}:{line}"
    if pointer is not None:
        return f"{path} at {pointer or '(root)'}"
    return str(path)


class Registry:
    """Workflows by name, in name order."""

    def __init__(self, workflows: Mapping[str, Workflow]) -> None:
        self._workflows = dict(sorted(workflows.items()))

    def get(self, name: str) -> Workflow | None:
        return self._workflows.get(name)

    def names(self) -> list[str]:
        return list(self._workflows)

    def __iter__(self) -> Iterator[Workflow]:
        return iter(self._workflows.values())

    def __len__(self) -> int:
        return len(self._workflows)

    def __contains__(self, name: object) -> bool:
        return name in self._workflows


def load_registry(workflows_dir: Path, params_dir: Path) -> Registry:
    """Load every graph/schema pair; raise RegistryError at the first fault found."""
    graphs = _files_by_name(workflows_dir, GRAPH_SUFFIX)
    schemas = _files_by_name(params_dir, SCHEMA_SUFFIX)
    _check_pairs(graphs, schemas, params_dir, workflows_dir)
    workflows = {name: _load_workflow(name, graphs[name], schemas[name]) for name in graphs}
    logger.info("registry loaded workflows=%s", ",".join(sorted(workflows)))
    return Registry(workflows)


def _files_by_name(directory: Path, suffix: str) -> dict[str, Path]:
    if not directory.is_dir():
        raise RegistryError(directory, "is not a directory")
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if not path.name.endswith(suffix):
            logger.warning("registry ignores file=%s reason=not_%s", path, suffix)
            continue
        name = path.name.removesuffix(suffix)
        if not _NAME.fullmatch(name):
            # Names appear in URLs and in ComfyUI's filename_prefix, so keep them plain.
            raise RegistryError(path, "a workflow name must match [a-z0-9][a-z0-9-]*")
        found[name] = path
    return found


def _check_pairs(
    graphs: Mapping[str, Path],
    schemas: Mapping[str, Path],
    params_dir: Path,
    workflows_dir: Path,
) -> None:
    lonely_graphs = sorted(set(graphs) - set(schemas))
    if lonely_graphs:
        expected = params_dir / f"{lonely_graphs[0]}{SCHEMA_SUFFIX}"
        message = f"has no parameters schema (expected {expected})"
        raise RegistryError(graphs[lonely_graphs[0]], message)
    lonely_schemas = sorted(set(schemas) - set(graphs))
    if lonely_schemas:
        expected = workflows_dir / f"{lonely_schemas[0]}{GRAPH_SUFFIX}"
        raise RegistryError(schemas[lonely_schemas[0]], f"has no workflow (expected {expected})")


def _load_workflow(name: str, graph_path: Path, schema_path: Path) -> Workflow:
    graph = _read_object(graph_path)
    _check_api_format(graph_path, graph)
    schema = _read_object(schema_path)
    try:
        contract = build_contract(name, schema)
    except ContractError as error:
        raise RegistryError(schema_path, error.message, pointer=error.pointer) from None
    unbound = check_bindings(contract, graph)
    if unbound:
        pointer, message = unbound[0]
        raise RegistryError(schema_path, f"{message} ({graph_path.name})", pointer=pointer)
    return Workflow(
        name=name,
        graph=graph,
        contract=contract,
        # build_contract checked the schema, so title and description are strings if present.
        title=str(schema.get("title", name)),
        description=str(schema.get("description", "")),
    )


def _read_object(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RegistryError(
            path, f"invalid JSON: {error.msg} (column {error.colno})", line=error.lineno
        ) from None
    if not isinstance(document, dict):
        raise RegistryError(path, "must hold a JSON object", pointer="")
    return document


def _check_api_format(path: Path, graph: Mapping[str, Any]) -> None:
    faults = graph_faults(graph)
    if faults:
        raise RegistryError(path, faults[0].message, pointer=faults[0].pointer)
