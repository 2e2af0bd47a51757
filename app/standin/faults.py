"""Injected faults for tests: which prompts fail, hang or kill the process, which submissions
are refused, and slow `/view`.

Spec syntax (CLI `--faults` and `POST /standin/faults {"spec": ...}`): comma-separated items
`fail:N`, `hang:N`, `die:N`, `reject:N`, `unavailable:N` and `slow-view:MS`. For fail/hang/die,
N is the 1-based ordinal of a prompt the executor starts (counted since the process started);
for reject and unavailable (a 503, as a proxy in front of a wedged ComfyUI answers), of a
`POST /prompt` received. `+N` is relative to the moment the spec is applied (`fail:+1` = the
next prompt), `*` means every prompt. Items of one kind add up: `fail:2,fail:5`. An empty spec
clears everything.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from app.standin.graph import JsonObject, JsonValue

PROMPT_FAULTS = ("fail", "hang", "die")  # counted in prompts the executor starts
SUBMISSION_FAULTS = ("reject", "unavailable")  # counted in `POST /prompt` requests received
ORDINAL_FAULTS = PROMPT_FAULTS + SUBMISSION_FAULTS


@dataclass(frozen=True)
class PromptSelector:
    """Which prompt ordinals a fault applies to."""

    ordinals: frozenset[int] = frozenset()
    every: bool = False

    def matches(self, ordinal: int) -> bool:
        return self.every or ordinal in self.ordinals

    def describe(self) -> list[str]:
        return ["*"] if self.every else [str(n) for n in sorted(self.ordinals)]


@dataclass(frozen=True)
class FaultPlan:
    fail: PromptSelector = field(default_factory=PromptSelector)
    hang: PromptSelector = field(default_factory=PromptSelector)
    die: PromptSelector = field(default_factory=PromptSelector)
    reject: PromptSelector = field(default_factory=PromptSelector)
    unavailable: PromptSelector = field(default_factory=PromptSelector)
    slow_view_ms: int = 0

    def spec(self) -> str:
        items = [f"{kind}:{n}" for kind in ORDINAL_FAULTS for n in getattr(self, kind).describe()]
        if self.slow_view_ms:
            items.append(f"slow-view:{self.slow_view_ms}")
        return ",".join(items)

    def as_json(self) -> JsonObject:
        return {
            "spec": self.spec(),
            "fail": list(self.fail.describe()),
            "hang": list(self.hang.describe()),
            "die": list(self.die.describe()),
            "reject": list(self.reject.describe()),
            "unavailable": list(self.unavailable.describe()),
            "slow_view_ms": self.slow_view_ms,
        }


def _ordinal(text: str, item: str, started: int) -> int | None:
    """The absolute ordinal for `N` or `+N`, None for `*`."""
    if text == "*":
        return None
    relative = text.startswith("+")
    digits = text[1:] if relative else text
    if not digits.isdigit() or int(digits) < 1:
        raise ValueError(f"bad fault {item!r}: expected a prompt number >= 1, +N or *")
    return started + int(digits) if relative else int(digits)


def parse_faults(spec: str, started: int = 0, submitted: int = 0) -> FaultPlan:
    """Parse a spec; `started` is how many prompts have already started and `submitted` how
    many `POST /prompt` were received (the bases of `+N`)."""
    ordinals: dict[str, set[int]] = {kind: set() for kind in ORDINAL_FAULTS}
    every: set[str] = set()
    slow_view_ms = 0
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        kind, sep, value = item.partition(":")
        kind, value = kind.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"bad fault {item!r}: expected KIND:VALUE")
        if kind == "slow-view":
            if not value.isdigit():
                raise ValueError(f"bad fault {item!r}: slow-view takes milliseconds")
            slow_view_ms = int(value)
        elif kind in ordinals:
            base = submitted if kind in SUBMISSION_FAULTS else started
            ordinal = _ordinal(value, item, base)
            if ordinal is None:
                every.add(kind)
            else:
                ordinals[kind].add(ordinal)
        else:
            kinds = "fail, hang, die, reject, unavailable or slow-view"
            raise ValueError(f"bad fault {item!r}: kind must be {kinds}")
    selectors = {
        kind: PromptSelector(frozenset(ordinals[kind]), kind in every) for kind in ORDINAL_FAULTS
    }
    return FaultPlan(slow_view_ms=slow_view_ms, **selectors)


def spec_from_json(body: JsonValue) -> str:
    """`{"spec": "fail:+1"}` or `{"fail": [3, "+1"], "reject": ["*"], "slow_view_ms": 500}`."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    spec = body.get("spec")
    if isinstance(spec, str):
        return spec
    items: list[str] = []
    for kind in ORDINAL_FAULTS:
        values = body.get(kind, [])
        if not isinstance(values, list):
            raise ValueError(f"{kind!r} must be a list")
        items += [f"{kind}:{v}" for v in values]
    slow = body.get("slow_view_ms", 0)
    if not isinstance(slow, int) or isinstance(slow, bool) or slow < 0:
        raise ValueError("'slow_view_ms' must be a non-negative integer")
    if slow:
        items.append(f"slow-view:{slow}")
    return ",".join(items)


class FaultSwitch:
    """The live plan, replaced atomically at runtime, read by the executor and `/view`."""

    def __init__(self, plan: FaultPlan) -> None:
        self._lock = threading.Lock()
        self._plan = plan

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan

    def replace(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
