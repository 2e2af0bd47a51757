"""How many model loads a sweep's planned order costs on the pool as it stands: the claim's
choice of a run (`app.stores.claims.run_for`) played over the instances, every run taking
the same time. Pure, no I/O; an estimate, since real runs differ in length and other
sweeps share the instances.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Sequence


class _Queue:
    """The sweep's queued runs, each a model key, in dispatch order."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = keys
        self.taken = [False] * len(keys)
        self.head = 0
        self.positions: dict[str, deque[int]] = {}
        for position, key in enumerate(keys):
            self.positions.setdefault(key, deque()).append(position)

    def left(self, key: str) -> int:
        return len(self.positions.get(key, ()))

    def head_key(self) -> str | None:
        while self.head < len(self.keys) and self.taken[self.head]:
            self.head += 1
        return self.keys[self.head] if self.head < len(self.keys) else None

    def first_unserved(self, served: Counter[str], own: str) -> str | None:
        """The model, neither `own` nor served elsewhere, whose next run comes first."""
        firsts = {
            key: queue[0]
            for key, queue in self.positions.items()
            if queue and key != own and served[key] == 0
        }
        return min(firsts, key=lambda key: (firsts[key], key)) if firsts else None

    def take(self, key: str) -> None:
        self.taken[self.positions[key].popleft()] = True


def count_model_loads(
    keys_in_order: Sequence[str], loaded: Sequence[str | None], help_backlog: int
) -> int:
    """Loads of a sweep whose runs have `keys_in_order` (model keys in dispatch order) on
    instances that hold `loaded` now (None: nothing known). An instance keeps to its model
    while it has runs; else takes the next run unless another instance serves its model;
    else the first model nobody serves; else helps with a served model whose backlog is at
    least `help_backlog` per instance serving it, or stops."""
    if not loaded:
        return 0
    queue = _Queue(keys_in_order)
    held = list(loaded)
    working = set(range(len(held)))
    free_at = [(0, number) for number in range(len(held))]
    loads = 0
    for _ in range(len(keys_in_order)):
        key, number = None, -1
        while key is None and free_at:
            at, number = heapq.heappop(free_at)
            key = _choose(queue, held, working, number, help_backlog)
            if key is None:
                working.discard(number)
        if key is None:
            break
        loads += key != held[number]
        held[number] = key
        queue.take(key)
        heapq.heappush(free_at, (at + 1, number))
    return loads


def _choose(
    queue: _Queue, held: Sequence[str | None], working: set[int], number: int, help_backlog: int
) -> str | None:
    own = held[number] or ""
    if own and queue.left(own):
        return own
    head = queue.head_key()
    if head is None:
        return None
    served = Counter(key for other in working if other != number and (key := held[other]))
    if served[head] == 0:
        return head
    unserved = queue.first_unserved(served, own)
    if unserved is not None:
        return unserved
    helps = not own or queue.left(head) >= help_backlog * served[head]
    return head if helps else None
