"""Taking a cancelled sweep's prompts off every instance they were sent to."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError
from app.domain.states import SweepStatus
from app.stores import runs, sweeps
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def withdraw_prompts(rt: Runtime, sweep_id: UUID) -> None:
    with rt.sessions() as session:
        # Retried since (`POST .../retry`): the prompts there now are its new attempts'.
        if sweeps.sweep_status(session, sweep_id) != SweepStatus.CANCELLED:
            return
        sent = runs.submitted_prompts(session, sweep_id)
    by_instance: dict[str, list[str]] = {}
    for instance, prompt_id in sent:
        by_instance.setdefault(instance, []).append(prompt_id)
    asyncio.run(_withdraw_all(by_instance))


async def _withdraw_all(by_instance: dict[str, list[str]]) -> None:
    await asyncio.gather(*(_withdraw(url, ids) for url, ids in by_instance.items()))


async def _withdraw(url: str, prompt_ids: list[str]) -> None:
    try:
        async with ComfyClient(url) as client:
            await client.remove_from_queue(prompt_ids)
            queue = await client.queue()
            # Interrupt is targeted: it stops the running prompt only if it is ours.
            for prompt_id in set(queue.running) & set(prompt_ids):
                await client.interrupt(prompt_id)
    except ComfyError as failure:
        log.warning("withdraw_failed instance=%s error=%s", url, failure.error.message)
