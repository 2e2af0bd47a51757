"""A workflow saved from ComfyUI's menu (the UI format) turned into the API format it queues.

The UI format lists `nodes` (each with `id`, `type`, `mode`, `inputs` carrying `link` ids,
`outputs` and the widget values in `widgets_values`) and `links` as
`[id, from_node, from_slot, to_node, to_slot, type]`. Widget values are positional, in the
order the node's spec declares its widget inputs (required, then optional); after a widget
flagged `control_after_generate` the UI stores its "fixed/randomize" control, and after an
upload widget (`image_upload`) the button's value, neither of which a node receives.

Links are resolved through the nodes the UI runs itself: a `Reroute` is followed, a
`PrimitiveNode`'s value is written into the input it feeds, a bypassed node (mode 4) hands
its consumer the input of the same type it would have received, and a muted node (mode 2) is
left out with its outgoing links. Notes are dropped. Group nodes and subgraphs are refused:
their inside lives elsewhere in the file and converting them is ComfyUI's job. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.input_specs import InputSpec, extra_info, input_kind
from app.domain.problems import Loc, Problem, SweepRejected

MUTED = 2
BYPASSED = 4
REROUTE = "Reroute"
PRIMITIVE = "PrimitiveNode"
NOTES = frozenset({"Note", "MarkdownNote"})
_WIDGET_KINDS = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
_CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
_SEED_NAMES = frozenset({"seed", "noise_seed"})


@dataclass(frozen=True)
class _Link:
    source: int
    slot: int
    type: str


@dataclass(frozen=True)
class _Node:
    index: int  # place in the UI file's `nodes`, for locations
    raw: Mapping[str, Any]

    @property
    def type(self) -> str:
        return str(self.raw["type"])

    @property
    def mode(self) -> int:
        mode = self.raw.get("mode", 0)
        return mode if isinstance(mode, int) else 0

    def inputs(self) -> list[Mapping[str, Any]]:
        inputs = self.raw.get("inputs") or []
        return [i for i in inputs if isinstance(i, Mapping)] if isinstance(inputs, list) else []


def is_ui_format(document: Mapping[str, Any]) -> bool:
    return isinstance(document.get("nodes"), list)


def ui_to_api(
    ui: Mapping[str, Any], object_info: Mapping[str, Any], *, loc: Loc = ("graph",)
) -> dict[str, Any]:
    """The API-format graph of a UI-format workflow; raise SweepRejected naming each node,
    link or value that cannot be converted (`loc` prefixes locations inside `ui`)."""
    converter = _Converter(ui, object_info, loc)
    return converter.convert()


class _Converter:
    def __init__(self, ui: Mapping[str, Any], object_info: Mapping[str, Any], loc: Loc) -> None:
        self.object_info = object_info
        self.loc = loc
        self.problems: list[Problem] = []
        self.nodes = self._read_nodes(ui)
        self.links = self._read_links(ui)
        self.groups = _group_types(ui)

    def convert(self) -> dict[str, Any]:
        graph: dict[str, Any] = {}
        for node_id, node in sorted(self.nodes.items()):
            if self._is_refused(node_id, node) or node.mode in (MUTED, BYPASSED):
                continue
            if node.type in NOTES or node.type in (REROUTE, PRIMITIVE):
                continue
            if node.type not in self.object_info:
                msg = f"node {node_id} has type {node.type!r}, which the pool does not offer"
                self._problem(("nodes", node.index, "type"), "unknown_node_class", msg, node.type)
                continue
            title = node.raw.get("title")
            graph[str(node_id)] = {
                "inputs": self._inputs(node_id, node),
                "class_type": node.type,
                "_meta": {"title": title if isinstance(title, str) and title else node.type},
            }
        if not self.problems and not graph:
            self._problem(("nodes",), "empty_graph", "the workflow has no nodes to run", None)
        if self.problems:
            raise SweepRejected(self.problems)
        return graph

    # --- reading the file ---------------------------------------------------------------

    def _problem(self, where: Loc, type_: str, msg: str, value: object) -> None:
        self.problems.append(Problem((*self.loc, *where), type_, msg, value))

    def _read_nodes(self, ui: Mapping[str, Any]) -> dict[int, _Node]:
        nodes: dict[int, _Node] = {}
        for index, raw in enumerate(ui.get("nodes") or []):
            node_id = raw.get("id") if isinstance(raw, Mapping) else None
            if not isinstance(node_id, int) or isinstance(node_id, bool):
                self._problem(("nodes", index, "id"), "invalid_node", "a node needs an id", raw)
            elif not isinstance(raw.get("type"), str) or not raw["type"]:
                msg = f"node {node_id} needs a type"
                self._problem(("nodes", index, "type"), "invalid_node", msg, raw.get("type"))
            elif node_id in nodes:
                msg = f"node id {node_id} is used twice"
                self._problem(("nodes", index, "id"), "invalid_node", msg, node_id)
            else:
                nodes[node_id] = _Node(index, raw)
        return nodes

    def _read_links(self, ui: Mapping[str, Any]) -> dict[int, _Link]:
        links: dict[int, _Link] = {}
        for index, raw in enumerate(ui.get("links") or []):
            link = _parse_link(raw)
            if link is None:
                msg = "a link is [id, from_node, from_slot, to_node, to_slot, type]"
                self._problem(("links", index), "invalid_link", msg, raw)
                continue
            links[link[0]] = link[1]
        return links

    def _is_refused(self, node_id: int, node: _Node) -> bool:
        kind = self.groups.get(node.type)
        if kind is None:
            return False
        msg = (
            f"node {node_id} ({node.type!r}) is a {kind}; convert it back to plain nodes "
            "in ComfyUI and save the workflow again"
        )
        self._problem(
            ("nodes", node.index, "type"), f"unsupported_{kind.replace(' ', '_')}", msg, node.type
        )
        return True

    # --- one node's inputs --------------------------------------------------------------

    def _inputs(self, node_id: int, node: _Node) -> dict[str, Any]:
        specs = _ordered_specs(self.object_info[node.type])
        inputs = self._widget_values(node_id, node, specs)
        for slot, entry in enumerate(node.inputs()):
            name, link_id = entry.get("name"), entry.get("link")
            if not isinstance(name, str) or link_id is None:
                continue
            where: Loc = ("nodes", node.index, "inputs", slot, "link")
            resolved = self._resolve(link_id, where, set())
            if resolved is None:
                # Fed by a muted node or a dangling reroute: the input is left unset.
                inputs.pop(name, None)
            else:
                inputs[name] = resolved
        return inputs

    def _widget_values(
        self, node_id: int, node: _Node, specs: Sequence[tuple[str, InputSpec]]
    ) -> dict[str, Any]:
        widgets = [(n, s) for n, s in specs if input_kind(s) in _WIDGET_KINDS]
        values = node.raw.get("widgets_values")
        if isinstance(values, Mapping):
            # Some nodes save their widgets by name.
            return {name: values[name] for name, _ in widgets if name in values}
        if values is None:
            return {}
        if not isinstance(values, list):
            msg = f"node {node_id}: widgets_values must be a list"
            self._problem(("nodes", node.index, "widgets_values"), "invalid_node", msg, values)
            return {}
        found: dict[str, Any] = {}
        position = 0
        for number, (name, spec) in enumerate(widgets):
            if position >= len(values):
                break  # older saves lack newer optional widgets; ComfyUI uses the defaults
            found[name] = values[position]
            position += 1
            # A UI-only widget follows this one only if the list holds more values than the
            # widgets still to come.
            spare = len(values) - position > len(widgets) - number - 1
            if spare and (_has_upload(spec) or _is_control(name, spec, values[position])):
                position += 1
        return found

    def _resolve(self, link_id: object, where: Loc, seen: set[int]) -> Any:
        """The API value of an input fed by `link_id`: `[node, slot]`, an inlined primitive
        value, or None when nothing reaches it."""
        if not isinstance(link_id, int) or link_id not in self.links:
            self._problem(where, "invalid_link", f"link {link_id!r} is not in links", link_id)
            return None
        if link_id in seen:
            self._problem(where, "invalid_link", f"link {link_id} goes round in a loop", link_id)
            return None
        seen.add(link_id)
        link = self.links[link_id]
        source = self.nodes.get(link.source)
        if source is None:
            msg = f"link {link_id} comes from node {link.source}, which is not in nodes"
            self._problem(where, "invalid_link", msg, link_id)
            return None
        if source.mode == MUTED:
            return None
        if source.type == REROUTE:
            upstream = next(
                (i.get("link") for i in source.inputs() if i.get("link") is not None), None
            )
            if upstream is None:
                return None
            return self._resolve(upstream, ("nodes", source.index, "inputs", 0, "link"), seen)
        if source.type == PRIMITIVE:
            values = source.raw.get("widgets_values")
            if not isinstance(values, list) or not values:
                msg = f"primitive node {link.source} holds no value"
                self._problem(
                    ("nodes", source.index, "widgets_values"), "invalid_node", msg, values
                )
                return None
            return values[0]
        if source.mode == BYPASSED:
            return self._pass_through(link_id, link, source, seen)
        return [str(link.source), link.slot]

    def _pass_through(self, link_id: int, link: _Link, source: _Node, seen: set[int]) -> Any:
        # A bypassed node hands on the input of its output's type: the one in the same slot
        # if it matches, else the first that does.
        inputs = source.inputs()
        order = list(range(len(inputs)))
        if link.slot < len(inputs):
            order.remove(link.slot)
            order.insert(0, link.slot)
        for slot in order:
            entry = inputs[slot]
            if (
                _types_match(str(entry.get("type", "")), link.type)
                and entry.get("link") is not None
            ):
                where: Loc = ("nodes", source.index, "inputs", slot, "link")
                return self._resolve(entry["link"], where, seen)
        msg = (
            f"node {link.source} is bypassed but has no connected {link.type} input "
            f"to pass on (link {link_id})"
        )
        self._problem(("nodes", source.index, "mode"), "bypass_without_input", msg, source.mode)
        return None


def _parse_link(raw: object) -> tuple[int, _Link] | None:
    if isinstance(raw, list) and len(raw) >= 6:
        link_id, source, slot, link_type = raw[0], raw[1], raw[2], raw[5]
    elif isinstance(raw, Mapping):
        # The newer schema (version 1) writes links as objects.
        link_id, source, slot = raw.get("id"), raw.get("origin_id"), raw.get("origin_slot")
        link_type = raw.get("type")
    else:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (link_id, source, slot)):
        return None
    return int(link_id), _Link(int(source), int(slot), str(link_type or "*"))


def _group_types(ui: Mapping[str, Any]) -> dict[str, str]:
    """Node types that name a group node or a subgraph defined in this file."""
    kinds: dict[str, str] = {}
    extra = ui.get("extra")
    groups = extra.get("groupNodes") if isinstance(extra, Mapping) else None
    if isinstance(groups, Mapping):
        for name in groups:
            # Saved as "workflow/<name>" by older frontends, "workflow>name" by newer ones.
            for prefix in ("workflow/", "workflow>"):
                kinds[f"{prefix}{name}"] = "group node"
    definitions = ui.get("definitions")
    subgraphs = definitions.get("subgraphs") if isinstance(definitions, Mapping) else None
    if isinstance(subgraphs, list):
        for subgraph in subgraphs:
            if isinstance(subgraph, Mapping) and isinstance(subgraph.get("id"), str):
                kinds[subgraph["id"]] = "subgraph"
    return kinds


def _ordered_specs(info: Mapping[str, Any]) -> list[tuple[str, InputSpec]]:
    """Required then optional inputs in the order the UI lays out their widgets."""
    declared = info.get("input") or {}
    order = info.get("input_order") or {}
    found: list[tuple[str, InputSpec]] = []
    for section in ("required", "optional"):
        specs = declared.get(section) or {}
        names = order.get(section) or list(specs)
        found.extend((name, specs[name]) for name in names if name in specs)
    return found


def _has_control(name: str, spec: InputSpec) -> bool:
    flagged = extra_info(spec).get("control_after_generate") is True
    return flagged or (input_kind(spec) == "INT" and name in _SEED_NAMES)


def _is_control(name: str, spec: InputSpec, value: object) -> bool:
    return _has_control(name, spec) and isinstance(value, str) and value in _CONTROL_VALUES


def _has_upload(spec: InputSpec) -> bool:
    return any(key.endswith("_upload") and bool(v) for key, v in extra_info(spec).items())


def _types_match(offered: str, wanted: str) -> bool:
    if "*" in (offered, wanted):
        return True
    return bool(set(offered.upper().split(",")) & set(wanted.upper().split(",")))
